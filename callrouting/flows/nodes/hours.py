"""hours: branch on a support-hours calendar: "in hours", "out of hours", "holiday" (None: the out-of-hours target)."""
from .common import Go

STATUSES = ("in_hours", "out_of_hours", "holiday")


def enter(flow, node_id, call, ctx, came_from):
    node = flow.node(node_id)
    status = ctx.world.calendar_status(node.get("calendar"), ctx.now)
    if status not in STATUSES:
        status = "out_of_hours"
    target = node.get(status)
    if status == "holiday" and not target:
        target = node.get("out_of_hours")
    return Go(target, status)


def resume(flow, node_id, call, ctx):
    return []
