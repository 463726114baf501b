"""The verbs of the live call flow, and the webhook entry points that call them.

Every state change happens here, inside a transaction, as a conditional update (or under the call's row lock)
so that a duplicate or late webhook cannot apply twice. Work that talks to Vonage is handed to the tasks in
callrouting.tasks with transaction.on_commit; nothing here calls Vonage.

Lock order: the Call row first, then its legs.
"""
import datetime as dt
import json
import logging
import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_q.tasks import async_task
from django.utils.translation import ngettext

from escalation.models import User, normalize_phone_number
from escalation.oncall import prefetch_policy
from incidents.models import IncidentEvent, Priority
from incidents.services import (
    accept_incident,
    add_event,
    create_incident,
    escalate_incident,
    resolve_incident,
    set_priority,
)
from incidents.tasks import broker
from incidents.telephony import get_telephony
from incidents.voice import notification_fallback_ncco
from incidents.webhooks import MalformedWebhook

from .. import phrases, recordings
from . import flow
from ..models import AgentLeg, Call, CallingStyle, CallTarget, RoutingNumber, Voicemail

log = logging.getLogger(__name__)

S = Call.State
L = AgentLeg.Status
CALLER_GONE_STATUSES = {"completed", "disconnected", "failed", "rejected", "cancelled", "timeout", "busy", "unanswered"}
# Extra time after the longest message before a voicemail whose webhooks never arrived is escalated anyway.
VOICEMAIL_GRACE = dt.timedelta(minutes=5)
# While agents are called: how long after the ringing timeout without any agent-leg event the sweeper moves on
# (covers create-call retries, the whisper and the key press; a lost task or webhook costs at most this).
ROUTING_GRACE = dt.timedelta(seconds=60)
# Our own work between two steps of a call while no phone rings (choosing and dialling the next agent, moving
# the caller to voicemail or "nobody available"): how long the task carrying the step has before the sweeper
# issues it again (a lost task, a killed worker). Longer than a transfer with all its retries takes.
TASK_GRACE = dt.timedelta(seconds=30)
TOKEN_IN_URL = re.compile(r"/vonage/(call|leg)/([A-Za-z0-9_-]{16,64})/")
NOTIFICATION_INPUT_URL = re.compile(r"/incidents/voice/([A-Za-z0-9_-]{16,64})/input")
FLATTENED_ORIGINAL_REQUEST = re.compile(r"original_request(?:\.(\w+)|\[(\w+)\])")


def _enqueue(func, *args):
    """Run the task FUNC(*ARGS) once the current transaction has committed."""
    transaction.on_commit(lambda: async_task(f"callrouting.tasks.{func}", *args, group="callrouting", broker=broker()))


def _log(call, action, **fields):
    extra = "".join(f" {key}={value}" for key, value in fields.items())
    log.info("call=%s action=%s%s", call.vonage_uuid, action, extra)


def _timeline(call, message, *, kind=IncidentEvent.Kind.CALL, user=None, **data):
    if call.incident_id:
        add_event(call.incident_id, kind, message, user=user, data={"call": call.pk, **data})


def _agent_name(leg):
    return str(leg.user) if leg.user_id else leg.phone_number


# --- Configuration questions ---------------------------------------------------------------------------------


# The language of each routing number this process has looked up (digits -> language), so that with the
# database down a caller still hears the apology in the number's language. Bounded; best effort per process.
_LANGUAGES = {}
_LANGUAGES_MAX = 1000


def find_number(to):
    """The RoutingNumber for the dialled number TO (Vonage sends digits without '+'), or None."""
    raw = str(to or "").strip()
    if not raw:
        return None
    digits = raw[1:] if raw.startswith("+") else raw
    if digits.isascii() and digits.isdigit() and 8 <= len(digits) <= 15:
        e164 = "+" + digits  # what Vonage sends: E.164 digits, as stored
    else:
        try:
            e164 = normalize_phone_number("+" + digits)
        except ValidationError:
            return None
    number = (
        RoutingNumber.objects.select_related("alert_source").prefetch_related("audio_files").filter(phone_number=e164).first()
    )
    if number is not None:
        if len(_LANGUAGES) >= _LANGUAGES_MAX:
            _LANGUAGES.clear()
        _LANGUAGES[e164[1:]] = number.language
    return number


def known_language(*numbers):
    """The language of the first of NUMBERS (as Vonage sends them) that is a routing number this process has
    seen, without asking the database; the default language when none is known."""
    for value in numbers:
        digits = str(value or "").strip().lstrip("+")
        if digits in _LANGUAGES:
            return _LANGUAGES[digits]
    return phrases.DEFAULT_LANGUAGE


def caller_number(value):
    """The caller as stored and shown: E.164 ("+4915550000100") when Vonage's digits (it sends no "+") form a
    valid number, else the raw value ("Unknown", a SIP URI, a withheld or malformed number), cut to fit."""
    raw = str(value or "").strip()
    digits = raw[1:] if raw.startswith("+") else raw
    if digits.isascii() and digits.isdigit():
        try:
            return normalize_phone_number("+" + digits)
        except ValidationError:
            pass
    return raw[: Call._meta.get_field("caller").max_length]


def routing_due(number, now=None):
    """When the sweeper should look at a routed call of NUMBER that no agent-leg event moved on."""
    return (now or timezone.now()) + dt.timedelta(seconds=number.ringing_timeout) + ROUTING_GRACE


def _bump_routing_due(call, number):
    Call.objects.filter(pk=call.pk, state=S.ROUTING).update(routing_due_at=routing_due(number))


def _options(number):
    return list(number.options.select_related("escalation_policy"))


# --- Caller ---------------------------------------------------------------------------------------------------


class _AlreadyMoved(Exception):
    """Rolls back what a verb created once its conditional update finds the call has moved on."""


def route_call(call, option, how, *, number):
    """Route CALL to OPTION: create its incident (escalation held back), start calling agents.

    Returns True when this call made the change (False: it was routed already).
    """
    try:
        return _route_call(call, option, how, number=number)
    except _AlreadyMoved:
        return False


@transaction.atomic
def _route_call(call, option, how, *, number):
    now = timezone.now()
    simultaneous = {CallingStyle.SIMULTANEOUS: True, CallingStyle.SEQUENTIAL: False}.get(
        call.calling_style, option.simultaneous
    )
    caller = call.caller or "an unknown number"
    mode = "all at once" if simultaneous else "one after another"
    # The incident first, so that one conditional update both routes the call and links it; a repeated input
    # (the call moved on meanwhile) rolls the incident back.
    incident = create_incident(
        alert_source=number.alert_source,
        summary=f"Call from {caller} for {option.label}",
        details=f"{caller} called {number.name} ({number.phone_number}) and chose {option.digit} “{option.label}” ({how}).",
        escalation_policy=option.escalation_policy,
        suppress_escalation=True,
        timeline=[(IncidentEvent.Kind.CALL,
                   f"Call from {caller}: chose {option.digit} “{option.label}” ({how}). Calling agents {mode}.",
                   {"call": call.pk})],
    )
    changed = Call.objects.filter(pk=call.pk, state__in=flow.CALL_FROM[S.ROUTING]).update(
        state=S.ROUTING, option=option, simultaneous=simultaneous, routed_at=now,
        routing_due_at=now + TASK_GRACE, incident=incident,
    )
    if not changed:
        raise _AlreadyMoved()
    call.state, call.option, call.incident, call.simultaneous = S.ROUTING, option, incident, simultaneous
    _log(call, "route", option=option.digit, how=how.replace(" ", "_"), incident=incident.pk)
    _enqueue("start_dialling", call.pk)
    return True


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
    _timeline(call, f"Call from {caller}: sent to voicemail ({how}).", kind=IncidentEvent.Kind.VOICEMAIL)
    if raise_at:
        local = raise_at.astimezone(number.tzinfo)
        _timeline(call, f"Auto raise: low priority until support hours start ({local:%a %Y-%m-%d %H:%M} {number.timezone}), "
                        "then high priority and escalated.")
    _log(call, "voicemail_direct", how=how.replace(" ", "_"), incident=incident.pk,
         raise_at=raise_at.isoformat() if raise_at else None)
    return True


@transaction.atomic
def end_call(call, outcome, *, cancel_legs=False, escalate="", resolve=False):
    """End CALL with OUTCOME (once). Optionally cancel ringing legs, re-escalate or resolve its incident."""
    now = timezone.now()
    changed = Call.objects.filter(pk=call.pk, state__in=flow.CALL_FROM[S.ENDED]).update(
        state=S.ENDED, outcome=outcome, ended_at=now, routing_due_at=None, transfer_due_at=None
    )
    if not changed:
        return False
    previous, call.state, call.outcome = call.state, S.ENDED, outcome
    if outcome == Call.Outcome.VOICEMAIL:
        # Vonage's record webhook usually follows the hang-up within seconds; the sweeper flags it if it never comes.
        Call.objects.filter(pk=call.pk).update(recording_due_at=now + recordings.RECORDING_WEBHOOK_GRACE)
    # The connected agent's leg ends with the call (its own "completed" event finds it already final).
    AgentLeg.objects.filter(call_id=call.pk, status=L.ACCEPTED, ended_at__isnull=True).update(ended_at=now)
    _log(call, "end", outcome=outcome or "none", was=previous)
    _timeline(call, f"Call ended: {Call.Outcome(outcome).label.lower()}.")
    if cancel_legs:
        cancel_agent_legs(call, reason="the call ended")
    if escalate and previous == S.VOICEMAIL:
        # Nothing more to wait for in the mailbox; a pending auto raise still escalates at support hours.
        Call.objects.filter(pk=call.pk).update(voicemail_due_at=None)
        escalate_call_incident(call, escalate, unless_raise_pending=True)
    elif escalate:
        escalate_call_incident(call, escalate)
    if resolve and call.incident_id:
        if call.routing_number.keep_incident_open:
            _timeline(call, "The answered call ended; the incident stays open.")
        else:
            agent = call.connected_leg.user if call.connected_leg_id and call.connected_leg else None
            resolve_incident(call.incident_id, agent, via="phone", reason="The answered call ended.")
    return True


def escalate_call_incident(call, reason, *, unless_raise_pending=False):
    """Hand the call's incident back to its escalation policy, once per call. True when this did it.

    UNLESS_RAISE_PENDING: do nothing while an auto raise is pending (the sweeper escalates at the raise).
    """
    if not call.incident_id:
        return False
    with transaction.atomic():
        calls = Call.objects.filter(pk=call.pk, escalated_at__isnull=True)
        if unless_raise_pending:
            calls = calls.filter(raise_due_at__isnull=True)
        changed = calls.update(escalated_at=timezone.now())
        if not changed:
            return False
        _log(call, "escalate", incident=call.incident_id)
        escalate_incident(call.incident_id, reason=reason)
    return True


@transaction.atomic
def send_to_nobody_left(call_id):
    """Every agent was tried: voicemail when the number has it, else 'nobody available' and the end."""
    call = Call.objects.select_for_update(of=("self",)).select_related("routing_number").get(pk=call_id)
    number = call.routing_number
    now = timezone.now()
    # The transfer task must have moved the caller by transfer_due_at, or the sweeper sends them again.
    transfer_due = now + TASK_GRACE
    if number.voicemail_enabled:
        # If no recording or transcription ever arrives, the sweeper escalates at voicemail_due_at anyway.
        deadline = now + dt.timedelta(seconds=number.voicemail_max_length) + VOICEMAIL_GRACE
        if not Call.objects.filter(pk=call.pk, state=S.ROUTING).update(
            state=S.VOICEMAIL, voicemail_due_at=deadline, routing_due_at=None, transfer_due_at=transfer_due
        ):
            return False
        call.state = S.VOICEMAIL
        _log(call, "voicemail")
        _timeline(call, "Nobody took the call: the caller is sent to voicemail.", kind=IncidentEvent.Kind.VOICEMAIL)
        _enqueue("transfer_caller", call.pk, "voicemail", transfer_due)
        return True
    if not end_call(call, Call.Outcome.NO_AGENT, escalate="nobody took the call"):
        return False
    Call.objects.filter(pk=call.pk).update(transfer_due_at=transfer_due)
    _enqueue("transfer_caller", call.pk, "nobody_available", transfer_due)
    return True


# Where a transfer takes the caller: the call's state (and outcome) it expects.
TRANSFER_STATES = {
    "voicemail": {"state": S.VOICEMAIL},
    "nobody_available": {"state": S.ENDED, "outcome": Call.Outcome.NO_AGENT},
}


def claim_caller_transfer(call_id, destination, due=None):
    """Take on the transfer of the caller of CALL_ID to DESTINATION that was due at DUE (None: whatever is due).

    Returns the call (with its routing number) when this task is the one to transfer the caller; None when the
    transfer was done, taken on by another task, reissued by the sweeper, or the caller is gone.
    """
    calls = Call.objects.filter(pk=call_id, **TRANSFER_STATES[destination])
    calls = calls.filter(transfer_due_at=due) if due is not None else calls.filter(transfer_due_at__isnull=False)
    # While the transfer is under way the due time is this task's lease: the sweeper sends the caller again
    # only if the task dies.
    if not calls.update(transfer_due_at=timezone.now() + TASK_GRACE):
        return None
    return Call.objects.select_related("routing_number").get(pk=call_id)


def caller_transferred(call_id):
    """The caller's transfer is over (done, or given up and the caller hung up): nothing more is due."""
    Call.objects.filter(pk=call_id, transfer_due_at__isnull=False).update(transfer_due_at=None)


# --- Agents ---------------------------------------------------------------------------------------------------


def _policy_users(policy, at):
    """The users to dial for POLICY at AT (escalation timeouts skipped), in a fixed number of queries."""
    return list(prefetch_policy(policy.pk, at).users_at(at))


@transaction.atomic
def prepare_agent_legs(call_id):
    """Freeze the agents to call for a routed call: one QUEUED leg per user of the incident's policy, in order.

    Users without a phone number are skipped (and said so on the timeline). Returns the number of legs.
    """
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("incident__escalation_policy", "option__escalation_policy")
        .filter(pk=call_id)
        .first()
    )
    if call is None or call.state != S.ROUTING:
        return 0
    existing = call.legs.count()
    if existing:
        return existing  # a repeated task: the agents are chosen already
    policy = (call.incident.escalation_policy if call.incident_id else None) or (
        call.option.escalation_policy if call.option_id else None
    )
    users = _policy_users(policy, timezone.now()) if policy else []
    # Phone numbers of every agent in one query, whatever the policy helper loaded; a user deactivated since the
    # policy was read is not dialled.
    by_pk = User.objects.filter(is_active=True).prefetch_related("contact_methods").in_bulk([user.pk for user in users])
    users = [by_pk[user.pk] for user in users if user.pk in by_pk]
    legs, skipped = [], []
    for user in users:
        phone = user.primary_phone()
        if phone:
            legs.append(AgentLeg(call=call, position=len(legs), user=user, phone_number=phone))
        else:
            skipped.append(str(user))
    AgentLeg.objects.bulk_create(legs)
    names = ", ".join(f"{leg.user} ({leg.phone_number})" for leg in legs) or "nobody"
    _timeline(call, f"Agents to call: {names}." + (f" No phone number: {', '.join(skipped)}." if skipped else ""))
    _log(call, "agents", count=len(legs), skipped=len(skipped), policy=policy.pk if policy else None)
    return len(legs)


@transaction.atomic
def claim_next_legs(call_id):
    """The ids of the legs to dial now (marked DIALLING): the next agent (sequential) or all waiting agents
    (simultaneous). Empty while a leg is still ringing, or when the call has moved on; when every agent has
    been tried the caller goes to voicemail or hears that nobody is available."""
    call = Call.objects.select_for_update(of=("self",)).select_related("routing_number").filter(pk=call_id).first()
    if call is None:
        return []
    statuses = list(call.legs.values_list("status", flat=True))
    step = flow.next_dial(call, statuses, call.routing_number.voicemail_enabled)
    for effect in step.effects:
        if isinstance(effect, flow.NobodyLeft):
            send_to_nobody_left(call.pk)
            return []
        if isinstance(effect, flow.DialNext):
            queued = call.legs.filter(status=L.QUEUED).order_by("position")
            legs = list(queued if call.simultaneous else queued[:1])
            AgentLeg.objects.filter(pk__in=[leg.pk for leg in legs], status=L.QUEUED).update(status=L.DIALLING)
            _bump_routing_due(call, call.routing_number)
            for leg in legs:
                _log(call, "dial", option=call.option.digit if call.option_id else None, agent=leg.user_id, leg=leg.pk)
                _timeline(call, f"Calling {_agent_name(leg)} at {leg.phone_number}.", user=leg.user)
            return [leg.pk for leg in legs]
    return []


def dial_each_in_its_own_task(leg_ids):
    """Hand each of LEG_IDS (claimed DIALLING legs) to a dial task of its own."""
    for leg_id in leg_ids:
        _enqueue("place_agent_call", leg_id)


def dial_request(leg_id):
    """What the dial task needs to place LEG_ID's call, or None when the leg is no longer wanted or its call
    was placed already (an event of it arrived although the create-call request failed)."""
    leg = AgentLeg.objects.select_related("call__routing_number", "call__option", "user").filter(pk=leg_id).first()
    if leg is None or leg.status != L.DIALLING or leg.call.state != S.ROUTING or leg.vonage_uuid:
        return None
    call, number = leg.call, leg.call.routing_number
    label = call.option.label if call.option_id else ""
    return {
        "to": leg.phone_number,
        "from_": number.phone_number,
        "event_url": flow.absolute_url("callrouting:leg-event", token=leg.token),
        "ncco": flow.agent_whisper_ncco(number, label, call.caller, leg),
        "ringing_timer": number.ringing_timeout,
        "machine_detection": "hangup",
    }


def count_dial_attempt(leg_id):
    AgentLeg.objects.filter(pk=leg_id).update(attempts=F("attempts") + 1)


@transaction.atomic
def leg_dialled(leg_id, uuid, api_host=""):
    """Store the Vonage uuid of LEG_ID's call and the API_HOST that created it (where it is modified). False
    when the leg was given up meanwhile (hang the call up)."""
    AgentLeg.objects.filter(pk=leg_id, vonage_uuid__isnull=True).update(
        vonage_uuid=uuid, api_host=api_host, dialled_at=timezone.now()
    )
    # A leg adopted from its first event (adopt_leg_call) before this answer came back knows the uuid, not the host.
    AgentLeg.objects.filter(pk=leg_id, vonage_uuid=uuid, api_host="").update(api_host=api_host)
    leg = AgentLeg.objects.select_related("call").get(pk=leg_id)
    _log(leg.call, "dialled", agent=leg.user_id, leg=leg.pk, uuid=uuid)
    return leg.status in flow.LEG_ACTIVE and leg.vonage_uuid == uuid


def adopt_leg_call(call, leg, uuid):
    """The first call seen on LEG's event URL is the leg's call, whether or not its create-call request has
    answered (it may have timed out although Vonage placed the call): the dial task places no other, and a call
    its request still returns is hung up. Returns True when LEG took UUID."""
    if not AgentLeg.objects.filter(pk=leg.pk, vonage_uuid__isnull=True).update(vonage_uuid=uuid, dialled_at=timezone.now()):
        return False
    leg.vonage_uuid = uuid
    _log(call, "adopt", agent=leg.user_id, leg=leg.pk, uuid=uuid)
    return True


def leg_dial_failed(leg_id, reason):
    """Placing LEG_ID's call failed for good: the leg FAILED, the next agent is called."""
    with transaction.atomic():
        leg = AgentLeg.objects.select_related("call").filter(pk=leg_id).first()
        if leg is None:
            return
        call = Call.objects.select_for_update(of=("self",)).select_related("routing_number").get(pk=leg.call_id)
        set_leg_status(call, leg, L.FAILED, f"could not place the call: {reason}"[:200])


def set_leg_status(call, leg, status, detail=""):
    """Move LEG to STATUS if it still may; when the leg has ended, go on with the next agent. Call row locked."""
    now = timezone.now()
    values = {"status": status}
    if detail:
        values["detail"] = detail[:200]
    if status == L.ANSWERED:
        values["answered_at"] = now
    if status in flow.LEG_FINISHED:
        values["ended_at"] = now
    if not AgentLeg.objects.filter(pk=leg.pk, status__in=flow.LEG_FROM[status]).update(**values):
        return False
    leg.status = status
    _log(call, "leg", agent=leg.user_id, leg=leg.pk, status=status)
    if status == L.ANSWERED:
        _timeline(call, f"{_agent_name(leg)} answered and hears who is calling.", user=leg.user)
    if status not in flow.LEG_FINISHED:
        _bump_routing_due(call, call.routing_number)
        return True
    _timeline(call, f"{_agent_name(leg)}: {L(status).label.lower()}" + (f" ({detail})." if detail else "."), user=leg.user)
    statuses = list(call.legs.values_list("status", flat=True))
    effects = flow.next_dial(call, statuses, call.routing_number.voicemail_enabled).effects
    if any(isinstance(effect, (flow.DialNext, flow.NobodyLeft)) for effect in effects):
        # claim_next_legs decides again under the lock (and sends the caller on when nobody is left). No phone
        # rings meanwhile: if that task is lost, the sweeper takes the step after TASK_GRACE, not a ringing timeout.
        _enqueue("dial_next", call.pk)
        Call.objects.filter(pk=call.pk, state=S.ROUTING).update(routing_due_at=now + TASK_GRACE)
    else:
        _bump_routing_due(call, call.routing_number)
    return True


def cancel_agent_legs(call, *, reason, keep_leg_id=None):
    """Give up every leg of CALL that has not ended (except KEEP_LEG_ID) and hang up the ones already placed."""
    legs = call.legs.filter(status__in=flow.LEG_FROM[L.CANCELLED])
    if keep_leg_id:
        legs = legs.exclude(pk=keep_leg_id)
    legs = list(legs)
    cancelled = []
    for leg in legs:
        if AgentLeg.objects.filter(pk=leg.pk, status__in=flow.LEG_FROM[L.CANCELLED]).update(
            status=L.CANCELLED, detail=reason[:200], ended_at=timezone.now()
        ):
            cancelled.append(leg)
            _log(call, "cancel", agent=leg.user_id, leg=leg.pk)
    if legs:
        _timeline(call, f"Stopped calling {', '.join(_agent_name(leg) for leg in legs)}: {reason}.")
    _hang_up_legs(cancelled)
    return len(legs)


def _hang_up_legs(legs):
    """Hang up the placed calls of LEGS once the transaction commits, each on the host that created it.

    One task per call, as the fan-out dials them: a slow Vonage answering the hang-ups of a large simultaneous
    fan-out one after another would push the last ones past the task timeout, and those phones would ring on."""
    for leg in legs:
        if leg.vonage_uuid:
            _enqueue("hang_up", [leg.vonage_uuid], leg.api_host)


@transaction.atomic
def connect_agent_leg(call, leg):
    """LEG's agent takes CALL: CONNECTED, incident accepted and assigned, every other leg hung up.

    Returns True for exactly one leg per call, whatever the interleaving of webhooks.
    """
    now = timezone.now()
    if not Call.objects.filter(pk=call.pk, state__in=flow.CALL_FROM[S.CONNECTED]).update(
        state=S.CONNECTED, connected_leg=leg, connected_at=now, routing_due_at=None
    ):
        return False
    if not AgentLeg.objects.filter(pk=leg.pk, status__in=flow.LEG_FROM[L.ACCEPTED]).update(
        status=L.ACCEPTED, answered_at=F("answered_at") if leg.answered_at else now
    ):
        transaction.set_rollback(True)
        return False
    call.state, call.connected_leg, leg.status = S.CONNECTED, leg, L.ACCEPTED
    _log(call, "connect", agent=leg.user_id, leg=leg.pk)
    _timeline(call, f"{_agent_name(leg)} accepted the call and is connected to the caller.", user=leg.user)
    if call.incident_id and leg.user_id:
        accept_incident(call.incident_id, leg.user, via="phone")
    cancel_agent_legs(call, reason=f"{_agent_name(leg)} took the call", keep_leg_id=leg.pk)
    return True


# --- Due times (claimed by callrouting.sweeper) -------------------------------------------------------------------


@transaction.atomic
def move_on_stuck_call(call_id, now):
    """A routed call whose routing_due_at passed at NOW: no agent-leg event moved it on for the ringing timeout
    plus ROUTING_GRACE (a lost webhook, or a worker killed while dialling). Give up the legs still ringing and
    call the next agent, or choose and call the agents if that never happened. Returns True when it acted."""
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("routing_number")
        .filter(pk=call_id, state=S.ROUTING, routing_due_at__lte=now)
        .first()
    )
    if call is None:
        return False
    number = call.routing_number
    Call.objects.filter(pk=call.pk).update(routing_due_at=routing_due(number))
    waited = number.ringing_timeout + int(ROUTING_GRACE.total_seconds())
    active = list(call.legs.select_related("user").filter(status__in=flow.LEG_ACTIVE))
    _log(call, "stuck", active_legs=len(active), waited=waited)
    if not active:
        # Nobody rings: the task that should call the next agent (or move the caller on) was lost.
        Call.objects.filter(pk=call.pk).update(routing_due_at=now + TASK_GRACE)
        _timeline(call, "No agent is being called: calling the next agent.")
        _enqueue("start_dialling", call.pk)
        return True
    for leg in active:
        set_leg_status(call, leg, L.NO_ANSWER, f"no word from the phone network for {waited} s")
    _hang_up_legs(active)
    return True


@transaction.atomic
def reissue_caller_transfer(call_id, now):
    """The caller of CALL_ID should have been moved to voicemail or "nobody available" by its transfer_due_at,
    passed at NOW, but the task doing it was lost (or died): issue it again. Returns True when it did."""
    call = Call.objects.select_for_update(of=("self",)).filter(pk=call_id, transfer_due_at__lte=now).first()
    if call is None:
        return False
    destination = next(
        (name for name, fields in TRANSFER_STATES.items() if all(getattr(call, k) == v for k, v in fields.items())), None
    )
    if destination is None:  # the call moved on without clearing it (the caller hung up meanwhile)
        caller_transferred(call.pk)
        return False
    due = now + TASK_GRACE
    Call.objects.filter(pk=call.pk).update(transfer_due_at=due)
    _log(call, "transfer_again", destination=destination)
    _timeline(call, f"The caller was not moved to {destination.replace('_', ' ')} in time: trying again.")
    _enqueue("transfer_caller", call.pk, destination, due)
    return True


@transaction.atomic
def raise_call_incident(call_id, now):
    """Auto raise at the start of support hours: the call's incident goes to HIGH priority and is escalated.

    Returns True when this call made the change (its raise_due_at had passed at NOW and is now cleared).
    """
    call = Call.objects.select_for_update(of=("self",)).filter(pk=call_id, raise_due_at__lte=now).first()
    if call is None or not Call.objects.filter(pk=call.pk, raise_due_at=call.raise_due_at).update(raise_due_at=None):
        return False
    call.raise_due_at = None
    incident = call.incident
    if incident is None or not incident.is_open:
        _log(call, "raise_skipped", incident=call.incident_id)
        return True
    set_priority(incident.pk, Priority.HIGH, reason="Support hours started (auto raise).")
    escalate_call_incident(call, "support hours started (auto raise)")
    _log(call, "raise", incident=incident.pk)
    return True


@transaction.atomic
def voicemail_time_up(call_id, now):
    """The voicemail window of the call passed at NOW: escalate if the voicemail webhooks never completed it
    (and no auto raise is pending). Returns True when it escalated."""
    call = Call.objects.select_for_update(of=("self",)).filter(pk=call_id, voicemail_due_at__lte=now).first()
    if call is None:
        return False
    return finish_voicemail(call, "voicemail finished")


# --- Calls that came in while the database was down (callrouting.spool) -----------------------------------------


@transaction.atomic
def record_outage_call(payload, received_at):
    """Record a call whose answer webhook arrived at RECEIVED_AT while the database was down (its spooled
    PAYLOAD): an ended call nobody took, and an escalated incident for the number's first option's escalation
    policy (the alert source's when the number has no options). The caller only heard an apology.

    Once per Vonage uuid. Returns the Call created, or None: recorded already (the database came back while the
    call went on, or another sweeper was first), or not a call to one of our numbers.
    """
    uuid = payload.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        log.warning("action=outage_call_skipped reason=no_uuid")
        return None
    uuid = uuid[:64]
    if Call.objects.filter(vonage_uuid=uuid).exists():
        log.info("call=%s action=outage_call_skipped reason=recorded_already", uuid)
        return None
    number = find_number(payload.get("to"))
    if number is None:
        log.warning("call=%s action=outage_call_skipped reason=unknown_number to=%s", uuid, str(payload.get("to"))[:32])
        return None
    options = _options(number)
    option = options[0] if options else None
    try:
        with transaction.atomic():  # the unique vonage_uuid decides between two sweepers
            call = Call.objects.create(
                vonage_uuid=uuid,
                account_id=number.account_id,
                routing_number=number,
                caller=caller_number(payload.get("from")),
                called_number=number.phone_number,
                conversation_uuid=str(payload.get("conversation_uuid") or "")[:64],
                state=S.ENDED,
                outcome=Call.Outcome.NO_AGENT,
                option=option,
                ended_at=received_at,
            )
    except IntegrityError:
        log.info("call=%s action=outage_call_skipped reason=recorded_already", uuid)
        return None
    Call.objects.filter(pk=call.pk).update(started_at=received_at)  # when it rang, not when it was replayed
    caller = call.caller or "an unknown number"
    local = received_at.astimezone(number.tzinfo)
    incident = create_incident(
        alert_source=number.alert_source,
        summary=f"Missed call from {caller} during a database outage",
        details=(
            f"{caller} called {number.name} ({number.phone_number}) at {local:%Y-%m-%d %H:%M} {number.timezone} while "
            "the database was unavailable. The caller heard that we have technical difficulties; nobody was called."
        ),
        escalation_policy=option.escalation_policy if option is not None else None,
        suppress_escalation=True,
    )
    Call.objects.filter(pk=call.pk).update(incident=incident)
    call.incident = incident
    _timeline(call, f"Call received during a database outage ({local:%Y-%m-%d %H:%M} {number.timezone}): {caller} "
                    "heard an apology, nobody was called. Recorded once the database was back.")
    _log(call, "outage_call", incident=incident.pk, received_at=received_at.isoformat())
    escalate_call_incident(call, "missed call during a database outage")
    return call


# --- Voicemail --------------------------------------------------------------------------------------------------


def _voicemail_for(call):
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
    _log(call, "recording_started")
    _timeline(call, "The caller heard the mailbox greeting; recording their message.", kind=IncidentEvent.Kind.VOICEMAIL)
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
    _log(call, "outcome", outcome=change.new, was=change.old)
    _timeline(call, change.why[:1].upper() + change.why[1:] + ".", kind=IncidentEvent.Kind.VOICEMAIL)
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
    voicemail = _voicemail_for(call)
    duration = _seconds_between(payload.get("start_time"), payload.get("end_time"))
    if not Voicemail.objects.filter(pk=voicemail.pk, recording_url="").update(
        recording_url=url[:500], recording_uuid=str(payload.get("recording_uuid") or "")[:64], duration=duration,
        # The sweeper hands the download out again if this task is lost (callrouting.recordings).
        download_due_at=timezone.now() + recordings.DOWNLOAD_LEASE,
    ):
        return False  # a repeated webhook
    _log(call, "voicemail_recorded", seconds=duration)
    _timeline(
        call,
        f"Voicemail recorded ({duration} s)." if duration is not None else "Voicemail recorded.",
        kind=IncidentEvent.Kind.VOICEMAIL,
        voicemail=voicemail.pk,
    )
    for effect in flow.on_recording(call, duration).effects:
        change_call_outcome(call, effect)
    _enqueue("download_voicemail", voicemail.pk)  # kept whatever the outcome: nothing the caller said is lost
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
    _timeline(voicemail.call, f"Voicemail recording stored ({len(content) // 1024} KB){retried}.",
              kind=IncidentEvent.Kind.VOICEMAIL, voicemail=voicemail.pk)
    recordings.announce(voicemail.call, voicemail, "recorded")
    _escalate_if_voicemail_complete(voicemail)
    return True


@transaction.atomic
def attach_transcript(call, text, *, source=""):
    """Attach the voicemail's transcript (once) and escalate when the voicemail is complete."""
    voicemail = _voicemail_for(call)
    text = (text or "").strip()
    if not Voicemail.objects.filter(pk=voicemail.pk, transcribed_at__isnull=True).update(
        transcript=text, transcribed_at=timezone.now()
    ):
        return False
    voicemail.refresh_from_db()
    _log(call, "transcript", chars=len(text), source=source or "inline")
    _timeline(
        call,
        f"Voicemail transcript: {text}" if text else "The voicemail could not be transcribed.",
        kind=IncidentEvent.Kind.VOICEMAIL,
        voicemail=voicemail.pk,
    )
    if text and voicemail.is_settled:  # announced already without it; before that, the announcement carries it
        recordings.announce(call, voicemail, "transcribed")
    _escalate_if_voicemail_complete(voicemail)
    return True


def _escalate_if_voicemail_complete(voicemail):
    call = voicemail.call
    if call.outcome == Call.Outcome.NO_MESSAGE:
        return  # escalated when the call ended (or at the auto raise): the recording held no message
    needs_transcript = call.routing_number.voicemail_transcription
    if voicemail.is_settled and (voicemail.transcribed_at or not needs_transcript):
        finish_voicemail(call, "the caller left a voicemail")


def finish_voicemail(call, reason):
    """The voicemail is complete (or its time is up): escalate, unless an auto raise will do it later.

    Returns True when the incident was handed to escalation now.
    """
    Call.objects.filter(pk=call.pk).update(voicemail_due_at=None)
    if escalate_call_incident(call, reason, unless_raise_pending=True):
        return True
    if Call.objects.filter(pk=call.pk, escalated_at__isnull=True, raise_due_at__isnull=False).exists():
        _timeline(call, "The voicemail is in; the incident waits for support hours (auto raise).",
                  kind=IncidentEvent.Kind.VOICEMAIL)
    return False


def transcript_text(payload):
    """The transcript carried inline by a transcription webhook, or None (payload shape unconfirmed)."""
    for key in ("transcript", "transcription", "text"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, (list, dict)):
            text = _collect_text(value)
            if text:
                return text
    return None


def transcript_from_document(content):
    """The text of a fetched transcription document (JSON of Vonage's shape, or plain text)."""
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return content.decode("utf-8", errors="replace").strip()
    if isinstance(document, str):
        return document.strip()
    return _collect_text(document)


def _collect_text(value):
    """Sentences found under 'sentence', 'text' or 'transcript' keys anywhere in a JSON value, in order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, item in node.items():
                if key in ("sentence", "text", "transcript") and isinstance(item, str):
                    found.append(item.strip())
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return " ".join(part for part in found if part)


# --- Webhook entry points (called by the views) ----------------------------------------------------------------


def _apply(call, step, *, number, options=()):
    """Carry out STEP's effects for the caller's CALL; return the NCCO to answer with."""
    for effect in step.effects:
        if isinstance(effect, flow.Route):
            option = next(o for o in options if o.pk == effect.option_id)
            route_call(call, option, effect.how, number=number)
        elif isinstance(effect, flow.StartVoicemail):
            option = next((o for o in options if o.pk == effect.option_id), None)
            start_voicemail(call, option, effect.how, number=number)
        elif isinstance(effect, flow.CountTry):
            Call.objects.filter(pk=call.pk, state=S.MENU).update(tries=F("tries") + 1)
            _log(call, "menu_repeat", tries=call.tries + 1)
        elif isinstance(effect, flow.EndCall):
            end_call(call, effect.outcome, cancel_legs=effect.cancel_legs, escalate=effect.escalate, resolve=effect.resolve)
    return step.ncco


def _create_call(**fields):
    """(call, True) for a new call; (the stored call, False) when Vonage repeats the answer webhook. Inserting
    first spares the lookup that get_or_create makes for every call, new or not."""
    try:
        with transaction.atomic():
            return Call.objects.create(**fields), True
    except IntegrityError:
        return Call.objects.get(vonage_uuid=fields["vonage_uuid"]), False


def handle_answer(payload):
    """The answer webhook: the NCCO for a new inbound call (never an error for an unknown number)."""
    uuid = payload.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise MalformedWebhook("answer webhook without a uuid")
    number = find_number(payload.get("to"))
    if number is None:
        log.info("call=%s action=unknown_number to=%s", uuid, payload.get("to"))
        return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "unknown_number")
    options = _options(number)
    target = number.target_at(timezone.now())
    call, created = _create_call(
        vonage_uuid=uuid[:64],
        account_id=number.account_id,
        routing_number=number,
        caller=caller_number(payload.get("from")),
        called_number=number.phone_number,
        conversation_uuid=str(payload.get("conversation_uuid") or "")[:64],
        region_url=_region_url(payload),
        target=target.kind,
        calling_style=target.calling,
        in_support_hours=target.in_support_hours,
    )
    call.routing_number = number
    if not created:  # a repeated answer webhook: what was decided for the call counts (see flow.on_answer)
        target = CallTarget(call.target, None, call.calling_style, call.in_support_hours)
    _log(call, "answer" if created else "answer_again", number=number.phone_number, options=len(options),
         target=target.kind, hours={None: "none", True: "in", False: "out"}[target.in_support_hours])
    return _apply(call, flow.on_answer(number, options, call, target), number=number, options=options)


def _region_url(payload):
    """The answer webhook's region_url when it names a host the call may be modified on, else ""."""
    url = payload.get("region_url")
    if not isinstance(url, str) or len(url) > Call._meta.get_field("region_url").max_length:
        return ""
    return url if get_telephony().region_host(url) else ""


def _call_by_token(token):
    return (
        Call.objects.select_related("routing_number__alert_source")
        .prefetch_related("routing_number__audio_files")
        .filter(token=token)
        .first()
    )


def _speech_texts(payload):
    speech = payload.get("speech")
    results = speech.get("results") if isinstance(speech, dict) else None
    texts = []
    for result in results if isinstance(results, list) else []:
        if isinstance(result, dict) and isinstance(result.get("text"), str):
            texts.append(result["text"])
    return texts


def _dtmf(payload):
    dtmf = payload.get("dtmf")
    if isinstance(dtmf, dict):
        return str(dtmf.get("digits") or ""), bool(dtmf.get("timed_out"))
    return "", False


def handle_menu_input(token, payload):
    """The caller's menu input webhook (a key or speech): the next NCCO."""
    call = _call_by_token(token)
    if call is None:
        log.info("action=input_unknown_call")
        return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")
    number = call.routing_number
    options = _options(number)
    digits, _ = _dtmf(payload)
    speech = _speech_texts(payload)
    step = flow.on_menu_input(number, options, call, digits=digits, speech_texts=speech)
    return _apply(call, step, number=number, options=options)


def handle_call_event(payload):
    """The application event webhook: only the end of a caller's leg matters."""
    uuid = payload.get("uuid") or payload.get("call_uuid")
    status = payload.get("status")
    if not isinstance(status, str) or not isinstance(uuid, str):
        raise MalformedWebhook("event webhook without status and uuid")
    if status not in CALLER_GONE_STATUSES:
        return
    with transaction.atomic():
        call = Call.objects.select_for_update(of=("self",)).select_related("routing_number", "connected_leg__user").filter(
            vonage_uuid=uuid
        ).first()
        if call is None:
            return
        _log(call, "caller_event", status=status)
        message_left = call.state == S.VOICEMAIL and Voicemail.objects.filter(call=call).exclude(recording_url="").exists()
        _apply(call, flow.on_caller_gone(call, message_left=message_left), number=call.routing_number)
        if call.transfer_due_at is not None:
            caller_transferred(call.pk)  # nobody left to move (end_call clears it too; a NO_AGENT call ended before)


def _locked_leg(token):
    """(call, leg) for a leg token with the Call row locked, or (None, None)."""
    found = AgentLeg.objects.filter(token=token).values_list("pk", "call_id").first()
    if found is None:
        return None, None
    leg_id, call_id = found
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("routing_number", "option", "connected_leg__user")
        .get(pk=call_id)
    )
    leg = AgentLeg.objects.select_related("user").get(pk=leg_id)
    return call, leg


def handle_leg_event(token, payload):
    """An agent leg's event webhook: progress, or the end of the attempt (then the next agent is called)."""
    status = payload.get("status")
    if not isinstance(status, str):
        raise MalformedWebhook("leg event without a status")
    uuid = payload.get("uuid") or payload.get("call_uuid")
    uuid = uuid if isinstance(uuid, str) and uuid else None
    with transaction.atomic():
        call, leg = _locked_leg(token)
        if call is None:
            log.info("action=leg_event_unknown_leg status=%s", status)
            return
        if uuid is not None and leg.vonage_uuid is None and leg.status in flow.LEG_ACTIVE:
            adopt_leg_call(call, leg, uuid)
        # Another call on this leg's URL: a create-call request that timed out but was placed anyway, after the
        # leg adopted another call. Its events say nothing about the leg: a live one is hung up, none is applied
        # (its "completed" would end the leg while the agent's phone still rings).
        orphan = uuid is not None and leg.vonage_uuid is not None and uuid != leg.vonage_uuid
        # A live call we no longer want (an orphan, or a leg given up while it rang) is hung up.
        live = status in ("started", "ringing", "answered")
        stray = uuid if live and (orphan or leg.status in flow.LEG_FINISHED) else None
        if orphan:
            _log(call, "leg_event_ignored", leg=leg.pk, uuid=uuid, status=status)
        else:
            step = flow.on_agent_event(call, leg, status, str(payload.get("detail") or ""))
            for effect in step.effects:
                if isinstance(effect, flow.SetLegStatus):
                    set_leg_status(call, leg, effect.status, effect.detail)
                elif isinstance(effect, flow.EndCall):
                    end_call(call, effect.outcome, cancel_legs=effect.cancel_legs, escalate=effect.escalate, resolve=effect.resolve)
        if stray and stray != _connected_uuid(call):
            _log(call, "hang_up_stray", leg=leg.pk, uuid=stray)
            _enqueue("hang_up", [stray], leg.api_host)


def handle_leg_error(token, payload):
    """An error event on an agent leg: Vonage accepted the leg's call (201) but could not place it (over its
    rate), or found an NCCO we gave the leg invalid. A leg still ringing or waiting for a key fails at once, so
    the next agent is called now rather than after the ringing timeout; its call, if it lives, is hung up."""
    reason = str(payload.get("reason") or "")
    with transaction.atomic():
        call, leg = _locked_leg(token)
        if call is None:
            return
        step = flow.on_agent_event(call, leg, "failed", f"Vonage error: {reason}"[:150])
        for effect in step.effects:
            if isinstance(effect, flow.SetLegStatus) and set_leg_status(call, leg, effect.status, effect.detail):
                _log(call, "leg_error", leg=leg.pk, agent=leg.user_id)
                _hang_up_legs([leg])


def _connected_uuid(call):
    """The Vonage uuid of the call's connected agent leg, or None.

    Read by id, not through a select_related join: the call row is locked with FOR UPDATE OF self, and on
    PostgreSQL a row re-read after waiting for that lock can carry a connected_leg_id whose joined leg columns
    come from the older snapshot (None).
    """
    if not call.connected_leg_id:
        return None
    return AgentLeg.objects.filter(pk=call.connected_leg_id).values_list("vonage_uuid", flat=True).first()


def handle_leg_input(token, payload):
    """The agent's key press: the NCCO that joins them to the caller, says goodbye, or says the call is gone."""
    digits, timed_out = _dtmf(payload)
    with transaction.atomic():
        call, leg = _locked_leg(token)
        if call is None:
            return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")
        number = call.routing_number
        label = call.option.label if call.option_id else ""
        step = flow.on_agent_input(number, call, leg, label, digits=digits, timed_out=timed_out)
        _log(call, "agent_key", agent=leg.user_id, leg=leg.pk, key=digits[:1] or "none")
        for effect in step.effects:
            if isinstance(effect, flow.Connect):
                if not connect_agent_leg(call, leg):
                    call.refresh_from_db(fields=["state"])
                    set_leg_status(call, leg, L.CANCELLED, "call already taken or ended")
                    return flow.talk_ncco(number.language, "call_taken")
            elif isinstance(effect, flow.SetLegStatus):
                set_leg_status(call, leg, effect.status, effect.detail)
        return step.ncco


def handle_recording(token, payload):
    call = Call.objects.select_related("routing_number").filter(token=token).first()
    if call is None:
        log.info("action=recording_unknown_call")
        return
    record_voicemail(call, payload)


def handle_recording_started(token, payload):
    """The notify webhook right before the mailbox's record action (payload flow.RECORDING_STARTED)."""
    call = Call.objects.filter(token=token).first()
    if call is None:
        log.info("action=recording_started_unknown_call")
        return
    begin_voicemail_recording(call)


def handle_transcription(token, payload):
    """The transcription webhook (payload shape unconfirmed: inline text, or a transcription_url to fetch)."""
    # The keys only: the payload may carry the transcript, which is content and stays out of the logs.
    log.info("action=transcription_webhook keys=%s", sorted(payload))
    call = Call.objects.select_related("routing_number").filter(token=token).first()
    if call is None:
        return
    text = transcript_text(payload)
    if text is not None:
        attach_transcript(call, text)
        return
    url = payload.get("transcription_url") or payload.get("url")
    if isinstance(url, str) and url.startswith("https://"):
        with transaction.atomic():
            _voicemail_for(call)
            _enqueue("fetch_transcript", call.pk, url)
        return
    attach_transcript(call, "", source="empty")


def original_request(payload):
    """The fallback's original_request {url, type} as a dict, however Vonage sent it: a JSON object (POST), a
    JSON string, or flattened query parameters ("original_request.url" or "original_request[url]", GET)."""
    value = payload.get("original_request")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            value = None
    if isinstance(value, dict):
        return value
    flattened = {}
    for key, item in payload.items():
        match = FLATTENED_ORIGINAL_REQUEST.fullmatch(str(key))
        if match:
            flattened[match.group(1) or match.group(2)] = item
    return flattened


def handle_fallback(payload):
    """The fallback webhook: a spoken message, and for a known call the place the caller belongs. An agent's
    failed request gets the offer again (or where the call went), a notification call's its key prompt again."""
    url = str(original_request(payload).get("url") or "")
    log.warning("action=fallback reason=%s url=%s", str(payload.get("reason"))[:200], url[:200])
    match = TOKEN_IN_URL.search(url)
    if match and match.group(1) == "leg":
        return _agent_fallback(token=match.group(2)) or flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")
    notification = NOTIFICATION_INPUT_URL.search(url)
    if notification:
        return notification_fallback_ncco(notification.group(1))
    uuid = payload.get("uuid") if isinstance(payload.get("uuid"), str) and payload.get("uuid") else None
    call = _call_by_token(match.group(2)) if match else None
    if call is None and uuid:
        call = Call.objects.select_related("routing_number__alert_source").filter(vonage_uuid=uuid).first()
    if call is None and uuid:
        agent_ncco = _agent_fallback(vonage_uuid=uuid)
        if agent_ncco is not None:
            return agent_ncco
    if call is None:
        # A new caller whose answer request failed (only an inbound call to one of our numbers: never an agent's
        # or a notification call, whose "to" is a person's phone).
        if uuid and payload.get("direction") != "outbound" and find_number(payload.get("to")) is not None:
            return handle_answer(payload)
        return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")
    number = call.routing_number
    if call.state == S.VOICEMAIL and urlsplit(url).path == reverse("callrouting:call-recording-started", args=[call.token]):
        # The notify before the recording failed: record without it (asking again could fail the same way, and
        # the caller would hear the greeting over and over).
        begin_voicemail_recording(call)
        return flow.record_ncco(number, call)
    if call.state == S.MENU:
        options = _options(number)
        if options:
            _apply(call, flow.Step(effects=(flow.Route(options[0].pk, "fallback"),)), number=number, options=options)
            call.state = S.ROUTING
    sorry = flow.talk_ncco(number.language, "error")
    if call.state in (S.ROUTING, S.CONNECTED):
        return sorry + flow.hold_ncco(number, call, announce=False)
    if call.state == S.VOICEMAIL:
        return flow.voicemail_ncco(number, call)
    return flow.talk_ncco(number.language, "error_goodbye")


def _agent_fallback(**leg):
    """What the agent of the leg found by LEG (token= or vonage_uuid=) hears when their key press could not be
    answered; None when there is no such leg."""
    leg = AgentLeg.objects.select_related("call__routing_number", "call__option", "user").filter(**leg).first()
    if leg is None:
        return None
    call = leg.call
    label = call.option.label if call.option_id else ""
    _log(call, "agent_fallback", agent=leg.user_id, leg=leg.pk, leg_status=leg.status)
    return flow.on_agent_fallback(call.routing_number, call, leg, label).ncco
