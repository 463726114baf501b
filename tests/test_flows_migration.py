"""The migrations that move numbers onto call flows: support hours onto calendars (0010, 0012) and every number's
settings compiled into a published version 1 (0011), forwards and back, with the historical models."""
import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from callrouting.flows import compiler, document

BEFORE = [("callrouting", "0008_call_list_indexes")]
AFTER = [("callrouting", "0012_support_hours_on_calendars")]  # later migrations of the app may follow


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps(transactional_db):
    apps = migrate(BEFORE)
    yield apps
    migrate(executor_leaf_nodes())


def executor_leaf_nodes():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def make_numbers(apps):
    """Numbers as they were before flows: a menu with support hours and holidays, voicemail-only, one option."""
    Account = apps.get_model("escalation", "Account")
    AlertSource = apps.get_model("incidents", "AlertSource")
    Policy = apps.get_model("escalation", "EscalationPolicy")
    Number = apps.get_model("callrouting", "RoutingNumber")
    Option = apps.get_model("callrouting", "RoutingOption")
    Range = apps.get_model("callrouting", "SupportHoursRange")
    Holiday = apps.get_model("callrouting", "Holiday")
    account = Account.objects.create(name="Acme", slug="acme")
    outage = Policy.objects.create(account=account, name="Outage")
    billing = Policy.objects.create(account=account, name="Billing")

    def number(phone, name, **fields):
        source = AlertSource.objects.create(account=account, name=name)
        return Number.objects.create(account=account, alert_source=source, phone_number=phone, name=name, **fields)

    hours = number("+4930901001", "Hours line", greeting="Welcome.", support_hours_enabled=True,
                   timezone="Europe/Berlin", voicemail_enabled=True, out_of_hours_target="voicemail",
                   in_hours_calling="simultaneous")
    Option.objects.create(routing_number=hours, digit=1, position=0, label="Outage", escalation_policy=outage)
    Option.objects.create(routing_number=hours, digit=2, position=1, label="Billing", escalation_policy=billing,
                          simultaneous=True)
    Range.objects.create(routing_number=hours, weekday=0, start=dt.time(9), end=dt.time(17))
    Holiday.objects.create(routing_number=hours, date=dt.date(2030, 12, 25), name="Christmas")
    mailbox = number("+4930901002", "Mailbox", voicemail_enabled=True, voicemail_only=True, voicemail_max_length=7200)
    Option.objects.create(routing_number=mailbox, digit=1, position=0, label="Support", escalation_policy=outage)
    single = number("+4930901003", "Single", greeting="Hello.", greeting_only=True)
    Option.objects.create(routing_number=single, digit=3, position=0, label="Support", escalation_policy=billing)
    number("+4930901004", "Empty")
    return {"hours": hours.pk, "mailbox": mailbox.pk, "single": single.pk, "outage": outage.pk, "billing": billing.pk}


def test_numbers_move_onto_calendars_and_published_flows_and_back(old_apps):
    ids = make_numbers(old_apps)
    apps = migrate(AFTER)
    Number = apps.get_model("callrouting", "RoutingNumber")
    Calendar = apps.get_model("callrouting", "SupportCalendar")
    Flow = apps.get_model("callrouting", "CallFlow")

    hours = Number.objects.get(pk=ids["hours"])
    calendar = Calendar.objects.get(pk=hours.support_calendar_id)
    assert (calendar.name, calendar.timezone) == ("Hours line support hours", "Europe/Berlin")
    assert [(r.weekday, r.start) for r in calendar.ranges.all()] == [(0, dt.time(9))]
    assert [h.date for h in calendar.holidays.all()] == [dt.date(2030, 12, 25)]
    assert Calendar.objects.count() == 1  # numbers without support hours get none

    flows = {flow.number_id: flow for flow in Flow.objects.select_related("published")}
    assert len(flows) == 4
    for flow in flows.values():
        version = flow.published
        assert version.number == 1 and flow.draft == version.document
        parsed, errors = document.parse(version.document)
        assert errors == [], (flow.number_id, errors)
        assert compiler.is_simple(version.document)

    hours_doc = flows[ids["hours"]].published.document
    assert hours_doc["start"] == "hours"
    assert hours_doc["nodes"]["hours"]["calendar"] == calendar.pk
    assert hours_doc["nodes"]["hours"]["in_hours"] == "menu-simultaneous"
    assert hours_doc["nodes"]["hours"]["out_of_hours"] == "incident"
    assert hours_doc["nodes"]["incident"]["policy"] == ids["outage"]
    assert hours_doc["nodes"]["option-1-simultaneous"]["no_answer"] == "voicemail"
    mailbox_doc = flows[ids["mailbox"]].published.document
    assert mailbox_doc["start"] == "incident" and mailbox_doc["nodes"]["voicemail"]["max_length"] == 7200
    single_doc = flows[ids["single"]].published.document
    assert single_doc["start"] == "greeting-option-3"  # one option: its greeting is played first now
    assert single_doc["nodes"]["option-3"]["targets"] == [{"type": "policy", "id": ids["billing"]}]

    # The migration's compile of historical models and the live compile_number agree, number by number.
    migrate(executor_leaf_nodes())
    from callrouting.models import RoutingNumber

    for number in RoutingNumber.objects.filter(pk__in=[ids["hours"], ids["mailbox"], ids["single"]]):
        assert number.flow.published.document == compiler.compile_number(number), number.name

    # Backwards: the rows go back to their number, flows and calendars go.
    apps = migrate(BEFORE)
    Range = apps.get_model("callrouting", "SupportHoursRange")
    Holiday = apps.get_model("callrouting", "Holiday")
    assert list(Range.objects.values_list("routing_number_id", "weekday")) == [(ids["hours"], 0)]
    assert list(Holiday.objects.values_list("routing_number_id", "date")) == [(ids["hours"], dt.date(2030, 12, 25))]
