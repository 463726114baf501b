"""Django admin for support staff: accounts, people, on-call schedules and escalation policies.

Django has no nested inlines, so rotation layers and escalation rules have pages of their own (with their
participants, restrictions, users and schedules inline), linked from the schedule and policy pages. The answers
shown here ("on call now", upcoming shifts) come from the models.
"""
import datetime as dt

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import forms
from .models import (
    Account,
    ApiToken,
    ContactMethod,
    EscalationPolicy,
    EscalationRule,
    LayerMember,
    LayerRestriction,
    NotificationRule,
    OnCallSchedule,
    RotationLayer,
    RuleSchedule,
    RuleUser,
    ScheduleOverride,
    User,
)

UPCOMING_DAYS = 14


def names(objects):
    return ", ".join(str(obj) for obj in objects) or "Nobody"


def add_link(model_name, label, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    url = reverse(f"admin:escalation_{model_name}_add")
    return format_html('<a class="addlink" href="{}?{}">{}</a>', url, query, label)


class SupportStaffOnly:
    """The escalation admin is for support staff; account users (even with the staff flag) see none of it."""

    def has_module_permission(self, request):
        return support_staff(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return support_staff(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return support_staff(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return support_staff(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return support_staff(request) and super().has_delete_permission(request, obj)


def support_staff(request):
    # The login page asks too, for an AnonymousUser.
    return getattr(request.user, "is_support_staff", False)


class SameAccountChoices:
    """Offer only users and schedules of the parent object's account in the inline's dropdowns."""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        account = obj.account if obj is not None else None
        if account is not None:
            for field, choices in (("user", account.users.all()), ("schedule", account.schedules.all())):
                if field in formset.form.base_fields:
                    formset.form.base_fields[field].queryset = choices
        return formset


@admin.register(Account)
class AccountAdmin(SupportStaffOnly, admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class ContactMethodInline(admin.TabularInline):
    model = ContactMethod
    fields = ["kind", "value", "label", "position"]
    extra = 0


class NotificationRuleInline(admin.TabularInline):
    model = NotificationRule
    fields = ["channel", "contact_method", "delay_minutes", "position"]
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None:
            formset.form.base_fields["contact_method"].queryset = obj.contact_methods.all()
        return formset


@admin.register(ApiToken)
class ApiTokenAdmin(SupportStaffOnly, admin.ModelAdmin):
    """Users' REST API tokens: which exist, when they were used, revoking one (delete). The value is not stored (a
    digest only) and not even the digest is shown; tokens are created by their users."""

    list_display = ["name", "user", "created", "last_used", "expiry"]
    list_filter = [("user__account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "user__username"]
    fields = ["name", "user", "created", "last_used", "expiry"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(SupportStaffOnly, DjangoUserAdmin):
    form = forms.UserChangeForm
    add_form = forms.UserCreationForm
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Account", {"fields": ["account", "role", "timezone"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "email"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Important dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {"classes": ["wide"], "fields": ["username", "account", "role", "usable_password", "password1", "password2"]},
        ),
    ]
    list_display = ["username", "full_name", "account", "role", "primary_phone", "is_staff", "is_active"]
    list_filter = ["account", "role", "is_staff", "is_active"]
    search_fields = ["username", "first_name", "last_name", "email", "contact_methods__value"]
    list_select_related = ["account"]
    ordering = ["account__name", "username"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("contact_methods")

    def get_inlines(self, request, obj):
        # Notification rules point at contact methods, which exist only once the user does.
        return [ContactMethodInline, NotificationRuleInline] if obj is not None else []

    @admin.display(description="Name", ordering="first_name")
    def full_name(self, obj):
        return obj.get_full_name()

    @admin.display(description="Phone")
    def primary_phone(self, obj):
        return obj.primary_phone() or "-"


class RotationLayerInline(admin.TabularInline):
    model = RotationLayer
    fields = ["name", "level", "shift_length", "shift_unit", "start_date", "handoff_time", "end_date", "participants"]
    readonly_fields = ["participants"]
    show_change_link = True
    extra = 0

    def has_add_permission(self, request, obj=None):
        # A layer is added on its own page, where it gets its participants (see add_layer on the schedule).
        return False

    @admin.display(description="Participants")
    def participants(self, obj):
        return names(obj.participants())


class ScheduleOverrideInline(SameAccountChoices, admin.TabularInline):
    model = ScheduleOverride
    formset = forms.OverrideFormSet
    fields = ["user", "start", "end"]
    extra = 0


@admin.register(OnCallSchedule)
class OnCallScheduleAdmin(SupportStaffOnly, admin.ModelAdmin):
    list_display = ["name", "account", "timezone", "on_call_now"]
    list_filter = ["account"]
    search_fields = ["name", "account__name"]
    list_select_related = ["account"]
    fields = ["account", "name", "description", "timezone", "on_call_now", "upcoming_shifts", "add_layer"]
    readonly_fields = ["on_call_now", "upcoming_shifts", "add_layer"]
    inlines = [RotationLayerInline, ScheduleOverrideInline]

    def get_queryset(self, request):
        return super().get_queryset(request).with_oncall(timezone.now())

    @admin.display(description="On call now")
    def on_call_now(self, obj):
        if obj.pk is None:
            return "-"
        return obj.on_call_at(timezone.now()) or "Nobody"

    @admin.display(description=f"Next {UPCOMING_DAYS} days")
    def upcoming_shifts(self, obj):
        if obj.pk is None:
            return "-"
        now = timezone.now()
        shifts = obj.shifts_between(now, now + dt.timedelta(days=UPCOMING_DAYS))
        if not shifts:
            return "Nobody is on call."
        local = "{:%a %d %b %H:%M}".format
        rows = ((local(s.start.astimezone(obj.tz)), local(s.end.astimezone(obj.tz)), s.user, s.source) for s in shifts)
        return format_html_join(mark_safe("<br>"), "{} to {}: {} ({})", rows)

    @admin.display(description="Rotation layers")
    def add_layer(self, obj):
        if obj.pk is None:
            return "Save the schedule first, then add rotation layers."
        return add_link("rotationlayer", "Add a rotation layer", schedule=obj.pk)


class LayerMemberInline(SameAccountChoices, admin.TabularInline):
    model = LayerMember
    formset = forms.LayerMemberFormSet
    fields = ["position", "user"]
    extra = 1


class LayerRestrictionInline(admin.TabularInline):
    model = LayerRestriction
    fields = ["weekday", "start_time", "end_time"]
    extra = 0


@admin.register(RotationLayer)
class RotationLayerAdmin(SupportStaffOnly, admin.ModelAdmin):
    list_display = ["__str__", "schedule", "level", "rotation", "participants"]
    list_filter = ["schedule__account", "shift_unit"]
    search_fields = ["name", "schedule__name"]
    list_select_related = ["schedule"]
    fields = ["schedule", "name", "level", "shift_length", "shift_unit", "start_date", "handoff_time", "end_date"]
    inlines = [LayerMemberInline, LayerRestrictionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members__user")

    @admin.display(description="Rotation")
    def rotation(self, obj):
        return obj.rotation_display()

    @admin.display(description="Participants")
    def participants(self, obj):
        return names(obj.participants())


class EscalationRuleInline(admin.TabularInline):
    model = EscalationRule
    fields = ["position", "escalation_timeout_minutes", "targets"]
    readonly_fields = ["targets"]
    show_change_link = True
    extra = 0

    def has_add_permission(self, request, obj=None):
        # A rule is added on its own page, where it gets its users and schedules (see add_rule on the policy).
        return False

    @admin.display(description="Notifies")
    def targets(self, obj):
        return names(obj.targets())


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(SupportStaffOnly, admin.ModelAdmin):
    list_display = ["name", "account", "repeat_count", "on_call_now"]
    list_filter = ["account"]
    search_fields = ["name", "account__name"]
    list_select_related = ["account"]
    fields = ["account", "name", "description", "repeat_count", "on_call_now", "add_rule"]
    readonly_fields = ["on_call_now", "add_rule"]
    inlines = [EscalationRuleInline]

    def get_queryset(self, request):
        return super().get_queryset(request).with_oncall(timezone.now())

    @admin.display(description="On call now (dialled in this order)")
    def on_call_now(self, obj):
        if obj.pk is None:
            return "-"
        return names(obj.users_at(timezone.now()))

    @admin.display(description="Escalation rules")
    def add_rule(self, obj):
        if obj.pk is None:
            return "Save the policy first, then add escalation rules."
        return add_link("escalationrule", "Add an escalation rule", policy=obj.pk, position=obj.rules.count())


class RuleUserInline(SameAccountChoices, admin.TabularInline):
    model = RuleUser
    formset = forms.RuleUserFormSet
    fields = ["position", "user"]
    extra = 0


class RuleScheduleInline(SameAccountChoices, admin.TabularInline):
    model = RuleSchedule
    fields = ["position", "schedule"]
    extra = 0


@admin.register(EscalationRule)
class EscalationRuleAdmin(SupportStaffOnly, admin.ModelAdmin):
    list_display = ["__str__", "policy", "targets"]
    list_filter = ["policy__account"]
    search_fields = ["policy__name"]
    list_select_related = ["policy"]
    fields = ["policy", "position", "escalation_timeout_minutes"]
    inlines = [RuleUserInline, RuleScheduleInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("rule_users__user", "rule_schedules__schedule")

    @admin.display(description="Notifies")
    def targets(self, obj):
        return names(obj.targets())
