"""One module per node kind, each with the same entry points:

- ``enter(flow, node_id, call, ctx, came_from) -> Go | Wait``: the caller arrives at the node;
- ``on_input(flow, node_id, call, ctx, digits, speech) -> Go | Wait`` (menu, pin): the caller's answer;
- ``on_route_outcome(flow, node_id, call, ctx, outcome) -> Go | Wait | None`` (route): the round ended;
- ``resume(flow, node_id, call, ctx) -> list``: the NCCO for a caller who is at the node already (a repeated
  webhook, the fallback), with no effects.
"""
