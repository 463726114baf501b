"""Account scoping shared by the settings pages and the REST API: one place that knows how every model reaches
its account, so no page or endpoint can forget to filter.

`scoped(Model, account)` is the queryset of ACCOUNT's rows of Model; `get_scoped_or_404()` looks one up and
answers 404 for a row of another account exactly as for a row that does not exist.
"""
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404

from escalation.models import (
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
from incidents.models import AlertAction, AlertSource, Incident, IncidentEvent

from .models import (
    AgentLeg, Call, CallFlow, FlowVersion, Holiday, NumberAudio, RoutingNumber, RoutingOption, SupportCalendar,
    SupportHoursRange, Voicemail,
)

# How each model reaches its account (a lookup path for filter()).
ACCOUNT_PATHS = {
    User: "account",
    ApiToken: "user__account",
    ContactMethod: "user__account",
    NotificationRule: "user__account",
    OnCallSchedule: "account",
    RotationLayer: "schedule__account",
    LayerMember: "layer__schedule__account",
    LayerRestriction: "layer__schedule__account",
    ScheduleOverride: "schedule__account",
    EscalationPolicy: "account",
    EscalationRule: "policy__account",
    RuleUser: "rule__policy__account",
    RuleSchedule: "rule__policy__account",
    AlertSource: "account",
    AlertAction: "alert_source__account",
    Incident: "account",
    IncidentEvent: "incident__account",
    RoutingNumber: "account",
    RoutingOption: "routing_number__account",
    SupportCalendar: "account",
    SupportHoursRange: "calendar__account",
    Holiday: "calendar__account",
    CallFlow: "account",
    FlowVersion: "flow__account",
    NumberAudio: "routing_number__account",
    Call: "account",
    AgentLeg: "call__account",
    Voicemail: "call__account",
}


def scoped(model_or_queryset, account):
    """The rows of ACCOUNT among MODEL_OR_QUERYSET (a model, manager or queryset); none without an account."""
    if isinstance(model_or_queryset, models.QuerySet):
        queryset = model_or_queryset
    elif isinstance(model_or_queryset, models.Manager):
        queryset = model_or_queryset.all()
    else:
        queryset = model_or_queryset._default_manager.all()
    path = ACCOUNT_PATHS[queryset.model]
    if account is None:
        return queryset.none()
    return queryset.filter(**{path: account})


def get_scoped_or_404(model_or_queryset, account, **lookup):
    """The one row of ACCOUNT matching LOOKUP; Http404 when it is missing or belongs to another account."""
    try:
        return scoped(model_or_queryset, account).get(**lookup)
    except (ValidationError, ValueError, TypeError, models.ObjectDoesNotExist) as exc:
        raise Http404("Not found.") from exc


def unique_errors(instance):
    """{field: message} for each unconditional UniqueConstraint INSTANCE would break, named after the
    constraint's last field (the one a person chooses: the name, the digit, the level, the user).

    Forms and serializers that leave the account or parent out of their fields skip Django's own constraint
    check for those constraints; they ask here, so a duplicate is a field error and never an IntegrityError.
    """
    errors = {}
    model = type(instance)
    for constraint in model._meta.constraints:
        if not isinstance(constraint, models.UniqueConstraint) or constraint.condition is not None or not constraint.fields:
            continue
        values = {}
        for name in constraint.fields:
            field = model._meta.get_field(name)
            values[field.attname] = getattr(instance, field.attname)
        if any(value is None for value in values.values()):
            continue
        duplicates = model._default_manager.filter(**values)
        if instance.pk is not None:
            duplicates = duplicates.exclude(pk=instance.pk)
        if duplicates.exists():
            last = model._meta.get_field(constraint.fields[-1])
            errors[last.name] = f"This {last.verbose_name} is already used here; choose another one."
    return errors
