"""An account of a large customer, built with bulk inserts: people, on-call schedules with two layers each,
escalation policies, routing numbers with their options, incidents with their timelines and calls with agent legs.

`seed_large_account(name, size)` builds it (at the default size, 500 people, 200 schedules and 50,000 incidents,
in a few minutes on PostgreSQL) for `manage.py seed_large_account`, for `manage.py bench_pages` and, at small
sizes, for the tests that check that no page's number of queries grows with the account.
"""
import contextlib
import dataclasses
import datetime as dt

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.text import slugify

from escalation.models import (
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
from incidents.models import AlertAction, AlertSource, Incident, IncidentEvent

from .. import configuration
from ..flows.actions import publish_compiled
from ..models import AgentLeg, Call, RoutingNumber, RoutingOption
from ..tenancy import scoped

BATCH = 2000
TIME_ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"]


@dataclasses.dataclass(frozen=True)
class Size:
    people: int = 500
    schedules: int = 200
    policies: int = 100
    numbers: int = 100
    options: int = 5
    incidents: int = 50_000
    calls: int = 20_000
    events_per_incident: int = 5
    legs_per_call: int = 2


@dataclasses.dataclass
class LargeAccount:
    """The account, its owner (who signs in) and one row of each kind a URL names, {URL kwarg: pk}."""

    account: Account
    owner: User
    ids: dict


@contextlib.contextmanager
def _keeping_timestamps(*fields):
    """bulk_create() keeps the given created-at times instead of stamping every row with now."""
    saved = [(field, field.auto_now_add) for field in fields]
    for field, _ in saved:
        field.auto_now_add = False
    try:
        yield
    finally:
        for field, value in saved:
            field.auto_now_add = value


def _bulk(model, rows):
    return model.objects.bulk_create(rows, batch_size=BATCH)


def _phone(prefix, index):
    return f"+{prefix}{index:07d}"


@transaction.atomic
def seed_large_account(name, size=Size(), *, number_prefix=None, log=lambda message: None):
    """Build the account NAME at SIZE; answers a LargeAccount. Usernames and phone numbers derive from NAME's
    slug (or NUMBER_PREFIX, digits), so several accounts may be seeded into one database."""
    slug = slugify(name)
    prefix = number_prefix or str(10_000 + sum(map(ord, slug)) % 80_000)
    now = timezone.now()
    account = Account.objects.create(name=name, slug=slug, timezone="Europe/Berlin")
    password = make_password(None)
    people = _bulk(User, [
        User(
            account=account, username=f"{slug}-{i}", first_name=f"Person{i:04d}", last_name=name,
            email=f"person{i}@{slug}.example", password=password,
            role=User.Role.OWNER if i == 0 else (User.Role.ADMIN if i < 5 else User.Role.RESPONDER),
            timezone=TIME_ZONES[i % len(TIME_ZONES)],
        )
        for i in range(size.people)
    ])
    owner = people[0]
    methods = _bulk(ContactMethod, [
        ContactMethod(user=person, kind=ContactMethod.Kind.PHONE, value=_phone("49151" + prefix, i), label="mobile")
        for i, person in enumerate(people)
    ])
    _bulk(NotificationRule, [
        NotificationRule(user=method.user, channel=NotificationRule.Channel.VOICE, contact_method=method, delay_minutes=0)
        for method in methods
    ])
    log(f"{len(people)} people")

    schedules = _bulk(OnCallSchedule, [
        OnCallSchedule(account=account, name=f"Schedule {i:04d}", timezone=TIME_ZONES[i % len(TIME_ZONES)])
        for i in range(size.schedules)
    ])
    start = now.date() - dt.timedelta(days=30)
    layers = _bulk(RotationLayer, [
        RotationLayer(
            schedule=schedule, name=name_, level=level, shift_length=1, shift_unit=unit,
            start_date=start, handoff_time=dt.time(9),
        )
        for schedule in schedules
        for level, name_, unit in ((1, "Weekly", RotationLayer.Unit.WEEKS), (2, "Daily", RotationLayer.Unit.DAYS))
    ])
    _bulk(LayerMember, [
        LayerMember(layer=layer, user=people[(i * 3 + position) % len(people)], position=position)
        for i, layer in enumerate(layers)
        for position in range(min(5, len(people)))
    ])
    _bulk(LayerRestriction, [
        LayerRestriction(layer=layer, weekday=None, start_time=dt.time(8), end_time=dt.time(20))
        for layer in layers if layer.level == 2
    ])
    overrides = _bulk(ScheduleOverride, [
        ScheduleOverride(
            schedule=schedule, user=people[i % len(people)],
            start=now + dt.timedelta(days=1), end=now + dt.timedelta(days=2),
        )
        for i, schedule in enumerate(schedules)
    ])
    log(f"{len(schedules)} schedules, {len(layers)} layers")

    policies = _bulk(EscalationPolicy, [
        EscalationPolicy(account=account, name=f"Policy {i:04d}", repeat_count=1) for i in range(size.policies)
    ])
    rules = _bulk(EscalationRule, [
        EscalationRule(policy=policy, position=position, escalation_timeout_minutes=5)
        for policy in policies for position in range(2)
    ])
    _bulk(RuleUser, [
        RuleUser(rule=rule, user=people[(i * 7) % len(people)], position=0) for i, rule in enumerate(rules)
    ])
    _bulk(RuleSchedule, [
        RuleSchedule(rule=rule, schedule=schedules[(i + offset) % len(schedules)], position=offset)
        for i, rule in enumerate(rules) for offset in range(min(2, len(schedules)))
    ])
    log(f"{len(policies)} policies, {len(rules)} rules")

    sources = _bulk(AlertSource, [AlertSource(account=account, name=f"Line {i:04d}") for i in range(size.numbers)])
    numbers = _bulk(RoutingNumber, [
        RoutingNumber(
            account=account, alert_source=source, name=source.name, phone_number=_phone("4930" + prefix, i),
            greeting=f"Welcome to {source.name}.", timezone=TIME_ZONES[i % len(TIME_ZONES)],
        )
        for i, source in enumerate(sources)
    ])
    options = _bulk(RoutingOption, [
        RoutingOption(
            routing_number=number, position=digit - 1, digit=digit, label=f"Option {digit}",
            escalation_policy=policies[(i * size.options + digit) % len(policies)],
        )
        for i, number in enumerate(numbers) for digit in range(1, size.options + 1)
    ])
    actions = _bulk(AlertAction, [
        AlertAction(alert_source=source, name="Chat", url="https://hooks.example.com/chat") for source in sources[:5]
    ])
    by_number = {}
    for option in options:
        by_number.setdefault(option.routing_number_id, []).append(option)
    publish_compiled(numbers, by_number)  # bulk_create sent no signal: each number's flow, as the settings say
    log(f"{len(numbers)} numbers, {len(options)} options")

    incidents, incident_ids = [], []
    with _keeping_timestamps(Incident._meta.get_field("created_at"), IncidentEvent._meta.get_field("at")):
        for first in range(0, size.incidents, BATCH):
            batch = []
            for i in range(first, min(first + BATCH, size.incidents)):
                created = now - dt.timedelta(minutes=10 * (size.incidents - i))
                # One incident in fifty is still open, as on a busy account.
                status = (Incident.Status.PENDING, Incident.Status.ACCEPTED)[i % 2] if i % 50 == 0 else Incident.Status.RESOLVED
                batch.append(Incident(
                    account=account, alert_source=sources[i % len(sources)],
                    escalation_policy=policies[i % len(policies)], summary=f"Call on {sources[i % len(sources)].name}",
                    status=status, assigned_to=people[i % len(people)] if status != Incident.Status.PENDING else None,
                    created_at=created, accepted_at=created + dt.timedelta(minutes=2) if status != Incident.Status.PENDING else None,
                    resolved_at=created + dt.timedelta(minutes=30) if status == Incident.Status.RESOLVED else None,
                ))
            batch = _bulk(Incident, batch)
            incident_ids.extend(incident.pk for incident in batch)
            incidents.extend(batch[-1:] if first + BATCH < size.incidents else batch)
            _bulk(IncidentEvent, [
                IncidentEvent(incident=incident, at=incident.created_at + dt.timedelta(minutes=step), kind=kind, message=message)
                for incident in batch
                for step, (kind, message) in enumerate([
                    (IncidentEvent.Kind.CREATED, "Incident created."),
                    (IncidentEvent.Kind.NOTIFIED, "Called Person0001."),
                    (IncidentEvent.Kind.NOTIFIED, "Called Person0002."),
                    (IncidentEvent.Kind.ACCEPTED, "Accepted by Person0002."),
                    (IncidentEvent.Kind.RESOLVED, "Resolved by Person0002."),
                ][:size.events_per_incident])
            ])
        log(f"{size.incidents} incidents")

    calls = []
    with _keeping_timestamps(Call._meta.get_field("started_at")):
        for first in range(0, size.calls, BATCH):
            batch = _bulk(Call, [
                Call(
                    account=account, routing_number=numbers[i % len(numbers)], vonage_uuid=f"{slug}-call-{i}",
                    caller=_phone("49176" + prefix, i % 10_000), called_number=numbers[i % len(numbers)].phone_number,
                    option=options[i % len(options)], incident_id=incident_ids[i % len(incident_ids)],
                    state=Call.State.ENDED,
                    outcome=Call.Outcome.ANSWERED,
                    started_at=now - dt.timedelta(minutes=20 * (size.calls - i)),
                    ended_at=now - dt.timedelta(minutes=20 * (size.calls - i) - 5),
                )
                for i in range(first, min(first + BATCH, size.calls))
            ])
            calls.extend(batch[-1:])
            _bulk(AgentLeg, [
                AgentLeg(
                    call=call, position=position, user=people[(call.pk + position) % len(people)],
                    phone_number=_phone("49151" + prefix, (call.pk + position) % len(people)),
                    vonage_uuid=f"{call.vonage_uuid}-leg-{position}",
                    status=AgentLeg.Status.ANSWERED if position else AgentLeg.Status.NO_ANSWER,
                )
                for call in batch for position in range(size.legs_per_call)
            ])
        log(f"{size.calls} calls")

    token, _ = configuration.create_api_token(owner, "Benchmark")
    responder = people[-1]
    ids = {
        "number_pk": numbers[0].pk,
        "option_pk": options[0].pk,
        "action_pk": actions[0].pk,
        "policy_pk": policies[0].pk,
        "rule_pk": rules[0].pk,
        "schedule_pk": schedules[0].pk,
        "layer_pk": layers[0].pk,
        "override_pk": overrides[0].pk,
        "incident_pk": incidents[-1].pk,
        "call_pk": calls[-1].pk,
        "token_pk": token.pk,
        "user_pk": responder.pk,
        "contact_method_pk": methods[-1].pk,
        "notification_rule_pk": NotificationRule.objects.get(contact_method=methods[-1]).pk,
    }
    return LargeAccount(account=account, owner=owner, ids=ids)


def _web_patterns(resolver, prefix=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace in (None, "web"):
                yield from _web_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and resolver.namespace == "web":
            yield entry


def account_urls(seeded):
    """Every settings page and every API list, detail and read-only action of SEEDED's account, each once:
    [(name, url)], ids in paths filled with the account's rows."""
    from ..api.urls import router

    urls = []
    for pattern in _web_patterns(get_resolver()):
        kwargs = {name: seeded.ids[name] for name in pattern.pattern.converters}
        urls.append((f"web:{pattern.name}", reverse(f"web:{pattern.name}", kwargs=kwargs)))
    for prefix, viewset, basename in router.registry:
        model = viewset.queryset.model
        row = scoped(model.objects.order_by("-pk"), seeded.account)
        if model is ApiToken:
            row = row.filter(user=seeded.owner)
        pk = row.values_list("pk", flat=True).first()
        urls.append((f"api:{basename}-list", reverse(f"api:{basename}-list")))
        if pk is None:
            continue
        urls.append((f"api:{basename}-detail", reverse(f"api:{basename}-detail", kwargs={"pk": pk})))
        for extra in viewset.get_extra_actions():
            if extra.detail and "get" in extra.mapping:
                name = f"api:{basename}-{extra.url_name}"
                urls.append((name, reverse(name, kwargs={"pk": pk})))
    return urls
