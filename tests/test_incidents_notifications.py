"""Notifications over the real Vonage SDK against the fake API, email, retries, and the keypress webhook.

bob (Acme responder) is the one rule of the policy; his phone is +4915110000002.
"""
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail

from incidents import services, tasks
from incidents.models import Incident, IncidentEvent, Language, Notification
from tests.fake_vonage import signed_headers
from tests.incidents_factories import AlertSourceFactory, add_notification_rule, committed, make_policy, worker  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(acme, bob):
    return AlertSourceFactory(account=acme, name="Monitoring", escalation_policy=make_policy(acme, [([bob], 10)]))


@pytest.fixture
def incident(source, worker):
    with committed():
        incident = services.create_incident(alert_source=source, summary="Database down", details="db1 is gone")
    return incident


def voice_notification(incident):
    return incident.notifications.get(channel=Notification.Channel.VOICE)


def input_path(notification):
    return f"/incidents/voice/{notification.token}/input"


def test_voice_call_through_the_sdk(incident, worker, vonage_api, bob):
    worker.run()
    notification = voice_notification(incident)
    request = vonage_api.requests_matching("POST", r"^/v1/calls$")[0]
    assert request.jwt_claims["application_id"] == settings.VONAGE_APPLICATION_ID
    call = request.json
    assert call["to"] == [{"type": "phone", "number": "4915110000002"}]
    assert call["from"] == {"type": "phone", "number": settings.VONAGE_FROM_NUMBER.lstrip("+")}
    assert call["event_url"] == [f"https://callrouting.test/incidents/voice/{notification.token}/event"]
    talk, prompt, keypad = call["ncco"]
    assert talk["action"] == "talk" and talk["language"] == "en-US"
    assert "Database down" in talk["text"] and "Source: Monitoring" in talk["text"]
    assert prompt["text"] == "Press 4 to accept, or 6 to resolve."
    assert keypad == {
        "action": "input",
        "type": ["dtmf"],
        "dtmf": {"maxDigits": 1, "timeOut": 10},
        "eventUrl": [f"https://callrouting.test{input_path(notification)}"],
    }
    assert len(notification.token) >= 32
    assert notification.status == "sent" and notification.provider_id


def test_call_language_follows_the_alert_source(incident, source, worker, vonage_api):
    source.language = Language.DE_DE
    source.save()
    worker.run()
    talk = vonage_api.calls_created()[0]["ncco"][0]
    assert talk["language"] == "de-DE" and talk["text"].startswith("Alarm für Acme.")


def test_sms_and_email(source, bob, worker, vonage_api):
    add_notification_rule(bob, "sms")
    add_notification_rule(bob, "email")
    with committed():
        incident = services.create_incident(alert_source=source, summary="Database down", details="db1 is gone")
    worker.run()
    (sms,) = vonage_api.sms_sent()
    assert sms["to"] == "4915110000002"
    assert "Database down" in sms["text"] and f"https://callrouting.test/incidents/{incident.pk}" in sms["text"]
    (email,) = mail.outbox
    assert email.to == ["bob@example.com"]
    assert email.subject == f"[Acme] Incident #{incident.pk}: Database down"
    assert "db1 is gone" in email.body and f"https://callrouting.test/incidents/{incident.pk}" in email.body
    assert set(incident.notifications.values_list("channel", "status")) == {
        ("voice", "sent"), ("sms", "sent"), ("email", "sent"),
    }


def test_transient_failure_is_retried_with_backoff(incident, worker, vonage_api):
    vonage_api.fail_next("POST", r"^/v1/calls$", 503)
    worker.run()
    notification = voice_notification(incident)
    assert (notification.status, notification.attempts) == ("pending", 1)
    failed = incident.events.get(kind=IncidentEvent.Kind.DELIVERY_FAILED)
    assert "attempt 1 of 3" in failed.message and "503" in failed.message

    with committed():
        tasks.sweep(now=notification.due_at - timedelta(seconds=1))
    assert worker.queue == []
    with committed():
        tasks.sweep(now=notification.due_at)
    worker.run()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)
    assert len(vonage_api.calls_created()) == 1


def test_retries_are_bounded(incident, worker, vonage_api):
    vonage_api.fail_next("POST", r"^/v1/calls$", 500, times=5)
    worker.run()
    notification = voice_notification(incident)
    for _ in range(4):
        with committed():
            tasks.sweep(now=notification.due_at)
        worker.run()
        notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 3)
    assert len(vonage_api.requests_matching("POST", r"^/v1/calls$")) == 3
    last = incident.events.filter(kind=IncidentEvent.Kind.DELIVERY_FAILED).last()
    assert "gave up after 3 attempts" in last.message


def test_permanent_failure_is_not_retried(incident, worker, vonage_api):
    vonage_api.fail_next("POST", r"^/v1/calls$", 401)
    worker.run()
    notification = voice_notification(incident)
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "permanent error" in incident.events.get(kind=IncidentEvent.Kind.DELIVERY_FAILED).message


def test_email_smtp_error_is_transient(source, bob, worker, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens there
    bob.notification_rules.all().delete()
    add_notification_rule(bob, "email")
    with committed():
        incident = services.create_incident(alert_source=source, summary="Database down")
    worker.run()
    notification = incident.notifications.get()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "Email could not be sent" in notification.error


# --- the keypress webhook ---------------------------------------------------------------------------------


def press(vonage_client, notification, digits, query=""):
    payload = {"dtmf": {"digits": digits, "timed_out": digits == ""}, "uuid": notification.provider_id}
    return vonage_client.post_webhook(input_path(notification) + query, payload)


def test_signed_4_accepts_as_the_called_user(incident, worker, vonage_client, bob):
    worker.run()
    response = press(vonage_client, voice_notification(incident), "4")
    assert response.status_code == 200
    assert response.json() == [
        {"action": "talk", "text": f"Incident {incident.pk} is accepted by you. Thank you.", "language": "en-US"}
    ]
    incident.refresh_from_db()
    assert (incident.status, incident.assigned_to) == (Incident.Status.ACCEPTED, bob)
    event = incident.events.get(kind=IncidentEvent.Kind.ACCEPTED)
    assert event.user == bob and event.data == {"via": "phone"}
    assert incident.escalation_due_at is None


def test_signed_6_resolves(incident, worker, vonage_client, bob):
    worker.run()
    response = press(vonage_client, voice_notification(incident), "6")
    assert "is resolved" in response.json()[0]["text"]
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    # Pressing 4 afterwards cannot reopen it.
    assert "already resolved" in press(vonage_client, voice_notification(incident), "4").json()[0]["text"]
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED


def test_already_accepted_by_someone_else(incident, worker, vonage_client, alice):
    worker.run()
    services.accept_incident(incident.pk, alice)
    response = press(vonage_client, voice_notification(incident), "4")
    assert response.json()[0]["text"] == f"Incident {incident.pk} was already accepted by Alice. Goodbye."


def test_other_keys_repeat_the_prompt_once(incident, worker, vonage_client):
    worker.run()
    notification = voice_notification(incident)
    first = press(vonage_client, notification, "9").json()
    assert first[0]["text"] == "Sorry, that was not a valid choice."
    assert first[-1]["eventUrl"] == [f"https://callrouting.test{input_path(notification)}?repeat=1"]
    second = press(vonage_client, notification, "", query="?repeat=1").json()
    assert second == [{"action": "talk", "text": "Sorry, that was not a valid choice. Goodbye.", "language": "en-US"}]
    incident.refresh_from_db()
    assert incident.status == Incident.Status.PENDING


def test_forged_or_unsigned_keypress_changes_nothing(incident, worker, client):
    worker.run()
    notification = voice_notification(incident)
    body = json.dumps({"dtmf": {"digits": "4"}}).encode()
    forged = client.post(
        input_path(notification), body, content_type="application/json", **signed_headers(body, secret="not-our-signature-secret-but-long-enough-0123")
    )
    unsigned = client.post(input_path(notification), body, content_type="application/json")
    # The person hears something, not dead air: Vonage plays no body of a non-2xx answer.
    assert forged.status_code == 200 and forged.json()[0]["action"] == "talk"
    assert unsigned.status_code == 503  # Vonage sends an unsigned callback again, signed
    incident.refresh_from_db()
    assert incident.status == Incident.Status.PENDING
    assert not incident.events.filter(kind=IncidentEvent.Kind.ACCEPTED).exists()


def test_unknown_token_is_harmless(incident, worker, vonage_client):
    worker.run()
    response = vonage_client.post_webhook("/incidents/voice/not-a-token/input", {"dtmf": {"digits": "6"}})
    assert response.status_code == 200
    assert response.json()[0]["text"] == "This alert is no longer available. Goodbye."
    incident.refresh_from_db()
    assert incident.status == Incident.Status.PENDING
    assert vonage_client.post_webhook("/incidents/voice/not-a-token/event", {"status": "busy"}).status_code == 204


def test_call_outcome_events_record_a_failed_delivery_once(incident, worker, vonage_client):
    worker.run()
    notification = voice_notification(incident)
    path = f"/incidents/voice/{notification.token}/event"
    for _ in range(2):  # Vonage may send an event twice
        response = vonage_client.post_webhook(path, {"uuid": notification.provider_id, "status": "busy"})
        assert response.status_code == 204
    notification.refresh_from_db()
    assert (notification.status, notification.error) == ("failed", "Call busy")
    (failed,) = incident.events.filter(kind=IncidentEvent.Kind.DELIVERY_FAILED)
    assert failed.message == "Delivery failed: voice call to Bob: call busy."


def test_answered_event_is_noted(incident, worker, vonage_client):
    worker.run()
    notification = voice_notification(incident)
    vonage_client.post_webhook(f"/incidents/voice/{notification.token}/event", {"status": "answered"})
    assert incident.events.filter(message="Bob answered the voice call.").count() == 1
