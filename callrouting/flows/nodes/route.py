"""route: ring targets (escalation policies, users, on-call schedules, external numbers) while the caller holds,
one after another, in random order (seeded by the call's uuid, so a dry run and a replay agree) or all at once;
repeat the whole list REPEAT times; "answered" ends the flow with the call, "nobody answered" continues with any
node (None: "nobody available" and the end of the call).

The targets are resolved once, on entry, into a snapshot kept in the node's state; a number reached through two
targets (a policy and its user) is rung once per round."""
import random

from ... import ncco, phrases
from ..steps import NO_AGENT, CreateIncident, DialTarget, EndCall, LogLine, RouteTo
from .common import Go, Wait, phrase_talk

STYLES = ("sequential", "random", "simultaneous")


def resolve(ctx, node):
    """The node's targets as DialTargets at ctx.now, each phone number once, in the document's order."""
    seen, targets = set(), []
    for target in ctx.world.dial_targets(list(node.get("targets") or ()), ctx.now):
        if target.phone and target.phone not in seen:
            seen.add(target.phone)
            targets.append(target)
    return targets


def round_order(targets, style, call_uuid, node_id, round_number):
    """TARGETS in the order round ROUND_NUMBER rings them."""
    targets = list(targets)
    if style == "random":
        random.Random(f"{call_uuid}:{node_id}:{round_number}").shuffle(targets)
    return targets


def _about(flow, node_id, call):
    return ", ".join(filter(None, [flow.name_of(node_id), call.pin_label]))


def _route_to(flow, node_id, call, ctx, targets, round_number):
    node = flow.node(node_id)
    style = node.get("style") if node.get("style") in STYLES else "sequential"
    return RouteTo(
        node_id,
        tuple(round_order(targets, style, ctx.call_uuid, node_id, round_number)),
        style,
        int(node.get("ring_timeout") or 30),
        round_number,
        int(node.get("repeat") or 1),
        _about(flow, node_id, call),
        ctx.urls.hold_music(node.get("hold_music")),
        call.seq,
    )


def hold_ncco(flow, node_id, ctx, *, announce):
    node = flow.node(node_id)
    language = flow.language_of(node)
    actions = phrase_talk(language, "connecting") if announce else []
    actions.append(ncco.conversation(
        ctx.conversation, start_on_enter=False, end_on_exit=True, music_on_hold_url=ctx.urls.hold_music(node.get("hold_music"))
    ))
    return actions


def _nobody_answered(flow, node_id, call, ctx, effects=()):
    node = flow.node(node_id)
    if node.get("no_answer"):
        return Go(node["no_answer"], "no_answer", effects=tuple(effects))
    language = flow.language_of(node)
    end = EndCall(NO_AGENT, escalate="nobody took the call")
    return Wait((ncco.talk(phrases.phrase(language, "nobody_available"), language),), (*effects, end), dict(call.data))


def enter(flow, node_id, call, ctx, came_from):
    node = flow.node(node_id)
    effects = []
    if not call.incident:
        caller = ctx.caller or "an unknown number"
        about = _about(flow, node_id, call)
        policy = next((t.get("id") for t in node.get("targets") or () if t.get("type") == "policy"), None)
        effects.append(CreateIncident(
            node_id,
            title=f"Call from {caller} for {about}",
            details=f"{caller} called {ctx.number_name}: {about}.",
            policy=policy,
            pin_label=call.pin_label,
        ))
    targets = resolve(ctx, node)
    if not targets:
        effects.append(LogLine(node_id, f"Nobody to call on “{flow.name_of(node_id)}”."))
        return _nobody_answered(flow, node_id, call, ctx, effects)
    effects.append(_route_to(flow, node_id, call, ctx, targets, 1))
    data = {"round": 1, "ring": call.seq, "targets": [[t.kind, t.user_id, t.phone, t.label] for t in targets]}
    return Wait(tuple(hold_ncco(flow, node_id, ctx, announce=True)), tuple(effects), data)


def on_route_outcome(flow, node_id, call, ctx, outcome):
    """The round call.data["round"] ended: OUTCOME "answered" or "nobody_answered". None: nothing changes."""
    node = flow.node(node_id)
    data = call.data
    if data.get("answered") or "round" not in data:
        return None
    if outcome == "answered":
        return Wait(None, (), {**data, "answered": True})
    if outcome != "nobody_answered":
        return None
    round_number = int(data["round"])
    if round_number < int(node.get("repeat") or 1):
        targets = [DialTarget(*row) for row in data.get("targets") or ()]
        effect = _route_to(flow, node_id, call, ctx, targets, round_number + 1)
        return Wait(None, (effect,), {**data, "round": round_number + 1, "ring": call.seq})
    return _nobody_answered(flow, node_id, call, ctx)


def resume(flow, node_id, call, ctx):
    return hold_ncco(flow, node_id, ctx, announce=False)
