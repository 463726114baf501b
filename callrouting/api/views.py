"""Endpoints of the REST API (mounted at /api/). Thin: scope, validate with the serializer, call a service.

Every queryset goes through callrouting.tenancy.scoped(), so another account's object is a 404. Account members
read everything of their account; the account's owner and admins change configuration; every member may accept
and resolve incidents (through incidents.services, as on the web pages).
"""
import datetime as dt

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers as drf_serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from escalation import people
from escalation.models import (
    ApiToken,
    ContactMethod,
    EscalationPolicy,
    EscalationRule,
    LayerRestriction,
    NotificationRule,
    OnCallSchedule,
    RotationLayer,
    ScheduleOverride,
    User,
)
from escalation.oncall import OVERRIDE, policies_on_call
from incidents import services as incident_services
from incidents.models import AlertAction, AlertSource, Incident
from incidents.notifications import TestTooSoon, TransportError, send_test_notification

from .. import advanced, configuration
from ..models import Call, Holiday, NumberAudio, RoutingNumber, RoutingOption, SupportCalendar, SupportHoursRange
from ..tenancy import scoped
from . import serializers
from .filters import AccountFilterBackend, CallFilter, IncidentFilter

MAX_SHIFT_DAYS = 62


class AccountMember(BasePermission):
    """Signed in (token or session) as a user of an account; support staff use the Django admin instead."""

    message = "The API is for users of an account."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.account_id is not None)


class AdminWrites(AccountMember):
    """Reads for every member; writes for the account's owner and admins."""

    message = "Only the account's owner and admins change configuration."

    def has_permission(self, request, view):
        return super().has_permission(request, view) and (
            request.method in SAFE_METHODS or request.user.is_account_admin
        )


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class NewestIncidentsFirst(CursorPagination):
    """Incidents and calls page by position (a cursor after the last row shown), not by offset: every page of a
    long history costs the same, and a row created meanwhile neither repeats nor hides one on the next page."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created_at", "-id")


class NewestCallsFirst(NewestIncidentsFirst):
    ordering = ("-started_at", "-id")


class AccountViewSet(viewsets.GenericViewSet):
    """Base of every endpoint: the account's rows only, pagination, filters."""

    permission_classes = [AdminWrites]
    pagination_class = Pagination
    filter_backends = [AccountFilterBackend]

    def get_queryset(self):
        account = getattr(self.request.user, "account", None) if self.request else None
        return scoped(self.queryset, account)

    def perform_create(self, serializer):
        fields = {f.name for f in serializer.Meta.model._meta.concrete_fields}
        extra = {"account": self.request.user.account} if "account" in fields else {}
        serializer.save(**extra)

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except ProtectedError as exc:
            used_by = ", ".join(sorted({str(row) for row in exc.protected_objects})[:5])
            raise ValidationError({"detail": f"Still used by {used_by}; change those first."}) from exc


# AccountViewSet comes first so its perform_create/perform_destroy win over the mixins'.
class CrudViewSet(
    AccountViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    pass


class ReadOnlyViewSet(AccountViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    permission_classes = [AccountMember]


# --- People ---------------------------------------------------------------------------------------------------


class OwnContactsWrites(AccountMember):
    """Every member reads; a member changes their own contact methods and notification rules, the account's owner
    and admins everyone's (the serializer checks the user a row is given to)."""

    message = "Responders change only their own contact methods and notification rules."

    def has_object_permission(self, request, view, obj):
        return request.method in SAFE_METHODS or people.may_edit_contacts(request.user, obj.user)


class UserViewSet(AccountViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin):
    """The account's people with their contact methods. Owners and admins add people (who set their password
    through an invitation link), invite them, change roles and deactivate or reactivate them."""

    queryset = User.objects.prefetch_related("contact_methods")
    serializer_class = serializers.UserSerializer
    filterset_fields = ["role", "is_active"]

    def _managed(self):
        person = self.get_object()
        if not people.may_manage(self.request.user, person):
            raise PermissionDenied("You may not change this person's role or access.")
        return person

    def _person(self, person, status_code=status.HTTP_200_OK):
        return Response(serializers.UserSerializer(person, context=self.get_serializer_context()).data, status=status_code)

    @extend_schema(request=serializers.PersonCreateSerializer, responses={201: serializers.UserSerializer})
    def create(self, request, *args, **kwargs):
        """Add a person (no password: invite them with POST users/{id}/invite/)."""
        serializer = serializers.PersonCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data["role"] not in people.assignable_roles(request.user):
            raise ValidationError({"role": "Only an owner adds owners."})
        try:
            person = people.add_person(request.user.account, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        return self._person(person, status.HTTP_201_CREATED)

    @extend_schema(request=serializers.RoleSerializer, responses=serializers.UserSerializer)
    @action(detail=True, methods=["post"], serializer_class=serializers.RoleSerializer)
    def role(self, request, pk=None):
        """Change the person's role (not your own; only an owner gives or takes the owner role)."""
        person = self._managed()
        serializer = serializers.RoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            people.change_role(person, serializer.validated_data["role"], changed_by=request.user)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        return self._person(person)

    @extend_schema(request=None, responses=serializers.InvitationSerializer)
    @action(detail=True, methods=["post"])
    def invite(self, request, pk=None):
        """A one-time set-password link for the person (also emailed when outgoing email is configured)."""
        person = self._managed()
        if not person.is_active:
            raise ValidationError({"detail": "The person is deactivated: reactivate them first."})
        url, emailed = people.invite_person(person, invited_by=request.user)
        # The answer holds a one-time link: no cache may keep it.
        return Response({"url": url, "emailed": emailed}, headers={"Cache-Control": "no-store"})

    @extend_schema(request=None, responses=serializers.UserSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        """Deactivate the person: they cannot log in and are never on call, dialled or notified."""
        person = self._managed()
        people.set_active(person, False, changed_by=request.user)
        return self._person(person)

    @extend_schema(request=None, responses=serializers.UserSerializer)
    @action(detail=True, methods=["post"])
    def reactivate(self, request, pk=None):
        """Reactivate a deactivated person."""
        person = self._managed()
        people.set_active(person, True, changed_by=request.user)
        return self._person(person)


class OwnContactsViewSet(CrudViewSet):
    permission_classes = [OwnContactsWrites]

    def get_queryset(self):
        # A responder reads only their own rows (as on the pages); writing another's is a 403 (OwnContactsWrites).
        queryset = super().get_queryset()
        request = self.request
        if request is not None and request.method in SAFE_METHODS and not getattr(request.user, "is_account_admin", False):
            queryset = queryset.filter(user=request.user)
        return queryset


class ContactMethodViewSet(OwnContactsViewSet):
    """Phone numbers (stored in E.164) and email addresses of the account's people. Test a phone number with
    test-call and test-sms."""

    queryset = ContactMethod.objects.select_related("user")
    serializer_class = serializers.ContactMethodSerializer
    filterset_fields = ["user", "kind"]

    def _test(self, channel):
        method = self.get_object()  # checks OwnContactsWrites for this row
        try:
            provider_id = send_test_notification(method, channel)
        except TestTooSoon as exc:
            return Response({"detail": exc.message}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        except TransportError as exc:
            raise ValidationError({"detail": exc.message}) from exc
        return Response({"provider_id": provider_id or ""}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: serializers.TestNotificationSerializer})
    @action(detail=True, methods=["post"], url_path="test-call")
    def test_call(self, request, pk=None):
        """Place a test call to this phone number through Vonage (one test per number every 30 seconds)."""
        return self._test(NotificationRule.Channel.VOICE)

    @extend_schema(request=None, responses={202: serializers.TestNotificationSerializer})
    @action(detail=True, methods=["post"], url_path="test-sms")
    def test_sms(self, request, pk=None):
        """Send a test SMS to this phone number through Vonage (one test per number every 30 seconds)."""
        return self._test(NotificationRule.Channel.SMS)


class NotificationRuleViewSet(OwnContactsViewSet):
    """How each person is told when an escalation reaches them: channel, contact method, delay in minutes."""

    queryset = NotificationRule.objects.select_related("user", "contact_method")
    serializer_class = serializers.NotificationRuleSerializer
    filterset_fields = ["user", "channel"]


class ApiTokenViewSet(AccountViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin):
    """Your own API tokens (every member has theirs; nobody sees another user's). Creating one answers its value,
    the only time it is shown; deleting one revokes it at once."""

    queryset = ApiToken.objects.all()
    serializer_class = serializers.ApiTokenSerializer
    permission_classes = [AccountMember]

    def get_queryset(self):
        return super().get_queryset().filter(user=self.request.user)

    @extend_schema(request=serializers.ApiTokenSerializer, responses={201: serializers.CreatedApiTokenSerializer})
    def create(self, request):
        serializer = serializers.ApiTokenSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        token, value = configuration.create_api_token(request.user, **serializer.validated_data)
        token.token = value
        # The answer holds the token's value: no cache may keep it.
        return Response(serializers.CreatedApiTokenSerializer(token).data, status=status.HTTP_201_CREATED,
                        headers={"Cache-Control": "no-store"})

    def perform_destroy(self, instance):
        configuration.revoke_api_token(instance)


# --- Routing numbers ------------------------------------------------------------------------------------------


def ical_import_action(method):
    """The import-ical detail action (multipart upload of an .ics file) of numbers and calendars."""
    method = action(
        detail=True, methods=["post"], url_path="import-ical", parser_classes=[MultiPartParser, FormParser],
        serializer_class=serializers.HolidayImportSerializer,
    )(method)
    return extend_schema(
        request={"multipart/form-data": serializers.HolidayImportSerializer},
        responses=serializers.HolidayImportResultSerializer,
    )(method)


class RoutingNumberViewSet(AccountViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin):
    """Routing numbers of the account. Support staff provision and remove numbers; accounts configure them."""

    queryset = RoutingNumber.objects.prefetch_related("options")
    serializer_class = serializers.RoutingNumberSerializer
    filterset_fields = ["language", "voicemail_enabled", "voicemail_only", "support_hours_enabled"]

    @ical_import_action
    def import_ical(self, request, pk=None):
        """Import holidays from an iCalendar (.ics) file (multipart: file, replace)."""
        number = self.get_object()
        return import_ical_into(self, request, lambda: number.own_calendar(),
                                number.support_calendar if number.support_calendar_id else None)

    @extend_schema(request=serializers.VoicemailSettingsSerializer, responses=serializers.VoicemailSettingsSerializer)
    @action(detail=True, methods=["get", "put", "patch"], serializer_class=serializers.VoicemailSettingsSerializer)
    def voicemail(self, request, pk=None):
        """The number's voicemail settings (GET, or PUT/PATCH to change them)."""
        number = self.get_object()
        if request.method == "GET":
            return Response(serializers.VoicemailSettingsSerializer(number, context=self.get_serializer_context()).data)
        serializer = serializers.VoicemailSettingsSerializer(
            number, data=request.data, partial=request.method == "PATCH", context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)

    @extend_schema(responses=serializers.OptionOnCallSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="on-call", pagination_class=None, filter_backends=[])
    def on_call(self, request, pk=None):
        """Whom each routing option would call right now, options in menu order, users in dialling order."""
        number = self.get_object()
        options = list(number.options.all())
        users = policies_on_call({o.escalation_policy_id for o in options}, timezone.now())
        data = [
            {
                "option": option.pk,
                "digit": option.digit,
                "label": option.label,
                "simultaneous": option.simultaneous,
                "users": serializers.user_refs(users[option.escalation_policy_id]),
            }
            for option in options
        ]
        return Response(data)


class RoutingOptionViewSet(CrudViewSet):
    queryset = RoutingOption.objects.all()
    serializer_class = serializers.RoutingOptionSerializer
    filterset_fields = ["routing_number", "escalation_policy"]


def import_ical_into(view, request, calendar_to_fill, calendar_now):
    """Import the holidays of an uploaded iCalendar file into the calendar CALENDAR_TO_FILL() returns (called once
    the file is found valid); CALENDAR_NOW: that calendar if it exists already (its holidays count to the limit)."""
    serializer = serializers.HolidayImportSerializer(
        data=request.data, context={**view.get_serializer_context(), "calendar": calendar_now}
    )
    serializer.is_valid(raise_exception=True)
    added, updated, removed = advanced.import_holidays(
        calendar_to_fill(), serializer.entries, replace=serializer.validated_data["replace"]
    )
    return Response({"added": added, "updated": updated, "removed": removed})


class SupportCalendarViewSet(CrudViewSet):
    """Support-hours calendars of the account, shared by flows (hours nodes) and numbers (simple mode)."""

    queryset = SupportCalendar.objects.prefetch_related("numbers")
    serializer_class = serializers.SupportCalendarSerializer

    @ical_import_action
    def import_ical(self, request, pk=None):
        """Import holidays from an iCalendar (.ics) file (multipart: file, replace)."""
        calendar = self.get_object()
        return import_ical_into(self, request, lambda: calendar, calendar)


class SupportHoursRangeViewSet(CrudViewSet):
    """Weekly ranges of the support calendars, in each calendar's time zone (end 00:00 is midnight)."""

    queryset = SupportHoursRange.objects.all()
    serializer_class = serializers.SupportHoursRangeSerializer
    filterset_fields = ["calendar", "weekday"]


class HolidayViewSet(CrudViewSet):
    """Dates that count as outside support hours all day (import many at once with calendars/{id}/import-ical/)."""

    queryset = Holiday.objects.all()
    serializer_class = serializers.HolidaySerializer
    filterset_fields = ["calendar"]


class NumberAudioViewSet(AccountViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                         mixins.DestroyModelMixin):
    """Custom recordings of the numbers. Upload (multipart: routing_number, kind, file) to add or replace one."""

    queryset = NumberAudio.objects.all()
    serializer_class = serializers.NumberAudioSerializer
    parser_classes = [MultiPartParser, FormParser]
    filterset_fields = ["routing_number", "kind"]

    def perform_destroy(self, instance):
        advanced.remove_audio(instance)


# --- Escalation policies and on-call schedules ----------------------------------------------------------------


class EscalationPolicyViewSet(CrudViewSet):
    queryset = EscalationPolicy.objects.prefetch_related("rules")
    serializer_class = serializers.EscalationPolicySerializer

    @extend_schema(responses=serializers.OnCallUserSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="on-call", pagination_class=None, filter_backends=[])
    def on_call(self, request, pk=None):
        """The users the policy would notify right now, in order (call routing dials exactly these)."""
        policy = self.get_object()
        return Response(serializers.user_refs(policies_on_call([policy.pk], timezone.now())[policy.pk]))


class EscalationRuleViewSet(CrudViewSet):
    queryset = EscalationRule.objects.prefetch_related("rule_users", "rule_schedules")
    serializer_class = serializers.EscalationRuleSerializer
    filterset_fields = ["policy"]


class OnCallScheduleViewSet(CrudViewSet):
    queryset = OnCallSchedule.objects.prefetch_related("layers")
    serializer_class = serializers.OnCallScheduleSerializer

    @extend_schema(
        parameters=[OpenApiParameter("days", OpenApiTypes.INT, description=f"How many days from now (1-{MAX_SHIFT_DAYS}, default 14).")],
        responses=serializers.ShiftSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def shifts(self, request, pk=None):
        """Who is on call from now on: the final schedule (overrides and layers resolved) as shifts."""
        schedule = self.get_object()
        try:
            days = int(request.query_params.get("days", 14))
        except ValueError:
            raise ValidationError({"days": "A whole number of days."}) from None
        if not 1 <= days <= MAX_SHIFT_DAYS:
            raise ValidationError({"days": f"Between 1 and {MAX_SHIFT_DAYS}."})
        now = timezone.now()
        schedule = OnCallSchedule.objects.with_oncall(now).get(pk=schedule.pk)
        shifts = schedule.shifts_between(now, now + dt.timedelta(days=days))
        data = [
            {
                "user": {"id": s.user.pk, "name": str(s.user)},
                "start": s.start,
                "end": s.end,
                "source": "override" if s.source == OVERRIDE else str(s.source),
            }
            for s in shifts
        ]
        return Response(serializers.ShiftSerializer(data, many=True).data)


class RotationLayerViewSet(CrudViewSet):
    queryset = RotationLayer.objects.prefetch_related("members", "restrictions")
    serializer_class = serializers.RotationLayerSerializer
    filterset_fields = ["schedule"]


class LayerRestrictionViewSet(CrudViewSet):
    queryset = LayerRestriction.objects.all()
    serializer_class = serializers.LayerRestrictionSerializer
    filterset_fields = ["layer"]


class ScheduleOverrideViewSet(CrudViewSet):
    queryset = ScheduleOverride.objects.all()
    serializer_class = serializers.ScheduleOverrideSerializer
    filterset_fields = ["schedule", "user"]


# --- Alert sources and actions --------------------------------------------------------------------------------


class AlertSourceViewSet(ReadOnlyViewSet):
    queryset = AlertSource.objects.all()
    serializer_class = serializers.AlertSourceSerializer


class AlertActionViewSet(CrudViewSet):
    queryset = AlertAction.objects.all()
    serializer_class = serializers.AlertActionSerializer
    filterset_fields = ["alert_source", "kind", "enabled"]


# --- Incidents and the call log -------------------------------------------------------------------------------


ActionResult = inline_serializer(
    "IncidentActionResult",
    {"changed": drf_serializers.BooleanField(), "incident": serializers.IncidentSerializer()},
)


class IncidentViewSet(ReadOnlyViewSet):
    """Incidents of the account, newest first. Accept and resolve as the signed-in user."""

    queryset = Incident.objects.select_related("alert_source__routing_number")
    filterset_class = IncidentFilter
    pagination_class = NewestIncidentsFirst

    def get_serializer_class(self):
        return serializers.IncidentDetailSerializer if self.action == "retrieve" else serializers.IncidentSerializer

    def _act(self, verb):
        incident = self.get_object()
        if verb == "accept":
            changed = incident_services.accept_incident(incident.pk, self.request.user, via="api")
        else:
            changed = incident_services.resolve_incident(incident.pk, self.request.user, via="api")
        incident.refresh_from_db()
        data = {"changed": changed, "incident": serializers.IncidentSerializer(incident, context=self.get_serializer_context()).data}
        return Response(data, status=status.HTTP_200_OK)

    @extend_schema(request=None, responses=ActionResult)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """Accept a pending incident (changed=false when it was not pending any more)."""
        return self._act("accept")

    @extend_schema(request=None, responses=ActionResult)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Resolve an open incident (changed=false when it was resolved already)."""
        return self._act("resolve")


class CallViewSet(ReadOnlyViewSet):
    """The call log: calls with the agents called (legs) and any voicemail."""

    queryset = Call.objects.select_related("voicemail").prefetch_related("legs")
    serializer_class = serializers.CallSerializer
    filterset_class = CallFilter
    pagination_class = NewestCallsFirst
