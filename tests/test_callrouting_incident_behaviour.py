"""Incident behaviour of a number and the call-routing sweeper: resolve or keep open when an accepted call ends,
auto raise at the next support-hours start (worker sweep, holidays respected), the voicemail deadline, and calls
stuck mid-dial (a lost webhook or a worker killed while dialling) moved on.

Acme's number: "Outage" calls Alice then Bob. Outside support hours calls go to voicemail."""
import datetime as dt

import pytest

from callrouting import advanced_forms
from callrouting.apps import ensure_sweep_schedule
from callrouting.models import AgentLeg, Call, Holiday, Target
from callrouting.tasks import sweep
from incidents.models import Incident, IncidentEvent, Priority
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    set_support_hours,
    the_call,
)

pytestmark = pytest.mark.django_db
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def number(acme, alice, bob):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", voicemail_enabled=True,
                                  out_of_hours_target=Target.VOICEMAIL)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    RoutingOptionFactory(routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob))
    return number


def escalations(incident):
    return incident.events.filter(kind=IncidentEvent.Kind.ESCALATED, message__startswith="Escalating").count()


def timeline(incident):
    return list(incident.events.values_list("message", flat=True))


def leave_message(phone, vonage_api, ncco, text="The VPN is down."):
    record = next(action for action in ncco if action["action"] == "record")
    phone.post(record["eventUrl"][0], {"recording_url": vonage_api.add_recording(b"ID3-mp3"), "recording_uuid": "r-1",
                                       "start_time": "2026-11-27T20:00:00Z", "end_time": "2026-11-27T20:00:09Z"})
    phone.post(record["transcription"]["eventUrl"][0], {"transcript": text})


# --- resolve or keep open ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_open, expected", [(False, Incident.Status.RESOLVED), (True, Incident.Status.ACCEPTED)])
def test_accepted_call_ending_resolves_unless_kept_open(phone, number, alice, keep_open, expected):
    form = advanced_forms.IncidentBehaviourForm({"keep_incident_open": keep_open or ""}, instance=number)
    assert form.is_valid(), form.errors
    form.save()
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), "1")
    phone.agent_press(AgentLeg.objects.get(user=alice), "1")
    phone.hang_up(uuid)
    incident = Incident.objects.get()
    assert the_call(uuid).outcome == Call.Outcome.ANSWERED and incident.status == expected
    if keep_open:
        assert "The answered call ended; the incident stays open." in timeline(incident)


# --- auto raise -------------------------------------------------------------------------------------------------


def test_auto_raise_creates_low_and_raises_at_the_next_support_hours_start(phone, number, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    number.auto_raise = True
    set_support_hours(number, inside=False)
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    incident = call.incident
    assert call.state == Call.State.VOICEMAIL and call.in_support_hours is False
    assert incident.priority == Priority.LOW and incident.escalation_suppressed
    expected = number.next_support_hours_start(call.started_at)
    assert call.raise_due_at == expected and expected > call.started_at
    local = expected.astimezone(number.tzinfo)
    assert (local.hour, local.minute) == (9, 0)
    assert any(line.startswith("Auto raise: low priority until support hours start") for line in timeline(incident))

    # The message is in: nobody is paged outside support hours.
    leave_message(phone, vonage_api, response.json())
    assert escalations(incident) == 0
    assert "The voicemail is in; the incident waits for support hours (auto raise)." in timeline(incident)

    assert sweep(now=expected - SECOND)["raises"] == 0
    incident.refresh_from_db()
    assert incident.priority == Priority.LOW
    assert sweep(now=expected)["raises"] == 1
    incident.refresh_from_db()
    assert incident.priority == Priority.HIGH and not incident.escalation_suppressed and escalations(incident) == 1
    assert any("support hours started (auto raise)" in line for line in timeline(incident))
    assert sweep(now=expected + dt.timedelta(minutes=1)) == {
            "outage_calls": 0, "stuck_calls": 0, "transfers": 0, "voicemails": 0, "raises": 0,
            "missing_recordings": 0, "recording_downloads": 0}
    assert escalations(incident) == 1


def test_auto_raise_skips_holidays(phone, number):
    number.auto_raise = True
    set_support_hours(number, inside=False)
    first = number.next_support_hours_start(dt.datetime.now(dt.timezone.utc))
    Holiday.objects.create(calendar=number.own_calendar(), date=first.astimezone(number.tzinfo).date(), name="Closed")
    number.__dict__.pop("_support_calendar", None)
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    assert call.raise_due_at.astimezone(number.tzinfo) == first.astimezone(number.tzinfo) + dt.timedelta(weeks=1)
    assert sweep(now=first)["raises"] == 0
    assert sweep(now=call.raise_due_at)["raises"] == 1
    assert Incident.objects.get().priority == Priority.HIGH


def test_auto_raise_waits_even_when_the_caller_leaves_no_message(phone, number):
    number.auto_raise = True
    set_support_hours(number, inside=False)
    response, uuid = phone.dial(number.phone_number)
    due = the_call(uuid).voicemail_due_at
    phone.hang_up(uuid)
    call = the_call(uuid)
    assert call.outcome == Call.Outcome.NO_MESSAGE
    # The voicemail deadline passes before support hours start: still nobody paged.
    assert sweep(now=due)["voicemails"] == 0
    assert escalations(call.incident) == 0
    assert sweep(now=call.raise_due_at)["raises"] == 1
    assert escalations(call.incident) == 1


def test_auto_raise_does_not_touch_a_resolved_incident(phone, number, alice):
    from incidents.services import resolve_incident

    number.auto_raise = True
    set_support_hours(number, inside=False)
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    resolve_incident(call.incident_id, alice)
    assert sweep(now=call.raise_due_at)["raises"] == 1
    incident = Incident.objects.get()
    assert incident.priority == Priority.LOW and incident.status == Incident.Status.RESOLVED


def test_without_auto_raise_or_support_hours_ahead_the_incident_is_high_and_escalates(phone, number, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    number.auto_raise = True
    set_support_hours(number, inside=False)
    number.own_calendar().ranges.all().delete()  # support hours never start: nothing to wait for
    number.__dict__.pop("_support_calendar", None)
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    assert call.raise_due_at is None and call.incident.priority == Priority.HIGH
    leave_message(phone, vonage_api, response.json())
    assert escalations(call.incident) == 1


def test_auto_raise_does_not_apply_during_support_hours(phone, number):
    number.auto_raise = True
    number.in_hours_target = Target.VOICEMAIL
    set_support_hours(number, inside=True)
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    assert call.state == Call.State.VOICEMAIL and call.raise_due_at is None and call.incident.priority == Priority.HIGH


def test_sweeper_schedule_is_registered_once():
    from django_q.models import Schedule

    ensure_sweep_schedule()
    ensure_sweep_schedule()
    schedule = Schedule.objects.get(func="callrouting.tasks.sweep")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)


# --- calls stuck mid-dial -----------------------------------------------------------------------------------------


def test_agent_leg_without_events_is_given_up_and_the_next_agent_called(
    phone, number, alice, bob, vonage_api, django_capture_on_commit_callbacks
):
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), "1")
    call = the_call(uuid)
    alice_leg = AgentLeg.objects.get(user=alice)
    assert alice_leg.status == AgentLeg.Status.DIALLING and call.routing_due_at
    # Vonage never reports on Alice's call (a lost webhook): nothing happens before the due time ...
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=call.routing_due_at - SECOND)["stuck_calls"] == 0
    # ... then her leg is given up, her call hung up, and Bob is called.
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=call.routing_due_at)["stuck_calls"] == 1
    alice_leg.refresh_from_db()
    assert alice_leg.status == AgentLeg.Status.NO_ANSWER and "no word from the phone network" in alice_leg.detail
    assert vonage_api.modifications(alice_leg.vonage_uuid) == [{"action": "hangup"}]
    assert [r["to"][0]["number"] for r in phone.dialled()] == ["4915110000001", "4915110000002"]
    assert AgentLeg.objects.get(user=bob).status == AgentLeg.Status.DIALLING
    # Bob's call is watched again from now on; Bob accepting ends the watch.
    call.refresh_from_db()
    assert call.routing_due_at > dt.datetime.now(dt.timezone.utc)
    phone.agent_press(AgentLeg.objects.get(user=bob), "1")
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED and call.routing_due_at is None


def test_worker_killed_before_dialling_still_reaches_the_caller(phone, number, alice, django_capture_on_commit_callbacks):
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), "1", run_tasks=False)  # routed, but the dialling task is lost
    call = the_call(uuid)
    # The route node's agents are a snapshot taken with the menu choice: queued, nobody dialled yet.
    assert call.state == Call.State.ROUTING and phone.dialled() == []
    assert set(call.legs.values_list("status", flat=True)) == {AgentLeg.Status.QUEUED}
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=call.routing_due_at)["stuck_calls"] == 1
    assert [r["to"][0]["number"] for r in phone.dialled()] == ["4915110000001"]
    assert AgentLeg.objects.get(user=alice).status == AgentLeg.Status.DIALLING


def test_last_agent_stuck_sends_the_caller_to_voicemail(phone, number, alice, bob, vonage_api, django_capture_on_commit_callbacks):
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), "1")
    phone.leg_event(AgentLeg.objects.get(user=alice), "busy")
    call = the_call(uuid)
    with django_capture_on_commit_callbacks(execute=True):
        sweep(now=call.routing_due_at)
    call.refresh_from_db()
    assert call.state == Call.State.VOICEMAIL and call.routing_due_at is None
    (transfer,) = vonage_api.modifications(call.vonage_uuid)
    assert [action["action"] for action in transfer["destination"]["ncco"]] == ["notify", "record", "talk"]


def test_sweep_leaves_healthy_and_ended_calls_alone(phone, number, alice, django_capture_on_commit_callbacks):
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), "1")
    call = the_call(uuid)
    phone.leg_event(AgentLeg.objects.get(user=alice), "ringing")  # an event pushes the due time on
    call.refresh_from_db()
    assert sweep(now=call.routed_at + dt.timedelta(seconds=5))["stuck_calls"] == 0
    phone.hang_up(uuid)
    call.refresh_from_db()
    assert call.state == Call.State.ENDED and call.routing_due_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=call.routed_at + dt.timedelta(hours=1))["stuck_calls"] == 0
