"""Faults while telling people: a notification call placed by a create-call that timed out, and a worker that
dies while a notification or an alert action delivery is being sent.

What must hold: a voice notification rings its person once (the first call seen on its event URL is adopted; no
further attempt is placed, a second call is hung up), and nothing stays "sending" for ever (an attempt holds a
lease; the sweeper takes it back when the lease runs out and it is tried again, bounded by MAX_ATTEMPTS).
Run on SQLite and on PostgreSQL (DATABASE_URL): the sweeper claims rows with SELECT ... FOR UPDATE SKIP LOCKED.

bob (Acme responder) is the one rule of the policy; his phone is +4915110000002.
"""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from incidents import actions, notifications, services, tasks
from incidents.models import AlertActionDelivery, IncidentEvent, Notification
from incidents.sweeper import SEND_LEASE
from tests.incidents_factories import AlertActionFactory, at_once, committed, worker  # noqa: F401
from tests.test_incidents_actions import receiver  # noqa: F401 - fixture
from tests.test_incidents_notifications import incident, source  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

CREATE = ("POST", r"^/v1/calls$")
LATE = 1.4  # the product's client gives up after VONAGE_TIMEOUT = 1 s


class WorkerKilled(BaseException):
    """The worker process dies here (SIGKILL): nothing after this point of the task runs."""


@pytest.fixture
def short_timeout(settings):
    settings.VONAGE_TIMEOUT = 1


def sweep(now):
    with committed():
        return tasks.sweep(now=now)


def voice(incident):
    return incident.notifications.get(channel=Notification.Channel.VOICE)


def call_event(vonage_client, notification, uuid, status):
    """The phone network reports STATUS of call UUID on NOTIFICATION's event URL."""
    payload = {"status": status, "uuid": uuid, "direction": "outbound", "conversation_uuid": f"CON-{uuid}"}
    with committed():
        return vonage_client.post_webhook(f"/incidents/voice/{notification.token}/event", payload)


def creates(vonage_api):
    return vonage_api.requests_matching(*CREATE)


def notified(incident):
    return incident.events.filter(kind=IncidentEvent.Kind.NOTIFIED, message__startswith="Notified").count()


# --- voice notifications are placed once ----------------------------------------------------------------------


def test_notification_call_placed_by_a_timed_out_request_is_adopted(incident, worker, vonage_api, vonage_client,
                                                                    short_timeout):
    vonage_api.answer_late_next(*CREATE, LATE)
    worker.run()
    notification = voice(incident)
    assert (notification.status, notification.attempts) == ("pending", 1)  # timed out: a retry is due
    (placed,) = vonage_api.api.calls  # ... but Vonage did place the call, and its events arrive
    assert call_event(vonage_client, notification, placed, "started").status_code == 204
    notification.refresh_from_db()
    assert (notification.status, notification.provider_id) == ("sent", placed)
    assert notified(incident) == 1
    # The retry's due time passes: nothing is placed again.
    assert sweep(notification.due_at + timedelta(minutes=5))["notifications"] == 0
    worker.run()
    assert len(creates(vonage_api)) == 1
    call_event(vonage_client, notification, placed, "answered")
    notification.refresh_from_db()
    assert notification.answered_at is not None


def test_second_call_of_a_notification_is_hung_up_and_its_events_ignored(incident, worker, vonage_api, vonage_client,
                                                                         short_timeout):
    """The first attempt timed out although the call was placed, and its events come only after the retry placed
    another call: that late call is hung up, and its 'busy' does not fail the notification."""
    vonage_api.answer_late_next(*CREATE, LATE)
    worker.run()
    notification = voice(incident)
    (first,) = vonage_api.api.calls
    sweep(notification.due_at)
    worker.run()
    notification.refresh_from_db()
    (retry,) = [uuid for uuid in vonage_api.api.calls if uuid != first]
    assert (notification.status, notification.provider_id, notification.attempts) == ("sent", retry, 2)
    call_event(vonage_client, notification, first, "ringing")
    worker.run()
    assert vonage_api.modifications(first) == [{"action": "hangup"}]
    call_event(vonage_client, notification, first, "busy")
    notification.refresh_from_db()
    assert notification.status == "sent"
    assert vonage_api.modifications(retry) == []


def error_event(vonage_client, notification, uuid, reason="Call rejected: rate limit exceeded"):
    """Vonage's error event (no status) on NOTIFICATION's event URL, about call UUID."""
    payload = {"reason": reason, "uuid": uuid, "conversation_uuid": f"CON-{uuid}", "timestamp": "2026-11-30T10:00:00Z"}
    with committed():
        return vonage_client.post_webhook(f"/incidents/voice/{notification.token}/event", payload)


def test_a_notification_call_vonage_did_not_place_is_tried_again(incident, worker, vonage_api, vonage_client):
    """Over its rate Vonage may answer the create-call 201 and then send an error event instead of placing the
    call: the attempt failed, and the notification is tried again after its back-off instead of staying "sent"."""
    worker.run()
    notification = voice(incident)
    (placed,) = vonage_api.api.calls
    assert notification.status == "sent"
    assert error_event(vonage_client, notification, placed).status_code == 204
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "rate limit exceeded" in notification.error
    failed = incident.events.get(kind=IncidentEvent.Kind.DELIVERY_FAILED)
    assert "(attempt 1 of 3): Vonage did not place the call" in failed.message and "Trying again" in failed.message
    worker.run()
    assert vonage_api.modifications(placed) == [{"action": "hangup"}]  # in case it lives after all
    # The same event again changes nothing; the retry's due time passes and it rings once more.
    assert error_event(vonage_client, notification, placed).status_code == 204
    assert incident.events.filter(kind=IncidentEvent.Kind.DELIVERY_FAILED).count() == 1
    assert sweep(notification.due_at)["notifications"] == 1
    worker.run()
    notification.refresh_from_db()
    (retry,) = [uuid for uuid in vonage_api.api.calls if uuid != placed]
    assert (notification.status, notification.provider_id, notification.attempts) == ("sent", retry, 2)
    # A late error event about the first call does not fail the second.
    error_event(vonage_client, notification, placed)
    notification.refresh_from_db()
    assert notification.status == "sent"


def test_an_error_event_on_the_last_attempt_fails_the_notification(incident, worker, vonage_api, vonage_client):
    worker.run()
    notification = voice(incident)
    Notification.objects.filter(pk=notification.pk).update(attempts=notifications.MAX_ATTEMPTS)
    error_event(vonage_client, notification, notification.provider_id)
    notification.refresh_from_db()
    assert notification.status == "failed"
    assert "(gave up after 3 attempts)" in incident.events.get(kind=IncidentEvent.Kind.DELIVERY_FAILED).message


def test_an_error_event_on_an_answered_notification_call_changes_nothing(incident, worker, vonage_api,
                                                                         vonage_client):
    """An invalid NCCO reported after the person picked up: they were reached, the notification stays sent."""
    worker.run()
    notification = voice(incident)
    call_event(vonage_client, notification, notification.provider_id, "answered")
    error_event(vonage_client, notification, notification.provider_id, reason="Invalid NCCO")
    notification.refresh_from_db()
    assert notification.status == "sent" and notification.answered_at is not None
    assert not incident.events.filter(kind=IncidentEvent.Kind.DELIVERY_FAILED).exists()
    worker.run()
    assert vonage_api.modifications(notification.provider_id) == []


def die_after_placing_the_call(worker, monkeypatch):
    """The worker places the notification's call and dies before it can record the call's uuid."""
    place = notifications.VoiceTransport.send

    def place_then_die(self, notification):
        place(self, notification)
        raise WorkerKilled()

    with monkeypatch.context() as patch, pytest.raises(WorkerKilled):
        patch.setattr(notifications.VoiceTransport, "send", place_then_die)
        worker.run()


def test_worker_killed_after_the_call_was_placed_does_not_ring_twice(incident, worker, vonage_api, vonage_client,
                                                                    monkeypatch):
    die_after_placing_the_call(worker, monkeypatch)
    notification = voice(incident)
    assert (notification.status, notification.lease_until is not None) == ("sending", True)
    (placed,) = vonage_api.api.calls
    call_event(vonage_client, notification, placed, "started")
    notification.refresh_from_db()
    assert (notification.status, notification.provider_id, notification.lease_until) == ("sent", placed, None)
    counts = sweep(timezone.now() + SEND_LEASE + timedelta(minutes=1))
    assert (counts["reclaimed_notifications"], counts["notifications"]) == (0, 0)
    worker.run()
    assert len(creates(vonage_api)) == 1 and notified(incident) == 1


def test_events_arriving_after_the_lease_ran_out_stop_the_retry(incident, worker, vonage_api, vonage_client,
                                                                 monkeypatch):
    """The worker died right after Vonage placed the call, and the call's events are so late that the lease ran out
    and the sweeper already handed the next attempt out: the late first event adopts the call, the queued retry
    places nothing, and the person is rung once."""
    die_after_placing_the_call(worker, monkeypatch)
    notification = voice(incident)
    (placed,) = vonage_api.api.calls
    counts = sweep(notification.lease_until)
    assert (counts["reclaimed_notifications"], counts["notifications"]) == (1, 1)  # the retry is queued
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert call_event(vonage_client, notification, placed, "started").status_code == 204
    notification.refresh_from_db()
    assert (notification.status, notification.provider_id) == ("sent", placed)
    worker.run()  # the queued retry
    assert len(creates(vonage_api)) == 1 and notified(incident) == 1
    call_event(vonage_client, notification, placed, "answered")
    notification.refresh_from_db()
    assert notification.status == "sent" and notification.answered_at is not None
    assert sweep(timezone.now() + timedelta(hours=1))["notifications"] == 0


def die(*args, **kwargs):
    raise WorkerKilled()


def test_worker_killed_before_placing_the_call_is_taken_back_after_the_lease(incident, worker, vonage_api, monkeypatch):
    with monkeypatch.context() as patch, pytest.raises(WorkerKilled):
        patch.setattr(notifications, "wait_for_call_slot", die)
        worker.run()
    notification = voice(incident)
    assert notification.status == "sending" and creates(vonage_api) == []
    lease = notification.lease_until
    assert sweep(lease - timedelta(seconds=1))["reclaimed_notifications"] == 0
    counts = sweep(lease)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "never finished" in incident.events.get(kind=IncidentEvent.Kind.DELIVERY_FAILED).message
    # Its retry backoff is shorter than the lease, so the same sweep hands the next attempt out.
    assert (counts["reclaimed_notifications"], counts["notifications"]) == (1, 1)
    worker.run()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)
    assert len(creates(vonage_api)) == 1
    assert sweep(timezone.now() + timedelta(hours=1))["reclaimed_notifications"] == 0


def test_a_notification_stuck_on_its_last_attempt_fails_for_good(incident, worker, monkeypatch):
    with monkeypatch.context() as patch, pytest.raises(WorkerKilled):
        patch.setattr(notifications, "wait_for_call_slot", die)
        worker.run()
    notification = voice(incident)
    Notification.objects.filter(pk=notification.pk).update(attempts=notifications.MAX_ATTEMPTS)
    notification.refresh_from_db()
    assert sweep(notification.lease_until)["reclaimed_notifications"] == 1
    notification.refresh_from_db()
    assert notification.status == "failed" and notification.lease_until is None


# --- alert action deliveries ----------------------------------------------------------------------------------


def test_worker_killed_while_delivering_an_alert_action(source, receiver, worker, monkeypatch, settings):  # noqa: F811
    settings.OUTBOUND_ALLOW_HTTP = settings.OUTBOUND_ALLOW_LOOPBACK = True  # the receiver is a local http server
    AlertActionFactory(alert_source=source, name="hook", url=receiver.url("/hook"), on_accepted=False, on_resolved=False)
    source.escalation_policy = None
    source.save()
    with committed():
        services.create_incident(alert_source=source, summary="Database down")

    with monkeypatch.context() as patch, pytest.raises(WorkerKilled):
        patch.setattr(actions.outbound, "post_json", die)
        worker.run()
    stuck = AlertActionDelivery.objects.get()
    assert stuck.status == "sending" and stuck.lease_until is not None
    assert sweep(stuck.lease_until - timedelta(seconds=1))["reclaimed_deliveries"] == 0
    counts = sweep(stuck.lease_until)
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "never finished" in stuck.error
    retry = AlertActionDelivery.objects.get(attempt=2)
    assert (counts["reclaimed_deliveries"], counts["deliveries"]) == (1, 1)  # the retry is due within the lease
    worker.run()
    retry.refresh_from_db()
    assert retry.status == "delivered" and len(receiver.bodies("/hook")) == 1
    assert sweep(timezone.now() + timedelta(hours=1))["reclaimed_deliveries"] == 0


def test_reclaiming_twice_retries_once(source, worker):
    """Two sweepers (or a sweeper and the original task finishing) act on one expired attempt: one retry row."""
    AlertActionFactory(alert_source=source, url="https://hooks.example.test/x")
    incident = services.create_incident(alert_source=source, summary="Database down")
    delivery = AlertActionDelivery.objects.get(incident=incident)
    expired = timezone.now() - timedelta(seconds=1)
    AlertActionDelivery.objects.filter(pk=delivery.pk).update(status="sending", lease_until=expired)
    assert actions.reclaim_delivery(delivery.pk, timezone.now()) == "retry"
    assert actions.reclaim_delivery(delivery.pk, timezone.now()) is None
    delivery.refresh_from_db()
    # The original task's own result arrives late: it changes nothing and retries nothing.
    assert actions._finish(delivery, error="Timed out", retryable=True) == "skipped"
    assert AlertActionDelivery.objects.filter(incident=incident, attempt=2).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not connection.features.has_select_for_update_skip_locked, reason="row locks need PostgreSQL")
def test_concurrent_sweepers_reclaim_each_attempt_once(source, worker, bob):
    """Expired attempts of notifications and deliveries, two sweepers at the same moment: each attempt is taken
    back once, so each is retried once."""
    AlertActionFactory(alert_source=source, name="hook", url="https://hooks.example.test/x")
    incident = services.create_incident(alert_source=source, summary="Database down")
    expired = timezone.now() - timedelta(seconds=1)
    for channel, contact in (("voice", "+4915110000002"), ("sms", "+4915110000002"), ("email", "bob@example.com")):
        Notification.objects.create(incident=incident, user=bob, channel=channel, contact=contact, due_at=expired,
                                    status="sending", attempts=1, lease_until=expired)
    AlertActionDelivery.objects.filter(incident=incident).update(status="sending", lease_until=expired)
    rows = 3 + AlertActionDelivery.objects.filter(incident=incident).count()
    assert rows == 4
    results = at_once(lambda: tasks.sweep(now=timezone.now()), timeout=60)
    assert len(results) == 2
    assert sum(r["reclaimed_notifications"] + r["reclaimed_deliveries"] for r in results) == rows
    assert not Notification.objects.filter(status="sending").exists()
    assert not AlertActionDelivery.objects.filter(status="sending").exists()
    assert AlertActionDelivery.objects.filter(incident=incident, attempt=2).count() == 1
    # Each taken-back attempt is due again once (after its backoff), none is lost or failed.
    assert list(Notification.objects.filter(incident=incident, attempts=1).values_list("status", flat=True)) == ["pending"] * 3
