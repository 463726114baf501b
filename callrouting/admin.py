"""Admin for support staff: routing numbers with their menu and voicemail, and the read-only call log."""
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from escalation.admin import SupportStaffOnly

from .models import AgentLeg, Call, RoutingNumber, RoutingOption, Voicemail


class RoutingOptionInline(admin.TabularInline):
    model = RoutingOption
    extra = 1
    fields = ["position", "digit", "label", "escalation_policy", "simultaneous"]
    autocomplete_fields = ["escalation_policy"]


@admin.register(RoutingNumber)
class RoutingNumberAdmin(SupportStaffOnly, admin.ModelAdmin):
    list_display = ["name", "phone_number", "account", "language", "voicemail_enabled"]
    list_filter = ["account", "language", "voicemail_enabled"]
    search_fields = ["name", "phone_number", "account__name"]
    list_select_related = ["account"]
    inlines = [RoutingOptionInline]
    readonly_fields = ["alert_source_link", "greeting_preview"]
    fieldsets = [
        (None, {"fields": ["account", "phone_number", "name", "language", "ringing_timeout", "keep_incident_open"]}),
        ("Greeting", {"fields": ["greeting", "greeting_only", "greeting_preview"]}),
        (
            "Voicemail",
            {"fields": ["voicemail_enabled", "voicemail_greeting", "voicemail_max_length", "voicemail_transcription"]},
        ),
        ("Incidents", {"fields": ["alert_source_link"]}),
    ]

    @admin.display(description="Callers hear")
    def greeting_preview(self, obj):
        return obj.preview_greeting() if obj.pk else "Save the number to see the greeting with its menu."

    @admin.display(description="Alert source")
    def alert_source_link(self, obj):
        if not obj.alert_source_id:
            return "Created when the number is saved."
        url = reverse("admin:incidents_alertsource_change", args=[obj.alert_source_id])
        return format_html('<a href="{}">{}</a>', url, obj.alert_source)


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
    fields = ["recording", "duration", "transcript", "recording_error", "recording_url", "created_at"]
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
