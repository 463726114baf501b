"""Simple mode: a number's settings compiled into a flow document, and the recogniser of such documents.

`compile_number(number)` reads today's settings (greeting, menu of routing options, support hours and their
targets, calling styles, voicemail, voicemail-only mode, custom audio) and returns the document that behaves as
they say. `compile_settings()` does the work on plain values (NumberSettings), so the data migration can use it
with historical models. `is_simple(document)` is True when the document is exactly one compile_settings() could
produce: the number's settings page shows such a flow; any other opens in the flow editor.

What the settings mean as nodes (node ids are fixed, so versions compare node by node):
- the greeting and the menu are one menu node ("menu"): the greeting is its prompt, each routing option a branch
  (its digit, its label as the keyword), the generated "Press 1 or say ..." unless "greeting only" (or a greeting
  recording, which replaces the spoken greeting and menu); no input after 3 tries: the first option;
- a routing option is a route node ("option-<digit>") to its escalation policy, one after another or all at
  once, ringing for the number's ringing timeout, hold music the number's; nobody answering: voicemail when it is
  on, else "nobody available";
- a single option, or an option as a support-hours target: the greeting as a message node
  ("greeting-<route id>"), then the route (a number with one option now plays its greeting first);
- a calling style chosen for in or out of support hours gives that path its own menu and route nodes
  ("menu-simultaneous", "option-2-sequential");
- voicemail as a target, and voicemail-only mode: an incident node ("incident": the number's alert source, the
  first option's escalation policy) then the voicemail node ("voicemail");
- support hours: an hours node ("hours") on the number's calendar (holidays count as out of hours); without a
  calendar every call is out of hours, as with a calendar that has no ranges;
- no routing option: "nobody available" and hang up ("nobody-available").

Two settings are not part of the document and stay on the number (they apply to every flow): "keep the incident
open when an answered call ends" and "auto raise" (a call sent to voicemail out of hours starts low priority and is
raised at the next support hours).
"""
import re
from dataclasses import dataclass, replace

from incidents.models import Priority

from .. import phrases
from . import document as doc

MENU, OPTION, VOICEMAIL = "menu", "option", "voicemail"  # models.Target
AS_OPTION, SIMULTANEOUS, SEQUENTIAL = "option", "simultaneous", "sequential"  # models.CallingStyle
MENU_TRIES = 3


@dataclass(frozen=True)
class OptionSettings:
    digit: int
    label: str
    policy: int
    simultaneous: bool = False


@dataclass(frozen=True)
class NumberSettings:
    """A number's settings as plain values (what compile_settings needs; ids, never model instances)."""

    language: str = phrases.DEFAULT_LANGUAGE
    greeting: str = ""
    greeting_only: bool = False
    greeting_audio: int | None = None
    hold_music: int | None = None
    mailbox_audio: int | None = None
    ringing_timeout: int = 30
    voicemail_enabled: bool = False
    voicemail_greeting: str = ""
    voicemail_max_length: int = 120
    voicemail_transcription: bool = True
    voicemail_only: bool = False
    support_hours_enabled: bool = False
    calendar: int | None = None
    in_hours_target: str = MENU
    in_hours_option: int | None = None  # a digit
    in_hours_calling: str = AS_OPTION
    out_of_hours_target: str = MENU
    out_of_hours_option: int | None = None
    out_of_hours_calling: str = AS_OPTION
    alert_source: int | None = None
    priority: str = Priority.HIGH
    options: tuple = ()


def settings_of(number, options=None, audio=None):
    """The NumberSettings of NUMBER (a RoutingNumber, also a historical one in a migration). OPTIONS: its routing
    options in menu order, AUDIO: {kind: NumberAudio id} of its recordings; both loaded when not given."""
    if options is None:
        options = list(number.options.order_by("position", "digit"))
    if audio is None:
        audio = {a.kind: a.pk for a in number.audio_files.all() if a.file} if number.pk else {}
    digit_of = {o.pk: o.digit for o in options}
    alert_source = getattr(number, "alert_source", None)
    return NumberSettings(
        language=number.language,
        greeting=(number.greeting or "").strip(),
        greeting_only=number.greeting_only,
        greeting_audio=audio.get("greeting"),
        hold_music=audio.get("hold_music"),
        mailbox_audio=audio.get("mailbox_greeting"),
        ringing_timeout=number.ringing_timeout,
        voicemail_enabled=number.voicemail_enabled,
        voicemail_greeting=(number.voicemail_greeting or "").strip(),
        voicemail_max_length=number.voicemail_max_length,
        voicemail_transcription=number.voicemail_transcription,
        voicemail_only=number.voicemail_only,
        support_hours_enabled=number.support_hours_enabled,
        calendar=number.support_calendar_id,
        in_hours_target=number.in_hours_target,
        in_hours_option=digit_of.get(number.in_hours_option_id),
        in_hours_calling=number.in_hours_calling,
        out_of_hours_target=number.out_of_hours_target,
        out_of_hours_option=digit_of.get(number.out_of_hours_option_id),
        out_of_hours_calling=number.out_of_hours_calling,
        alert_source=number.alert_source_id,
        priority=alert_source.priority if alert_source is not None else Priority.HIGH,
        options=tuple(
            OptionSettings(o.digit, " ".join(o.label.split()), o.escalation_policy_id, o.simultaneous) for o in options
        ),
    )


def compile_number(number, options=None, audio=None):
    """The flow document (a dict) that behaves as NUMBER's settings say (see the module docstring)."""
    return compile_settings(settings_of(number, options, audio))


class _Builder:
    def __init__(self, s):
        self.s = s
        self.nodes = {}

    def add(self, node_id, node):
        self.nodes.setdefault(node_id, node)
        return node_id

    def entry(self, target, digit, calling):
        """The first node of a call sent to TARGET (with the option DIGIT, the CALLING style)."""
        s = self.s
        if target == VOICEMAIL and s.voicemail_enabled:
            return self.direct_voicemail()
        if target == OPTION:
            option = next((o for o in s.options if o.digit == digit), None)
            if option is not None:
                return self.greeting_then(self.route(option, calling))
        if not s.options:
            return self.add("nobody-available", {
                "kind": doc.Kind.HANGUP, "name": "Nobody available",
                "text": phrases.phrase(s.language, "nobody_available"), "audio": None, "language": None,
            })
        if len(s.options) == 1:
            return self.greeting_then(self.route(s.options[0], calling))
        return self.menu(calling)

    def greeting_then(self, next_id):
        s = self.s
        if not s.greeting and s.greeting_audio is None:
            return next_id
        return self.add(f"greeting-{next_id}", {
            "kind": doc.Kind.MESSAGE, "name": "Greeting", "text": s.greeting, "audio": s.greeting_audio,
            "language": None, "next": next_id,
        })

    def menu(self, calling):
        s = self.s
        node_id = "menu" if calling == AS_OPTION else f"menu-{calling}"
        if node_id in self.nodes:
            return node_id
        # A recording replaces the spoken greeting and the generated menu; "greeting only" without a greeting
        # would leave the caller in silence, so the menu is spoken then.
        alone = s.greeting_audio is not None or (s.greeting_only and bool(s.greeting))
        branches = [{"key": str(o.digit), "keyword": o.label, "next": self.route(o, calling)} for o in s.options]
        return self.add(node_id, {
            "kind": doc.Kind.MENU, "name": "Menu", "prompt": {"text": s.greeting, "audio": s.greeting_audio},
            "prompt_alone": alone, "retries": MENU_TRIES, "language": None, "branches": branches, "no_input": None,
        })

    def route(self, option, calling):
        s = self.s
        node_id = f"option-{option.digit}" if calling == AS_OPTION else f"option-{option.digit}-{calling}"
        if node_id in self.nodes:
            return node_id
        style = calling if calling != AS_OPTION else (SIMULTANEOUS if option.simultaneous else SEQUENTIAL)
        return self.add(node_id, {
            "kind": doc.Kind.ROUTE, "name": option.label, "targets": [{"type": "policy", "id": option.policy}],
            "style": style, "ring_timeout": s.ringing_timeout, "repeat": 1, "hold_music": s.hold_music,
            "no_answer": self.voicemail() if s.voicemail_enabled else None,
        })

    def voicemail(self):
        s = self.s
        return self.add("voicemail", {
            "kind": doc.Kind.VOICEMAIL, "name": "Voicemail",
            "greeting": {"text": s.voicemail_greeting, "audio": s.mailbox_audio},
            "max_length": s.voicemail_max_length, "transcription": s.voicemail_transcription,
        })

    def direct_voicemail(self):
        s = self.s
        return self.add("incident", {
            "kind": doc.Kind.INCIDENT, "name": "Incident", "alert_source": s.alert_source, "priority": s.priority,
            "policy": s.options[0].policy if s.options else None, "accept_when_answered": True,
            "next": self.voicemail(),
        })


def compile_settings(s):
    """The document for NumberSettings S."""
    b = _Builder(s)
    if s.voicemail_only:
        start = b.direct_voicemail()
    elif not s.support_hours_enabled:
        start = b.entry(MENU, None, AS_OPTION)
    elif s.calendar is None:
        start = b.entry(s.out_of_hours_target, s.out_of_hours_option, s.out_of_hours_calling)
    else:
        start = b.add("hours", {"kind": doc.Kind.HOURS, "name": "Support hours", "calendar": s.calendar,
                                "in_hours": None, "out_of_hours": None, "holiday": None})
        b.nodes["hours"]["in_hours"] = b.entry(s.in_hours_target, s.in_hours_option, s.in_hours_calling)
        b.nodes["hours"]["out_of_hours"] = b.entry(s.out_of_hours_target, s.out_of_hours_option, s.out_of_hours_calling)
    return {"schema": doc.SCHEMA, "language": s.language, "start": start, "nodes": b.nodes}


# --- The recogniser -----------------------------------------------------------------------------------------

_ROUTE_ID = re.compile(r"^option-([1-9])(?:-(simultaneous|sequential))?$")
_MENU_ID = re.compile(r"^menu(?:-(simultaneous|sequential))?$")


def _decode(node_id):
    """(target, digit, calling) of an entry node id that compile_settings made, or None."""
    if node_id.startswith("greeting-"):
        node_id = node_id[len("greeting-"):]
    if m := _MENU_ID.match(node_id):
        return MENU, None, m.group(1) or AS_OPTION
    if m := _ROUTE_ID.match(node_id):
        return OPTION, int(m.group(1)), m.group(2) or AS_OPTION
    if node_id in ("incident", "voicemail"):
        return VOICEMAIL, None, AS_OPTION
    if node_id == "nobody-available":
        return MENU, None, AS_OPTION
    return None


def _candidates(data):
    """NumberSettings that may have produced DATA (a normalised document): read back from its nodes."""
    nodes = data["nodes"]
    menus = [n for i, n in nodes.items() if _MENU_ID.match(i) and n["kind"] == doc.Kind.MENU]
    greetings = [n for i, n in nodes.items() if i.startswith("greeting-") and n["kind"] == doc.Kind.MESSAGE]
    routes = {i: n for i, n in nodes.items() if _ROUTE_ID.match(i) and n["kind"] == doc.Kind.ROUTE}
    incident = nodes.get("incident")
    voicemail = nodes.get("voicemail")
    try:
        options = {}
        for route_id, route in sorted(routes.items()):
            digit, calling = int(_ROUTE_ID.match(route_id).group(1)), _ROUTE_ID.match(route_id).group(2)
            known = options.get(digit)
            simultaneous = route["style"] == SIMULTANEOUS if calling is None else (known.simultaneous if known else False)
            options[digit] = OptionSettings(digit, route["name"], route["targets"][0]["id"], simultaneous)
        order = [int(b["key"]) for b in menus[0]["branches"] if b["key"].isdigit()] if menus else []
        ordered = [options[d] for d in order if d in options] + [o for d, o in sorted(options.items()) if d not in order]
        if menus:
            prompt = menus[0]["prompt"]
            greeting, greeting_audio, greeting_only = prompt["text"], prompt["audio"], menus[0]["prompt_alone"]
        elif greetings:
            greeting, greeting_audio, greeting_only = greetings[0]["text"], greetings[0]["audio"], False
        else:
            greeting, greeting_audio, greeting_only = "", None, False
        any_route = next(iter(routes.values()), None)
        base = NumberSettings(
            language=data["language"], greeting=greeting, greeting_only=greeting_only, greeting_audio=greeting_audio,
            hold_music=any_route["hold_music"] if any_route else None,
            ringing_timeout=any_route["ring_timeout"] if any_route else 30,
            voicemail_enabled=voicemail is not None,
            voicemail_greeting=voicemail["greeting"]["text"] if voicemail else "",
            mailbox_audio=voicemail["greeting"]["audio"] if voicemail else None,
            voicemail_max_length=voicemail["max_length"] if voicemail else 120,
            voicemail_transcription=voicemail["transcription"] if voicemail else True,
            alert_source=incident.get("alert_source") if incident else None,
            priority=incident.get("priority", Priority.HIGH) if incident else Priority.HIGH,
            options=tuple(ordered),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        return []
    # Voicemail straight away names the first option's policy: an option no path leads to may be that one.
    if incident is not None and incident.get("policy") is not None and (
        not base.options or base.options[0].policy != incident["policy"]
    ):
        spare = next(d for d in range(9, 0, -1) if d not in options) if len(options) < 9 else None
        if spare is None:
            return []
        base = replace(base, options=(OptionSettings(spare, "", incident["policy"]),) + base.options)
    start = data["start"]
    out = [replace(base, voicemail_only=True)] if start == "incident" else []
    hours = nodes.get("hours")
    if start == "hours" and hours is not None and hours.get("kind") == doc.Kind.HOURS:
        inside, outside = _decode(hours["in_hours"] or ""), _decode(hours["out_of_hours"] or "")
        if inside and outside:
            out.append(replace(
                base, support_hours_enabled=True, calendar=hours["calendar"],
                in_hours_target=inside[0], in_hours_option=inside[1], in_hours_calling=inside[2],
                out_of_hours_target=outside[0], out_of_hours_option=outside[1], out_of_hours_calling=outside[2],
            ))
    elif entry := _decode(start):
        out.append(base)
        # Support hours without a calendar: every call takes the out-of-hours path.
        out.append(replace(base, support_hours_enabled=True, out_of_hours_target=entry[0],
                           out_of_hours_option=entry[1], out_of_hours_calling=entry[2]))
    return out


def is_simple(document):
    """True when DOCUMENT (a dict or a FlowDocument) is exactly what compile_settings() makes of some settings."""
    data = document.data if isinstance(document, doc.FlowDocument) else document
    parsed, errors = doc.parse(data)
    if parsed is None or errors:
        return False
    data = parsed.data
    return any(compile_settings(candidate) == data for candidate in _candidates(data))
