"""Call flows end to end over real HTTP (issue 17): the product's web server and django-q2 worker (subprocesses on a
throwaway database: SQLite, or PostgreSQL when DATABASE_URL names it) and the phone network, which places the
calls and plays callers, agents and an external phone from scripts. Every node kind is reached by a real call.

Flows published on E2E numbers (agents as in tests/e2e_stack.py: Agent1..Agent3):
- two levels: greeting, menu (1 outages -> a second menu: 1 Europe -> Agent1, 2 America -> Agent2; 2 billing -> Agent3)
- PIN: code 1234 "Globex" -> Agent1; wrong PIN -> "Goodbye."
- blocked: a caller list with the test caller's number -> hang up; anyone else -> Agent1
- chain: Agent1 -> the team lead's mobile (an external number, not a user) -> voicemail
- open: message -> hours (a calendar open all week) -> incident node (low priority, accepted when answered) -> Agent3
- closed: hours (a calendar never open) -> hang up "We are closed."
"""
import json

import pytest

from callrouting.emulator.script import Agent, Caller, ScriptedCall
from tests.e2e_stack import AGENTS, Stack

pytestmark = pytest.mark.slow

CALLER = "+4915550000100"  # the phone network's default caller id
TEAM_LEAD = "+4915100000099"  # an external number: dialled like an agent, not a user of the account
NUMBERS = {"two_levels": "+4930111100", "pin": "+4930111200", "blocked": "+4930111300", "chain": "+4930111400",
           "open": "+4930111500", "closed": "+4930111600"}

# Publishes one flow per number in the stack's database (the E2E account and agents exist already).
FLOWS_SETUP = """
import datetime as dt, json
from callrouting.flows import actions
from callrouting.flows.models import SupportCalendar
from callrouting.models import RoutingNumber, SupportHoursRange
from escalation.models import Account, EscalationPolicy, User

account = Account.objects.get(slug="e2e")
agent = {i: User.objects.get(username=f"e2e-agent{i}").pk for i in (1, 2, 3)}
policy = EscalationPolicy.objects.get(account=account, name="E2E agents").pk
numbers = json.loads(%(numbers)r)
always = SupportCalendar.objects.create(account=account, name="Always open", timezone="UTC")
for day in range(7):
    SupportHoursRange.objects.create(calendar=always, weekday=day, start=dt.time(0), end=dt.time(0))
never = SupportCalendar.objects.create(account=account, name="Never open", timezone="UTC")


def user(i):
    return [{"type": "user", "id": agent[i]}]


def route(name, targets, no_answer=None):
    return {"kind": "route", "name": name, "targets": targets, "style": "sequential", "ring_timeout": 10,
            "repeat": 1, "no_answer": no_answer}


def menu(name, prompt, branches):
    return {"kind": "menu", "name": name, "prompt": {"text": prompt, "audio": None},
            "branches": [{"key": k, "keyword": w, "next": n} for k, w, n in branches]}


def hangup(text):
    return {"kind": "hangup", "name": "Goodbye", "text": text}


flows = {
    "two_levels": {"start": "hello", "nodes": {
        "hello": {"kind": "message", "name": "Greeting", "text": "Welcome to two levels.", "next": "main"},
        "main": menu("Main", "", [("1", "outages", "regions"), ("2", "billing", "billing")]),
        "regions": menu("Regions", "", [("1", "Europe", "europe"), ("2", "America", "america")]),
        "europe": route("Europe", user(1)), "america": route("America", user(2)),
        "billing": route("Billing", user(3))}},
    "pin": {"start": "pin", "nodes": {
        "pin": {"kind": "pin", "name": "Key customers", "prompt": {"text": "Enter your PIN.", "audio": None},
                "codes": [{"code": "1234", "label": "Globex"}], "retries": 2, "next": "team", "wrong": "bye"},
        "team": route("Key customer team", user(1)), "bye": hangup("Goodbye.")}},
    "blocked": {"start": "list", "nodes": {
        "list": {"kind": "caller_list", "name": "Blocked callers", "entries": [%(caller)r, "anonymous"],
                 "listed": "bye", "not_listed": "team"},
        "team": route("Team", user(1)), "bye": hangup("This number does not take your calls. Goodbye.")}},
    "chain": {"start": "engineer", "nodes": {
        "engineer": route("On-call engineer", user(1), "lead"),
        "lead": route("Team lead", [{"type": "external", "number": %(lead)r, "label": "Team lead mobile"}], "vm"),
        "vm": {"kind": "voicemail", "name": "Voicemail", "greeting": {"text": "Leave a message.", "audio": None},
               "max_length": 60, "transcription": True}}},
    "open": {"start": "note", "nodes": {
        "note": {"kind": "message", "name": "Notice", "text": "Our office has moved.", "next": "hours"},
        "hours": {"kind": "hours", "name": "Office hours", "calendar": always.pk, "in_hours": "inc",
                  "out_of_hours": "closed", "holiday": None},
        "inc": {"kind": "incident", "name": "Create incident", "alert_source": None, "priority": "low",
                "policy": policy, "accept_when_answered": True, "next": "team"},
        "team": route("Team", user(3)), "closed": hangup("We are closed.")}},
    "closed": {"start": "hours", "nodes": {
        "hours": {"kind": "hours", "name": "Office hours", "calendar": never.pk, "in_hours": "team",
                  "out_of_hours": "closed", "holiday": None},
        "team": route("Team", user(3)), "closed": hangup("We are closed.")}},
}
for key, flow in flows.items():
    number = RoutingNumber(account=account, phone_number=numbers[key], name=f"E2E {key}", language="en-US",
                           greeting="", voicemail_enabled=True)
    number.save()
    for node in flow["nodes"].values():
        if node["kind"] == "incident":
            node["alert_source"] = number.alert_source_id
    actions.publish(actions.flow_of(number), data={"schema": 1, "language": "en-US", **flow})
"""

CALL = "select id, state, outcome, incident_id from callrouting_call where vonage_uuid = %s"
LEGS = ("select l.phone_number, l.status from callrouting_agentleg l join callrouting_call c on c.id = l.call_id "
        "where c.vonage_uuid = %s order by l.id")
INCIDENT = "select summary, details, priority, status from incidents_incident where id = %s"
TIMELINE = "select message from incidents_incidentevent where incident_id = %s order by at, id"
VOICEMAIL = ("select v.transcript, v.recording_saved_at from callrouting_voicemail v "
             "join callrouting_call c on c.id = v.call_id where c.vonage_uuid = %s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("e2e-flows")).start()
    try:
        stack.manage("shell", "-c", FLOWS_SETUP % {"numbers": json.dumps(NUMBERS), "caller": CALLER, "lead": TEAM_LEAD})
        yield stack
    finally:
        stack.stop()


@pytest.fixture(autouse=True)
def every_ncco_is_one_vonage_runs(stack):
    before = len(stack.phone.network.invalid_nccos)
    yield
    assert list(stack.phone.network.invalid_nccos)[before:] == []


def call(stack, flow, caller, **kwargs):
    return ScriptedCall(to=NUMBERS[flow], caller=caller, **kwargs).run(stack.client, timeout=40)


def ended(stack, outcome):
    """(outcome, incident id) once the call log says the call ended."""
    rows = stack.wait_for(CALL, (outcome.caller["uuid"],), expect=lambda rows: rows and rows[0][1] == "ended")
    return rows[0][2], rows[0][3]


def legs(stack, outcome):
    return stack.query(LEGS, (outcome.caller["uuid"],))


def timeline(stack, incident):
    return [message for (message,) in stack.query(TIMELINE, (incident,))]


def dialled(outcome):
    return ["+" + leg["to"] for leg in outcome.agents]


def test_a_two_level_menu_routes_by_the_second_choice(stack):
    outcome = call(stack, "two_levels", Caller(steps=[
        {"on": "input", "do": "dtmf", "digits": "1", "after": 0.2},
        {"on": "input", "do": "dtmf", "digits": "2", "after": 0.2}], hang_up_after=1),
        default_agent=Agent.accept(after=0.5))

    said = outcome.said_to_caller()
    assert said[0].startswith("Welcome to two levels.") and "outages" in " ".join(said)
    assert any("America" in text for text in said)  # the second level's menu
    assert outcome.connected and dialled(outcome) == [AGENTS[1]]
    result, incident = ended(stack, outcome)
    assert result == "answered" and legs(stack, outcome) == [(AGENTS[1], "accepted")]
    assert incident is not None


def test_the_right_pin_reaches_the_key_customer_team_and_names_the_customer(stack):
    outcome = call(stack, "pin", Caller(press="1234", after=0.2, hang_up_after=1), default_agent=Agent.accept(after=0.5))

    assert outcome.said_to_caller()[0] == "Enter your PIN."
    assert outcome.connected and dialled(outcome) == [AGENTS[0]]
    result, incident = ended(stack, outcome)
    assert result == "answered"
    summary, details, _priority, _status = stack.query(INCIDENT, (incident,))[0]
    assert "Globex" in " ".join([summary, details, *timeline(stack, incident)])


def test_a_wrong_pin_twice_takes_the_wrong_pin_branch(stack):
    outcome = call(stack, "pin", Caller(steps=[{"on": "input", "do": "dtmf", "digits": "9999", "after": 0.2},
                                               {"on": "input", "do": "dtmf", "digits": "1111", "after": 0.2}]))

    assert outcome.said_to_caller()[-1] == "Goodbye."
    assert outcome.agents == []
    result, incident = ended(stack, outcome)
    assert result == "flow_ended" and incident is None


def test_a_listed_caller_is_blocked_without_an_incident_but_with_a_call_log_line(stack):
    outcome = call(stack, "blocked", Caller())

    assert outcome.said_to_caller() == ["This number does not take your calls. Goodbye."]
    assert outcome.agents == [] and outcome.caller["status"] == "completed"
    result, incident = ended(stack, outcome)
    assert result == "blocked" and incident is None  # the call log has the call; nobody is paged


def test_a_caller_not_on_the_list_goes_through(stack):
    outcome = ScriptedCall(to=NUMBERS["blocked"], from_="+4915550000777", caller=Caller(hang_up_after=1),
                           default_agent=Agent.accept(after=0.5)).run(stack.client, timeout=40)

    assert outcome.connected and dialled(outcome) == [AGENTS[0]]
    assert ended(stack, outcome)[0] == "answered"


def test_a_chain_rings_the_engineer_then_an_external_number_then_takes_a_voicemail(stack):
    outcome = call(stack, "chain", Caller(voicemail="The payment gateway is down"),
                   agents={AGENTS[0]: Agent.no_answer(), TEAM_LEAD: Agent.decline()})

    assert dialled(outcome) == [AGENTS[0], TEAM_LEAD]
    assert not outcome.connected
    assert "Leave a message." in outcome.said_to_caller()
    result, incident = ended(stack, outcome)
    assert result == "voicemail"
    assert legs(stack, outcome) == [(AGENTS[0], "no_answer"), (TEAM_LEAD, "declined")]
    transcript, saved = stack.wait_for(VOICEMAIL, (outcome.caller["uuid"],),
                                       expect=lambda rows: rows and rows[0][0] and rows[0][1])[0]
    assert transcript == "The payment gateway is down"
    stack.wait_for(TIMELINE, (incident,), expect=lambda rows: any("Escalat" in m for (m,) in rows))


def test_message_hours_and_incident_nodes_lead_to_an_accepted_low_priority_incident(stack):
    outcome = call(stack, "open", Caller(hang_up_after=1), default_agent=Agent.accept(after=0.5))

    assert outcome.said_to_caller()[0] == "Our office has moved."
    assert outcome.connected and dialled(outcome) == [AGENTS[2]]
    result, incident = ended(stack, outcome)
    assert result == "answered"
    _summary, _details, priority, status = stack.wait_for(
        INCIDENT, (incident,), expect=lambda rows: rows and rows[0][3] in ("accepted", "resolved"))[0]
    assert priority == "low"


def test_out_of_hours_a_hangup_node_says_goodbye_and_ends_the_call(stack):
    outcome = call(stack, "closed", Caller())

    assert outcome.said_to_caller() == ["We are closed."]
    assert outcome.agents == []
    result, incident = ended(stack, outcome)
    assert result == "flow_ended" and incident is None
