"""Alert actions: tell other systems (a JSON webhook, Slack, Microsoft Teams) when incidents change.

fire() is called by the incident services on created / accepted / resolved / escalated, and by call routing
when a voicemail is left (its recording, transcript, or loss: see callrouting.recordings). It creates one
AlertActionDelivery row (attempt 1) per matching enabled action and enqueues deliver() on commit. A delivery
that fails with a 5xx, a timeout or a connection error is retried as a new row, due after RETRY_BACKOFF
(claimed by the sweeper), up to MAX_ATTEMPTS attempts; any other failure (4xx, a redirect, a URL or address the
guard refuses) is final. Every request goes through the guarded client (incidents/outbound.py); the incident's
timeline shows status codes and short errors, never a target's response body.
Each action is its own row and its own task, so one failing action never holds up another. An attempt holds a
lease (lease_until) while it is sent: if its worker dies, the sweeper takes it back after the lease and counts
it as a failed attempt that is retried (reclaim_delivery).

The generic webhook receives incident_payload(); Slack and Teams get a message built from the same payload.
A trigger that carries details of its own ("escalated": the reason; "voicemail": the recording's signed link, its
length and the transcript) has its payload built when it fires, so the message says what happened at that moment.
Other apps add fields under "extra" with register_payload_extension() (call routing adds its call details).
"""
import logging
from datetime import timedelta

import requests
from django.db import transaction
from django.utils import timezone

from . import outbound
from .models import AlertAction, AlertActionDelivery, Incident, IncidentEvent
from .sweeper import SEND_LEASE, lock_expired

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
# Wait before attempt 2, 3 and 4.
RETRY_BACKOFF = [timedelta(seconds=10), timedelta(seconds=60), timedelta(minutes=5)]
TIMEOUT_SECONDS = 10
USER_AGENT = "callrouting-alert-actions/1"

_payload_extensions = []


def register_payload_extension(func):
    """Add FUNC(incident) -> dict to every alert action payload, under "extra". Returns FUNC (a decorator too).

    Call it from your AppConfig.ready(). Registering the same function twice has no effect. An extension that
    raises is logged and left out; it never stops a delivery.
    """
    if func not in _payload_extensions:
        _payload_extensions.append(func)
    return func


def unregister_payload_extension(func):
    if func in _payload_extensions:
        _payload_extensions.remove(func)


def _iso(value):
    return value.isoformat() if value else None


def incident_payload(incident, trigger, details=None):
    """The generic webhook JSON for INCIDENT after the transition TRIGGER (an AlertAction.Trigger value), with the
    trigger's DETAILS (e.g. {"voicemail": {...}}) as top-level keys."""
    extra = {}
    for func in list(_payload_extensions):
        try:
            extra.update(func(incident) or {})
        except Exception:
            log.exception("incident=%s action=payload_extension_failed extension=%s", incident.pk, func.__qualname__)
    assigned = incident.assigned_to
    return {
        "event": f"incident.{trigger}",
        "incident": {
            "id": incident.pk,
            "summary": incident.summary,
            "details": incident.details,
            "priority": incident.priority,
            "status": incident.status,
            "created_at": _iso(incident.created_at),
            "accepted_at": _iso(incident.accepted_at),
            "resolved_at": _iso(incident.resolved_at),
            "assigned_to": (
                {"id": assigned.pk, "name": str(assigned), "email": assigned.email} if assigned is not None else None
            ),
            "alert_source": {"id": incident.alert_source_id, "name": incident.alert_source.name},
            "account": {"id": incident.account_id, "name": incident.account.name},
            "url": incident.get_public_url(),
        },
        "extra": extra,
        **(details or {}),
    }


TRIGGER_TITLES = {
    "created": "New incident", "accepted": "Incident accepted", "resolved": "Incident resolved",
    "escalated": "Incident escalated", "voicemail": "Voicemail left",
}
VOICEMAIL_TITLES = {
    "transcribed": "Voicemail transcript", "lost": "Voicemail recording lost", "missing": "Voicemail recording missing",
}
TRIGGER_EMOJI = {
    "created": ":rotating_light:", "accepted": ":eyes:", "resolved": ":white_check_mark:", "escalated": ":loudspeaker:",
    "voicemail": ":studio_microphone:",
}


def _title(payload):
    trigger = payload["event"].removeprefix("incident.")
    incident = payload["incident"]
    title = TRIGGER_TITLES.get(trigger, trigger)
    if trigger == "voicemail":
        title = VOICEMAIL_TITLES.get(payload["voicemail"]["status"], title)
    return trigger, f"{title} #{incident['id']}: {incident['summary']}"


def _event_lines(payload):
    """What the trigger itself adds to a Slack or Teams message: (facts, text paragraphs, (label, url) links)."""
    facts, paragraphs, links = [], [], []
    escalation = payload.get("escalation")
    if escalation and escalation.get("reason"):
        facts.append(("Why", escalation["reason"]))
    voicemail = payload.get("voicemail")
    if voicemail:
        if voicemail.get("caller"):
            facts.append(("Caller", voicemail["caller"]))
        if voicemail.get("duration_seconds") is not None:
            facts.append(("Length", f"{voicemail['duration_seconds']} s"))
        if voicemail.get("transcript"):
            paragraphs.append(f"Transcript: {voicemail['transcript']}")
        if voicemail["status"] == "downloading":
            paragraphs.append("The recording is still being fetched from Vonage; a link follows once it is stored.")
        elif voicemail["status"] in ("lost", "missing"):
            paragraphs.append("The recording could not be kept: call the caller back.")
        if voicemail.get("recording_url"):
            links.append(("Play recording", voicemail["recording_url"]))
    return facts, paragraphs, links


def _facts(payload):
    incident = payload["incident"]
    facts = [
        ("Status", incident["status"].title()),
        ("Priority", incident["priority"].title()),
        ("Source", incident["alert_source"]["name"]),
    ]
    if incident["assigned_to"]:
        facts.append(("Assigned to", incident["assigned_to"]["name"]))
    return facts + _event_lines(payload)[0]


def slack_message(payload):
    """A Slack incoming-webhook message (Block Kit) for PAYLOAD."""
    trigger, title = _title(payload)
    incident = payload["incident"]
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{TRIGGER_EMOJI.get(trigger, '')} *{_escape_slack(title)}*".strip()}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{_escape_slack(value)}"} for name, value in _facts(payload)]},
    ]
    _, paragraphs, links = _event_lines(payload)
    for text in [incident["details"], *paragraphs] if trigger != "voicemail" else paragraphs:
        if text:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _escape_slack(text[:2900])}})
    buttons = [*links, ("Open incident", incident["url"])]
    blocks.append(
        {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": label}, "url": url} for label, url in buttons],
        }
    )
    return {"text": title, "blocks": blocks}


def _escape_slack(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_message(payload):
    """A Microsoft Teams incoming-webhook message carrying an Adaptive Card for PAYLOAD."""
    trigger, title = _title(payload)
    incident = payload["incident"]
    body = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in _facts(payload)]},
    ]
    _, paragraphs, links = _event_lines(payload)
    for text in [incident["details"], *paragraphs] if trigger != "voicemail" else paragraphs:
        if text:
            body.append({"type": "TextBlock", "text": text[:2000], "wrap": True})
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                    "actions": [
                        {"type": "Action.OpenUrl", "title": label, "url": url}
                        for label, url in [*links, ("Open incident", incident["url"])]
                    ],
                },
            }
        ],
    }


MESSAGE_BUILDERS = {
    AlertAction.Kind.WEBHOOK: lambda payload: payload,
    AlertAction.Kind.SLACK: slack_message,
    AlertAction.Kind.TEAMS: teams_message,
}


def fire(incident_id, trigger, now=None, *, alert_source_id=None, details=None):
    """Queue a delivery of every enabled action of the incident's source (ALERT_SOURCE_ID when the caller knows
    it, which spares a join) selected for TRIGGER. With DETAILS (what the trigger adds to the payload, see
    incident_payload) the payload is built now, once for all the actions; otherwise at the first attempt.

    Called inside the service's transaction; the tasks are enqueued when it commits. Returns the deliveries.
    """
    from .tasks import enqueue

    now = now or timezone.now()
    source = {"alert_source_id": alert_source_id} if alert_source_id else {"alert_source__incidents": incident_id}
    actions = list(AlertAction.objects.filter(enabled=True, **source, **{f"on_{trigger}": True}))
    payload = None
    if actions and details is not None:
        incident = Incident.objects.select_related("alert_source", "account", "assigned_to").get(pk=incident_id)
        payload = incident_payload(incident, trigger, details)
    deliveries = []
    for action in actions:
        delivery = AlertActionDelivery.objects.create(
            action=action, incident_id=incident_id, trigger=trigger, attempt=1, due_at=now, enqueued_at=now,
            payload=payload,
        )
        log.info("incident=%s action=fire_alert_action alert_action=%s trigger=%s delivery=%s", incident_id, action.pk, trigger, delivery.pk)
        enqueue("deliver_alert_action", delivery.pk)
        deliveries.append(delivery)
    return deliveries


def deliver(delivery_id):
    """Make the delivery attempt DELIVERY_ID. Returns "delivered", "retry", "failed" or "skipped"."""
    claimed = AlertActionDelivery.objects.filter(pk=delivery_id, status=AlertActionDelivery.Status.PENDING).update(
        status=AlertActionDelivery.Status.SENDING, enqueued_at=None, lease_until=timezone.now() + SEND_LEASE
    )
    if not claimed:
        log.info("delivery=%s action=skip reason=not_pending", delivery_id)
        return "skipped"
    delivery = AlertActionDelivery.objects.select_related("action", "incident__alert_source", "incident__account").get(
        pk=delivery_id
    )
    action = delivery.action
    if not action.enabled:
        return _finish(delivery, error="The alert action was disabled.", retryable=False)
    if delivery.payload is None:
        incident = Incident.objects.select_related("alert_source", "account", "assigned_to").get(pk=delivery.incident_id)
        delivery.payload = incident_payload(incident, delivery.trigger)
        AlertActionDelivery.objects.filter(pk=delivery.pk).update(payload=delivery.payload)
    body = MESSAGE_BUILDERS[action.kind](delivery.payload)
    try:
        answer = outbound.post_json(
            action.url, body, timeout=TIMEOUT_SECONDS, headers={"User-Agent": USER_AGENT}, kind=action.kind
        )
    except outbound.Refused as exc:
        return _finish(delivery, error=str(exc), retryable=False)
    except requests.Timeout:
        return _finish(delivery, error=f"Timed out after {TIMEOUT_SECONDS} s.", retryable=True)
    except requests.ConnectionError as exc:
        log.info("delivery=%s action=connection_failed error=%s", delivery_id, type(exc).__name__)
        return _finish(delivery, error="Connection failed.", retryable=True)
    except requests.RequestException as exc:
        log.info("delivery=%s action=request_failed error=%s", delivery_id, type(exc).__name__)
        return _finish(delivery, error="Request failed.", retryable=False)
    if 200 <= answer.status_code < 300:
        return _finish(delivery, status_code=answer.status_code, excerpt=answer.excerpt)
    return _finish(
        delivery,
        status_code=answer.status_code,
        excerpt=answer.excerpt,
        error=f"HTTP {answer.status_code}",
        retryable=answer.status_code >= 500,
    )


@transaction.atomic
def _finish(delivery, *, status_code=None, excerpt="", error="", retryable=False):
    from .services import add_event

    now = timezone.now()
    ok = not error
    finished = AlertActionDelivery.objects.filter(pk=delivery.pk, status=AlertActionDelivery.Status.SENDING).update(
        status=AlertActionDelivery.Status.DELIVERED if ok else AlertActionDelivery.Status.FAILED,
        status_code=status_code,
        response_excerpt=excerpt,
        error=error,
        finished_at=now,
        lease_until=None,
    )
    if not finished:  # the sweeper took the attempt back meanwhile (or another reclaim was first)
        log.info("delivery=%s action=skip reason=not_sending", delivery.pk)
        return "skipped"
    action = delivery.action
    if ok:
        log.info("delivery=%s alert_action=%s attempt=%s action=delivered status=%s", delivery.pk, action.pk, delivery.attempt, status_code)
        return "delivered"
    if retryable and delivery.attempt < MAX_ATTEMPTS:
        backoff = RETRY_BACKOFF[min(delivery.attempt - 1, len(RETRY_BACKOFF) - 1)]
        retry = AlertActionDelivery.objects.create(
            action=action,
            incident_id=delivery.incident_id,
            trigger=delivery.trigger,
            attempt=delivery.attempt + 1,
            due_at=now + backoff,
            payload=delivery.payload,
        )
        log.info(
            "delivery=%s alert_action=%s attempt=%s action=retry next=%s in=%ss error=%s",
            delivery.pk, action.pk, delivery.attempt, retry.pk, int(backoff.total_seconds()), error,
        )
        return "retry"
    add_event(
        delivery.incident_id,
        IncidentEvent.Kind.ACTION,
        f"Alert action {action.name} failed ({delivery.get_trigger_display().lower()}, attempt {delivery.attempt}): {error}",
        data={"alert_action": action.pk, "delivery": delivery.pk, "status_code": status_code},
    )
    log.info("delivery=%s alert_action=%s attempt=%s action=failed error=%s", delivery.pk, action.pk, delivery.attempt, error)
    return "failed"


def reclaim_delivery(delivery_id, now):
    """An attempt still SENDING when its lease ran out at NOW: the worker sending it died. It counts as a failed
    attempt that is retried (a new row after the backoff, up to MAX_ATTEMPTS). Returns the outcome ("retry" or
    "failed"), or None when there was nothing to take back."""
    with transaction.atomic():
        delivery = lock_expired(AlertActionDelivery, delivery_id, now, "action")
        if delivery is None:
            return None
        log.warning("delivery=%s attempt=%s action=reclaim", delivery.pk, delivery.attempt)
        return _finish(delivery, error="The attempt never finished (the worker stopped while sending).", retryable=True)


def sweep_deliveries(now):
    """Hand every alert action delivery due at NOW (retries) to a delivery task. Returns how many."""
    from .sweeper import hand_out

    return hand_out(AlertActionDelivery, "deliver_alert_action", lambda row: (row.pk,), now)
