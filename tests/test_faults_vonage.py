"""Faults of the Vonage API while a call is routed: 5xx, 429 and timeouts on create-call, on the caller's
transfer (voicemail, "nobody available") and on the hang-up of other agents' legs.

What must hold whatever the API does: the caller is never left in silence (they end with the voicemail or
"nobody available" NCCO, or are hung up with the incident escalated), nothing is lost (the incident is
escalated exactly once or accepted, every agent leg ends), and calls placed by a request that timed out are
hung up when their first event arrives. test_callrouting_robustness covers the basic cases (500/503/429 on
create-call, 500 on the voicemail transfer); this file covers the rest.

Same cast as test_callrouting_calls: Acme's "Outage" (1) calls Alice then Bob, "Billing" (2) Bob and Carol at once.
"""
import time

import pytest

from callrouting.models import AgentLeg, Call
from incidents.models import Incident, IncidentEvent
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)

pytestmark = pytest.mark.django_db

L = AgentLeg.Status
CREATE = ("POST", r"^/v1/calls$")
MODIFY = ("PUT", r"^/v1/calls/[^/]+$")
# A hung request is answered after HANG seconds; the product's client gives up after VONAGE_TIMEOUT = 1 s.
HANG = 1.4


@pytest.fixture
def number(acme, alice, bob, carol):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820")
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    RoutingOptionFactory(
        routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob, carol), simultaneous=True
    )
    return number


@pytest.fixture
def short_timeout(settings):
    settings.VONAGE_TIMEOUT = 1  # the client is rebuilt on the settings change


def texts(ncco):
    return [action.get("text") for action in ncco if action["action"] == "talk"]


def route(phone, number, digit):
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), digit)
    return the_call(uuid)


def agent_dials(phone):
    """Numbers of the agent calls placed (notification calls of the escalation are not agent calls)."""
    return [r["to"][0]["number"] for r in phone.dialled() if "/vonage/leg/" in r["event_url"][0]]


def escalations(incident):
    return incident.events.filter(kind=IncidentEvent.Kind.ESCALATED, message__startswith="Escalating").count()


def fault(vonage_api, kind, method_path, times):
    """Script TIMES failures of KIND ("500", "503", "429" or "timeout") on METHOD_PATH."""
    if kind == "timeout":
        vonage_api.hang_next(*method_path, HANG, times=times)
    else:
        vonage_api.fail_next(*method_path, int(kind), times=times)


def wait_for(predicate, polls=int((HANG + 10) / 0.02)):
    """Poll PREDICATE until it holds: hung requests reach the fake's state only when their delay is over. Bounded
    by a number of polls (a busy machine's slower polls stretch it rather than fail)."""
    for _ in range(polls):
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"the fake Vonage API never got there ({polls} polls)")


def caller_ncco(vonage_api, call):
    """The NCCO the caller was last transferred to (None: never transferred)."""
    transfers = [m for m in vonage_api.modifications(call.vonage_uuid) if m["action"] == "transfer"]
    return transfers[-1]["destination"]["ncco"] if transfers else None


def assert_all_legs_ended(call):
    assert set(call.legs.values_list("status", flat=True)) <= {L.DECLINED, L.NO_ANSWER, L.BUSY, L.MACHINE, L.FAILED, L.CANCELLED, L.ACCEPTED}


# --- the caller's transfer: voicemail -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "503", "429", "timeout"])
def test_voicemail_transfer_recovers_from_temporary_errors(phone, number, alice, bob, vonage_api, inline_tasks, short_timeout, kind):
    number.voicemail_enabled = True
    number.save()
    call = route(phone, number, "1")
    fault(vonage_api, kind, MODIFY, times=2)
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    call.refresh_from_db()
    assert call.state == Call.State.VOICEMAIL
    ncco = caller_ncco(vonage_api, call)
    assert ncco is not None, "the caller was never moved on from the hold music"
    assert [a["action"] for a in ncco] == ["notify", "record", "talk"]
    assert {"action": "hangup"} not in vonage_api.modifications(call.vonage_uuid)
    assert inline_tasks[-2:] == [0.5, 1.5]  # bounded backoff between the three attempts
    # The incident waits for the message (or the voicemail deadline), it is not escalated twice.
    assert escalations(Incident.objects.get()) == 0


@pytest.mark.parametrize("kind", ["429", pytest.param("timeout", marks=pytest.mark.slow)])
def test_voicemail_transfer_failing_for_good_escalates_and_hangs_up(phone, number, alice, bob, vonage_api, short_timeout, kind):
    """500 is covered in test_callrouting_robustness; a 429 storm and a hanging API must end the same way."""
    number.voicemail_enabled = True
    number.save()
    call = route(phone, number, "1")
    fault(vonage_api, kind, MODIFY, times=3)
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    if kind == "timeout":
        # The hung transfers reach the fake late; the hang-up after them is what the caller ends with.
        wait_for(lambda: len(vonage_api.modifications(call.vonage_uuid)) == 4)
    assert vonage_api.modifications(call.vonage_uuid)[-1] == {"action": "hangup"}
    incident = Incident.objects.get()
    assert escalations(incident) == 1
    assert incident.events.filter(message__contains="could not be sent to voicemail").exists()
    assert_all_legs_ended(call)


# --- the caller's transfer: nobody available ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["503", "timeout"])
def test_nobody_available_transfer_recovers_from_temporary_errors(phone, number, alice, bob, vonage_api, short_timeout, kind):
    call = route(phone, number, "1")
    fault(vonage_api, kind, MODIFY, times=1)
    phone.leg_event(phone.leg(alice), "unanswered", detail="timeout")
    phone.leg_event(phone.leg(bob), "rejected", detail="declined")
    call.refresh_from_db()
    assert (call.state, call.outcome) == (Call.State.ENDED, Call.Outcome.NO_AGENT)
    assert texts(caller_ncco(vonage_api, call))[0].startswith("Sorry, no one is available")
    assert {"action": "hangup"} not in vonage_api.modifications(call.vonage_uuid)
    assert escalations(Incident.objects.get()) == 1


@pytest.mark.parametrize("kind", ["500", "429"])
def test_nobody_available_transfer_failing_for_good_hangs_up_and_escalates_once(phone, number, alice, bob, vonage_api, kind):
    call = route(phone, number, "1")
    fault(vonage_api, kind, MODIFY, times=3)
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    assert vonage_api.modifications(call.vonage_uuid) == [{"action": "hangup"}]
    # end_call escalated ("nobody took the call"); the failed transfer must not page people a second time.
    assert escalations(Incident.objects.get()) == 1


# --- create-call --------------------------------------------------------------------------------------------


def test_simultaneous_fan_out_with_a_429_storm_still_rings_the_rest(phone, number, bob, carol, vonage_api):
    fault(vonage_api, "429", CREATE, times=3)  # every attempt for Bob's leg
    call = route(phone, number, "2")
    assert phone.leg(bob).status == L.FAILED and phone.leg(bob).attempts == 3
    assert phone.leg(carol).status == L.DIALLING
    assert agent_dials(phone) == ["4915110000003"]
    call.refresh_from_db()
    assert call.state == Call.State.ROUTING
    response = phone.agent_press(phone.leg(carol), "1")
    assert response.json()[0]["action"] == "conversation"
    assert Incident.objects.get().status == Incident.Status.ACCEPTED


@pytest.mark.slow
def test_create_call_timing_out_for_good_hangs_up_the_calls_it_placed(phone, number, alice, bob, vonage_api, short_timeout):
    """Each timed-out create-call did place a call (the fake answers late, as Vonage may): when those calls'
    first events arrive they are hung up, and the leg stays FAILED while the next agent rings."""
    fault(vonage_api, "timeout", CREATE, times=3)
    call = route(phone, number, "1")
    alice_leg = phone.leg(alice)
    assert alice_leg.status == L.FAILED and alice_leg.attempts == 3 and "timed out" in alice_leg.detail
    assert agent_dials(phone)[-1] == "4915110000002"
    wait_for(lambda: len(vonage_api.api.calls) == 4)
    orphans = [uuid for uuid, c in vonage_api.api.calls.items() if c["request"]["to"][0]["number"] == "4915110000001"]
    assert len(orphans) == 3
    event_url = next(r["event_url"][0] for r in phone.dialled() if f"/leg/{alice_leg.token}/" in r["event_url"][0])
    for uuid in orphans:
        assert phone.post(event_url, {"status": "ringing", "uuid": uuid, "direction": "outbound"}).status_code == 204
    for uuid in orphans:
        assert vonage_api.modifications(uuid) == [{"action": "hangup"}]
    alice_leg.refresh_from_db()
    call.refresh_from_db()
    assert alice_leg.status == L.FAILED and call.state == Call.State.ROUTING
    assert phone.leg(bob).status == L.DIALLING


def test_events_of_an_orphan_call_from_a_retried_create_do_not_end_the_live_leg(phone, number, alice, bob, vonage_api, short_timeout):
    """A timed-out create-call placed a call anyway and the retry placed the leg's real one: the orphan's
    events arrive on the leg's event URL. The orphan is hung up, and none of its events is applied to the leg."""
    fault(vonage_api, "timeout", CREATE, times=1)
    call = route(phone, number, "1")
    alice_leg = phone.leg(alice)
    assert alice_leg.attempts == 2 and alice_leg.status == L.DIALLING
    wait_for(lambda: len(vonage_api.api.calls) == 2)
    (orphan,) = [uuid for uuid in vonage_api.api.calls if uuid != alice_leg.vonage_uuid]
    event_url = next(r["event_url"][0] for r in phone.dialled() if f"/leg/{alice_leg.token}/" in r["event_url"][0])
    phone.post(event_url, {"status": "started", "uuid": orphan, "direction": "outbound"})
    assert vonage_api.modifications(orphan) == [{"action": "hangup"}]  # the stray is hung up
    phone.post(event_url, {"status": "completed", "uuid": orphan, "direction": "outbound"})  # ...and Vonage says so
    alice_leg.refresh_from_db()
    assert alice_leg.status == L.DIALLING, f"the orphan's events ended the live leg: {alice_leg.detail}"
    assert agent_dials(phone) == ["4915110000001", "4915110000001"]  # Bob is not rung while Alice's phone rings
    assert phone.agent_press(alice_leg, "1").json()[0]["action"] == "conversation"
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED


# --- hanging up the other agents' legs ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "429", pytest.param("timeout", marks=pytest.mark.slow)])
def test_failed_hang_up_of_other_legs_after_an_accept(phone, number, bob, carol, vonage_api, inline_tasks, short_timeout, kind):
    """Bob takes the call; hanging up Carol's ringing leg fails twice (both attempts). Bob stays connected,
    Carol's leg is cancelled, and when her phone's next event arrives her call is hung up after all."""
    call = route(phone, number, "2")
    bob_leg, carol_leg = phone.leg(bob), phone.leg(carol)
    fault(vonage_api, kind, MODIFY, times=2)
    join = phone.agent_press(bob_leg, "1").json()
    assert join == [{"action": "conversation", "name": call.conversation_name, "startOnEnter": True, "endOnExit": True}]
    carol_leg.refresh_from_db()
    call.refresh_from_db()
    assert carol_leg.status == L.CANCELLED and call.state == Call.State.CONNECTED
    incident = Incident.objects.get()
    assert (incident.status, incident.assigned_to) == (Incident.Status.ACCEPTED, bob)
    if kind != "timeout":
        assert vonage_api.modifications(carol_leg.vonage_uuid) == []
        assert inline_tasks[-1] == 0.5  # one retry, then given up: no retry storm
    # Carol's phone still rings; she answers: the stray leg is hung up and she hears the call is taken.
    phone.leg_event(carol_leg, "answered")
    assert {"action": "hangup"} in vonage_api.modifications(carol_leg.vonage_uuid)
    assert texts(phone.agent_press(carol_leg, "1").json()) == ["This call has already been taken by someone else. Goodbye."]
    carol_leg.refresh_from_db()
    call.refresh_from_db()
    assert carol_leg.status == L.CANCELLED and call.connected_leg_id == bob_leg.pk
    assert AgentLeg.objects.filter(call=call, status=L.ACCEPTED).count() == 1


@pytest.mark.parametrize("kind", ["503", "429"])
def test_caller_hanging_up_while_hang_ups_fail_still_escalates_and_ends_every_leg(phone, number, bob, carol, vonage_api, kind):
    call = route(phone, number, "2")
    fault(vonage_api, kind, MODIFY, times=4)  # both attempts for both legs
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert (call.state, call.outcome) == (Call.State.ENDED, Call.Outcome.ABANDONED)
    assert_all_legs_ended(call)
    assert escalations(Incident.objects.get()) == 1
    # The agents' phones ring on: their next events hang them up, and a late accept connects nobody.
    for user in (bob, carol):
        leg = phone.leg(user)
        phone.leg_event(leg, "ringing")
        assert vonage_api.modifications(leg.vonage_uuid) == [{"action": "hangup"}]
    assert texts(phone.agent_press(phone.leg(bob), "1").json()) == ["The caller has already hung up. Goodbye."]
    assert Incident.objects.get().status == Incident.Status.PENDING  # escalated to the policy, not accepted
    assert not AgentLeg.objects.filter(call=call, status=L.ACCEPTED).exists()
