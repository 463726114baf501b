"""Voicemail recordings: kept however long Vonage is unreachable, announced to alert actions, linked from outside
with signed links that expire.

- Downloads: the record webhook sets Voicemail.download_due_at and enqueues callrouting.tasks.download_voicemail.
  A failed download is retried after RETRY_DELAYS (minutes, then hours, then daily) until RECORDING_GIVE_UP_AFTER
  (day 25 of Vonage's 30-day retention); then the recording is lost: the timeline says so and the alert source's
  actions are told. The minute sweeper (callrouting.sweeper) hands out every due download, so a lost task costs
  at most DOWNLOAD_LEASE. The team is not kept waiting meanwhile: after the first failed download the voicemail
  counts as in (Voicemail.is_settled) and the incident escalates.
- Missing webhooks: a call that ends in voicemail (the recording in, or started: Call.recording_started_at) gets
  Call.recording_due_at; Vonage sends the record webhook when the recording is finished, for a caller who hangs
  up that is after the call ended. If it has not come by then, the incident is flagged and the actions are told.
- Announcements: the "voicemail" trigger of alert actions fires when the recording is stored (or its first
  download failed), again when the transcript arrives later, and when the recording is lost or never came.
- Links: signed_link() names the voicemail's token, signed with SECRET_KEY and a timestamp; it expires after
  VOICEMAIL_LINK_MAX_AGE. In the product the recording plays through the account-checked call pages instead.
"""
import datetime as dt
import logging

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from incidents import actions
from incidents.models import AlertAction, IncidentEvent
from incidents.sweeper import locked

from .calls import dispatch, journal, voicemail as mailbox
from .models import Call, Voicemail

log = logging.getLogger(__name__)

# Vonage deletes recordings 30 days after the call; giving up at day 25 leaves room to act by hand.
RECORDING_GIVE_UP_AFTER = dt.timedelta(days=25)
# Wait before retry 1, 2, ...; the last delay repeats until RECORDING_GIVE_UP_AFTER.
RETRY_DELAYS = [
    dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=15), dt.timedelta(hours=1),
    dt.timedelta(hours=3), dt.timedelta(hours=6), dt.timedelta(hours=12), dt.timedelta(days=1),
]
# A handed-out download whose task never reported back is handed out again after this.
DOWNLOAD_LEASE = dt.timedelta(minutes=10)
# After the call ended in voicemail: how long Vonage's record webhook may take before the voicemail is flagged
# (it usually comes seconds after the caller hung up).
RECORDING_WEBHOOK_GRACE = dt.timedelta(minutes=2)
BATCH = 100
LINK_SALT = "callrouting.voicemail-link"


# --- Signed links -------------------------------------------------------------------------------------------------


def _signer():
    # "." keeps the signed value readable as a path segment ("<token>.<timestamp>.<signature>.mp3").
    return signing.TimestampSigner(salt=LINK_SALT, sep=".")


def signed_link(voicemail):
    """(absolute URL, expiry time) of a link to VOICEMAIL's stored recording, or (None, None) until it is stored."""
    if not voicemail.is_stored:
        return None, None
    path = reverse("callrouting-voicemail", kwargs={"signed": _signer().sign(voicemail.token)})
    return settings.PUBLIC_BASE_URL + path, timezone.now() + settings.VOICEMAIL_LINK_MAX_AGE


def voicemail_for_link(signed):
    """The Voicemail a signed link names: (voicemail, None), or (None, "expired" | "invalid")."""
    try:
        token = _signer().unsign(signed, max_age=settings.VOICEMAIL_LINK_MAX_AGE)
    except signing.SignatureExpired:
        return None, "expired"
    except signing.BadSignature:
        return None, "invalid"
    voicemail = Voicemail.objects.filter(token=token).first()
    return (voicemail, None) if voicemail is not None else (None, "invalid")


# --- Announcements ------------------------------------------------------------------------------------------------


def voicemail_details(voicemail, status):
    """The "voicemail" object of an alert-action payload: STATUS ("recorded", "downloading", "transcribed", "lost",
    "missing"), the caller, the length, the signed link (while stored) and the transcript (once it is in)."""
    url, expires_at = signed_link(voicemail) if voicemail is not None else (None, None)
    return {
        "status": status,
        "duration_seconds": voicemail.duration if voicemail is not None else None,
        "recording_url": url,
        "recording_url_expires_at": expires_at.isoformat() if expires_at else None,
        "transcript": (voicemail.transcript or None) if voicemail is not None else None,
    }


def announce(call, voicemail, status):
    """Fire the "voicemail" trigger of the alert actions of CALL's incident (inside the caller's transaction).
    A recording that held no message (the caller hung up right after the beep) is kept but not announced."""
    if call.incident_id and call.outcome != Call.Outcome.NO_MESSAGE:
        actions.fire(call.incident_id, AlertAction.Trigger.VOICEMAIL,
                     details={"voicemail": {"caller": call.caller or None, **voicemail_details(voicemail, status)}})


# --- Downloads ----------------------------------------------------------------------------------------------------


def next_attempt_at(voicemail, failures, now):
    """When to try the download again after FAILURES failed attempts, or None: give up (past day 25)."""
    delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1]
    at = now + delay
    return at if at <= voicemail.created_at + RECORDING_GIVE_UP_AFTER else None


@transaction.atomic
def download_failed(voicemail_id, error, now=None):
    """A download of the voicemail's recording failed with ERROR: schedule the next attempt, or give the recording
    up. The first failure lets the incident escalate without the recording. Returns "retry", "lost" or "skipped"."""
    now = now or timezone.now()
    voicemail = Voicemail.objects.select_for_update(of=("self",)).select_related("call__routing_number").get(pk=voicemail_id)
    if voicemail.is_stored or voicemail.recording_lost_at:
        return "skipped"
    call, failures = voicemail.call, voicemail.download_attempts + 1
    retry_at = next_attempt_at(voicemail, failures, now)
    voicemail.download_attempts, voicemail.recording_error, voicemail.download_due_at = failures, error[:300], retry_at
    if retry_at is None:
        voicemail.recording_lost_at = now
        voicemail.save(update_fields=["download_attempts", "recording_error", "download_due_at", "recording_lost_at"])
        journal.log_decision(call, "voicemail_lost", attempts=failures)
        attempts = ngettext("%(count)d attempt", "%(count)d attempts", failures) % {"count": failures}
        journal.timeline(
                         call,
                         f"The voicemail recording is lost: it could not be downloaded from Vonage in {attempts} over "
                         f"{RECORDING_GIVE_UP_AFTER.days} days (last error: {error}). Vonage deletes it 30 days after the call.",
                         kind=IncidentEvent.Kind.VOICEMAIL, voicemail=voicemail.pk,
                         )
        announce(call, voicemail, "lost")
        mailbox.escalate_if_complete(voicemail)
        return "lost"
    voicemail.save(update_fields=["download_attempts", "recording_error", "download_due_at"])
    journal.log_decision(call, "voicemail_download_retry", attempts=failures, next=retry_at.isoformat())
    if failures == 1:
        give_up = voicemail.created_at + RECORDING_GIVE_UP_AFTER
        journal.timeline(
                         call,
                         f"The voicemail recording could not be downloaded yet ({error}). It is tried again with growing pauses "
                         f"until {give_up:%Y-%m-%d}; Vonage keeps it for 30 days.",
                         kind=IncidentEvent.Kind.VOICEMAIL, voicemail=voicemail.pk,
                         )
        announce(call, voicemail, "downloading")
        mailbox.escalate_if_complete(voicemail)
    return "retry"


def sweep_downloads(now):
    """Hand every voicemail download due at NOW to a task (leased for DOWNLOAD_LEASE). Returns how many."""
    with transaction.atomic():
        due = locked(Voicemail.objects.filter(download_due_at__lte=now).order_by("download_due_at"))
        ids = list(due.values_list("pk", flat=True)[:BATCH])
        if ids:
            Voicemail.objects.filter(pk__in=ids).update(download_due_at=now + DOWNLOAD_LEASE)
        for voicemail_id in ids:
            dispatch.enqueue("download_voicemail", voicemail_id)
    return len(ids)


# --- Recording webhooks that never came -------------------------------------------------------------------------


@transaction.atomic
def flag_missing_recording(call_id, now):
    """The call ended in voicemail RECORDING_WEBHOOK_GRACE ago: flag it when Vonage's record webhook never came.
    Returns True when it flagged the voicemail."""
    call = Call.objects.select_for_update(of=("self",)).filter(pk=call_id, recording_due_at__lte=now).first()
    if call is None:
        return False
    Call.objects.filter(pk=call.pk).update(recording_due_at=None)
    voicemail = Voicemail.objects.filter(call=call).first()
    if voicemail is not None and voicemail.recording_url:
        return False
    journal.log_decision(call, "voicemail_missing")
    journal.timeline(
                     call,
                     "Vonage sent no recording for this voicemail: the message the caller may have left is missing. "
                     "Call the caller back.",
                     kind=IncidentEvent.Kind.VOICEMAIL,
                     )
    announce(call, voicemail, "missing")
    mailbox.finish_voicemail(call, "the voicemail recording is missing")
    return True
