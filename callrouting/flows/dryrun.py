"""The dry run: the engine with a recorder. For a time, a caller number and scripted inputs it returns the path
through the flow, what the caller hears at each node and who would be rung in which order, from the same code
as live calls, with no call placed.

Inputs: "1" (a key), "say:billing" (speech), "pin:1234" (a code), "silence" (no input), "nobody_answers" and
"answers" (the end of a route's round). `who_would_be_called` answers for one route node.
"""
from dataclasses import dataclass, field

from . import engine
from .nodes import route
from .nodes.common import Flow
from .steps import Context, CreateIncident, DialTarget, EndCall, LogLine, PinAccepted, RouteTo, StartVoicemail

DRY_RUN_UUID = "dry-run"
AUDIO_SCHEME = "dry-run:audio/"
MUSIC_SCHEME = "dry-run:music/"
DEFAULT_MUSIC = "default"
MAX_INPUTS = 100


class DryRunUrls:
    """Readable placeholders where a live call has webhook URLs; audio ids stay recognisable for the recorder."""

    def input(self, seq):
        return f"dry-run:input/{seq}"

    def recording(self):
        return "dry-run:recording"

    def recording_started(self):
        return "dry-run:recording-started"

    def transcription(self):
        return "dry-run:transcription"

    def audio(self, audio_id):
        return f"{AUDIO_SCHEME}{audio_id}"

    def hold_music(self, audio_id):
        return f"{MUSIC_SCHEME}{audio_id or DEFAULT_MUSIC}"


@dataclass
class StaticWorld:
    """A world given as data (tests, and the dry run of a document against fixed answers).

    CALENDARS {id: status, or a callable at -> status}; TARGETS {(type, id): [DialTarget]} for "policy", "user"
    and "schedule" (an external number needs no entry); AUDIO {id: name} for the dry run's "audio: <name>"."""

    calendars: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    audio: dict = field(default_factory=dict)

    def calendar_status(self, calendar_id, at):
        status = self.calendars.get(calendar_id, "in_hours")
        return status(at) if callable(status) else status

    def dial_targets(self, targets, at):
        found = []
        for target in targets:
            if target.get("type") == "external":
                number = target.get("number") or ""
                found.append(DialTarget("external", None, number, target.get("label") or number))
            else:
                found.extend(self.targets.get((target.get("type"), target.get("id")), []))
        return found

    def audio_name(self, audio_id):
        return self.audio.get(audio_id) or f"audio {audio_id}"


@dataclass(frozen=True)
class DryRun:
    steps: list
    state: object  # the engine's CallState at the end
    ended: bool


def _hears(actions, world):
    heard = []
    for action in actions or ():
        kind = action.get("action")
        if kind == "talk":
            heard.append(action["text"])
        elif kind == "stream":
            heard.append(f"audio: {_audio_name(action['streamUrl'][0], world)}")
        elif kind == "record":
            heard.append(f"(beep: the message is recorded, at most {action['timeOut']} s)")
        elif kind == "conversation":
            music = (action.get("musicOnHoldUrl") or [""])[0]
            name = music.removeprefix(MUSIC_SCHEME)
            heard.append("(hold music)" if name in ("", DEFAULT_MUSIC) else f"(hold music: {_audio_name(AUDIO_SCHEME + name, world)})")
    return heard


def _audio_name(url, world):
    if url.startswith(AUDIO_SCHEME):
        audio_id = url.removeprefix(AUDIO_SCHEME)
        namer = getattr(world, "audio_name", None)
        key = int(audio_id) if audio_id.isdigit() else audio_id
        return namer(key) if namer else f"audio {audio_id}"
    return url


def describe(effect):
    """An effect as a small JSON dict for the dry run's answer."""
    if isinstance(effect, RouteTo):
        return {"type": "route", "node": effect.node_id, "round": effect.round, "repeat": effect.repeat,
                "style": effect.style, "ring_timeout": effect.ring_timeout, "dials": [t.label for t in effect.targets]}
    if isinstance(effect, CreateIncident):
        return {"type": "create_incident", "node": effect.node_id, "title": effect.title, "policy": effect.policy,
                "priority": effect.priority, "alert_source": effect.alert_source, "pin_label": effect.pin_label}
    if isinstance(effect, StartVoicemail):
        return {"type": "voicemail", "node": effect.node_id, "max_length": effect.max_length,
                "transcription": effect.transcription}
    if isinstance(effect, EndCall):
        return {"type": "end_call", "outcome": effect.outcome, "escalate": bool(effect.escalate)}
    if isinstance(effect, PinAccepted):
        return {"type": "pin_accepted", "node": effect.node_id, "label": effect.label}
    if isinstance(effect, LogLine):
        return {"type": "log", "node": effect.node_id, "text": effect.text}
    return {"type": type(effect).__name__}


def _record(step, event, world):
    rows = []
    for visit in step.visits:
        rows.append({
            "event": event,
            "node": visit.node,
            "kind": visit.kind,
            "branch": visit.branch,
            "hears": _hears(visit.ncco, world),
            "dials": [[t.label for t in e.targets] for e in visit.effects if isinstance(e, RouteTo)],
            "effects": [describe(e) for e in visit.effects],
        })
    return rows


def _event(document, state, ctx, item):
    """The engine's step for one scripted input ITEM."""
    item = str(item or "").strip()
    if item == "nobody_answers":
        return engine.on_route_outcome(document, state, ctx, "nobody_answered")
    if item == "answers":
        return engine.on_route_outcome(document, state, ctx, "answered")
    if item.startswith("say:"):
        return engine.on_input(document, state, ctx, "", [item[4:]])
    if item.startswith("pin:"):
        return engine.on_input(document, state, ctx, item[4:], [])
    if item in ("", "silence", "no_input"):
        return engine.on_input(document, state, ctx, "", [])
    return engine.on_input(document, state, ctx, item, [])


def context(*, at, caller, world, number_name="", call_uuid=DRY_RUN_UUID):
    return Context(now=at, caller=caller or "", call_uuid=call_uuid, world=world, urls=DryRunUrls(),
                   number_name=number_name, conversation="dry-run")


def dry_run(document, *, at, caller="", inputs=(), world, number_name="", call_uuid=DRY_RUN_UUID):
    """Run DOCUMENT for a call at AT from CALLER with the scripted INPUTS. Returns DryRun(steps, state, ended):
    one step per node visited, {event, node, kind, hears, dials: [[labels per round]], effects}. An input the
    call cannot take where it is (a key while on hold) is recorded with kind "ignored"."""
    flow = document if isinstance(document, Flow) else Flow(engine._as_dict(document))
    ctx = context(at=at, caller=caller, world=world, number_name=number_name, call_uuid=call_uuid)
    step = engine.start(flow, ctx)
    steps = _record(step, "call", world)
    state = step.state
    for item in list(inputs)[:MAX_INPUTS]:
        if state.ended:
            break
        step = _event(flow, state, ctx, item)
        if not step.changed:
            steps.append({"event": item, "node": state.node, "kind": "ignored", "branch": "", "hears": [], "dials": [], "effects": []})
            continue
        steps.extend(_record(step, item, world))
        state = step.state
    return DryRun(steps=steps, state=state, ended=state.ended)


def who_would_be_called(document, node_id, at, world, *, call_uuid=DRY_RUN_UUID):
    """The DialTargets route NODE_ID would ring first at AT, in order (each phone once; users without a phone
    left out). A random route shows the order the call CALL_UUID would get."""
    flow = document if isinstance(document, Flow) else Flow(engine._as_dict(document))
    node = flow.node(node_id)
    if not node or node.get("kind") != "route":
        return []
    ctx = context(at=at, caller="", world=world, call_uuid=call_uuid)
    return route.round_order(route.resolve(ctx, node), node.get("style"), call_uuid, node_id, 1)




def callers_hear(document, *, at, world, caller="", number_name=""):
    """What a caller hears first at AT, as one text (the dry run of a call with no input yet: the greeting and
    menu, a message then hold music, the mailbox...). Audio shows as "audio: <name>"."""
    run = dry_run(document, at=at, caller=caller, inputs=(), world=world, number_name=number_name)
    return " ".join(text for step in run.steps for text in step["hears"])


STYLE_WORDS = {"sequential": "one after another", "random": "in random order", "simultaneous": "all at once"}


def routes_now(document, at, world):
    """The route nodes a call arriving at AT could reach, in the order a caller meets them (support hours decided
    at AT, every menu branch, both sides of a caller list or PIN): [{"node", "key", "name", "style", "dials"
    (DialTargets), "otherwise" (the node id of "nobody answered", or None)}]."""
    flow = document if isinstance(document, Flow) else Flow(engine._as_dict(document))
    ctx = context(at=at, caller="", world=world)
    prefetch = getattr(world, "prefetch", None)
    if prefetch is not None:  # every route's people in one go (DatabaseWorld: a fixed number of queries)
        prefetch([t for node in flow.nodes.values() if node.get("kind") == "route" for t in node.get("targets") or ()], at)
    rows, seen, todo = [], set(), [(flow.start, "")]
    while todo:
        node_id, key = todo.pop(0)
        node = flow.node(node_id)
        if node is None or node_id in seen:
            continue
        seen.add(node_id)
        kind = node.get("kind")
        if kind == "route":
            rows.append({"node": node_id, "key": key, "name": flow.name_of(node_id),
                         "style": STYLE_WORDS.get(node.get("style"), STYLE_WORDS["sequential"]),
                         "dials": route.round_order(route.resolve(ctx, node), node.get("style"), DRY_RUN_UUID, node_id, 1),
                         "otherwise": node.get("no_answer")})
            todo.append((node.get("no_answer"), ""))
        elif kind == "hours":
            status = world.calendar_status(node.get("calendar"), at)
            target = node.get(status) if status in ("in_hours", "out_of_hours", "holiday") else None
            todo.append((target or node.get("out_of_hours"), key))
        elif kind == "menu":
            todo.extend((b.get("next"), str(b.get("key") or "")) for b in node.get("branches") or ())
            todo.append((node.get("no_input"), ""))
        elif kind in ("message", "incident"):
            todo.append((node.get("next"), key))
        elif kind == "pin":
            todo.extend([(node.get("next"), key), (node.get("wrong"), "")])
        elif kind == "caller_list":
            todo.extend([(node.get("not_listed"), key), (node.get("listed"), "")])
    return rows
