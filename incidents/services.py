"""The verbs that change incidents. Each is atomic and the only place that makes its change.

Callers: the web UI, the REST API, the phone (notification keypress, call routing) and the worker.
"""
import logging
import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from . import actions, escalation_engine
from .models import AlertAction, Incident, IncidentEvent, Notification, Priority, VonageErrorEvent

log = logging.getLogger(__name__)

# The unguessable token in a per-call, per-leg or per-notification webhook path.
URL_TOKEN = re.compile(r"/[A-Za-z0-9_-]{16,64}(?=/)")


def add_event(incident, kind, message, *, user=None, data=None):
    """Append a line to the incident's timeline and return the IncidentEvent."""
    incident_id = incident.pk if isinstance(incident, Incident) else incident
    return IncidentEvent.objects.create(incident_id=incident_id, kind=kind, message=message, user=user, data=data or {})


@transaction.atomic(savepoint=False)  # inside a caller's transaction no savepoint: nobody recovers from a failure here
def create_incident(*, alert_source, summary, details="", priority=None, escalation_policy=None, suppress_escalation=False,
                    timeline=()):
    """Create a PENDING incident for ALERT_SOURCE and return it.

    The escalation policy defaults to the source's. With suppress_escalation the normal escalation is held back
    until escalate_incident() is called (call routing does this while a live call is being routed). TIMELINE:
    (kind, message, data) lines to follow "created", written with it in one insert.
    """
    policy = escalation_policy if escalation_policy is not None else alert_source.escalation_policy
    incident = Incident.objects.create(
        account_id=alert_source.account_id,
        alert_source=alert_source,
        escalation_policy=policy,
        summary=summary[:500],
        details=details,
        priority=priority or alert_source.priority,
        escalation_suppressed=suppress_escalation,
    )
    IncidentEvent.objects.bulk_create(
        [IncidentEvent(incident=incident, kind=IncidentEvent.Kind.CREATED, message=f"Incident created from {alert_source.name}.")]
        + [IncidentEvent(incident=incident, kind=kind, message=message, data=data) for kind, message, data in timeline]
    )
    # Logged once committed: a caller's transaction may still roll the incident back (callrouting.route_call).
    transaction.on_commit(lambda: log.info(
        "incident=%s action=created source=%s suppressed=%s", incident.pk, alert_source.pk, suppress_escalation))
    if not suppress_escalation:
        _start_escalation(incident)
    actions.fire(incident.pk, AlertAction.Trigger.CREATED, alert_source_id=alert_source.pk)
    return incident


@transaction.atomic
def accept_incident(incident_id, user, *, via="web"):
    """Accept a PENDING incident as USER. Returns True when this call made the change."""
    now = timezone.now()
    changed = Incident.objects.filter(pk=incident_id, status=Incident.Status.PENDING).update(
        status=Incident.Status.ACCEPTED, assigned_to=user, accepted_at=now, escalation_due_at=None
    )
    if changed:
        add_event(incident_id, IncidentEvent.Kind.ACCEPTED, f"Accepted by {user} ({via}).", user=user, data={"via": via})
        log.info("incident=%s action=accepted user=%s via=%s", incident_id, user.pk, via)
        escalation_engine.stop_escalation(incident_id, f"Accepted by {user}.")
        actions.fire(incident_id, AlertAction.Trigger.ACCEPTED)
    return bool(changed)


@transaction.atomic
def resolve_incident(incident_id, user=None, *, via="web", reason=""):
    """Resolve an open incident. A resolved incident never reopens. Returns True when this call made the change."""
    now = timezone.now()
    changed = (
        Incident.objects.filter(pk=incident_id)
        .exclude(status=Incident.Status.RESOLVED)
        .update(status=Incident.Status.RESOLVED, resolved_at=now, escalation_due_at=None)
    )
    if changed:
        who = f"by {user}" if user else "automatically"
        message = f"Resolved {who} ({via})." + (f" {reason}" if reason else "")
        add_event(incident_id, IncidentEvent.Kind.RESOLVED, message, user=user, data={"via": via})
        log.info("incident=%s action=resolved via=%s", incident_id, via)
        escalation_engine.stop_escalation(incident_id, "Resolved.")
        actions.fire(incident_id, AlertAction.Trigger.RESOLVED)
    return bool(changed)


@transaction.atomic
def escalate_incident(incident_id, *, reason=""):
    """(Re)start escalation from the policy's first rule and lift any suppression.

    Returns True when escalation started; False when the incident is no longer PENDING.
    """
    incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None or incident.status != Incident.Status.PENDING:
        return False
    Incident.objects.filter(pk=incident.pk).update(escalation_suppressed=False)
    incident.escalation_suppressed = False
    add_event(incident, IncidentEvent.Kind.ESCALATED, "Escalating" + (f": {reason}" if reason else "."))
    _start_escalation(incident)
    actions.fire(incident.pk, AlertAction.Trigger.ESCALATED, alert_source_id=incident.alert_source_id,
                 details={"escalation": {"reason": reason or None}})
    return True


@transaction.atomic
def set_priority(incident_id, priority, *, reason=""):
    """Change the priority. Returns True when it changed."""
    changed = Incident.objects.filter(pk=incident_id).exclude(priority=priority).update(priority=priority)
    if changed:
        add_event(incident_id, IncidentEvent.Kind.PRIORITY, f"Priority set to {Priority(priority).label}. {reason}".strip())
    return bool(changed)


def _start_escalation(incident):
    """Freeze the policy into the incident and run the first rule once the transaction commits."""
    escalation_engine.start_escalation(incident)


@dataclass
class KeypressResult:
    """What a key pressed in a notification call did.

    outcome: "accepted", "resolved", "already_accepted", "already_resolved", "invalid" or "unknown".
    """

    outcome: str
    notification: Notification | None = None
    accepted_by: object = None


def answer_notification_keypress(token, digits):
    """Act on DIGITS pressed in the notification call with TOKEN: 4 accepts, 6 resolves, as the called user.

    Returns a KeypressResult; an unknown token or another key changes nothing.
    """
    from .voice import ACCEPT_KEY, RESOLVE_KEY

    notification = (
        Notification.objects.select_related("user", "incident__alert_source", "incident__account")
        .filter(token=token, channel=Notification.Channel.VOICE)
        .first()
    )
    if notification is None or notification.user is None:
        log.info("keypress action=ignore reason=unknown_token")
        return KeypressResult("unknown")
    if not notification.user.is_active:
        # Deactivated since the call was placed: they no longer act for the account.
        log.info("keypress action=ignore reason=user_deactivated user=%s", notification.user_id)
        return KeypressResult("unknown")
    digits = str(digits or "").strip()
    incident_id, user = notification.incident_id, notification.user
    if digits == ACCEPT_KEY:
        if accept_incident(incident_id, user, via="phone"):
            outcome = "accepted"
        else:
            outcome = _already(incident_id, user)
    elif digits == RESOLVE_KEY:
        outcome = "resolved" if resolve_incident(incident_id, user, via="phone") else "already_resolved"
    else:
        outcome = "invalid"
    log.info("incident=%s notification=%s user=%s keypress=%r action=%s", incident_id, notification.pk, user.pk, digits, outcome)
    notification.incident.refresh_from_db()
    return KeypressResult(outcome, notification, notification.incident.assigned_to)


def _already(incident_id, user):
    status = Incident.objects.filter(pk=incident_id).values_list("status", flat=True).first()
    return "already_resolved" if status == Incident.Status.RESOLVED else "already_accepted"


def record_vonage_error(webhook, payload):
    """Keep an error event Vonage sent to the event URL WEBHOOK (a path) and log it at ERROR. Returns the row.

    The per-call token in the path is kept out of the row and the log (it is part of what authorises a URL)."""
    webhook = URL_TOKEN.sub("/<token>", webhook)
    reason = str(payload.get("reason") or "")[:2000]
    conversation_uuid = str(payload.get("conversation_uuid") or "")[:64]
    uuid = str(payload.get("uuid") or payload.get("call_uuid") or "")[:64]
    log.error("vonage error_event webhook=%s conversation=%s uuid=%s reason=%s", webhook, conversation_uuid, uuid, reason)
    return VonageErrorEvent.objects.create(
        reason=reason, conversation_uuid=conversation_uuid, uuid=uuid, webhook=webhook[:200], payload=payload
    )
