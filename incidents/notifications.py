"""Telling responders: one transport per channel (voice, SMS, email) and the delivery of Notification rows.

A Notification row is planned by the escalation engine for each of a user's notification rules, due at the
step's time plus the rule's delay. Due rows are handed to deliver_notification() (the delivery task) at once
when due immediately, otherwise by the sweeper. A transient failure (TransportError.permanent False) makes the
row due again after a backoff, up to MAX_ATTEMPTS attempts; every attempt's outcome goes on the timeline.

An attempt holds a lease (lease_until): when its worker dies mid-send the sweeper takes it back after the lease
(reclaim_notification) as a failed attempt. A voice notification is one call: the first call uuid seen on its
event URL is adopted (a create-call may time out although Vonage placed the call), after which no attempt is
placed and any other call for it is hung up.
"""
import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from . import voice
from .models import Incident, IncidentEvent, Notification
from .pacing import wait_for_call_slot
from .sweeper import SEND_LEASE, lock_expired
from .telephony import TelephonyError, get_telephony

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# Wait before attempt 2 and attempt 3. The sweeper runs every minute, so these are lower bounds.
RETRY_BACKOFF = [timedelta(seconds=30), timedelta(minutes=2)]
# Ring a notification call this long before Vonage gives up (the carrier's voicemail may answer earlier).
RINGING_SECONDS = 45
# Vonage call statuses that mean nobody heard the notification call.
FAILED_CALL_STATUSES = {"busy", "cancelled", "unanswered", "rejected", "failed", "timeout"}
# Statuses of a call that is still ringing or talking (a duplicate in that state is hung up).
LIVE_CALL_STATUSES = {"started", "ringing", "answered"}

CHANNEL_WORDS = {
    Notification.Channel.VOICE: "voice call",
    Notification.Channel.SMS: "SMS",
    Notification.Channel.EMAIL: "email",
}


class TransportError(Exception):
    """A notification could not be delivered. `permanent` is True when trying again cannot help."""

    def __init__(self, message, *, permanent=False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class TestTooSoon(TransportError):
    """A test call or SMS to a contact method that had one moments ago."""


class Transport:
    """Delivers one Notification over one channel; send() returns a provider id or raises TransportError."""

    def send(self, notification):
        raise NotImplementedError


class VoiceTransport(Transport):
    """A phone call that reads the incident out and takes a key: 4 accepts, 6 resolves."""

    def send(self, notification):
        if not settings.VONAGE_FROM_NUMBER:
            raise TransportError("VONAGE_FROM_NUMBER is not set: no number to call from.", permanent=True)
        # Each attempt is one send(): it waits for its slot of the create-call rate it shares with agent legs.
        waited = wait_for_call_slot()
        if waited:
            log.info("notification=%s action=call_paced wait=%.2f", notification.pk, waited)
        try:
            return get_telephony().create_call(
                to=notification.contact,
                from_=settings.VONAGE_FROM_NUMBER,
                event_url=voice.event_url(notification),
                ncco=voice.notification_call_ncco(notification),
                ringing_timer=RINGING_SECONDS,
            )
        except TelephonyError as exc:
            raise TransportError(exc.message, permanent=exc.permanent) from exc


class SmsTransport(Transport):
    def send(self, notification):
        if not settings.VONAGE_FROM_NUMBER:
            raise TransportError("VONAGE_FROM_NUMBER is not set: no number to send SMS from.", permanent=True)
        text = voice.describe(notification.incident, "message", summary_chars=200)
        try:
            return get_telephony().send_sms(to=notification.contact, from_=settings.VONAGE_FROM_NUMBER, text=text)
        except TelephonyError as exc:
            raise TransportError(exc.message, permanent=exc.permanent) from exc


class EmailTransport(Transport):
    def send(self, notification):
        incident = notification.incident
        subject = voice.describe(incident, "subject", summary_chars=150).replace("\n", " ")
        body = voice.describe(incident, "message", summary_chars=500)
        if incident.details:
            body += "\n\n" + incident.details
        try:
            send_mail(subject, body, None, [notification.contact], fail_silently=False)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise TransportError(f"Email refused: {exc}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"Email could not be sent: {exc}", permanent=False) from exc
        return ""


TRANSPORTS = {
    Notification.Channel.VOICE: VoiceTransport,
    Notification.Channel.SMS: SmsTransport,
    Notification.Channel.EMAIL: EmailTransport,
}


TEST_CALL_TEXT = (
    "This is a test call from callrouting for {name}. Notification calls will reach you on this number. Goodbye."
)
TEST_SMS_TEXT = "callrouting test message for {name}: notification SMS will reach you on this number."
# One test call and one test SMS per contact method in this many seconds: the buttons cannot flood a phone.
TEST_INTERVAL_SECONDS = 30


def send_test_notification(contact_method, channel):
    """Place a test call (channel "voice") or send a test SMS (channel "sms") to the phone CONTACT_METHOD through
    the telephony client. Returns the provider's id (call uuid or message id); raises TransportError with a
    message for the person who pressed the button."""
    if contact_method.kind != contact_method.Kind.PHONE:
        raise TransportError("Test calls and SMS go to phone numbers only.", permanent=True)
    if not contact_method.user.is_active:
        raise TransportError(f"{contact_method.user} is deactivated.", permanent=True)
    if not settings.VONAGE_FROM_NUMBER:
        raise TransportError("VONAGE_FROM_NUMBER is not set: no number to call or text from.", permanent=True)
    if not cache.add(f"test-notification:{channel}:{contact_method.pk}", True, TEST_INTERVAL_SECONDS):
        raise TestTooSoon(
            f"A test went to {contact_method.value} less than {TEST_INTERVAL_SECONDS} seconds ago: try again shortly.",
            permanent=False,
        )
    name = str(contact_method.user)
    try:
        if channel == Notification.Channel.SMS:
            provider_id = get_telephony().send_sms(
                to=contact_method.value, from_=settings.VONAGE_FROM_NUMBER, text=TEST_SMS_TEXT.format(name=name)
            )
        else:
            wait_for_call_slot()
            provider_id = get_telephony().create_call(
                to=contact_method.value,
                from_=settings.VONAGE_FROM_NUMBER,
                event_url=settings.PUBLIC_BASE_URL + reverse("incidents:test-call-event"),
                ncco=[{"action": "talk", "text": TEST_CALL_TEXT.format(name=name), "language": "en-US"}],
                ringing_timer=RINGING_SECONDS,
            )
    except TelephonyError as exc:
        raise TransportError(exc.message, permanent=exc.permanent) from exc
    log.info(
        "contact_method=%s user=%s action=test_%s provider_id=%s", contact_method.pk, contact_method.user_id, channel,
        provider_id,
    )
    return provider_id


def plan_notifications(incident, user, *, generation, step, now):
    """Create USER's notifications for escalation STEP (one per notification rule) and return them.

    Those without delay are handed to a delivery task when the transaction commits; delayed ones wait for
    the sweeper.
    """
    from .services import add_event
    from .tasks import enqueue

    if not user.is_active:
        log.info("incident=%s action=skip_notifications reason=deactivated user=%s", incident.pk, user.pk)
        return []
    rules = list(user.notification_rules.all())
    if not rules:
        add_event(incident, IncidentEvent.Kind.DELIVERY_FAILED, f"{user} has no notification rules: not notified.", user=user)
        log.info("incident=%s action=no_notification_rules user=%s", incident.pk, user.pk)
        return []
    planned = []
    for rule in rules:
        due_at = now + timedelta(minutes=rule.delay_minutes)
        notification = Notification.objects.create(
            incident=incident,
            user=user,
            channel=rule.channel,
            contact=rule.contact_method.value,
            due_at=due_at,
            delay_minutes=rule.delay_minutes,
            escalation_generation=generation,
            escalation_step=step,
            enqueued_at=now if rule.delay_minutes == 0 else None,
        )
        log.info(
            "incident=%s action=plan_notification notification=%s user=%s channel=%s delay=%s",
            incident.pk, notification.pk, user.pk, rule.channel, rule.delay_minutes,
        )
        if rule.delay_minutes == 0:
            enqueue("deliver_notification", notification.pk, 1)
        planned.append(notification)
    return planned


def cancel_pending_notifications(incident_id, reason):
    """Cancel the incident's notifications that were not attempted yet. Returns how many."""
    cancelled = Notification.objects.filter(incident_id=incident_id, status=Notification.Status.PENDING).update(
        status=Notification.Status.CANCELLED, error=reason
    )
    if cancelled:
        log.info("incident=%s action=cancel_notifications count=%s", incident_id, cancelled)
    return cancelled


def deliver_notification(notification_id, attempt):
    """Make attempt ATTEMPT (1-based) of the notification. Returns "sent", "retry", "failed" or "skipped".

    The claim is a conditional update (PENDING with attempts == ATTEMPT - 1, and no call adopted for it, becomes
    SENDING under a lease), so a duplicated or late task finds nothing to claim and sends nothing. A notification
    of a user deactivated since it was planned is cancelled instead ("cancelled").
    """
    if Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING, user__is_active=False).update(
        status=Notification.Status.CANCELLED, error="The user was deactivated.", enqueued_at=None
    ):
        log.info("notification=%s attempt=%s action=cancel reason=user_deactivated", notification_id, attempt)
        return "cancelled"
    claimed = Notification.objects.filter(
        pk=notification_id, status=Notification.Status.PENDING, attempts=attempt - 1, provider_id=""
    ).update(
        status=Notification.Status.SENDING, attempts=attempt, enqueued_at=None, lease_until=timezone.now() + SEND_LEASE
    )
    if not claimed:
        log.info("notification=%s attempt=%s action=skip reason=not_pending_or_claimed", notification_id, attempt)
        return "skipped"
    notification = Notification.objects.select_related("incident__alert_source", "incident__account", "user").get(
        pk=notification_id
    )
    try:
        provider_id = TRANSPORTS[notification.channel]().send(notification)
    except TransportError as exc:
        return _record_failure(notification, attempt, exc.message, permanent=exc.permanent)
    except Exception as exc:  # a bug must not leave the row SENDING without a trace
        log.exception("notification=%s attempt=%s action=crash", notification_id, attempt)
        return _record_failure(notification, attempt, f"Unexpected error: {exc!r}", permanent=True)
    result = _record_success(notification, attempt, provider_id or "")
    if result == "duplicate":
        # Another call of this notification reached its event URL first and was adopted: this one is not needed.
        hang_up_call(provider_id)
    return result


def hang_up_call(uuid):
    """Hang up a notification call nobody needs (a second call placed for one notification)."""
    try:
        get_telephony().hangup(uuid)
    except TelephonyError as exc:
        log.info("uuid=%s action=hang_up_failed error=%s", uuid, exc.message)


def reclaim_notification(notification_id, now):
    """An attempt still SENDING when its lease ran out at NOW: the worker sending it died. Count it as a failed
    attempt (due again after the backoff, or failed for good after MAX_ATTEMPTS). A voice call it placed was
    adopted when its first event arrived, and an adopted notification is never SENDING. Returns the outcome
    ("retry", "cancelled", "failed"), or None when there was nothing to take back."""
    with transaction.atomic():
        notification = lock_expired(Notification, notification_id, now, "user")
        if notification is None:
            return None
        log.warning("notification=%s attempt=%s action=reclaim", notification.pk, notification.attempts)
        return _record_failure(
            notification, notification.attempts, "The attempt never finished (the worker stopped while sending).",
            permanent=False,
        )


def _who(notification):
    return str(notification.user) if notification.user else notification.contact


@transaction.atomic
def _record_success(notification, attempt, provider_id):
    now = timezone.now()
    changed = Notification.objects.filter(
        pk=notification.pk, status=Notification.Status.SENDING, attempts=attempt, provider_id__in=("", provider_id[:100])
    ).update(status=Notification.Status.SENT, sent_at=now, provider_id=provider_id[:100], error="", lease_until=None)
    if changed:
        _notified(notification, attempt)
    elif provider_id and Notification.objects.filter(pk=notification.pk).exclude(provider_id__in=("", provider_id[:100])).exists():
        log.info("notification=%s attempt=%s action=duplicate_call uuid=%s", notification.pk, attempt, provider_id)
        return "duplicate"
    log.info(
        "notification=%s incident=%s attempt=%s channel=%s action=sent provider_id=%s",
        notification.pk, notification.incident_id, attempt, notification.channel, provider_id,
    )
    return "sent"


def _notified(notification, attempt):
    from .services import add_event

    add_event(
        notification.incident_id,
        IncidentEvent.Kind.NOTIFIED,
        f"Notified {_who(notification)} by {CHANNEL_WORDS[notification.channel]} ({notification.contact}).",
        user=notification.user,
        data={"notification": notification.pk, "channel": notification.channel, "attempt": attempt},
    )


@transaction.atomic
def _record_failure(notification, attempt, error, *, permanent):
    from .services import add_event

    now = timezone.now()
    what = f"{CHANNEL_WORDS[notification.channel]} to {_who(notification)}"
    data = {"notification": notification.pk, "channel": notification.channel, "attempt": attempt, "error": error}
    if not permanent and attempt < MAX_ATTEMPTS:
        backoff = RETRY_BACKOFF[min(attempt - 1, len(RETRY_BACKOFF) - 1)]
        retried = Notification.objects.filter(
            pk=notification.pk,
            status=Notification.Status.SENDING,
            attempts=attempt,
            incident__status=Incident.Status.PENDING,
        ).update(status=Notification.Status.PENDING, due_at=now + backoff, error=error, lease_until=None)
        if retried:
            add_event(
                notification.incident_id,
                IncidentEvent.Kind.DELIVERY_FAILED,
                f"Delivery failed: {what} (attempt {attempt} of {MAX_ATTEMPTS}): {error} "
                f"Trying again in {int(backoff.total_seconds())} s.",
                user=notification.user,
                data=data,
            )
            log.info(
                "notification=%s attempt=%s action=retry in=%ss error=%s",
                notification.pk, attempt, int(backoff.total_seconds()), error,
            )
            return "retry"
        # The incident was accepted or resolved meanwhile: nobody needs this notification any more.
        if not Notification.objects.filter(pk=notification.pk, status=Notification.Status.SENDING, attempts=attempt).update(
            status=Notification.Status.CANCELLED, error=error, lease_until=None
        ):
            return _not_sending(notification, attempt)
        log.info("notification=%s attempt=%s action=cancel reason=incident_not_pending error=%s", notification.pk, attempt, error)
        return "cancelled"
    changed = Notification.objects.filter(
        pk=notification.pk, status=Notification.Status.SENDING, attempts=attempt
    ).update(status=Notification.Status.FAILED, error=error, lease_until=None)
    if not changed:
        return _not_sending(notification, attempt)
    why = "permanent error" if permanent else ngettext(
        "gave up after %(count)d attempt", "gave up after %(count)d attempts", attempt) % {"count": attempt}
    add_event(
        notification.incident_id,
        IncidentEvent.Kind.DELIVERY_FAILED,
        f"Delivery failed: {what} ({why}): {error}",
        user=notification.user,
        data=data,
    )
    log.info("notification=%s attempt=%s action=failed permanent=%s error=%s", notification.pk, attempt, permanent, error)
    return "failed"


def _not_sending(notification, attempt):
    # Another hand recorded this attempt first (the sweeper took it back, or its call was adopted).
    log.info("notification=%s attempt=%s action=skip reason=not_sending", notification.pk, attempt)
    return "skipped"


def _call_uuid(payload):
    """The call's uuid in a notification call's event ("call_uuid" in human/machine events), or ""."""
    uuid = payload.get("uuid") or payload.get("call_uuid")
    return uuid[:100] if isinstance(uuid, str) else ""


def record_call_error(token, payload):
    """An error event on a notification call's event URL: Vonage answered the create-call request 201 but did not
    place the call (over its rate), or found the call's NCCO invalid. A call its person has not answered is a
    failed attempt, handled as if the request itself had failed: tried again after its back-off while attempts
    remain and the incident is pending, otherwise marked failed on the timeline. The call is hung up in case it
    lives after all. An event naming another call than the notification's (an earlier attempt's) changes nothing.
    Returns the outcome ("retry", "failed", "cancelled") or None when nothing changed."""
    reason = str(payload.get("reason") or "")[:200]
    uuid = _call_uuid(payload)
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update()
            .filter(token=token, channel=Notification.Channel.VOICE)
            .first()
        )
        if (notification is None or notification.status != Notification.Status.SENT
                or notification.answered_at is not None
                or (uuid and notification.provider_id and uuid != notification.provider_id)):
            log.info("call_error action=ignore notification=%s", getattr(notification, "pk", None))
            return None
        # The attempt is taken back (sent -> sending, its call forgotten so that the next attempt may place one)
        # and ends as a failed request would.
        hang_up = uuid or notification.provider_id
        Notification.objects.filter(pk=notification.pk).update(status=Notification.Status.SENDING, provider_id="")
        notification.status, notification.provider_id = Notification.Status.SENDING, ""
        outcome = _record_failure(notification, notification.attempts,
                                  f"Vonage did not place the call: {reason or 'error event'}.", permanent=False)
        if hang_up:
            from .tasks import enqueue

            enqueue("hang_up_call", hang_up)
    log.info("notification=%s action=call_error outcome=%s", notification.pk, outcome)
    return outcome


def record_call_status(token, payload):
    """Note a notification call's status event (Vonage event webhook). Returns True when it changed something.

    busy/unanswered/failed/... mark the notification failed (once, however often the event arrives);
    answered is noted on the timeline once.
    """
    from .services import add_event

    status = str(payload.get("status") or "")
    uuid = _call_uuid(payload)
    notification = (
        Notification.objects.select_related("user")
        .filter(token=token, channel=Notification.Channel.VOICE)
        .first()
    )
    if notification is None:
        log.info("call_event action=ignore reason=unknown_token status=%s", status)
        return False
    with transaction.atomic():
        if uuid and not notification.provider_id:
            adopt_notification_call(notification, uuid)
        if uuid and notification.provider_id and uuid != notification.provider_id:
            # A second call for one notification (an attempt whose request failed although Vonage placed the call,
            # after another call was adopted): none of its events counts, a live one is hung up.
            log.info("notification=%s call_status=%s action=duplicate_call uuid=%s", notification.pk, status, uuid)
            if status in LIVE_CALL_STATUSES:
                from .tasks import enqueue

                enqueue("hang_up_call", uuid)
            return False
        if status in FAILED_CALL_STATUSES:
            detail = str(payload.get("detail") or "")
            error = f"Call {status}" + (f" ({detail})" if detail else "")
            changed = Notification.objects.filter(
                pk=notification.pk, status__in=[Notification.Status.SENDING, Notification.Status.SENT]
            ).update(status=Notification.Status.FAILED, error=error)
            if changed:
                add_event(
                    notification.incident_id,
                    IncidentEvent.Kind.DELIVERY_FAILED,
                    f"Delivery failed: voice call to {_who(notification)}: {error.lower()}.",
                    user=notification.user,
                    data={"notification": notification.pk, "status": status, "detail": detail},
                )
        elif status == "answered":
            changed = Notification.objects.filter(pk=notification.pk, answered_at__isnull=True).update(
                answered_at=timezone.now()
            )
            if changed:
                add_event(
                    notification.incident_id,
                    IncidentEvent.Kind.NOTIFIED,
                    f"{_who(notification)} answered the voice call.",
                    user=notification.user,
                    data={"notification": notification.pk, "status": status},
                )
        else:
            changed = 0
    log.info("notification=%s call_status=%s action=%s", notification.pk, status, "recorded" if changed else "ignored")
    return bool(changed)


def adopt_notification_call(notification, uuid):
    """The first call seen on a voice notification's event URL is its call, whether or not the create-call request
    answered: an attempt whose request failed (or whose worker died) but placed the call counts as sent, and no
    further attempt is placed. Returns True when NOTIFICATION took UUID."""
    if not Notification.objects.filter(pk=notification.pk, provider_id="").update(provider_id=uuid):
        notification.refresh_from_db(fields=["provider_id", "status"])
        return False
    notification.provider_id = uuid
    placed = Notification.objects.filter(
        pk=notification.pk, status__in=(Notification.Status.PENDING, Notification.Status.SENDING), attempts__gte=1
    ).update(status=Notification.Status.SENT, sent_at=timezone.now(), error="", lease_until=None, enqueued_at=None)
    log.info("notification=%s action=adopt uuid=%s sent=%s", notification.pk, uuid, bool(placed))
    if placed:
        notification.status = Notification.Status.SENT
        _notified(notification, notification.attempts)
    return True


def sweep_notifications(now):
    """Hand every notification due at NOW to a delivery task. Returns how many."""
    from .sweeper import hand_out

    return hand_out(Notification, "deliver_notification", lambda row: (row.pk, row.attempts + 1), now)
