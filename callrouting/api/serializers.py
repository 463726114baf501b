"""Serializers of the REST API: input validation is the models' own (full_clean) plus account scoping of every
related id; output is plain ids and values.

Related ids are looked up among the caller's account only, so another account's id is the same field error as
an id that does not exist ("Invalid pk ... object does not exist"): never a 500, never a leak. Errors are keyed
by field name; a model's whole-object error is under "non_field_errors".
"""
import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

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
from incidents import outbound
from incidents.models import AlertAction, AlertSource, Incident, IncidentEvent

from .. import advanced, audio, configuration, hours
from ..models import (
    AgentLeg, Call, CallingStyle, Holiday, NumberAudio, RoutingNumber, RoutingOption, SupportCalendar, SupportHoursRange,
    Target, Voicemail,
)
from ..tenancy import ACCOUNT_PATHS, scoped, unique_errors


def request_account(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    return getattr(user, "account", None)


class AccountSerializer(serializers.ModelSerializer):
    """Base of every writable serializer: scoped related ids, model validation, errors named by field."""

    # Fields (many-to-many through tables or ordered lists) that are not model attributes of the instance.
    extra_write_fields = ()

    def get_fields(self):
        fields = super().get_fields()
        account = request_account(self.context)
        for field in fields.values():
            target = getattr(field, "child_relation", field)
            queryset = getattr(target, "queryset", None)
            if queryset is not None and queryset.model in ACCOUNT_PATHS:
                target.queryset = scoped(queryset, account)
        return fields

    def get_validators(self):
        # Unique constraints are checked in validate() and reported on their field, not as a non-field error.
        return []

    def prepare_instance(self, instance):
        """Set what the client does not send (the account) on INSTANCE before it is validated and saved."""
        if any(f.name == "account" for f in instance._meta.concrete_fields) and instance.account_id is None:
            instance.account = request_account(self.context)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = copy.copy(self.instance) if self.instance is not None else self.Meta.model()
        for name, value in attrs.items():
            if name not in self.extra_write_fields:
                setattr(instance, name, value)
        self.prepare_instance(instance)
        # Like a ModelForm: fields this serializer does not write are left out of field validation, so a model's
        # clean() names a field the client can send (see RoutingNumber._error_field).
        writable = {name for name, field in self.fields.items() if not field.read_only}
        exclude = [f.name for f in instance._meta.concrete_fields if f.name not in writable]
        try:
            instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_field_errors(exc)) from exc
        errors = unique_errors(instance)
        for field in instance._meta.concrete_fields:
            if field.unique and not field.primary_key and field.name not in errors:
                value = getattr(instance, field.attname)
                clash = type(instance)._default_manager.filter(**{field.attname: value}).exclude(pk=instance.pk)
                if value not in (None, "") and clash.exists():
                    errors[field.name] = f"This {field.verbose_name} is already in use."
        if errors:
            raise serializers.ValidationError(errors)
        # full_clean() may normalise values (phone numbers, labels): save what was validated.
        for name in attrs:
            if name not in self.extra_write_fields:
                attrs[name] = getattr(instance, name)
        return attrs


def _field_errors(exc):
    if not hasattr(exc, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    return {
        (api_settings.NON_FIELD_ERRORS_KEY if key == "__all__" else key): messages
        for key, messages in exc.message_dict.items()
    }


class SharedChoiceField(serializers.ChoiceField):
    """A choice field whose choice set is one named enum of the schema, however many fields use it (the targets
    during and outside support hours share RoutingTargetEnum instead of getting one enum each)."""

    def __init__(self, *, enum_name, **kwargs):
        self.enum_name = enum_name
        super().__init__(**kwargs)


class SharedChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = SharedChoiceField

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = {
            "type": "string",
            "enum": list(field.choices),
            "description": "\n".join(f"* `{value}` - {label}" for value, label in field.choices.items()),
        }
        component = ResolvedComponent(
            name=field.enum_name, type=ResolvedComponent.SCHEMA, object=field.enum_name, schema=schema
        )
        auto_schema.registry.register_on_missing(component)
        return component.ref


# --- People ---------------------------------------------------------------------------------------------------


class OwnContactsSerializer(AccountSerializer):
    """Contact methods and notification rules: a responder names only themselves as the user."""

    def validate_user(self, user):
        actor = self.context["request"].user
        if not people.may_edit_contacts(actor, user):
            raise serializers.ValidationError("Responders change only their own contact methods and notification rules.")
        return user


class ContactMethodSerializer(OwnContactsSerializer):
    """A phone number (validated, stored in E.164) or an email address of a user."""

    class Meta:
        model = ContactMethod
        fields = ["id", "user", "kind", "value", "label", "position"]


class NotificationRuleSerializer(OwnContactsSerializer):
    """How a user is told when an escalation reaches them: channel, one of their contact methods, delay."""

    class Meta:
        model = NotificationRule
        fields = ["id", "user", "channel", "contact_method", "delay_minutes", "position"]


class UserSerializer(serializers.ModelSerializer):
    """A person of the account. A responder sees only their own contact methods (owners and admins everyone's)."""

    contact_methods = ContactMethodSerializer(many=True, read_only=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        viewer = getattr(request, "user", None)
        if viewer is None or (viewer.pk != instance.pk and not getattr(viewer, "is_account_admin", False)):
            data["contact_methods"] = []
        return data

    class Meta:
        model = User
        fields = [
            "id", "username", "first_name", "last_name", "email", "role", "timezone", "is_active", "contact_methods",
        ]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its value (only a digest is stored)."""

    class Meta:
        model = ApiToken
        fields = ["id", "name", "created", "last_used", "expiry"]
        read_only_fields = ["id", "created", "last_used"]

    def validate_name(self, value):
        return " ".join(value.split())

    def validate_expiry(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Choose a time in the future, or leave it empty for no expiry.")
        return value


class CreatedApiTokenSerializer(ApiTokenSerializer):
    """The answer to creating a token: the one time its value is shown."""

    token = serializers.CharField(
        read_only=True, help_text="The token's value. It is not stored and cannot be shown again."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class PersonCreateSerializer(serializers.Serializer):
    """A new person (no password until they follow an invitation link; their email is their username)."""

    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    email = serializers.EmailField(max_length=150)
    role = serializers.ChoiceField(choices=User.Role.choices, default=User.Role.RESPONDER)


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=User.Role.choices)


class InvitationSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="The one-time set-password link to pass on.")
    emailed = serializers.BooleanField(help_text="Whether it was also emailed to the person.")


class TestNotificationSerializer(serializers.Serializer):
    provider_id = serializers.CharField(help_text="The call uuid or SMS message id Vonage gave.")


# --- Routing numbers ------------------------------------------------------------------------------------------


class RoutingNumberSerializer(AccountSerializer):
    """A number's settings. Targets, voicemail-only mode and support hours are validated together by the model
    (RoutingNumber.clean()), so a voicemail target with voicemail off or another number's option is a field error."""

    greeting_preview = serializers.SerializerMethodField(help_text="Exactly what callers hear first.")
    options = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    in_hours_target = SharedChoiceField(
        enum_name="RoutingTargetEnum", choices=Target.choices, required=False,
        help_text="Where calls during support hours go.",
    )
    out_of_hours_target = SharedChoiceField(
        enum_name="RoutingTargetEnum", choices=Target.choices, required=False,
        help_text="Where calls outside support hours go.",
    )
    in_hours_calling = SharedChoiceField(
        enum_name="CallingStyleEnum", choices=CallingStyle.choices, required=False,
        help_text="How agents are called during support hours.",
    )
    out_of_hours_calling = SharedChoiceField(
        enum_name="CallingStyleEnum", choices=CallingStyle.choices, required=False,
        help_text="How agents are called outside support hours.",
    )

    class Meta:
        model = RoutingNumber
        fields = [
            "id", "phone_number", "name", "language", "greeting", "greeting_only", "ringing_timeout",
            "keep_incident_open", "voicemail_enabled", "voicemail_greeting", "voicemail_max_length",
            "voicemail_transcription", "voicemail_only", "auto_raise", "support_hours_enabled", "timezone",
            "in_hours_target", "in_hours_option", "in_hours_calling", "out_of_hours_target", "out_of_hours_option",
            "out_of_hours_calling", "alert_source", "options", "greeting_preview", "created_at",
        ]
        # Numbers are provisioned and removed by support staff; accounts configure them.
        read_only_fields = ["phone_number", "alert_source", "created_at"]

    def get_greeting_preview(self, number) -> str:
        return number.preview_greeting()


class SupportHoursRangeSerializer(AccountSerializer):
    """One weekly range of a support calendar (the calendar's time zone; end 00:00 is midnight). Ranges of one
    day may not overlap."""

    class Meta:
        model = SupportHoursRange
        fields = ["id", "calendar", "weekday", "start", "end"]


class HolidaySerializer(AccountSerializer):
    """A date outside support hours all day (one per date and calendar)."""

    class Meta:
        model = Holiday
        fields = ["id", "calendar", "date", "name"]


class SupportCalendarSerializer(AccountSerializer):
    """Support hours that flows share (a flow's hours node names one): a time zone, weekly ranges
    (support-hours-ranges/) and holidays (holidays/, or import many with calendars/{id}/import-ical/)."""

    numbers = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True, help_text="The routing numbers whose settings use this calendar."
    )

    class Meta:
        model = SupportCalendar
        fields = ["id", "name", "timezone", "numbers", "created_at"]
        read_only_fields = ["created_at"]


class HolidayImportSerializer(serializers.Serializer):
    """An iCalendar (.ics) upload: every date of every VEVENT becomes a holiday of the calendar (a number's: of
    the calendar its support hours use)."""

    file = serializers.FileField(help_text="An iCalendar (.ics) file.")
    replace = serializers.BooleanField(
        default=False, help_text="Remove the holidays not in the file (otherwise its dates are added)."
    )

    def validate(self, attrs):
        try:
            self.entries = advanced.read_holiday_calendar(attrs["file"], self.context.get("calendar"), replace=attrs["replace"])
        except hours.CalendarError as exc:
            raise serializers.ValidationError({"file": [str(exc)]}) from exc
        return attrs


class HolidayImportResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    updated = serializers.IntegerField()
    removed = serializers.IntegerField()


class NumberAudioSerializer(AccountSerializer):
    """A custom recording. Uploading a kind the number already has replaces that recording (and its URL)."""

    file = serializers.FileField(write_only=True, help_text="MP3 or WAV; checked and converted on upload.")
    url = serializers.SerializerMethodField(help_text="Where Vonage (and anyone with the link) fetches it.")

    class Meta:
        model = NumberAudio
        fields = ["id", "routing_number", "kind", "file", "url", "format", "duration", "original_name", "details",
                  "created_at"]
        read_only_fields = ["format", "duration", "original_name", "details", "created_at"]

    def get_url(self, recording) -> str:
        return recording.absolute_url()

    def validate(self, attrs):
        # No model validation: the file is checked by callrouting.audio, and a second recording of a kind
        # replaces the first (advanced.store_audio) instead of breaking the (number, kind) constraint.
        try:
            attrs["prepared"] = audio.prepare(attrs["file"], attrs["kind"])
        except audio.AudioError as exc:
            raise serializers.ValidationError({"file": str(exc)}) from exc
        return attrs

    def create(self, validated_data):
        return advanced.store_audio(validated_data["routing_number"], validated_data["kind"], validated_data["prepared"])


class VoicemailSettingsSerializer(AccountSerializer):
    class Meta:
        model = RoutingNumber
        fields = ["voicemail_enabled", "voicemail_greeting", "voicemail_max_length", "voicemail_transcription"]


class RoutingOptionSerializer(AccountSerializer):
    class Meta:
        model = RoutingOption
        fields = ["id", "routing_number", "position", "digit", "label", "escalation_policy", "simultaneous"]
        extra_kwargs = {"position": {"required": False}}

    def validate(self, attrs):
        if self.instance is None and "position" not in attrs and attrs.get("routing_number") is not None:
            attrs["position"] = configuration.next_option_position(attrs["routing_number"])
        return super().validate(attrs)


class OnCallUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class OptionOnCallSerializer(serializers.Serializer):
    """Whom one routing option would call right now, in order."""

    option = serializers.IntegerField()
    digit = serializers.IntegerField()
    label = serializers.CharField()
    simultaneous = serializers.BooleanField()
    users = OnCallUserSerializer(many=True)


def user_refs(users):
    return [{"id": user.pk, "name": str(user)} for user in users]


# --- Escalation policies ----------------------------------------------------------------------------------------


class EscalationPolicySerializer(AccountSerializer):
    rules = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = EscalationPolicy
        fields = ["id", "name", "description", "repeat_count", "rules"]


class ThroughIds(serializers.ManyRelatedField):
    """Ids of a many-to-many relation read from its ordered through rows (the prefetched THROUGH of the instance,
    attribute ID of each row), so a list reads what the viewset prefetched; written as a list of primary keys."""

    def __init__(self, through, id_attr, queryset, **kwargs):
        self.through, self.id_attr = through, id_attr
        super().__init__(child_relation=serializers.PrimaryKeyRelatedField(queryset=queryset), **kwargs)

    def get_attribute(self, instance):
        return [getattr(row, self.id_attr) for row in getattr(instance, self.through).all()]

    def to_representation(self, ids):
        return list(ids)


class EscalationRuleSerializer(AccountSerializer):
    users = ThroughIds(
        "rule_users", "user_id", User.objects.all(), required=False,
        help_text="Notified in this order, before the schedules.",
    )
    schedules = ThroughIds(
        "rule_schedules", "schedule_id", OnCallSchedule.objects.all(), required=False,
        help_text="Whoever is on call on each, in order.",
    )
    extra_write_fields = ("users", "schedules")

    class Meta:
        model = EscalationRule
        fields = ["id", "policy", "position", "escalation_timeout_minutes", "users", "schedules"]
        extra_kwargs = {"position": {"required": False}}

    def validate(self, attrs):
        attrs = super().validate(attrs)
        for name in ("users", "schedules"):
            ids = [obj.pk for obj in attrs.get(name, [])]
            if len(ids) != len(set(ids)):
                raise serializers.ValidationError({name: "Name each one only once."})
        users = attrs["users"] if "users" in attrs else (self.instance.users.all() if self.instance else [])
        schedules = attrs["schedules"] if "schedules" in attrs else (self.instance.schedules.all() if self.instance else [])
        if not list(users) and not list(schedules):
            raise serializers.ValidationError({"users": "A rule needs at least one user or one on-call schedule."})
        return attrs

    def create(self, validated_data):
        users, schedules = validated_data.pop("users", None), validated_data.pop("schedules", None)
        return configuration.save_rule(EscalationRule(**validated_data), users=users, schedules=schedules)

    def update(self, rule, validated_data):
        users, schedules = validated_data.pop("users", None), validated_data.pop("schedules", None)
        for name, value in validated_data.items():
            setattr(rule, name, value)
        return configuration.save_rule(rule, users=users, schedules=schedules)


# --- On-call schedules -----------------------------------------------------------------------------------------


class OnCallScheduleSerializer(AccountSerializer):
    layers = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = OnCallSchedule
        fields = ["id", "name", "description", "timezone", "layers"]


class RotationLayerSerializer(AccountSerializer):
    members = serializers.PrimaryKeyRelatedField(
        many=True, queryset=User.objects.all(), required=False, help_text="Participants' user ids in rotation order."
    )
    restrictions = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    extra_write_fields = ("members",)

    class Meta:
        model = RotationLayer
        fields = [
            "id", "schedule", "name", "level", "shift_length", "shift_unit", "start_date", "handoff_time", "end_date",
            "members", "restrictions",
        ]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if self.instance is None and not attrs.get("members"):
            raise serializers.ValidationError({"members": "A rotation layer needs at least one participant."})
        if "members" in attrs and not attrs["members"]:
            raise serializers.ValidationError({"members": "A rotation layer needs at least one participant."})
        return attrs

    def to_representation(self, layer):
        data = super().to_representation(layer)
        data["members"] = [member.user_id for member in layer.members.all()]
        return data

    def create(self, validated_data):
        members = validated_data.pop("members", None)
        return configuration.save_layer(RotationLayer(**validated_data), members=members)

    def update(self, layer, validated_data):
        members = validated_data.pop("members", None)
        for name, value in validated_data.items():
            setattr(layer, name, value)
        return configuration.save_layer(layer, members=members)


class LayerRestrictionSerializer(AccountSerializer):
    class Meta:
        model = LayerRestriction
        fields = ["id", "layer", "weekday", "start_time", "end_time"]


class ScheduleOverrideSerializer(AccountSerializer):
    class Meta:
        model = ScheduleOverride
        fields = ["id", "schedule", "user", "start", "end"]


class ShiftSerializer(serializers.Serializer):
    user = OnCallUserSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    source = serializers.CharField(help_text='"override" or the rotation layer\'s name.')


# --- Alert sources and actions --------------------------------------------------------------------------------


class AlertSourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertSource
        fields = ["id", "name", "escalation_policy", "priority", "language", "created_at"]
        read_only_fields = fields


class AlertActionSerializer(AccountSerializer):
    class Meta:
        model = AlertAction
        fields = [
            "id", "alert_source", "name", "kind", "url", "on_created", "on_accepted", "on_resolved", "on_escalated",
            "on_voicemail", "enabled",
        ]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "url" in attrs and (problem := outbound.address_problem(attrs["url"])):
            raise serializers.ValidationError({"url": [problem]})
        return attrs


# --- Incidents and the call log --------------------------------------------------------------------------------


class IncidentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentEvent
        fields = ["at", "kind", "message", "user"]
        read_only_fields = fields


class IncidentSerializer(serializers.ModelSerializer):
    routing_number = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id", "summary", "details", "priority", "status", "alert_source", "routing_number", "escalation_policy",
            "assigned_to", "created_at", "accepted_at", "resolved_at",
        ]
        read_only_fields = fields

    def get_routing_number(self, incident) -> int | None:
        number = getattr(incident.alert_source, "routing_number", None)
        return number.pk if number else None


class IncidentDetailSerializer(IncidentSerializer):
    events = IncidentEventSerializer(many=True, read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "events"]
        read_only_fields = fields


class AgentLegSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentLeg
        fields = ["position", "user", "phone_number", "status", "detail", "dialled_at", "answered_at", "ended_at"]
        read_only_fields = fields


class VoicemailSerializer(serializers.ModelSerializer):
    recording_url = serializers.SerializerMethodField(help_text="The recording, for signed-in users of the account.")

    class Meta:
        model = Voicemail
        fields = ["duration", "transcript", "recording_url", "created_at"]
        read_only_fields = fields

    def get_recording_url(self, voicemail) -> str | None:
        if not voicemail.recording:
            return None
        request = self.context.get("request")
        path = reverse("web:call-voicemail", args=[voicemail.call_id])
        return request.build_absolute_uri(path) if request else path


class CallSerializer(serializers.ModelSerializer):
    legs = AgentLegSerializer(many=True, read_only=True)
    voicemail = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "id", "routing_number", "caller", "called_number", "state", "outcome", "option", "simultaneous",
            "incident", "started_at", "routed_at", "connected_at", "ended_at", "legs", "voicemail",
        ]
        read_only_fields = fields

    @extend_schema_field(VoicemailSerializer(allow_null=True))
    def get_voicemail(self, call):
        try:
            return VoicemailSerializer(call.voicemail, context=self.context).data
        except models.ObjectDoesNotExist:
            return None
