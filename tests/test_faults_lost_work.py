"""Faults that used to lose a call or ring an agent twice: a create-call that times out although Vonage placed
the call, and a task lost between two steps of a call (a killed worker).

The fake Vonage API places a call at once but answers its create-call request only after the client's timeout
(Script.answer_late_next). While the dial task backs off before its retry, the phone network delivers the placed
call's events to the leg's event URL (the hook on the task's sleep): the leg adopts that call, the retry is not
placed, and the agent who picks up the ringing phone is connected.

A lost task is one whose webhook ran with run_tasks=False: its on-commit tasks never run, as when the worker is
SIGKILLed right after the webhook. The minute sweeper (callrouting.tasks.sweep) must then carry the call on,
bounded by sweeps: one sweep after the step's due time.

Same cast as test_callrouting_calls: Acme's "Outage" (1) calls Alice then Bob, "Billing" (2) Bob and Carol at once.
"""
import datetime as dt

import pytest
from django.utils import timezone

from callrouting.calls import dispatch, routing
from callrouting import tasks as callrouting_tasks
from callrouting.models import AgentLeg, Call
from callrouting.tasks import sweep
from incidents.models import Incident, IncidentEvent
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

L = AgentLeg.Status
CREATE = ("POST", r"^/v1/calls$")
# Answered this long after the request; the product's client gives up after VONAGE_TIMEOUT = 1 s.
LATE = 1.4


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


def route(phone, number, digit, **kwargs):
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), digit, **kwargs)
    return the_call(uuid)


def placed_to(vonage_api, number):
    """Uuids of the calls the fake placed to NUMBER (E.164), answered yet or not."""
    return [uuid for uuid, c in vonage_api.api.calls.items() if c["request"]["to"][0]["number"] == number.lstrip("+")]


def create_requests(vonage_api):
    return vonage_api.requests_matching(*CREATE)


def leg_event_url(vonage_api, leg):
    return next(r.json["event_url"][0] for r in create_requests(vonage_api) if f"/leg/{leg.token}/" in r.json["event_url"][0])


def network_event(phone, vonage_api, leg, uuid, status):
    """The phone network reports STATUS of call UUID on LEG's event URL (tasks it enqueues run with the caller's)."""
    payload = {"status": status, "uuid": uuid, "direction": "outbound", "conversation_uuid": f"CON-{uuid}"}
    return phone.post(leg_event_url(vonage_api, leg), payload, run_tasks=False)


def escalations(incident):
    return incident.events.filter(kind=IncidentEvent.Kind.ESCALATED, message__startswith="Escalating").count()


def caller_ncco(vonage_api, call):
    transfers = [m for m in vonage_api.modifications(call.vonage_uuid) if m["action"] == "transfer"]
    return transfers[-1]["destination"]["ncco"] if transfers else None


# --- 1. an agent is never rung twice ----------------------------------------------------------------------------


def test_call_placed_by_a_timed_out_request_is_adopted_and_not_placed_again(
    phone, number, alice, vonage_api, short_timeout, inline_tasks, monkeypatch
):
    vonage_api.answer_late_next(*CREATE, LATE)
    delivered = []

    def back_off(seconds):
        # The create-call timed out, but Vonage placed the call: its events arrive while the task waits to retry.
        inline_tasks.append(seconds)
        if not delivered:
            (uuid,) = placed_to(vonage_api, alice.primary_phone())
            leg = phone.leg(alice)
            delivered.extend(network_event(phone, vonage_api, leg, uuid, status).status_code for status in ("started", "ringing"))

    monkeypatch.setattr(callrouting_tasks, "sleep", back_off)
    call = route(phone, number, "1")
    assert delivered == [204, 204]
    leg = phone.leg(alice)
    (placed,) = placed_to(vonage_api, alice.primary_phone())
    assert (leg.vonage_uuid, leg.status, leg.attempts) == (placed, L.RINGING, 1)
    assert len(create_requests(vonage_api)) == 1, "the retry rang Alice a second time"
    assert create_requests(vonage_api)[0].fault == "late"
    # Alice picks up the phone that rings and takes the call.
    phone.leg_event(leg, "answered")
    assert phone.agent_press(leg, "1").json()[0]["action"] == "conversation"
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED and call.connected_leg_id == leg.pk
    assert Incident.objects.get().status == Incident.Status.ACCEPTED
    assert vonage_api.modifications(placed) == []  # her call is never hung up
    assert len(create_requests(vonage_api)) == 1  # nobody else was rung either


def test_retry_answered_after_the_first_call_was_adopted_is_hung_up(
    phone, number, alice, vonage_api, short_timeout, inline_tasks, monkeypatch
):
    """The first call's events arrive while the retry is already under way: the retry's call is hung up as soon as
    its uuid comes back, before it rings; the adopted call stays the leg's."""
    vonage_api.answer_late_next(*CREATE, LATE)
    slots = []

    def call_slot():
        slots.append(len(slots))
        if len(slots) == 2:  # the retry has passed its last check and is about to send its request
            (first,) = placed_to(vonage_api, alice.primary_phone())
            network_event(phone, vonage_api, phone.leg(alice), first, "started")
        return 0

    monkeypatch.setattr(callrouting_tasks, "wait_for_call_slot", call_slot)
    call = route(phone, number, "1")
    leg = phone.leg(alice)
    placed = placed_to(vonage_api, alice.primary_phone())
    assert len(placed) == 2 and leg.vonage_uuid == placed[0], "the first call seen is the leg's"
    first, retry = placed
    assert (leg.status, leg.attempts) == (L.DIALLING, 2)
    assert vonage_api.modifications(retry) == [{"action": "hangup"}]
    assert vonage_api.modifications(first) == []
    # The retry's own events change nothing; the adopted call's do.
    network_event(phone, vonage_api, leg, retry, "completed")
    phone.leg_event(leg, "answered")
    assert phone.agent_press(leg, "1").json()[0]["action"] == "conversation"
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED


def test_adopted_call_that_fails_lets_the_next_agent_be_called(phone, number, alice, bob, vonage_api, short_timeout,
                                                               inline_tasks, monkeypatch):
    vonage_api.answer_late_next(*CREATE, LATE)

    def back_off(seconds):
        inline_tasks.append(seconds)
        if len(inline_tasks) == 1:
            (uuid,) = placed_to(vonage_api, alice.primary_phone())
            network_event(phone, vonage_api, phone.leg(alice), uuid, "failed")

    monkeypatch.setattr(callrouting_tasks, "sleep", back_off)
    route(phone, number, "1")
    assert phone.leg(alice).status == L.FAILED
    assert [r.json["to"][0]["number"] for r in create_requests(vonage_api)] == ["4915110000001", "4915110000002"]


# --- 2. no caller waits on hold with nobody being called ----------------------------------------------------------


@pytest.mark.parametrize("voicemail", [True, False], ids=["voicemail", "nobody_available"])
def test_worker_killed_right_after_the_last_agent_declines(phone, number, alice, bob, vonage_api, voicemail,
                                                           django_capture_on_commit_callbacks):
    """Bob's decline is the last: the task that would move the caller on is lost. One sweep after its due time
    (a short grace, not a ringing timeout) the caller reaches voicemail, or hears that nobody is available."""
    number.voicemail_enabled = voicemail
    number.save()
    call = route(phone, number, "1")
    phone.agent_press(phone.leg(alice), "2")
    phone.agent_press(phone.leg(bob), "2", run_tasks=False)  # the worker dies: dial_next is lost
    call.refresh_from_db()
    assert call.state == Call.State.ROUTING and caller_ncco(vonage_api, call) is None
    assert call.routing_due_at <= timezone.now() + dispatch.TASK_GRACE
    with django_capture_on_commit_callbacks(execute=True):
        counts = sweep(now=call.routing_due_at)
    assert counts["stuck_calls"] == 1
    call.refresh_from_db()
    ncco = caller_ncco(vonage_api, call)
    if voicemail:
        assert call.state == Call.State.VOICEMAIL and [a["action"] for a in ncco] == ["notify", "record", "talk"]
        assert escalations(call.incident) == 0  # waits for the message
    else:
        assert (call.state, call.outcome) == (Call.State.ENDED, Call.Outcome.NO_AGENT)
        assert ncco[0]["text"].startswith("Sorry, no one is available")
        assert escalations(call.incident) == 1
    assert call.transfer_due_at is None and call.routing_due_at is None
    with django_capture_on_commit_callbacks(execute=True):
        later = sweep(now=timezone.now() + dt.timedelta(hours=1))
    assert (later["stuck_calls"], later["transfers"]) == (0, 0)
    assert len([m for m in vonage_api.modifications(call.vonage_uuid) if m["action"] == "transfer"]) == 1


@pytest.mark.parametrize("voicemail", [True, False], ids=["voicemail", "nobody_available"])
def test_lost_transfer_task_is_issued_again_by_the_sweeper(phone, number, alice, bob, vonage_api, voicemail,
                                                           django_capture_on_commit_callbacks, monkeypatch):
    """Nobody is left and the caller's state moved on, but the transfer task itself is lost: the caller would
    hear hold music for ever. transfer_due_at brings them there within one sweep, once."""
    number.voicemail_enabled = voicemail
    number.save()
    call = route(phone, number, "1")
    phone.leg_event(phone.leg(alice), "busy")
    lost = []
    real_enqueue = dispatch.enqueue
    monkeypatch.setattr(dispatch, "enqueue", lambda func, *args: lost.append(func) if func == "transfer_caller"
                        else real_enqueue(func, *args))
    phone.leg_event(phone.leg(bob), "busy")
    monkeypatch.setattr(dispatch, "enqueue", real_enqueue)
    assert lost == ["transfer_caller"]
    call.refresh_from_db()
    assert call.transfer_due_at is not None and caller_ncco(vonage_api, call) is None
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=call.transfer_due_at - dt.timedelta(seconds=1))["transfers"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=call.transfer_due_at)["transfers"] == 1
    call.refresh_from_db()
    assert call.transfer_due_at is None
    ncco = caller_ncco(vonage_api, call)
    expected = "record" if voicemail else "talk"
    assert expected in [a["action"] for a in ncco]
    assert "not moved to" in " ".join(call.incident.events.values_list("message", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=timezone.now() + dt.timedelta(hours=1))["transfers"] == 0
    assert len([m for m in vonage_api.modifications(call.vonage_uuid) if m["action"] == "transfer"]) == 1


def test_a_late_transfer_task_after_the_sweeper_reissued_it_does_nothing(phone, number, alice, bob, vonage_api,
                                                                          django_capture_on_commit_callbacks):
    """The original transfer task was only late, not lost: whichever of it and the sweeper's runs second moves
    nobody (a second transfer would restart the mailbox greeting in the middle of a message)."""
    number.voicemail_enabled = True
    number.save()
    call = route(phone, number, "1")
    phone.leg_event(phone.leg(alice), "busy")
    with django_capture_on_commit_callbacks(execute=False):
        phone.leg_event(phone.leg(bob), "busy", run_tasks=False)
        routing.claim_next_legs(call.pk)  # what dial_next does; the transfer task it enqueues is held back
    call.refresh_from_db()
    first_due = call.transfer_due_at
    assert call.state == Call.State.VOICEMAIL and first_due is not None
    with django_capture_on_commit_callbacks(execute=False) as reissued:
        assert sweep(now=first_due)["transfers"] == 1
    callrouting_tasks.transfer_caller(call.pk, "voicemail", first_due)  # the original task, finally run
    assert caller_ncco(vonage_api, call) is None
    for task in reissued:
        task()
    callrouting_tasks.transfer_caller(call.pk, "voicemail", first_due)
    assert len([m for m in vonage_api.modifications(call.vonage_uuid) if m["action"] == "transfer"]) == 1
    call.refresh_from_db()
    assert call.transfer_due_at is None


def test_simultaneous_fan_out_dials_each_leg_in_its_own_task(phone, number, bob, carol, monkeypatch):
    enqueued = []
    real_enqueue = dispatch.enqueue

    def record(func, *args):
        enqueued.append((func, *args))
        real_enqueue(func, *args)

    monkeypatch.setattr(dispatch, "enqueue", record)
    call = route(phone, number, "2")
    legs = list(call.legs.order_by("position").values_list("pk", flat=True))
    assert [e for e in enqueued if e[0] == "place_agent_call"] == [("place_agent_call", leg) for leg in legs]
    assert [r["to"][0]["number"] for r in phone.dialled()] == ["4915110000002", "4915110000003"]


def test_lost_task_after_the_menu_choice_is_issued_again_by_the_sweeper(phone, number, alice, vonage_api,
                                                                        django_capture_on_commit_callbacks):
    """The caller chose "Outage" and is on hold, but the task that chooses and calls the agents was lost (the
    worker died right after the input webhook). One sweep after its short due time Alice is called, once."""
    call = route(phone, number, "1", run_tasks=False)
    # The route node's agents are a snapshot taken with the menu choice: queued, nobody dialled yet.
    assert call.state == Call.State.ROUTING and create_requests(vonage_api) == []
    assert set(call.legs.values_list("status", flat=True)) == {L.QUEUED}
    assert call.routing_due_at <= timezone.now() + dispatch.TASK_GRACE
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=call.routing_due_at - dt.timedelta(seconds=1))["stuck_calls"] == 0
        assert sweep(now=call.routing_due_at)["stuck_calls"] == 1
    assert [r.json["to"][0]["number"] for r in create_requests(vonage_api)] == ["4915110000001"]
    leg = phone.leg(alice)
    assert leg.status == L.DIALLING and leg.vonage_uuid
    call.refresh_from_db()
    assert call.routing_due_at > timezone.now() + dispatch.TASK_GRACE  # now a ringing timeout away
    assert call.incident.events.filter(message__startswith="No agent is being called").count() == 1


def test_fan_out_to_nine_agents_on_a_slow_vonage_places_and_hangs_up_one_call_per_task(phone, acme, vonage_api,
                                                                                        inline_tasks, monkeypatch):
    """Every request of a nine-agent simultaneous fan-out answers slowly: the task that fans out places no call
    itself, each leg's task places exactly its own one, and when one agent accepts each of the other eight calls
    is hung up by a task of its own; no task waits for the others' requests (its work is bounded, whatever
    Vonage's speed)."""
    agents = [UserFactory(account=acme, username=f"agent{i}", phone=f"+491512000000{i}") for i in range(9)]
    number = RoutingNumberFactory(account=acme, phone_number="+4930901821")
    RoutingOptionFactory(routing_number=number, digit=1, label="All hands", escalation_policy=policy_of(acme, *agents),
                         simultaneous=True)
    # Slow, not timing out: what counts is which task sends which request, so 50 ms per request will do.
    vonage_api.hang_next(*CREATE, 0.05, times=9)
    vonage_api.hang_next("PUT", r"^/v1/calls/", 0.05, times=8)
    per_task = []

    def counting(name):
        task = getattr(callrouting_tasks, name)

        def run(*args):
            before = len(vonage_api.api.requests)
            task(*args)
            per_task.append((name, len(vonage_api.api.requests) - before))

        return run

    for name in ("start_dialling", "place_agent_call", "hang_up"):
        monkeypatch.setattr(callrouting_tasks, name, counting(name))
    call = the_call(phone.dial(number.phone_number)[1])  # a single option: routed as the call is answered
    assert call.legs.count() == 9
    assert ("start_dialling", 0) in per_task
    assert sorted(per_task) == [("place_agent_call", 1)] * 9 + [("start_dialling", 0)]
    assert sorted(r.json["to"][0]["number"] for r in create_requests(vonage_api)) == sorted(
        agent.primary_phone().lstrip("+") for agent in agents)
    assert all(create.fault == "hang" for create in create_requests(vonage_api))
    assert not call.legs.filter(vonage_uuid__isnull=True).exists()
    first, *others = call.legs.order_by("position")
    phone.leg_event(first, "answered")
    phone.agent_press(first, "1")
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED
    assert [entry for entry in per_task if entry[0] == "hang_up"] == [("hang_up", 1)] * 8
    assert all(vonage_api.modifications(leg.vonage_uuid) == [{"action": "hangup"}] for leg in others)
