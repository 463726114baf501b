"""Random valid call flows and random caller and agent behaviour, driven through the pure engine; after every
event the guarantees of live calls are checked: never dead air, never two agents connected, no phone rung twice
in one route round, exactly one incident for a call that reaches a route, voicemail or incident node, bounded
work per event, and duplicate or late events harmless.

Documents are valid by construction: branches of nodes without caller input lead forward only (so every cycle
passes through a menu or PIN node), the last node is a hang-up or voicemail, every branch names an existing
node (or is None where the contract allows it)."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrouting.emulator.validation import ncco_problems
from callrouting.flows import document as flow_document
from callrouting.flows import engine
from callrouting.flows.dryrun import StaticWorld
from callrouting.flows.steps import FLOW_ERROR, CreateIncident, EndCall, RouteTo
from tests import flow_documents as fd

KINDS = ["message", "menu", "hours", "route", "voicemail", "pin", "caller_list", "incident", "hangup"]
INPUT_KINDS = ("menu", "pin")
KEYS = list("0123456789*#")
KEYWORDS = ["outage", "billing", "sales", "billing support", "europe", "help"]
TARGETS = [fd.POLICY_3, {"type": "policy", "id": 5}, {"type": "user", "id": 2}, {"type": "user", "id": 4},
           {"type": "schedule", "id": 4}, fd.EXTERNAL]
CALLERS = ["+4915550000100", "+442071234567", "", "Unknown", "+441111111111"]
INCIDENT_KINDS = ("route", "voicemail", "incident")


@st.composite
def documents(draw):
    count = draw(st.integers(2, 10))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(count - 1)] + [draw(st.sampled_from(["hangup", "voicemail"]))]
    ids = [f"n{i}" for i in range(count)]

    def forward(i, optional=False):
        choices = ids[i + 1:]
        if optional:
            return draw(st.none() | st.sampled_from(choices))
        return draw(st.sampled_from(choices))

    def anywhere(optional=False):
        return draw(st.none() | st.sampled_from(ids)) if optional else draw(st.sampled_from(ids))

    text = st.sampled_from(["", "Welcome.", ("Hallo und willkommen. " * 45).strip()])  # up to 1,000 characters
    audio = st.sampled_from([None, 11])
    nodes = {}
    for i, (node_id, kind) in enumerate(zip(ids, kinds)):
        if kind == "message":
            node = fd.message(forward(i), text=draw(text) or "Hello.", audio=draw(audio))
        elif kind == "menu":
            keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True))
            branches = [(key, draw(st.sampled_from(KEYWORDS)), anywhere()) for key in keys]
            node = fd.menu(branches, text=draw(text), audio=draw(audio), prompt_alone=draw(st.booleans()),
                           retries=draw(st.integers(1, 4)), no_input=anywhere(optional=True))
            if node["prompt_alone"] and not node["prompt"]["text"] and not node["prompt"]["audio"]:
                node["prompt"]["text"] = "Choose."  # validation requires something to hear
        elif kind == "hours":
            node = fd.hours(forward(i), forward(i), forward(i, optional=True))
        elif kind == "route":
            targets = draw(st.lists(st.sampled_from(TARGETS), min_size=1, max_size=5))
            node = fd.route(targets, style=draw(st.sampled_from(["sequential", "random", "simultaneous"])),
                            repeat=draw(st.integers(1, 3)), no_answer=forward(i, optional=True),
                            hold_music=draw(audio))
        elif kind == "voicemail":
            node = fd.voicemail(text=draw(text), audio=draw(audio), transcription=draw(st.booleans()))
        elif kind == "pin":
            node = fd.pin(anywhere(), anywhere(), codes=(("1234", "Globex"), ("99", "Initech")),
                          retries=draw(st.integers(1, 3)))
        elif kind == "caller_list":
            node = fd.caller_list(["+4420*", "anonymous", "+441111111111"], forward(i), forward(i))
        elif kind == "incident":
            node = fd.incident(forward(i), accept=draw(st.booleans()))
        else:
            node = fd.hangup(text=draw(st.sampled_from(["", "Bye."])), audio=draw(audio))
        nodes[node_id] = node
    reachable, todo = {ids[0]}, [ids[0]]
    while todo:  # an unreachable node is a validation error: leave it out
        for branch in flow_document.branches(nodes[todo.pop()]):
            if branch.target is not None and branch.target not in reachable:
                reachable.add(branch.target)
                todo.append(branch.target)
    nodes = {node_id: node for node_id, node in nodes.items() if node_id in reachable}
    return fd.document(ids[0], draw(st.sampled_from(["en-GB", "de-DE"])), **nodes)


ANY_EVENT = st.one_of(
    st.tuples(st.just("key"), st.sampled_from(KEYS)),
    st.tuples(st.just("say"), st.sampled_from(KEYWORDS + ["nothing useful", "two"])),
    st.tuples(st.just("pin"), st.sampled_from(["1234", "99", "0000", "12345#"])),
    st.tuples(st.just("silence"), st.none()),
    st.tuples(st.just("agent_answers"), st.integers(0, 4)),
    st.tuples(st.just("round_ends"), st.none()),
    st.tuples(st.just("stale_round"), st.none()),
    st.tuples(st.just("again"), st.none()),  # the previous event delivered again
    st.tuples(st.just("caller_gone"), st.booleans()),
)
# Mostly what the caller or the agents can do where the call is, sometimes anything (late, stray, duplicate).
LIKELY = {
    "menu": st.one_of(st.tuples(st.sampled_from(["key"]), st.sampled_from(KEYS)),
                      st.tuples(st.just("say"), st.sampled_from(KEYWORDS + ["nothing useful", "two"])),
                      st.tuples(st.just("silence"), st.none())),
    "pin": st.one_of(st.tuples(st.just("pin"), st.sampled_from(["1234", "99", "0000", "12345#"])),
                     st.tuples(st.just("silence"), st.none())),
    "route": st.one_of(st.tuples(st.just("round_ends"), st.none()),
                       st.tuples(st.just("agent_answers"), st.integers(0, 4))),
}


def events_at(kind):
    likely = LIKELY.get(kind)
    return st.one_of(likely, likely, likely, ANY_EVENT) if likely is not None else ANY_EVENT


def check_ncco(ncco):
    """Never dead air: nothing new, or a valid NCCO ending with something the caller hears or waits on."""
    if ncco is None:
        return
    assert ncco, "an empty NCCO leaves the caller in silence"
    assert ncco[-1]["action"] in engine.AUDIBLE_ENDS, ncco
    assert not ncco_problems(ncco), ncco_problems(ncco)
    for i, action in enumerate(ncco):
        if action.get("bargeIn"):
            after = [a["action"] for a in ncco[i + 1:] if a["action"] not in ("talk", "stream")]
            assert after and after[0] == "input", ncco


def deliver(doc, state, ctx, event):
    kind, value = event
    if kind == "key":
        return engine.on_input(doc, state, ctx, value, [], seq=state.seq)
    if kind == "say":
        return engine.on_input(doc, state, ctx, "", [value], seq=state.seq)
    if kind == "pin":
        return engine.on_input(doc, state, ctx, value, [], seq=state.seq)
    if kind == "silence":
        return engine.on_input(doc, state, ctx, "", [], seq=state.seq)
    if kind == "agent_answers":
        return engine.on_route_outcome(doc, state, ctx, "answered", ring=state.data.get("ring"))
    if kind == "round_ends":
        return engine.on_route_outcome(doc, state, ctx, "nobody_answered", ring=state.data.get("ring"))
    if kind == "stale_round":
        return engine.on_route_outcome(doc, state, ctx, "nobody_answered", ring=int(state.data.get("ring") or 0) - 1)
    return engine.on_caller_gone(doc, state, ctx, recording_started=value)


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents(), data=st.data(), count=st.integers(3, 30), caller=st.sampled_from(CALLERS),
       status=st.sampled_from(["in_hours", "out_of_hours", "holiday"]), uuid=st.sampled_from(["a", "b", "c"]))
def test_random_flows_keep_every_guarantee(doc, data, count, caller, status, uuid):
    assert flow_document.validate(doc) == []  # the generator makes only flows that could be published
    world = StaticWorld(calendars={7: status}, targets=dict(fd.WORLD_TARGETS), audio={11: "welcome.mp3"})
    ctx = fd.context(caller=caller, call_uuid=uuid, the_world=world)
    incidents, connected, reached_incident_node = 0, 0, False
    previous_event, previous_state = None, None

    def check(step, state_before):
        nonlocal incidents, reached_incident_node
        check_ncco(step.ncco)
        assert len(step.visits) <= engine.MAX_NODES_PER_EVENT + 1
        assert not any(isinstance(e, EndCall) and e.outcome == FLOW_ERROR for e in step.effects), step.visits
        for effect in step.effects:
            if isinstance(effect, RouteTo):
                phones = [t.phone for t in effect.targets]
                assert phones and len(phones) == len(set(phones)), "a phone rung twice in one round"
        incidents += sum(isinstance(e, CreateIncident) for e in step.effects)
        reached_incident_node |= any(v.kind in INCIDENT_KINDS for v in step.visits)
        assert incidents == (1 if reached_incident_node else 0)
        if not step.changed:
            assert step.state == state_before and step.effects == ()

    step = engine.start(doc, ctx)
    check(step, None)
    state = step.state
    for _ in range(count):
        event = data.draw(events_at(doc["nodes"].get(state.node, {}).get("kind")))
        if event[0] == "again":
            if previous_event is None:
                continue
            # The same webhook once more, for the state it was meant for: nothing changes.
            repeat = deliver(doc, previous_state, ctx, previous_event)
            assert repeat.state == previous_after  # the engine is a function: same input, same answer
            if state != previous_state:  # the first delivery moved the call on: the second changes nothing
                replay = deliver_as_stale(doc, state, ctx, previous_event, previous_state)
                assert not replay.changed and replay.state == state and replay.effects == ()
                check_ncco(replay.ncco)
            continue
        step = deliver(doc, state, ctx, event)
        check(step, state)
        if event[0] == "agent_answers" and step.changed:
            connected += 1
        assert connected <= 1, "two agents connected"
        if state.ended:
            assert not step.changed, "an ended call moved on"
        previous_event, previous_state, previous_after = event, state, step.state
        state = step.state


def deliver_as_stale(doc, state, ctx, event, meant_for):
    """EVENT as Vonage would deliver it again: with the seq (input) or ring (route outcome) of MEANT_FOR."""
    kind, value = event
    if kind in ("key", "pin"):
        return engine.on_input(doc, state, ctx, value, [], seq=meant_for.seq)
    if kind == "say":
        return engine.on_input(doc, state, ctx, "", [value], seq=meant_for.seq)
    if kind == "silence":
        return engine.on_input(doc, state, ctx, "", [], seq=meant_for.seq)
    if kind in ("agent_answers", "round_ends", "stale_round"):
        outcome = "answered" if kind == "agent_answers" else "nobody_answered"
        ring = meant_for.data.get("ring", -1) if kind != "stale_round" else -1
        return engine.on_route_outcome(doc, state, ctx, outcome, ring=ring)
    return engine.on_caller_gone(doc, state, ctx, recording_started=value)
