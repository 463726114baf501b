"""incident: create the call's incident here, with this node's alert source, priority, escalation policy and
"accept when answered" (a call has one incident: a later route or voicemail node makes none)."""
from ..steps import CreateIncident, LogLine
from .common import Go


def caller_words(ctx):
    return ctx.caller or "an unknown number"


def enter(flow, node_id, call, ctx, came_from):
    node = flow.node(node_id)
    if call.incident:
        effects = (LogLine(node_id, "The call has its incident already."),)
    else:
        label = f" ({call.pin_label})" if call.pin_label else ""
        effects = (CreateIncident(
            node_id,
            title=f"Call from {caller_words(ctx)}{label} to {ctx.number_name}".strip(),
            details=f"{caller_words(ctx)} called {ctx.number_name}: {flow.name_of(node_id)}.",
            alert_source=node.get("alert_source"),
            priority=node.get("priority") or "",
            policy=node.get("policy"),
            accept_when_answered=node.get("accept_when_answered", True) is not False,
            pin_label=call.pin_label,
        ),)
    return Go(node.get("next"), "next", effects=effects)


def resume(flow, node_id, call, ctx):
    return []
