"""A live call on its number's published flow: the engine's context for the call, and the engine's steps applied.

The engine (callrouting.flows.engine) is pure; this module gives it the call's world (the account's database),
URLs (the call's token) and document (the flow version the call started on, from the per-process cache), stores
where the call is (Call.node, Call.node_state) and carries out the effects through the verbs of this package,
each a conditional update, with the Call row locked by the webhook or task that brought the event.
"""
import datetime as dt
import re

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Max, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from escalation.models import EscalationPolicy
from incidents.models import AlertSource, IncidentEvent, Priority
from incidents.services import create_incident

from . import dispatch, flow, journal
from .caller import end_call
from .voicemail import VOICEMAIL_GRACE
from ..flows import engine
from ..flows.cache import load_version
from ..flows.steps import CallState, Context
from ..flows.world import DatabaseWorld
from ..models import AgentLeg, Call, NumberAudio

S = Call.State
# The compiler's route node for routing option <digit> (flows.compiler): the call log still names the option.
OPTION_NODE_PREFIX = "option-"


class CallUrls:
    """Where the NCCOs of CALL send Vonage back to; the number's own audio files by id (one query per file)."""

    def __init__(self, call, number):
        self.call, self.number = call, number
        self._audio = {}

    def input(self, seq):
        # The prompt's sequence number: an input meant for an earlier prompt is recognised as stale.
        return flow.absolute_url("callrouting:call-input", token=self.call.token) + f"?seq={seq}"

    def recording(self):
        return flow.absolute_url("callrouting:call-recording", token=self.call.token)

    def recording_started(self):
        return flow.absolute_url("callrouting:call-recording-started", token=self.call.token)

    def transcription(self):
        return flow.absolute_url("callrouting:call-transcription", token=self.call.token)

    def audio(self, audio_id):
        if audio_id not in self._audio:
            audio = NumberAudio.objects.filter(pk=audio_id, routing_number_id=self.number.pk).exclude(file="").first()
            self._audio[audio_id] = audio.absolute_url() if audio is not None else None
        return self._audio[audio_id]

    def hold_music(self, audio_id):
        return (self.audio(audio_id) if audio_id else None) or flow.hold_music_url(None)


def published_version_id(number):
    """The id of NUMBER's published flow version (number.flow selected with it: no query), or None."""
    try:
        return number.flow.published_id
    except ObjectDoesNotExist:
        return None


def context(call, number, now=None):
    return Context(
        now=now or timezone.now(), caller=call.caller, call_uuid=call.vonage_uuid, world=DatabaseWorld(number.account_id),
        urls=CallUrls(call, number), number_name=number.name, conversation=call.conversation_name,
    )


def document(call):
    """The document of the flow version CALL started on (the per-process cache: no query once loaded)."""
    return load_version(call.flow_version_id).data


def state_of(call):
    return CallState.from_json(call.node, call.node_state)


def kind_of(doc, node_id):
    """The kind of node NODE_ID of document DOC (a dict), "" for none."""
    return ((doc.get("nodes") or {}).get(node_id) or {}).get("kind", "")


def current_ncco(call, number):
    """What the caller of CALL should hear now (a repeated webhook, the fallback)."""
    return engine.current_ncco(document(call), state_of(call), context(call, number))


def save_position(call, step):
    """Store where the call is after STEP (the Call row is locked by the caller of this)."""
    call.node, call.node_state = step.state.node, step.state.as_json()
    Call.objects.filter(pk=call.pk).update(node=call.node, node_state=call.node_state)


def _went_out_of_hours(step):
    return any(visit.kind == "hours" and visit.branch in ("out_of_hours", "holiday") for visit in step.visits)


def hours_of(step):
    """Whether STEP passed an hours node in (True) or out of (False) support hours; None when it passed none."""
    for visit in step.visits:
        if visit.kind == "hours" and visit.branch:
            return visit.branch == "in_hours"
    return None


# A menu branch as the engine names it: "<key> <keyword> (<key|speech>)".
MENU_BRANCH = re.compile(r"^(\S+) (.+) \((key|speech)\)$")


def chosen(step):
    """How the caller chose in STEP, for the timeline ("chose 2 “Billing” (speech)"), or ""."""
    for visit in reversed(step.visits):
        match = MENU_BRANCH.match(visit.branch) if visit.kind == "menu" else None
        if match:
            key, keyword, how = match.groups()
            return f"chose {key} “{keyword}” ({'digit' if how == 'key' else how})"
        if visit.kind == "menu" and visit.branch == "no_input":
            return "made no choice"
    return ""


def auto_raise_at(call, number, step, now):
    """With auto raise, when a call that went out of support hours in STEP is to be raised (None: not at all)."""
    if not (_went_out_of_hours(step) and number.auto_raise and number.support_hours_enabled):
        return None
    return number.next_support_hours_start(now)


def apply(call, number, step):
    """Carry out STEP's effects for CALL (its position is stored already). Returns nothing: the NCCO is STEP's."""
    raise_at = auto_raise_at(call, number, step, timezone.now()) if step.effects else None
    to_voicemail = any(isinstance(effect, engine.StartVoicemail) for effect in step.effects)
    for visit in step.visits:
        if visit.branch:
            journal.log_decision(call, "node", node=visit.node, kind=visit.kind, branch=visit.branch.replace(" ", "_"))
    for effect in step.effects:
        if isinstance(effect, engine.CreateIncident):
            create_call_incident(call, number, effect, raise_at=raise_at, to_voicemail=to_voicemail)
        elif isinstance(effect, engine.PinAccepted):
            journal.log_decision(call, "pin", node=effect.node_id)
            journal.timeline(call, f"The caller entered the PIN of “{effect.label}”." if effect.label else
                             "The caller entered a valid PIN.")
        elif isinstance(effect, engine.LogLine):
            journal.log_decision(call, "flow_note", node=effect.node_id)
            journal.timeline(call, effect.text)
        elif isinstance(effect, engine.RouteTo):
            begin_route(call, number, effect, chosen(step))
        elif isinstance(effect, engine.StartVoicemail):
            begin_voicemail(call, number, effect, raise_at=raise_at)
        elif isinstance(effect, engine.EndCall):
            resolve = effect.outcome == Call.Outcome.ANSWERED
            end_call(call, effect.outcome, cancel_legs=True, escalate=effect.escalate, resolve=resolve)


class _AlreadyMoved(Exception):
    """Rolls back an incident created for a call that has one already."""


def create_call_incident(call, number, effect, *, raise_at=None, to_voicemail=False):
    """The call's incident (once per call), with the node's alert source, priority and escalation policy (the
    number's alert source and the source's policy where the node names none or one of another account).
    Escalation is held back until the call says so (nobody took it, the voicemail is in). A call that goes
    straight on to voicemail (TO_VOICEMAIL) is titled as a voicemail."""
    try:
        with transaction.atomic():
            return _create_call_incident(call, number, effect, raise_at, to_voicemail)
    except _AlreadyMoved:
        return False


def _create_call_incident(call, number, effect, raise_at, to_voicemail):
    source = number.alert_source
    if effect.alert_source:
        source = AlertSource.objects.filter(pk=effect.alert_source, account_id=number.account_id).first() or source
    policy = None
    if effect.policy:
        policy = EscalationPolicy.objects.filter(pk=effect.policy, account_id=number.account_id).first()
    priority = effect.priority or None
    if raise_at is not None:
        priority = Priority.LOW  # raised at the next support hours (begin_voicemail sets the due time)
    caller = call.caller or "an unknown number"
    title = effect.title
    if to_voicemail:
        title = f"Voicemail for {number.name} from {caller}" + (f" ({effect.pin_label})" if effect.pin_label else "")
    details = effect.details + (f" PIN: {effect.pin_label}." if effect.pin_label else "")
    incident = create_incident(
        alert_source=source, summary=title, details=details, priority=priority, escalation_policy=policy,
        suppress_escalation=True,
    )
    if not Call.objects.filter(pk=call.pk, incident__isnull=True).update(
        incident=incident, accept_when_answered=effect.accept_when_answered
    ):
        raise _AlreadyMoved()
    call.incident, call.accept_when_answered = incident, effect.accept_when_answered
    journal.log_decision(call, "incident", node=effect.node_id, incident=incident.pk)
    return True


def _option_of(number, node_id):
    """The routing option whose compiled route node NODE_ID is (flows.compiler names them option-<digit>), or None."""
    rest = node_id[len(OPTION_NODE_PREFIX):] if node_id.startswith(OPTION_NODE_PREFIX) else ""
    digit = rest.split("-", 1)[0]
    if not digit.isdigit():
        return None
    return number.options.filter(digit=int(digit)).first()


def begin_route(call, number, effect, how=""):
    """Ring EFFECT's targets (a snapshot, in this round's order) while the caller holds: one QUEUED leg each,
    positions after every leg the call had, then the dial task. Returns True when this call made the change."""
    now = timezone.now()
    simultaneous = effect.style == "simultaneous"
    option = _option_of(number, effect.node_id)
    values = dict(
        state=S.ROUTING, simultaneous=simultaneous, routing_due_at=now + dispatch.TASK_GRACE,
        ring_timeout=effect.ring_timeout, about=effect.about[:200],
    )
    if option is not None:
        values["option"] = option
    if not Call.objects.filter(pk=call.pk, state__in=(S.MENU, S.ROUTING)).update(
        routed_at=Coalesce("routed_at", Value(now)), **values
    ):
        return False
    for name, value in values.items():
        setattr(call, name, value)
    last = call.legs.aggregate(last=Max("position"))["last"]
    start = 0 if last is None else last + 1
    legs = [
        AgentLeg(call=call, position=start + i, user_id=target.user_id, phone_number=target.phone,
                 label=str(target.label)[:200], node=effect.node_id, round=effect.round)
        for i, target in enumerate(effect.targets)
    ]
    AgentLeg.objects.bulk_create(legs)
    mode = "all at once" if simultaneous else "one after another"
    names = ", ".join(f"{leg.label} ({leg.phone_number})" for leg in legs)
    repeat = f", round {effect.round} of {effect.repeat}" if effect.repeat > 1 else ""
    caller = call.caller or "an unknown number"
    journal.timeline(call, f"Call from {caller}: {how or '“' + effect.about + '”'}{repeat}. Calling agents {mode}.")
    journal.timeline(call, f"Agents to call: {names}.")
    journal.log_decision(call, "route", node=effect.node_id, round=effect.round, legs=len(legs),
                         style=effect.style, incident=call.incident_id)
    dispatch.enqueue("start_dialling", call.pk)
    return True


def begin_voicemail(call, number, effect, *, raise_at=None):
    """The caller is in the mailbox of EFFECT's node: the incident waits for the message (or its time).

    With auto raise, a call sent to voicemail outside support hours keeps its low-priority incident until the
    next support hours start (Call.raise_due_at). Returns True when this call made the change."""
    now = timezone.now()
    if not Call.objects.filter(pk=call.pk, state__in=(S.MENU, S.ROUTING)).update(
        state=S.VOICEMAIL, routing_due_at=None, raise_due_at=raise_at,
        voicemail_due_at=now + dt.timedelta(seconds=effect.max_length) + VOICEMAIL_GRACE,
        routed_at=Coalesce("routed_at", Value(now)),
    ):
        return False
    call.state, call.raise_due_at = S.VOICEMAIL, raise_at
    caller = call.caller or "an unknown number"
    journal.timeline(call, f"Call from {caller}: sent to voicemail ({effect.how}).", kind=IncidentEvent.Kind.VOICEMAIL)
    if raise_at:
        local = raise_at.astimezone(number.tzinfo)
        journal.timeline(call, f"Auto raise: low priority until support hours start ({local:%a %Y-%m-%d %H:%M} "
                         f"{number.timezone}), then high priority and escalated.")
    journal.log_decision(call, "voicemail", node=effect.node_id, incident=call.incident_id,
                         raise_at=raise_at.isoformat() if raise_at else None)
    return True


def back_to_input(call):
    """A route's "nobody answered" branch led to a menu or PIN node: the caller waits for their input again."""
    if Call.objects.filter(pk=call.pk, state=S.ROUTING).update(state=S.MENU, routing_due_at=None):
        call.state = S.MENU
        journal.log_decision(call, "back_to_menu", node=call.node)


def route_round_over(call):
    """Nobody took the call in the current round of its route node (Call row locked): the next round, or the
    node's "nobody answered" branch (another route, a menu, voicemail, a message and hang-up). The caller, on
    hold, is moved by a transfer (Call.transfer_ncco, re-issued by the sweeper until done). True when it acted."""
    number = call.routing_number
    doc, state = document(call), state_of(call)
    step = engine.on_route_outcome(doc, state, context(call, number), "nobody_answered", round=state.data.get("round"))
    if not step.changed:
        return False
    save_position(call, step)
    next_round = step.state.node == state.node and not step.state.ended
    journal.timeline(call, f"Nobody took the call: next round of “{call.about}”." if next_round else "Nobody took the call.")
    apply(call, number, step)
    new_kind = kind_of(doc, step.state.node)
    if new_kind in ("menu", "pin") and not step.state.ended:
        back_to_input(call)
    # A chain from route to route keeps the caller in the same hold conversation: nothing to send.
    only_routes = not step.state.ended and all(visit.kind == "route" for visit in step.visits)
    if step.ncco and not only_routes:
        due = timezone.now() + dispatch.TASK_GRACE
        Call.objects.filter(pk=call.pk).update(transfer_due_at=due, transfer_ncco=step.ncco)
        dispatch.enqueue("transfer_caller", call.pk, "flow", due)
    return True
