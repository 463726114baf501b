"""The escalation engine, driven through the sweeper with explicit times.

Acme's policy "Ops": rule 1 alice (5 min), rule 2 bob (10 min), rule 3 carol (15 min). Each persona has a voice
notification rule on their phone (see conftest), so "notified" means a call placed at the fake Vonage API.
"""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from escalation.models import ScheduleOverride
from incidents import services, tasks
from incidents.models import Incident, IncidentEvent, Notification
from tests.factories import ScheduleFactory
from tests.incidents_factories import AlertSourceFactory, add_notification_rule, at_once, committed, make_policy, worker  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(acme, alice, bob, carol):
    return make_policy(acme, [([alice], 5), ([bob], 10), ([carol], 15)], name="Ops")


@pytest.fixture
def source(acme, policy):
    return AlertSourceFactory(account=acme, name="Monitoring", escalation_policy=policy)


def create(source, **kwargs):
    with committed():
        return services.create_incident(alert_source=source, summary="Database down", **kwargs)


def sweep(now):
    with committed():
        return tasks.sweep(now=now)


def called_numbers(vonage_api):
    return ["+" + call["to"][0]["number"] for call in vonage_api.calls_created()]


def reload(incident):
    incident.refresh_from_db()
    return incident


def test_three_rules_notified_in_order_after_their_timeouts(source, worker, vonage_api, alice, bob, carol):
    incident = create(source)
    assert worker.names() == ["escalation_step"]
    worker.run()
    t0 = reload(incident).escalation_due_at - timedelta(minutes=5)
    assert called_numbers(vonage_api) == [alice.primary_phone()]

    # Not due yet: nothing happens, however often the sweeper runs.
    assert sweep(t0 + timedelta(minutes=4, seconds=59))["escalations"] == 0
    assert sweep(t0 + timedelta(minutes=5))["escalations"] == 1
    worker.run()
    assert called_numbers(vonage_api) == [alice.primary_phone(), bob.primary_phone()]
    assert reload(incident).escalation_due_at == t0 + timedelta(minutes=15)

    assert sweep(t0 + timedelta(minutes=14))["escalations"] == 0
    sweep(t0 + timedelta(minutes=15))
    worker.run()
    assert called_numbers(vonage_api) == [alice.primary_phone(), bob.primary_phone(), carol.primary_phone()]

    # The last rule's timeout passes: the policy is exhausted and escalation stops.
    sweep(t0 + timedelta(minutes=30))
    assert reload(incident).escalation_due_at is None
    assert not any(sweep(t0 + timedelta(hours=5)).values())
    assert len(vonage_api.calls_created()) == 3

    notifications = list(incident.notifications.order_by("due_at"))
    assert [(n.user, n.escalation_step, n.status) for n in notifications] == [
        (alice, 0, "sent"), (bob, 1, "sent"), (carol, 2, "sent"),
    ]
    assert [n.due_at - notifications[0].due_at for n in notifications] == [
        timedelta(0), timedelta(minutes=5), timedelta(minutes=15),
    ]
    messages = list(incident.events.values_list("message", flat=True))
    assert "Escalated to rule 2: Bob." in messages
    assert f"Notified Bob by voice call ({bob.primary_phone()})." in messages
    assert messages[-1] == "Escalation policy exhausted: nobody accepted the incident."


def test_acceptance_stops_escalation(source, worker, vonage_api, alice, bob):
    incident = create(source)
    worker.run()
    due = reload(incident).escalation_due_at
    with committed():
        assert services.accept_incident(incident.pk, alice, via="web")
    assert reload(incident).escalation_due_at is None
    sweep(due + timedelta(hours=1))
    worker.run()
    assert called_numbers(vonage_api) == [alice.primary_phone()]
    assert incident.status == Incident.Status.ACCEPTED and incident.assigned_to == alice


def test_delayed_notification_rule_is_its_own_due_notification(source, worker, vonage_api, alice):
    add_notification_rule(alice, "sms", delay=3)
    incident = create(source)
    worker.run()
    sms = incident.notifications.get(channel="sms")
    voice = incident.notifications.get(channel="voice")
    assert sms.status == "pending" and sms.due_at == voice.due_at + timedelta(minutes=3)
    assert vonage_api.sms_sent() == []

    sweep(sms.due_at - timedelta(seconds=1))
    assert worker.queue == []
    assert sweep(sms.due_at)["notifications"] == 1
    worker.run()
    assert len(vonage_api.sms_sent()) == 1
    assert reload(sms).status == "sent"


def test_acceptance_cancels_delayed_notifications(source, worker, vonage_api, alice):
    add_notification_rule(alice, "sms", delay=3)
    incident = create(source)
    worker.run()
    with committed():
        services.accept_incident(incident.pk, alice)
    sms = incident.notifications.get(channel="sms")
    assert sms.status == "cancelled"
    sweep(sms.due_at + timedelta(minutes=1))
    worker.run()
    assert vonage_api.sms_sent() == []


def test_policy_repeats(acme, worker, vonage_api, alice, bob):
    policy = make_policy(acme, [([alice], 5), ([bob], 5)], repeat_count=1)
    incident = create(AlertSourceFactory(account=acme, escalation_policy=policy))
    worker.run()
    now = reload(incident).escalation_due_at
    for _ in range(4):
        sweep(now)
        worker.run()
        now = reload(incident).escalation_due_at or now
    assert called_numbers(vonage_api) == [alice.primary_phone(), bob.primary_phone()] * 2
    assert reload(incident).escalation_due_at is None
    messages = list(incident.events.filter(kind=IncidentEvent.Kind.ESCALATED).values_list("message", flat=True))
    assert messages == [
        "Escalated to rule 1: Alice.",
        "Escalated to rule 2: Bob.",
        "Escalated to rule 1 (repeat 1 of 1): Alice.",
        "Escalated to rule 2 (repeat 1 of 1): Bob.",
        "Escalation policy exhausted: nobody accepted the incident.",
    ]


def test_snapshot_survives_policy_edit_mid_escalation(source, policy, worker, vonage_api, alice, bob, carol):
    incident = create(source)
    worker.run()
    due = reload(incident).escalation_due_at
    # Someone edits the policy: rule 2 now has carol and a 60 minute timeout, rule 3 is deleted.
    rule2, rule3 = policy.rules.all()[1:]
    rule2.rule_users.all().delete()
    rule2.rule_users.create(user=carol)
    rule2.escalation_timeout_minutes = 60
    rule2.save()
    rule3.delete()
    policy.repeat_count = 3
    policy.save()

    sweep(due)
    worker.run()
    assert called_numbers(vonage_api)[-1] == bob.primary_phone()
    assert reload(incident).escalation_due_at == due + timedelta(minutes=10)
    sweep(due + timedelta(minutes=10))
    worker.run()
    assert called_numbers(vonage_api)[-1] == carol.primary_phone()
    sweep(due + timedelta(minutes=25))
    assert reload(incident).escalation_due_at is None  # repeat_count 0 as frozen, not 3


def test_duplicated_tasks_and_sweeps_notify_nobody_twice(source, worker, vonage_api, alice, bob):
    incident = create(source)
    (func, args), = worker.queue
    worker.queue.append((func, args))  # the broker delivers the first step twice
    worker.run()
    assert len(vonage_api.calls_created()) == 1
    notification = incident.notifications.get()
    # A late duplicate of the delivery task finds nothing to claim.
    assert tasks.deliver_notification(notification.pk, 1) == "skipped"

    due = reload(incident).escalation_due_at
    assert sweep(due)["escalations"] == 1
    assert sweep(due)["escalations"] == 0  # a second sweep with the same state
    assert tasks.escalation_step(incident.pk, incident.escalation_generation, 1) is False
    worker.run()
    assert called_numbers(vonage_api) == [alice.primary_phone(), bob.primary_phone()]
    assert incident.notifications.count() == 2


def test_escalate_again_restarts_from_rule_one(source, worker, vonage_api, alice, bob):
    incident = create(source)
    worker.run()
    first_generation = reload(incident).escalation_generation
    sweep(incident.escalation_due_at)
    worker.run()
    assert called_numbers(vonage_api) == [alice.primary_phone(), bob.primary_phone()]

    with committed():
        assert services.escalate_incident(incident.pk, reason="Caller hung up")
    worker.run()
    incident = reload(incident)
    assert incident.escalation_generation == first_generation + 1
    assert called_numbers(vonage_api) == [alice.primary_phone(), bob.primary_phone(), alice.primary_phone()]
    # A late step of the first run does nothing.
    assert tasks.escalation_step(incident.pk, first_generation, 2) is False
    assert incident.events.filter(message="Escalating: Caller hung up").exists()


def test_suppressed_escalation_waits_for_escalate_incident(source, worker, vonage_api, alice):
    incident = create(source, suppress_escalation=True)
    assert worker.queue == []
    sweep(timezone.now() + timedelta(days=1))
    assert vonage_api.calls_created() == []
    assert reload(incident).escalation_snapshot == {}

    with committed():
        services.escalate_incident(incident.pk)
    worker.run()
    assert called_numbers(vonage_api) == [alice.primary_phone()]
    assert reload(incident).escalation_suppressed is False


def test_schedule_resolved_at_the_time_of_the_step(acme, worker, vonage_api, alice, bob, carol):
    schedule = ScheduleFactory(account=acme)
    policy = make_policy(acme, [([alice], 5), ([], 10, [schedule])])
    incident = create(AlertSourceFactory(account=acme, escalation_policy=policy))
    worker.run()
    due = reload(incident).escalation_due_at
    # carol takes over the schedule only after the incident started: rule 2 must reach her.
    ScheduleOverride.objects.create(schedule=schedule, user=carol, start=due - timedelta(minutes=1), end=due + timedelta(hours=1))
    sweep(due)
    worker.run()
    assert called_numbers(vonage_api) == [alice.primary_phone(), carol.primary_phone()]
    assert incident.escalation_snapshot["rules"][1]["schedule_ids"] == [schedule.pk]


def test_rule_with_nobody_moves_on_at_once(acme, worker, vonage_api, alice, bob):
    empty = ScheduleFactory(account=acme)
    policy = make_policy(acme, [([alice], 5), ([], 30, [empty]), ([bob], 5)])
    incident = create(AlertSourceFactory(account=acme, escalation_policy=policy))
    worker.run()
    due = reload(incident).escalation_due_at
    sweep(due)
    worker.run()
    sweep(due)  # rule 2 had nobody: rule 3 is due at once, not 30 minutes later
    worker.run()
    assert called_numbers(vonage_api) == [alice.primary_phone(), bob.primary_phone()]
    assert incident.events.filter(message__contains="nobody to notify").exists()


def test_incident_without_policy_notifies_nobody(acme, worker, vonage_api):
    incident = create(AlertSourceFactory(account=acme, escalation_policy=None))
    worker.run()
    assert vonage_api.calls_created() == []
    assert reload(incident).escalation_due_at is None
    assert incident.events.filter(message__startswith="No escalation policy").exists()


def test_sweeper_schedule_is_registered_once():
    from django_q.models import Schedule

    from incidents.apps import ensure_sweep_schedule

    ensure_sweep_schedule()
    ensure_sweep_schedule()
    schedule = Schedule.objects.get(func="incidents.tasks.sweep")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not connection.features.has_select_for_update_skip_locked, reason="row locks need PostgreSQL"
)
def test_concurrent_sweeps_claim_each_step_once(source, worker, vonage_api, alice, bob):
    incident = services.create_incident(alert_source=source, summary="Database down")
    worker.run()
    due = reload(incident).escalation_due_at
    results = at_once(lambda: tasks.sweep(now=due))
    assert sorted(r["escalations"] for r in results) == [0, 1]
    worker.run()
    assert called_numbers(vonage_api) == [alice.primary_phone(), bob.primary_phone()]
    assert Notification.objects.filter(incident=incident).count() == 2
