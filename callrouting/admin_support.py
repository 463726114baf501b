"""Support-staff extras of the call routing admin: provisioning a number for an account (optionally linking it
to the Vonage application), searching and filtering across accounts, live calls and recent failures.

Registered over callrouting/admin.py's RoutingNumberAdmin and CallAdmin (subclasses, so everything there stays);
imported by CallRoutingConfig.ready(), after the admin's autodiscovery.
"""
import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import ngettext

from incidents.models import AlertActionDelivery, Notification, VonageErrorEvent
from incidents.telephony import TelephonyError, is_configured

from . import configuration
from .admin import CallAdmin, RoutingNumberAdmin
from .models import AgentLeg, Call, RoutingNumber

FAILURE_DAYS = 7
FAILURE_ROWS = 100


class ProvisionNumberForm(forms.ModelForm):
    """A new routing number for an account: E.164 and uniqueness are the model's checks (full_clean)."""

    link_to_vonage = forms.BooleanField(
        required=False,
        label="Link to the Vonage application",
        help_text="Point the number's inbound calls at this installation (Vonage Numbers API).",
    )

    class Meta:
        model = RoutingNumber
        fields = ["account", "phone_number", "name", "language"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_configured():
            field = self.fields["link_to_vonage"]
            field.disabled = True
            field.help_text = "Vonage credentials are not set (VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY): link it later."


class LiveFilter(admin.SimpleListFilter):
    title = "live"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [("yes", "In progress"), ("no", "Ended")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(state=Call.State.ENDED)
        if self.value() == "no":
            return queryset.filter(state=Call.State.ENDED)
        return queryset


class SupportRoutingNumberAdmin(RoutingNumberAdmin):
    actions = ["link_to_vonage"]
    search_fields = [*RoutingNumberAdmin.search_fields, "account__slug", "options__label"]
    change_list_template = "admin/callrouting/routingnumber/support_change_list.html"

    def get_urls(self):
        extra = [
            path("provision/", self.admin_site.admin_view(self.provision_view), name="callrouting_routingnumber_provision"),
        ]
        return extra + super().get_urls()

    def provision_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ProvisionNumberForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            number = form.instance
            failure = configuration.provision_number(number, link=form.cleaned_data.get("link_to_vonage", False))
            self.message_user(request, f"Provisioned {number} for {number.account}.", messages.SUCCESS)
            if failure:
                self.message_user(request, f"Not linked to the Vonage application: {failure}", messages.WARNING)
            elif form.cleaned_data.get("link_to_vonage"):
                self.message_user(request, "Linked to the Vonage application.", messages.SUCCESS)
            return redirect(reverse("admin:callrouting_routingnumber_change", args=[number.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Provision a routing number",
            "form": form,
            "vonage_configured": is_configured(),
        }
        return TemplateResponse(request, "admin/callrouting/routingnumber/provision.html", context, status=400 if form.errors else 200)

    @admin.action(description="Link selected numbers to the Vonage application")
    def link_to_vonage(self, request, queryset):
        if not is_configured():
            self.message_user(
                request, "Vonage credentials are not set (VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY): nothing linked.",
                messages.ERROR,
            )
            return
        linked = 0
        for number in queryset:
            try:
                configuration.link_number_to_vonage(number)
            except TelephonyError as exc:
                self.message_user(request, f"{number}: not linked: {exc}", messages.ERROR)
            else:
                linked += 1
        if linked:
            message = ngettext("Linked %(count)d number to the Vonage application.",
                               "Linked %(count)d numbers to the Vonage application.", linked) % {"count": linked}
            self.message_user(request, message, messages.SUCCESS)


class SupportCallAdmin(CallAdmin):
    list_filter = [LiveFilter, *CallAdmin.list_filter]
    search_fields = [*CallAdmin.search_fields, "account__name", "routing_number__phone_number", "legs__phone_number"]
    change_list_template = "admin/callrouting/call/support_change_list.html"

    def get_urls(self):
        extra = [
            path("live/", self.admin_site.admin_view(self.live_view), name="callrouting_call_live"),
            path("failures/", self.admin_site.admin_view(self.failures_view), name="callrouting_call_failures"),
        ]
        return extra + super().get_urls()

    def _context(self, request, title, **extra):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}

    def live_view(self, request):
        """Calls not ended yet, across accounts, oldest first, with their agent legs."""
        calls = (
            Call.objects.exclude(state=Call.State.ENDED)
            .select_related("account", "routing_number", "option", "incident")
            .prefetch_related("legs__user")
            .order_by("started_at")
        )
        return TemplateResponse(request, "admin/callrouting/call/live.html", self._context(request, "Live calls", calls=calls))

    def failures_view(self, request):
        """Failed agent legs, notification deliveries, alert action deliveries and Vonage's error events (an NCCO it
        found invalid, a call it accepted but could not place) of the last FAILURE_DAYS days."""
        since = timezone.now() - dt.timedelta(days=FAILURE_DAYS)
        legs = (
            AgentLeg.objects.filter(status=AgentLeg.Status.FAILED, created_at__gte=since)
            .select_related("call__account", "call__routing_number", "user")
            .order_by("-created_at")[:FAILURE_ROWS]
        )
        notifications = (
            Notification.objects.filter(status=Notification.Status.FAILED, created_at__gte=since)
            .select_related("incident__account", "user")
            .order_by("-created_at")[:FAILURE_ROWS]
        )
        deliveries = (
            AlertActionDelivery.objects.filter(status=AlertActionDelivery.Status.FAILED, created_at__gte=since)
            .select_related("action__alert_source__account", "incident")
            .order_by("-created_at")[:FAILURE_ROWS]
        )
        vonage_errors = list(VonageErrorEvent.objects.filter(received_at__gte=since)[:FAILURE_ROWS])
        # The caller's call an error event concerns, when its conversation is one (else an agent or notification leg).
        calls = dict(
            Call.objects.filter(conversation_uuid__in={e.conversation_uuid for e in vonage_errors if e.conversation_uuid})
            .values_list("conversation_uuid", "pk")
        )
        for error in vonage_errors:
            error.call_id = calls.get(error.conversation_uuid)
        context = self._context(
            request, f"Recent failures (last {FAILURE_DAYS} days)", legs=legs, notifications=notifications,
            deliveries=deliveries, vonage_errors=vonage_errors,
        )
        return TemplateResponse(request, "admin/callrouting/call/failures.html", context)


for model, model_admin in ((RoutingNumber, SupportRoutingNumberAdmin), (Call, SupportCallAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
