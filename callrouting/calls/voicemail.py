"""Voicemail: the caller sent to the mailbox, the recording begun, recorded, downloaded and transcribed, and the
incident escalated once the message is in (or its time is up)."""
import datetime as dt

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import ngettext

from incidents.models import IncidentEvent, Priority
from incidents.services import create_incident
from incidents.webhooks import MalformedWebhook

from . import dispatch, flow, journal
from .incident import escalate_call_incident
from .. import recordings
from ..flows.cache import load_version
from ..models import Call, Voicemail

S = Call.State


# Extra time after the longest message before a voicemail whose webhooks never arrived is escalated anyway.
VOICEMAIL_GRACE = dt.timedelta(minutes=5)


@transaction.atomic
def start_voicemail(call, option, how, *, number):
    """Send CALL straight to voicemail (support hours target or voicemail-only mode): create its incident for
    OPTION's escalation policy (None: the alert source's), held back until the message is in.

    Outside support hours with auto raise, the incident starts LOW and is raised and escalated by the sweeper at
    the next support-hours start (Call.raise_due_at); with no support hours ahead it is created as usual.
    Returns True when this call made the change.
    """
    now = timezone.now()
    raise_at = None
    if number.auto_raise and number.support_hours_enabled and call.in_support_hours is False:
        raise_at = number.next_support_hours_start(now)
    changed = Call.objects.filter(pk=call.pk, state=S.MENU).update(
        state=S.VOICEMAIL,
        option=option,
        routed_at=now,
        voicemail_due_at=now + dt.timedelta(seconds=number.voicemail_max_length) + VOICEMAIL_GRACE,
        raise_due_at=raise_at,
    )
    if not changed:
        return False
    caller = call.caller or "an unknown number"
    about = f" ({option.digit} “{option.label}”)" if option is not None else ""
    incident = create_incident(
        alert_source=number.alert_source,
        summary=f"Voicemail from {caller}" + (f" for {option.label}" if option is not None else ""),
        details=f"{caller} called {number.name} ({number.phone_number}) and was sent to voicemail{about}: {how}.",
        priority=Priority.LOW if raise_at else None,
        escalation_policy=option.escalation_policy if option is not None else None,
        suppress_escalation=True,
    )
    Call.objects.filter(pk=call.pk).update(incident=incident)
    call.state, call.option, call.incident, call.raise_due_at = S.VOICEMAIL, option, incident, raise_at
    journal.timeline(call, f"Call from {caller}: sent to voicemail ({how}).", kind=IncidentEvent.Kind.VOICEMAIL)
    if raise_at:
        local = raise_at.astimezone(number.tzinfo)
        journal.timeline(call, f"Auto raise: low priority until support hours start ({local:%a %Y-%m-%d %H:%M} {number.timezone}), "
                         "then high priority and escalated.")
    journal.log_decision(call, "voicemail_direct", how=how.replace(" ", "_"), incident=incident.pk,
                         raise_at=raise_at.isoformat() if raise_at else None)
    return True


@transaction.atomic
def voicemail_time_up(call_id, now):
    """The voicemail window of the call passed at NOW: escalate if the voicemail webhooks never completed it
    (and no auto raise is pending). Returns True when it escalated."""
    call = Call.objects.select_for_update(of=("self",)).filter(pk=call_id, voicemail_due_at__lte=now).first()
    if call is None:
        return False
    return finish_voicemail(call, "voicemail finished")


def voicemail_for(call):
    voicemail, _ = Voicemail.objects.get_or_create(call=call, defaults={"incident_id": call.incident_id})
    return voicemail


def _seconds_between(start, end):
    try:
        start, end = parse_datetime(str(start)), parse_datetime(str(end))
        return max(0, int((end - start).total_seconds())) if start and end else None
    except (TypeError, ValueError):
        return None


@transaction.atomic
def begin_voicemail_recording(call):
    """The caller got past the mailbox greeting: the recording begins (the notify action before the record
    action, or the fallback after it failed). Once per call, only in voicemail. Returns True when this marked it."""
    if not Call.objects.filter(pk=call.pk, state=S.VOICEMAIL, recording_started_at__isnull=True).update(
        recording_started_at=timezone.now()
    ):
        return False
    journal.log_decision(call, "recording_started")
    journal.timeline(call, "The caller heard the mailbox greeting; recording their message.", kind=IncidentEvent.Kind.VOICEMAIL)
    return True


@transaction.atomic
def change_call_outcome(call, change):
    """Apply flow.ChangeOutcome CHANGE to the ended CALL (once): the new outcome, why, and an escalation now."""
    values = {"outcome": change.new}
    if change.new == Call.Outcome.NO_MESSAGE:
        values.update(recording_due_at=None, voicemail_due_at=None)  # nothing more to wait for
    if not Call.objects.filter(pk=call.pk, state=S.ENDED, outcome=change.old).update(**values):
        return False
    call.outcome = change.new
    journal.log_decision(call, "outcome", outcome=change.new, was=change.old)
    journal.timeline(call, change.why[:1].upper() + change.why[1:] + ".", kind=IncidentEvent.Kind.VOICEMAIL)
    if change.escalate:
        escalate_call_incident(call, change.escalate, unless_raise_pending=True)
    return True


@transaction.atomic
def record_voicemail(call, payload):
    """The record webhook: remember Vonage's recording and fetch it (once). A recording that arrives after the
    caller hung up may change how the call ended (flow.on_recording)."""
    url = payload.get("recording_url")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise MalformedWebhook("record webhook without an https recording_url")
    # Under the call's row lock, like the caller's hang-up event, so the two never decide on stale state.
    call = Call.objects.select_for_update(of=("self",)).select_related("routing_number").get(pk=call.pk)
    voicemail = voicemail_for(call)
    duration = _seconds_between(payload.get("start_time"), payload.get("end_time"))
    if not Voicemail.objects.filter(pk=voicemail.pk, recording_url="").update(
        recording_url=url[:500], recording_uuid=str(payload.get("recording_uuid") or "")[:64], duration=duration,
        # The sweeper hands the download out again if this task is lost (callrouting.recordings).
        download_due_at=timezone.now() + recordings.DOWNLOAD_LEASE,
    ):
        return False  # a repeated webhook
    journal.log_decision(call, "voicemail_recorded", seconds=duration)
    journal.timeline(
                     call,
                     f"Voicemail recorded ({duration} s)." if duration is not None else "Voicemail recorded.",
                     kind=IncidentEvent.Kind.VOICEMAIL,
                     voicemail=voicemail.pk,
                     )
    for effect in flow.on_recording(call, duration).effects:
        change_call_outcome(call, effect)
    dispatch.enqueue("download_voicemail", voicemail.pk)  # kept whatever the outcome: nothing the caller said is lost
    return True


@transaction.atomic
def store_voicemail_recording(voicemail_id, content):
    """Keep the downloaded recording (once), tell the alert actions, and escalate when the voicemail is complete.
    A failed download goes to callrouting.recordings.download_failed instead."""
    voicemail = Voicemail.objects.select_for_update(of=("self",)).select_related("call").get(pk=voicemail_id)
    if voicemail.is_stored or voicemail.recording_lost_at:
        return False
    voicemail.recording.save("voicemail.mp3", ContentFile(content), save=False)
    voicemail.recording_saved_at, voicemail.download_due_at, voicemail.recording_error = timezone.now(), None, ""
    voicemail.save(update_fields=["recording", "recording_error", "recording_saved_at", "download_due_at"])
    failures = voicemail.download_attempts
    retried = ngettext(" after %(count)d failed attempt", " after %(count)d failed attempts", failures) % {
        "count": failures} if failures else ""
    journal.timeline(voicemail.call, f"Voicemail recording stored ({len(content) // 1024} KB){retried}.",
                     kind=IncidentEvent.Kind.VOICEMAIL, voicemail=voicemail.pk)
    recordings.announce(voicemail.call, voicemail, "recorded")
    escalate_if_complete(voicemail)
    return True


@transaction.atomic
def attach_transcript(call, text, *, source=""):
    """Attach the voicemail's transcript (once) and escalate when the voicemail is complete."""
    voicemail = voicemail_for(call)
    text = (text or "").strip()
    if not Voicemail.objects.filter(pk=voicemail.pk, transcribed_at__isnull=True).update(
        transcript=text, transcribed_at=timezone.now()
    ):
        return False
    voicemail.refresh_from_db()
    journal.log_decision(call, "transcript", chars=len(text), source=source or "inline")
    journal.timeline(
                     call,
                     f"Voicemail transcript: {text}" if text else "The voicemail could not be transcribed.",
                     kind=IncidentEvent.Kind.VOICEMAIL,
                     voicemail=voicemail.pk,
                     )
    if text and voicemail.is_settled:  # announced already without it; before that, the announcement carries it
        recordings.announce(call, voicemail, "transcribed")
    escalate_if_complete(voicemail)
    return True


def escalate_if_complete(voicemail):
    call = voicemail.call
    if call.outcome == Call.Outcome.NO_MESSAGE:
        return  # escalated when the call ended (or at the auto raise): the recording held no message
    if voicemail.is_settled and (voicemail.transcribed_at or not transcript_expected(call)):
        finish_voicemail(call, "the caller left a voicemail")


def transcript_expected(call):
    """Whether a transcript of CALL's message is to come: its voicemail node's setting on a flow call (the version
    the call ran, from the per-process cache), else the number's."""
    if call.flow_version_id and call.node:
        node = load_version(call.flow_version_id).nodes.get(call.node)
        if node is not None and node.get("kind") == "voicemail":
            return bool(node.get("transcription"))
    return call.routing_number.voicemail_transcription


def finish_voicemail(call, reason):
    """The voicemail is complete (or its time is up): escalate, unless an auto raise will do it later.

    Returns True when the incident was handed to escalation now.
    """
    Call.objects.filter(pk=call.pk).update(voicemail_due_at=None)
    if escalate_call_incident(call, reason, unless_raise_pending=True):
        return True
    if Call.objects.filter(pk=call.pk, escalated_at__isnull=True, raise_due_at__isnull=False).exists():
        journal.timeline(call, "The voicemail is in; the incident waits for support hours (auto raise).",
                         kind=IncidentEvent.Kind.VOICEMAIL)
    return False
