"""Admin for support staff. Logic stays in the services: admin actions call them."""
from django.contrib import admin, messages
from django.utils.translation import ngettext

from . import services
from .models import AlertAction, AlertActionDelivery, AlertSource, Incident, IncidentEvent, Notification


class AlertActionInline(admin.StackedInline):
    model = AlertAction
    extra = 0
    fields = [("name", "kind", "enabled"), "url", ("on_created", "on_accepted", "on_resolved", "on_escalated", "on_voicemail")]


@admin.register(AlertSource)
class AlertSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "escalation_policy", "priority", "language", "created_at"]
    list_filter = ["priority", "account"]
    search_fields = ["name", "account__name"]
    list_select_related = ["account", "escalation_policy"]
    inlines = [AlertActionInline]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class IncidentEventInline(ReadOnlyInline):
    model = IncidentEvent
    verbose_name_plural = "timeline"
    fields = ["at", "kind", "message", "user"]
    readonly_fields = fields
    ordering = ["at", "id"]


class NotificationInline(ReadOnlyInline):
    model = Notification
    verbose_name_plural = "notification attempts"
    fields = ["user", "channel", "contact", "status", "attempts", "due_at", "sent_at", "answered_at", "error"]
    readonly_fields = fields
    ordering = ["created_at", "id"]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["id", "summary", "account", "alert_source", "priority", "status", "assigned_to", "created_at"]
    list_display_links = ["id", "summary"]
    list_filter = ["status", "priority", "account", "created_at"]
    search_fields = ["=id", "summary", "details", "alert_source__name", "account__name"]
    list_select_related = ["account", "alert_source", "assigned_to"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "account", "alert_source", "escalation_policy", "status", "assigned_to", "created_at", "accepted_at",
        "resolved_at", "escalation_suppressed", "escalation_generation", "escalation_step", "escalation_due_at",
        "escalation_snapshot",
    ]
    fields = ["summary", "details", "priority", *readonly_fields]
    inlines = [IncidentEventInline, NotificationInline]
    actions = ["accept_selected", "resolve_selected"]

    def has_add_permission(self, request):
        return False  # incidents come from alert sources and call routing, through create_incident()

    def save_model(self, request, obj, form, change):
        # Priority changes go through the service so they reach the timeline.
        if "priority" in form.changed_data:
            services.set_priority(obj.pk, obj.priority, reason=f"(by {request.user} in the admin)")
        if {"summary", "details"} & set(form.changed_data):
            Incident.objects.filter(pk=obj.pk).update(summary=obj.summary, details=obj.details)

    @admin.action(description="Accept selected incidents (as me)")
    def accept_selected(self, request, queryset):
        done = sum(services.accept_incident(pk, request.user, via="admin") for pk in queryset.values_list("pk", flat=True))
        message = ngettext("Accepted %(count)d incident.", "Accepted %(count)d incidents.", done) % {"count": done}
        self.message_user(request, message, messages.SUCCESS)

    @admin.action(description="Resolve selected incidents")
    def resolve_selected(self, request, queryset):
        done = sum(
            services.resolve_incident(pk, request.user, via="admin") for pk in queryset.values_list("pk", flat=True)
        )
        message = ngettext("Resolved %(count)d incident.", "Resolved %(count)d incidents.", done) % {"count": done}
        self.message_user(request, message, messages.SUCCESS)


@admin.register(AlertActionDelivery)
class AlertActionDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "incident", "trigger", "attempt", "status", "status_code", "error"]
    list_filter = ["status", "trigger", "action__kind"]
    search_fields = ["action__name", "=incident__id", "error"]
    list_select_related = ["action", "incident"]
    readonly_fields = [
        "action", "incident", "trigger", "attempt", "status", "due_at", "enqueued_at", "payload", "status_code",
        "error", "response_excerpt", "created_at", "finished_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
