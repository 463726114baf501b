"""message: speak text (the flow's language or the node's own) or play uploaded audio, then continue."""
from .common import Go, say


def enter(flow, node_id, call, ctx, came_from):
    node = flow.node(node_id)
    actions = say(ctx, flow.language_of(node), node.get("text") or "", node.get("audio"))
    return Go(node.get("next"), "next", tuple(actions))


def resume(flow, node_id, call, ctx):
    return []  # a message never keeps the caller: the engine never leaves a call here
