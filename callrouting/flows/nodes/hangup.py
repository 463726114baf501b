"""hangup: an optional message (default "Goodbye."), then the end of the call. Reached from a caller list's
"listed" branch it blocks the caller; after a route's "nobody answered" the call ends as nobody available. An
incident the call has is handed back to its escalation policy."""
from ..steps import BLOCKED, FLOW_ENDED, NO_AGENT, EndCall
from .common import Wait, phrase_talk, say


def goodbye(flow, node_id, ctx):
    node = flow.node(node_id)
    language = flow.language_of(node)
    return say(ctx, language, node.get("text") or "", node.get("audio")) or phrase_talk(language, "declined")


def enter(flow, node_id, call, ctx, came_from):
    branch = came_from[1] if came_from else ""
    outcome = {"listed": BLOCKED, "no_answer": NO_AGENT}.get(branch, FLOW_ENDED)
    escalate = "the call flow ended the call" if call.incident else ""
    if outcome == NO_AGENT and call.incident:
        escalate = "nobody took the call"
    return Wait(tuple(goodbye(flow, node_id, ctx)), (EndCall(outcome, escalate=escalate),))


def resume(flow, node_id, call, ctx):
    return goodbye(flow, node_id, ctx)
