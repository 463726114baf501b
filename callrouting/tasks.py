"""django-q2 tasks of the call flow: the only code that talks to Vonage for it.

Tasks take ids, re-read the rows (callrouting.calls decides under the call's row lock) and return early when
the world has moved on. Retries are bounded: a request that places a call is tried at most 1 + MAX_RETRIES
times, then the leg counts as failed and the next agent is called. Every attempt first waits for its slot of
Vonage's create-call rate (incidents.pacing).
"""
import logging
import time

from incidents.pacing import wait_for_call_slot, wait_for_modify_slot
from incidents.telephony import TelephonyError, get_telephony

from . import recordings
from .calls import flow
from .calls.caller import caller_transferred, claim_caller_transfer
from .calls.incident import escalate_call_incident
from .calls.legs import count_dial_attempt, dial_request, leg_dial_failed, leg_dialled
from .calls.routing import claim_next_legs, dial_each_in_its_own_task, prepare_agent_legs
from .calls.transcripts import transcript_from_document
from .calls.voicemail import attach_transcript, finish_voicemail, store_voicemail_recording
from .models import Call, Voicemail

log = logging.getLogger(__name__)

MAX_RETRIES = 2
BACKOFF_SECONDS = (0.5, 1.5)
sleep = time.sleep  # replaced in tests


def start_dialling(call_id):
    """A call was routed: choose its agents and call the first (or all of them)."""
    prepare_agent_legs(call_id)
    dial_next(call_id)


def dial_next(call_id):
    """Call whoever is next for CALL_ID (nothing while a leg is still ringing or once the call moved on).

    One agent is dialled by this task; a simultaneous fan-out dials each leg in its own task, so that a slow
    create-call for one agent cannot push the others past the task timeout."""
    leg_ids = claim_next_legs(call_id)
    if len(leg_ids) == 1:
        place_agent_call(leg_ids[0])
    else:
        dial_each_in_its_own_task(leg_ids)


def place_agent_call(leg_id):
    """Place the outbound call of a DIALLING leg, retrying temporary Vonage errors a bounded number of times.

    A request that failed may still have placed the call: when its first event reached the leg's event URL
    meanwhile, the leg adopted that call (callrouting.calls.legs.adopt_leg_call) and no retry is placed."""
    telephony = get_telephony()
    for attempt in range(MAX_RETRIES + 1):
        request = dial_request(leg_id)
        if request is None:
            log.info("leg=%s action=dial_skipped reason=moved_on", leg_id)
            return
        waited = wait_for_call_slot()  # Vonage's create-call rate, shared with every process and notification call
        if waited:
            log.info("leg=%s action=dial_paced wait=%.2f", leg_id, waited)
            request = dial_request(leg_id)  # the caller may have hung up meanwhile
            if request is None:
                log.info("leg=%s action=dial_skipped reason=moved_on_while_paced", leg_id)
                return
        count_dial_attempt(leg_id)
        try:
            uuid = telephony.create_call(**request)
        except TelephonyError as exc:
            if exc.permanent or attempt == MAX_RETRIES:
                log.warning("leg=%s action=dial_failed attempts=%d error=%s", leg_id, attempt + 1, exc.message)
                leg_dial_failed(leg_id, exc.message)
                return
            log.info("leg=%s action=dial_retry attempt=%d status=%s", leg_id, attempt + 1, exc.status)
            sleep(BACKOFF_SECONDS[attempt])
            continue
        if not leg_dialled(leg_id, uuid, telephony.api_host):
            hang_up([uuid], telephony.api_host)  # the leg was given up while the request was under way
        return


def hang_up(uuids, host=""):
    """Hang up the given call legs on HOST (the host that created them or holds them; "" the configured API
    host). An already ended leg is fine. Each request waits for its slot of Vonage's rate of modify requests:
    the other legs of a large simultaneous fan-out are hung up together when one agent accepts."""
    telephony = get_telephony()
    for uuid in uuids:
        for attempt in range(2):
            wait_for_modify_slot()
            try:
                telephony.hangup(uuid, host=host or None)
                break
            except TelephonyError as exc:
                if exc.permanent or attempt == 1:
                    log.info("uuid=%s action=hang_up_failed error=%s", uuid, exc.message)
                    break
                sleep(BACKOFF_SECONDS[0])


def transfer_caller(call_id, destination, due=None):
    """Move the caller's leg to the voicemail recording or to 'nobody available' (then the call ends).

    DUE is the call's transfer_due_at this task was issued for: a late or repeated task, or one the sweeper
    replaced, finds it changed and does nothing (callrouting.calls.caller.claim_caller_transfer)."""
    call = claim_caller_transfer(call_id, destination, due)
    if call is None:
        log.info("call_id=%s action=transfer_skipped destination=%s", call_id, destination)
        return
    number = call.routing_number
    if destination == "flow":
        ncco = call.transfer_ncco
    elif destination == "voicemail":
        ncco = flow.voicemail_ncco(number, call)
    else:
        ncco = flow.nobody_available_ncco(number.language)
    telephony = get_telephony()
    host = telephony.region_host(call.region_url)  # the call is modified where it lives
    for attempt in range(MAX_RETRIES + 1):
        wait_for_modify_slot()
        try:
            telephony.transfer_ncco(call.vonage_uuid, ncco, host=host or None)
            log.info("call=%s action=transfer destination=%s", call.vonage_uuid, destination)
            caller_transferred(call.pk)
            return
        except TelephonyError as exc:
            if exc.permanent or attempt == MAX_RETRIES:
                log.warning("call=%s action=transfer_failed destination=%s error=%s", call.vonage_uuid, destination, exc.message)
                break
            sleep(BACKOFF_SECONDS[attempt])
    # The caller cannot be moved on: end the call rather than leave them on hold, and page people now.
    escalate_call_incident(call, f"the caller could not be sent to {_where(call, destination)}")
    hang_up([call.vonage_uuid], host)
    caller_transferred(call.pk)


def _where(call, destination):
    """Where a transfer to DESTINATION takes the caller of CALL, in words ("voicemail", "nobody available")."""
    if destination != "flow":
        return destination.replace("_", " ")
    if call.state == Call.State.VOICEMAIL:
        return "voicemail"
    return "nobody available" if call.outcome == Call.Outcome.NO_AGENT else "the next step of the call flow"


def _download(url):
    telephony = get_telephony()
    for attempt in range(MAX_RETRIES + 1):
        try:
            return telephony.download_recording(url)
        except TelephonyError as exc:
            if exc.permanent or attempt == MAX_RETRIES:
                raise
            sleep(BACKOFF_SECONDS[attempt])


def download_voicemail(voicemail_id):
    """Fetch a voicemail's recording from Vonage and keep it; a failure is retried later (callrouting.recordings)."""
    voicemail = Voicemail.objects.filter(pk=voicemail_id).first()
    if voicemail is None or voicemail.is_stored or voicemail.recording_lost_at or not voicemail.recording_url:
        return
    try:
        content = _download(voicemail.recording_url)
    except TelephonyError as exc:
        log.warning("voicemail=%s action=download_failed error=%s", voicemail_id, exc.message)
        recordings.download_failed(voicemail_id, exc.message)
        return
    store_voicemail_recording(voicemail_id, content)


def fetch_transcript(call_id, url):
    """Fetch a transcription document Vonage pointed to and attach its text."""
    call = Call.objects.select_related("routing_number").filter(pk=call_id).first()
    if call is None:
        return
    try:
        text = transcript_from_document(_download(url))
    except TelephonyError as exc:
        log.warning("call=%s action=transcript_fetch_failed error=%s", call.vonage_uuid, exc.message)
        text = ""
    attach_transcript(call, text, source="url")


SWEEP_FUNC = "callrouting.tasks.sweep"


def sweep(now=None):
    """The periodic task (every minute): calls spooled during a database outage, and the stuck routed calls,
    voicemail deadlines and auto raises that are due.

    Returns the counts of what it changed; safe to run concurrently (see callrouting.sweeper).
    """
    from .sweeper import sweep as run_sweep

    return run_sweep(now)


def voicemail_deadline(call_id):
    """Kept for one-off schedules created before the sweeper took this over (Call.voicemail_due_at):
    escalate the incident if the voicemail webhooks never completed it."""
    call = Call.objects.filter(pk=call_id).first()
    if call is not None:
        finish_voicemail(call, "voicemail finished")
