"""Admin for support staff: routing numbers with their menu and voicemail, and the read-only call log."""
from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from escalation.admin import SupportStaffOnly

from . import advanced, advanced_forms, hours
from .models import (
    AgentLeg, Call, CallFlow, FlowVersion, Holiday, NumberAudio, RoutingNumber, RoutingOption, SupportCalendar,
    SupportHoursRange, Voicemail,
)


class RoutingOptionInline(admin.TabularInline):
    model = RoutingOption
    extra = 1
    fields = ["position", "digit", "label", "escalation_policy", "simultaneous"]
    autocomplete_fields = ["escalation_policy"]


class SupportHoursRangeInline(admin.TabularInline):
    model = SupportHoursRange
    form = advanced_forms.SupportHoursRangeForm
    formset = advanced_forms.SupportHoursRangeFormSet
    extra = 0
    verbose_name_plural = "support hours (weekly ranges; end 00:00 = midnight)"


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0
    fields = ["date", "name"]


def audio_player(audio):
    if audio is None or not audio.pk or not audio.file:
        return "-"
    return format_html('<audio controls preload="none" src="{}"></audio>', audio.get_absolute_url())


class NumberAudioAdminForm(advanced_forms.AudioUploadForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["upload"].required = False  # an empty extra row is skipped; a new kind needs a file (clean)

    def clean(self):
        data = super().clean()
        if not self.instance.pk and data.get("kind") and not data.get("upload") and not self.has_error("upload"):
            self.add_error("upload", "Choose an MP3 or WAV file.")
        return data

    def save(self, commit=True):
        if self.prepared is None:
            return self.instance
        self.number = self.instance.routing_number
        return super().save(commit)


class NumberAudioInline(admin.TabularInline):
    model = NumberAudio
    form = NumberAudioAdminForm
    extra = 0
    fields = ["kind", "upload", "player", "original_name", "duration", "details"]
    readonly_fields = ["player", "original_name", "duration", "details"]

    @admin.display(description="Listen")
    def player(self, obj):
        return audio_player(obj)


class RoutingNumberAdminForm(forms.ModelForm):
    holiday_calendar = forms.FileField(
        required=False, label="Import holidays (.ics)",
        help_text="Every date of every event in an iCalendar file is added as a holiday (multi-day events too).",
    )

    class Meta:
        model = RoutingNumber
        fields = "__all__"

    def clean_holiday_calendar(self):
        upload = self.cleaned_data.get("holiday_calendar")
        self.holiday_entries = []
        if upload:
            try:
                calendar = self.instance.support_calendar if self.instance.support_calendar_id else None
                self.holiday_entries = advanced.read_holiday_calendar(upload, calendar)
            except hours.CalendarError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return upload

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("in_hours_option", "out_of_hours_option"):
            if name in self.fields:
                number = self.instance if self.instance.pk else None
                self.fields[name].queryset = RoutingOption.objects.filter(routing_number=number) if number else RoutingOption.objects.none()


@admin.register(RoutingNumber)
class RoutingNumberAdmin(SupportStaffOnly, admin.ModelAdmin):
    form = RoutingNumberAdminForm
    list_display = ["name", "phone_number", "account", "language", "voicemail_enabled", "support_hours_enabled"]
    list_filter = ["account", "language", "voicemail_enabled", "support_hours_enabled", "voicemail_only"]
    search_fields = ["name", "phone_number", "account__name"]
    list_select_related = ["account"]
    inlines = [RoutingOptionInline, NumberAudioInline]
    readonly_fields = ["alert_source_link", "greeting_preview"]
    fieldsets = [
        (None, {"fields": ["account", "phone_number", "name", "language", "ringing_timeout"]}),
        ("Greeting", {"fields": ["greeting", "greeting_only", "greeting_preview"]}),
        (
            "Voicemail",
            {"fields": ["voicemail_enabled", "voicemail_greeting", "voicemail_max_length", "voicemail_transcription",
                        "voicemail_only"]},
        ),
        (
            "Support hours",
            {
                "fields": ["support_hours_enabled", "support_calendar", "timezone", "holiday_calendar",
                           ("in_hours_target", "in_hours_option", "in_hours_calling"),
                           ("out_of_hours_target", "out_of_hours_option", "out_of_hours_calling")],
                "description": "Weekly ranges and holidays belong to the support calendar (edit it under Support "
                               "calendars; an import here goes into it). Without support hours every call hears the "
                               "greeting and the menu.",
            },
        ),
        ("Incidents", {"fields": ["keep_incident_open", "auto_raise", "alert_source_link"]}),
    ]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        entries = getattr(form, "holiday_entries", None)
        if entries:
            from .advanced import import_holidays

            added, updated, _ = import_holidays(form.instance.own_calendar(), entries)
            self.message_user(request, f"Imported holidays: {added} added, {updated} renamed.", messages.SUCCESS)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "support_calendar":
            # Only calendars of the number's account (shown once the number exists).
            object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
            number = RoutingNumber.objects.filter(pk=object_id).first() if object_id else None
            kwargs["queryset"] = SupportCalendar.objects.filter(account_id=number.account_id if number else None)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Callers hear")
    def greeting_preview(self, obj):
        return obj.preview_greeting() if obj.pk else "Save the number to see the greeting with its menu."

    @admin.display(description="Alert source")
    def alert_source_link(self, obj):
        if not obj.alert_source_id:
            return "Created when the number is saved."
        url = reverse("admin:incidents_alertsource_change", args=[obj.alert_source_id])
        return format_html('<a href="{}">{}</a>', url, obj.alert_source)


@admin.register(SupportCalendar)
class SupportCalendarAdmin(SupportStaffOnly, admin.ModelAdmin):
    list_display = ["name", "account", "timezone"]
    list_filter = ["account"]
    search_fields = ["name", "account__name"]
    list_select_related = ["account"]
    inlines = [SupportHoursRangeInline, HolidayInline]


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AgentLegInline(ReadOnlyMixin, admin.TabularInline):
    model = AgentLeg
    extra = 0
    fields = ["position", "user", "phone_number", "status", "detail", "attempts", "vonage_uuid",
              "dialled_at", "answered_at", "ended_at"]
    readonly_fields = fields


class VoicemailInline(ReadOnlyMixin, admin.StackedInline):
    model = Voicemail
    extra = 0
    fields = ["recording", "duration", "transcript", "recording_error", "download_attempts", "download_due_at",
              "recording_lost_at", "recording_url", "created_at"]
    readonly_fields = fields


@admin.register(Call)
class CallAdmin(SupportStaffOnly, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["started_at", "caller", "routing_number", "option", "state", "outcome", "incident_link"]
    list_filter = ["state", "outcome", "routing_number", "account", "started_at"]
    search_fields = ["caller", "called_number", "vonage_uuid", "=incident__id"]
    list_select_related = ["routing_number", "option", "incident"]
    date_hierarchy = "started_at"
    inlines = [AgentLegInline, VoicemailInline]
    exclude = ["token", "conversation_name"]
    readonly_fields = ["incident_link"]

    @admin.display(description="Incident")
    def incident_link(self, obj):
        if not obj.incident_id:
            return "-"
        url = reverse("admin:incidents_incident_change", args=[obj.incident_id])
        return format_html('<a href="{}">#{}</a>', url, obj.incident_id)


class FlowVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = FlowVersion
    extra = 0
    fields = ["number", "published_at", "published_by", "summary"]
    readonly_fields = fields


@admin.register(CallFlow)
class CallFlowAdmin(SupportStaffOnly, ReadOnlyMixin, admin.ModelAdmin):
    """Flows are edited by the account (settings page, flow editor, API); support staff read them here."""

    list_display = ["number", "account", "published", "draft_revision", "updated_at"]
    list_filter = ["account"]
    list_select_related = ["number", "account", "published"]
    inlines = [FlowVersionInline]
