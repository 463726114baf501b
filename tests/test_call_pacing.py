"""Pacing of Vonage call creations (incidents.pacing): every worker process, and both agent legs and notification
calls, share one window of VONAGE_CALLS_PER_SECOND (3) creations per VONAGE_CALL_SPACING (1.1) seconds.

Slots are reserved at a fixed instant T (epoch seconds) and compared as seconds after T, to the millisecond.
"""
import threading

import pytest
from django.db import connection
from django.test import override_settings

from incidents import pacing, services
from incidents.models import CallRateWindow
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory, inline_tasks, phone, policy_of  # noqa: F401
from tests.factories import UserFactory
from tests.incidents_factories import AlertSourceFactory, committed, make_policy, worker  # noqa: F401

pytestmark = pytest.mark.django_db

T = 1_800_000_000.0


def after(slots):
    return [round(at - T, 3) for at in slots]


def reserve(times, now=T):
    return [pacing.reserve_call_slot(now=now) for _ in range(times)]


def assert_never_four_in_a_window(slots):
    ordered = sorted(slots)
    crowded = [(a - T, b - T) for a, b in zip(ordered, ordered[3:]) if b - a < 1.1 - 1e-6]
    assert crowded == []


# --- the window -------------------------------------------------------------------------------------------------


def test_nine_calls_at_once_go_out_three_per_window():
    assert after(reserve(9)) == [0, 0, 0, 1.1, 1.1, 1.1, 2.2, 2.2, 2.2]
    assert after(CallRateWindow.objects.get(pk="vonage").slots) == [2.2, 2.2, 2.2]


def test_a_fourth_call_inside_the_window_waits_for_its_end():
    reserve(3)
    assert after(reserve(1, now=T + 1.0)) == [1.1]


def test_no_wait_after_a_quiet_period():
    reserve(3)
    assert after(reserve(1, now=T + 1.2)) == [1.2]
    assert after(reserve(3, now=T + 60)) == [60, 60, 60]


def test_rate_and_spacing_come_from_the_settings():
    with override_settings(VONAGE_CALLS_PER_SECOND=2, VONAGE_CALL_SPACING=0.5):
        assert after(reserve(6)) == [0, 0, 0.5, 0.5, 1.0, 1.0]


def test_wait_for_call_slot_sleeps_until_the_slot(inline_tasks):
    # inline_tasks: the pacer's clock stands at a fixed epoch and moves only by the recorded sleeps.
    assert [pacing.wait_for_call_slot() for _ in range(7)] == [0, 0, 0, 1.1, 0, 0, 1.1]
    assert inline_tasks == [1.1, 1.1]


# --- several worker processes -----------------------------------------------------------------------------------


def test_two_workers_taking_turns_share_one_window():
    """Two workers whose clocks read 20 ms apart reserve in turn (one after the other here; truly at once on
    PostgreSQL in test_concurrent_workers_share_one_window)."""
    slots = []
    for turn in range(6):
        slots += reserve(1, now=T + 0.05 * turn)  # worker A
        slots += reserve(1, now=T + 0.05 * turn + 0.02)  # worker B
    assert after(slots) == [0, 0.02, 0.05, 1.1, 1.12, 1.15, 2.2, 2.22, 2.25, 3.3, 3.32, 3.35]
    assert_never_four_in_a_window(slots)


def test_a_worker_whose_clock_runs_ahead_does_not_hold_up_the_others():
    slots = reserve(1, now=T + 10)  # its slot is kept among the latest, in time order
    slots += reserve(3)
    assert after(slots) == [10, 0, 0, 1.1]
    assert_never_four_in_a_window(slots)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite serialises writers on one connection in tests; the race needs PostgreSQL"
)
def test_concurrent_workers_share_one_window():
    barrier = threading.Barrier(2)
    slots = []

    def worker_process():
        from django.db import connections

        try:
            barrier.wait(timeout=10)
            for _ in range(6):
                slots.append(pacing.reserve_call_slot(now=T))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker_process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # A lost update (two workers reading the same window) would give a slot out four times.
    assert after(sorted(slots)) == [0, 0, 0, 1.1, 1.1, 1.1, 2.2, 2.2, 2.2, 3.3, 3.3, 3.3]


# --- who is paced -----------------------------------------------------------------------------------------------


def test_every_attempt_to_call_an_agent_is_paced(phone, acme, alice, vonage_api, inline_tasks):
    number = RoutingNumberFactory(account=acme)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice))
    reserve(2, now=pacing.clock())  # two calls another worker just placed
    vonage_api.fail_next("POST", r"^/v1/calls$", 429)
    phone.dial(number.phone_number)
    assert len(vonage_api.calls_created()) == 1
    # The first attempt takes the window's last slot; the retry, after 0.5 s of backoff, waits 0.6 s more.
    assert inline_tasks == [0.5, 0.6]


def test_a_caller_who_hangs_up_while_the_agent_call_waits_for_its_slot_rings_nobody(
        phone, acme, alice, vonage_api, inline_tasks, monkeypatch):
    from callrouting.models import Call

    number = RoutingNumberFactory(account=acme)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice))
    reserve(3, now=pacing.clock())  # the window is full: the agent call has to wait
    recorded_sleep = pacing.sleep

    def caller_hangs_up_meanwhile(seconds):
        recorded_sleep(seconds)
        Call.objects.update(state=Call.State.ENDED)

    monkeypatch.setattr(pacing, "sleep", caller_hangs_up_meanwhile)
    phone.dial(number.phone_number)  # one option: routed at once
    assert inline_tasks == [1.1]
    assert vonage_api.calls_created() == []  # no agent's phone rang for a caller who is gone


def test_notification_calls_are_paced(acme, worker, inline_tasks, vonage_api):
    responders = [UserFactory(account=acme, phone=f"+49151300000{i:02d}") for i in range(4)]
    source = AlertSourceFactory(account=acme, escalation_policy=make_policy(acme, [(responders, 10)]))
    with committed():
        services.create_incident(alert_source=source, summary="Database down")
    worker.run()
    assert len(vonage_api.calls_created()) == 4
    assert inline_tasks == [1.1]  # the 4th call waited for the window of the first three


def test_notification_calls_and_agent_legs_share_the_window(phone, acme, worker, vonage_api, inline_tasks):
    agents = [UserFactory(account=acme, phone=f"+49151200000{i:02d}") for i in range(2)]
    number = RoutingNumberFactory(account=acme)
    RoutingOptionFactory(routing_number=number, digit=1, label="All", escalation_policy=policy_of(acme, *agents), simultaneous=True)
    phone.dial(number.phone_number)
    responders = [UserFactory(account=acme, phone=f"+49151300000{i:02d}") for i in range(2)]
    source = AlertSourceFactory(account=acme, escalation_policy=make_policy(acme, [(responders, 10)]))
    with committed():
        services.create_incident(alert_source=source, summary="Database down")
    worker.run()
    assert len(vonage_api.calls_created()) == 4
    assert inline_tasks == [1.1]  # two agent legs, then two notification calls: the 4th waited
