"""The call flow engine: (a flow document, the call's state, an event) -> the next NCCO, the effects, the new state.

Pure: no database, no network. The live call (callrouting.calls) reads the published document and the call's
state, asks this module what happens next, applies the effects with conditional updates and stores the state;
the dry run (flows.dryrun) asks the same functions and records their answers.

Entering a node that does not wait (message, hours, caller_list, incident) continues at once with its next
node, collecting NCCO actions and effects, until a node where the caller waits: menu and pin (an input), route
(hold music while phones ring), voicemail (the recording) or hangup (the end). At most MAX_NODES_PER_EVENT nodes
are entered per event: a loop that slipped past validation ends the call with a spoken apology.

Duplicate and late events are harmless: an input carries the state's seq in its URL, a route outcome its round;
one meant for an earlier prompt or round (or any event for an ended call) changes nothing and answers with
the NCCO of where the caller is now.
"""
import dataclasses

from .. import ncco, phrases
from .nodes import caller_list, hangup, hours, incident, menu, message, pin, route, voicemail
from .nodes.common import Flow, Go, Wait
from .steps import (  # noqa: F401  (re-exported: the engine's public vocabulary)
    BLOCKED, FLOW_ENDED, FLOW_ERROR, NO_AGENT, VOICEMAIL, CallState, Context, CreateIncident, DialTarget, EndCall,
    LogLine, PinAccepted, RouteTo, StartVoicemail, Step, Visit,
)

KINDS = {
    "message": message, "menu": menu, "hours": hours, "route": route, "voicemail": voicemail, "pin": pin,
    "caller_list": caller_list, "incident": incident, "hangup": hangup,
}
WAITING_KINDS = ("menu", "pin", "route", "voicemail", "hangup")
INPUT_KINDS = ("menu", "pin")
MAX_NODES_PER_EVENT = 50
# What a caller may be left with at the end of an NCCO: something they hear or wait on (never dead air).
AUDIBLE_ENDS = ("talk", "stream", "input", "record", "conversation")
ROUTE_OUTCOMES = ("answered", "nobody_answered")
ABANDONED = "abandoned"
ANSWERED = "answered"
NO_MESSAGE = "no_message"
HUNG_UP_BEFORE_MESSAGE = "the caller hung up before leaving a message"


def _flow(document):
    return document if isinstance(document, Flow) else Flow(_as_dict(document))


def _as_dict(document):
    """The contract's JSON for DOCUMENT: a dict, a FlowDocument (its data), or an object that can give it back."""
    if isinstance(document, dict):
        return document
    if isinstance(getattr(document, "data", None), dict):  # flows.document.FlowDocument
        return document.data
    for name in ("as_json", "to_dict", "as_dict", "model_dump", "dict"):
        method = getattr(document, name, None)
        if callable(method):
            return method()
    raise TypeError(f"not a flow document: {type(document).__name__}")


# --- Public entry points ---------------------------------------------------------------------------------------


def start(document, ctx):
    """A new call: enter the document's start node."""
    flow = _flow(document)
    return enter(flow, flow.start, ctx)


def enter(document, node_id, ctx, state=None):
    """The caller arrives at NODE_ID (a new call: STATE None). Non-waiting nodes chain on."""
    flow = _flow(document)
    call = dataclasses.replace(state, seq=state.seq + 1) if state else CallState(node=node_id or "", seq=1)
    if flow.node(node_id) is None or flow.node(node_id).get("kind") not in KINDS:
        return _apology(flow, call, [], f"no node {node_id!r}")
    call = dataclasses.replace(call, node=node_id, data={})
    module = KINDS[flow.node(node_id)["kind"]]
    return _chain(flow, call, ctx, node_id, module.enter(flow, node_id, call, ctx, None))


def on_input(document, state, ctx, digits="", speech=(), *, seq=None):
    """The caller's answer at a menu or PIN node: DIGITS pressed and/or SPEECH texts recognised (both empty: no
    input). SEQ, from the input URL, identifies the prompt it answers; a stale one changes nothing."""
    flow = _flow(document)
    kind = (flow.node(state.node) or {}).get("kind")
    if state.ended or kind not in INPUT_KINDS or (seq is not None and int(seq) != state.seq):
        return _unchanged(flow, state, ctx)
    call = dataclasses.replace(state, seq=state.seq + 1)
    result = KINDS[kind].on_input(flow, state.node, call, ctx, str(digits or ""), list(speech or ()))
    return _chain(flow, call, ctx, state.node, result)


def on_route_outcome(document, state, ctx, outcome, *, round=None, ring=None):
    """A route's round ended: OUTCOME "answered" (an agent took the call: the flow ends with it) or
    "nobody_answered" (the next round, or the "nobody answered" branch). RING (RouteTo.ring; or ROUND, its
    ordinal, weaker: another route's round 1 has it too) names the round; a stale one changes nothing."""
    flow = _flow(document)
    kind = (flow.node(state.node) or {}).get("kind")
    if (state.ended or kind != "route" or outcome not in ROUTE_OUTCOMES
            or (ring is not None and int(ring) != state.data.get("ring"))
            or (round is not None and int(round) != state.data.get("round"))):
        return Step(None, (), state)
    call = dataclasses.replace(state, seq=state.seq + 1)
    result = route.on_route_outcome(flow, state.node, call, ctx, outcome)
    if result is None:
        return Step(None, (), state)
    return _chain(flow, call, ctx, state.node, result)


def on_caller_gone(document, state, ctx, *, message_left=False, recording_started=False):
    """The caller's leg ended. In the mailbox, one whose recording had started (or is in) left a message; one
    who hung up during the greeting left none (escalated at once)."""
    flow = _flow(document)
    if state.ended:
        return Step(None, (), state)
    kind = (flow.node(state.node) or {}).get("kind")
    if kind == "voicemail":
        end = (EndCall(VOICEMAIL) if message_left or recording_started
               else EndCall(NO_MESSAGE, escalate=HUNG_UP_BEFORE_MESSAGE))
    elif kind == "route" and state.data.get("answered"):
        end = EndCall(ANSWERED, reason="the answered call ended")
    elif kind == "route":
        end = EndCall(ABANDONED, escalate="the caller hung up while agents were called")
    else:
        end = EndCall(ABANDONED, escalate="the caller hung up" if state.incident else "")
    new = dataclasses.replace(state, seq=state.seq + 1, ended=True)
    return Step(None, (end,), new, (Visit(state.node, kind or "", (), (end,)),))


def current_ncco(document, state, ctx):
    """What the caller at STATE should hear now (a repeated webhook, the fallback): no effects."""
    return _unchanged(_flow(document), state, ctx).ncco


# --- The chain -------------------------------------------------------------------------------------------------


def _chain(flow, call, ctx, node_id, result):
    """Follow RESULT (of NODE_ID) through Go results to the node where the caller waits."""
    visits = []
    entered = 1
    while True:
        kind = flow.node(node_id)["kind"]
        branch = result.branch if isinstance(result, Go) else ""
        visits.append(Visit(node_id, kind, tuple(result.ncco or ()), tuple(result.effects), branch))
        call = _carry(call, result.effects)
        if isinstance(result, Wait):
            ended = any(isinstance(effect, EndCall) for effect in result.effects)
            call = dataclasses.replace(call, node=node_id, data=dict(result.data), ended=ended)
            actions = [action for visit in visits for action in visit.ncco]
            keep = result.ncco is None and len(actions) == 0
            return Step(None if keep else _finish(actions), _effects(visits), call, tuple(visits))
        came_from = (node_id, result.branch)
        target = flow.node(result.next)
        if target is None or target.get("kind") not in KINDS:
            return _apology(flow, call, visits, f"{node_id} branch {result.branch!r} leads nowhere")
        if entered >= MAX_NODES_PER_EVENT:
            return _apology(flow, call, visits, f"more than {MAX_NODES_PER_EVENT} nodes in one event")
        entered += 1
        node_id = result.next
        call = dataclasses.replace(call, node=node_id, data={})
        result = KINDS[target["kind"]].enter(flow, node_id, call, ctx, came_from)


def _carry(call, effects):
    """What effects change of the call's state besides its node: its incident exists, a PIN's label."""
    for effect in effects:
        if isinstance(effect, CreateIncident):
            call = dataclasses.replace(call, incident=True)
        elif isinstance(effect, PinAccepted):
            call = dataclasses.replace(call, pin_label=effect.label)
    return call


def _effects(visits):
    return tuple(effect for visit in visits for effect in visit.effects)


def _apology(flow, call, visits, why):
    """End the call with a spoken apology (a document that slipped past validation)."""
    language = flow.language
    talk = ncco.talk(phrases.phrase(language, "error_goodbye"), language)
    end = EndCall(FLOW_ERROR, escalate="the call flow failed" if call.incident else "", reason=why)
    visits = [*visits, Visit(call.node, "error", (talk,), (LogLine(call.node, f"Call flow error: {why}."), end))]
    call = dataclasses.replace(call, ended=True)
    return Step(_finish([a for visit in visits for a in visit.ncco]), _effects(visits), call, tuple(visits))


def _unchanged(flow, state, ctx):
    """The NCCO for where the caller is (no effects, the same state)."""
    node = flow.node(state.node)
    kind = (node or {}).get("kind")
    if kind in WAITING_KINDS and not (state.ended and kind != "hangup"):
        actions = KINDS[kind].resume(flow, state.node, state, ctx)
    else:
        actions = [ncco.talk(phrases.phrase(flow.language, "error_goodbye"), flow.language)]
    return Step(_finish(actions), (), state)


def _finish(actions):
    """The NCCO as sent: talks and streams right before an input may be interrupted by it (bargeIn); Vonage
    refuses bargeIn where the next action that is not a talk or stream is not an input."""
    actions = [dict(action) for action in actions]
    before_input = False
    for action in reversed(actions):
        kind = action.get("action")
        if kind == "input":
            before_input = True
        elif kind in ("talk", "stream"):
            if before_input:
                action["bargeIn"] = True
            else:
                action.pop("bargeIn", None)
        else:
            before_input = False
    return actions
