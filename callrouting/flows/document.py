"""The flow document (JSON, schema 1): parse and validate, with every error pinned to a node.

One schema for the REST API, the flow editor and the data migration. It is written with DRF serializers rather
than pydantic: DRF is already how the API validates and reports field errors, drf-spectacular turns the same
serializers into the OpenAPI schema, and no second validation library joins the dependencies.

`parse(data, lookup=None) -> (FlowDocument | None, [NodeError])`: the document with every default filled in (None
when it cannot be read at all), and the errors. A `Lookup` of the ids that exist in the account lets validation say
"escalation policy 12 does not exist"; without one those checks are skipped (the engine and the cache parse
documents that were validated when they were published).

The shape of a document is in the README ("Call flows") and ../FLOWS-CONTRACT; in short:

    {"schema": 1, "language": "en-US", "start": "<node id>", "nodes": {"<node id>": {"kind": ..., ...}}}
"""
import re
from dataclasses import dataclass, field
from types import MappingProxyType

import phonenumbers
from rest_framework import serializers

from incidents.models import Priority

from .. import phrases

SCHEMA = 1
NODE_ID = re.compile(r"^[a-z0-9_-]{1,40}$")
MAX_NODES = 200
MAX_TEXT = 1000
MAX_LABEL = 100
KEYS = tuple("0123456789*#")
ENTRY = re.compile(r"^(anonymous|\+[0-9]{1,15}\*?)$")

LANGUAGES = [code for code, _ in phrases.LANGUAGE_CHOICES]


class Kind:
    MESSAGE = "message"
    MENU = "menu"
    HOURS = "hours"
    ROUTE = "route"
    VOICEMAIL = "voicemail"
    PIN = "pin"
    CALLER_LIST = "caller_list"
    INCIDENT = "incident"
    HANGUP = "hangup"


# Kinds that wait for the caller's input: a loop through one of them cannot spin without the caller.
INPUT_KINDS = (Kind.MENU, Kind.PIN)
TERMINAL_KINDS = (Kind.VOICEMAIL, Kind.HANGUP)


@dataclass(frozen=True)
class NodeError:
    """A validation error: NODE_ID (None: the document itself), FIELD (a path such as "branches[1].key", or None)."""

    node_id: str | None
    field: str | None
    message: str

    def as_dict(self):
        return {"node": self.node_id, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class Branch:
    """One outgoing edge of a node: FIELD (its path in the node), LABEL (what the editor shows), TARGET (a node
    id or None), and whether None is allowed there (then it means the kind's documented default)."""

    field: str
    label: str
    target: str | None
    optional: bool = False


def branches(node):
    """The Branches of NODE (a node dict), in the order the editor shows them."""
    kind = node.get("kind")
    if kind == Kind.MESSAGE:
        return [Branch("next", "next", node.get("next"))]
    if kind == Kind.MENU:
        out = [
            Branch(f"branches[{i}].next", f"{b.get('key', '')} {b.get('keyword', '')}".strip(), b.get("next"))
            for i, b in enumerate(node.get("branches") or []) if isinstance(b, dict)
        ]
        return out + [Branch("no_input", "no input", node.get("no_input"), optional=True)]
    if kind == Kind.HOURS:
        return [Branch("in_hours", "in hours", node.get("in_hours")),
                Branch("out_of_hours", "out of hours", node.get("out_of_hours")),
                Branch("holiday", "holiday", node.get("holiday"), optional=True)]
    if kind == Kind.ROUTE:
        return [Branch("no_answer", "nobody answered", node.get("no_answer"), optional=True)]
    if kind == Kind.PIN:
        return [Branch("next", "correct PIN", node.get("next")), Branch("wrong", "wrong PIN", node.get("wrong"))]
    if kind == Kind.CALLER_LIST:
        return [Branch("listed", "listed", node.get("listed")), Branch("not_listed", "not listed", node.get("not_listed"))]
    if kind == Kind.INCIDENT:
        return [Branch("next", "next", node.get("next"))]
    return []


@dataclass(frozen=True)
class FlowDocument:
    """A parsed document: LANGUAGE, START, NODES {id: node dict with every field present}. DATA is the whole
    document as JSON-ready dicts (what is stored)."""

    language: str
    start: str
    nodes: MappingProxyType
    data: dict = field(compare=False, hash=False, repr=False)
    schema: int = SCHEMA

    def node(self, node_id):
        return self.nodes[node_id]

    def kind(self, node_id):
        return self.nodes[node_id]["kind"]

    def language_of(self, node_id):
        """The language a node speaks: its own, else the flow's."""
        return self.nodes[node_id].get("language") or self.language


@dataclass(frozen=True)
class Lookup:
    """The ids that exist among the account's objects a document may name (and the number's audio). None for a
    kind: not checked."""

    policies: frozenset | None = None
    users: frozenset | None = None
    schedules: frozenset | None = None
    calendars: frozenset | None = None
    audio: frozenset | None = None
    alert_sources: frozenset | None = None

    @classmethod
    def load(cls, account, number, data):
        """The Lookup for DATA (a document dict) in ACCOUNT and NUMBER's audio: one query per kind of object the
        document names (at most six), whatever its size."""
        from escalation.models import EscalationPolicy, OnCallSchedule, User
        from incidents.models import AlertSource

        from ..models import NumberAudio
        from .models import SupportCalendar

        wanted = referenced_ids(data)
        sources = {
            "policies": EscalationPolicy.objects.filter(account=account),
            "users": User.objects.filter(account=account),
            "schedules": OnCallSchedule.objects.filter(account=account),
            "calendars": SupportCalendar.objects.filter(account=account),
            "audio": NumberAudio.objects.filter(routing_number=number) if number is not None else None,
            "alert_sources": AlertSource.objects.filter(account=account),
        }
        found = {}
        for name, queryset in sources.items():
            ids = wanted[name]
            if not ids or queryset is None:
                found[name] = frozenset()
                continue
            found[name] = frozenset(queryset.filter(pk__in=ids).values_list("pk", flat=True))
        return cls(**found)


_REFERENCE_NAMES = {
    "policy": "policies", "user": "users", "schedule": "schedules", "calendar": "calendars", "audio": "audio",
    "alert_source": "alert_sources",
}
_REFERENCE_WORDS = {
    "policies": "escalation policy", "users": "user", "schedules": "on-call schedule",
    "calendars": "support-hours calendar", "audio": "audio file of this number", "alert_sources": "alert source",
}


def _references(node):
    """[(field path, lookup name, id)] of the account objects NODE names (ids as given; ints when valid)."""
    out = []
    kind = node.get("kind")
    for key in ("prompt", "greeting"):
        if isinstance(node.get(key), dict) and node[key].get("audio") is not None:
            out.append((f"{key}.audio", "audio", node[key]["audio"]))
    if node.get("audio") is not None:
        out.append(("audio", "audio", node["audio"]))
    if kind == Kind.HOURS:
        out.append(("calendar", "calendars", node.get("calendar")))
    if kind == Kind.ROUTE:
        if node.get("hold_music") is not None:
            out.append(("hold_music", "audio", node["hold_music"]))
        for i, target in enumerate(node.get("targets") or []):
            if isinstance(target, dict) and target.get("type") in ("policy", "user", "schedule"):
                out.append((f"targets[{i}].id", _REFERENCE_NAMES[target["type"]], target.get("id")))
    if kind == Kind.INCIDENT:
        if node.get("alert_source") is not None:
            out.append(("alert_source", "alert_sources", node["alert_source"]))
        if node.get("policy") is not None:
            out.append(("policy", "policies", node["policy"]))
    return out


def referenced_ids(data):
    """{lookup name: set of int ids} the document DATA names (ids that are not whole numbers left out)."""
    wanted = {name: set() for name in _REFERENCE_WORDS}
    nodes = data.get("nodes") if isinstance(data, dict) else None
    for node in (nodes.values() if isinstance(nodes, dict) else ()):
        if isinstance(node, dict):
            for _, name, value in _references(node):
                if isinstance(value, int) and not isinstance(value, bool):
                    wanted[name].add(value)
    return wanted


# --- The schema, one serializer per node kind ----------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a misspelt field must not be silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def node_ref(required=True):
    return serializers.RegexField(
        NODE_ID, allow_null=True, required=False, default=None,
        error_messages={"invalid": "Not a node id (a-z, 0-9, _ and -, at most 40 characters)."},
    ) if not required else serializers.RegexField(
        NODE_ID, allow_null=True, error_messages={"invalid": "Not a node id (a-z, 0-9, _ and -, at most 40 characters)."},
    )


def text_field():
    return serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False, default="", trim_whitespace=True)


def audio_field():
    return serializers.IntegerField(min_value=1, allow_null=True, required=False, default=None)


def language_field():
    return serializers.ChoiceField(LANGUAGES, allow_null=True, required=False, default=None)


def _duplicates(items, name, key, message):
    """{"NAME[i].KEY": MESSAGE} for each item of ITEMS whose KEY an earlier item has (MESSAGE takes the value and
    the earlier item's 1-based position)."""
    errors, seen = {}, {}
    for i, item in enumerate(items):
        if item[key] in seen:
            errors[f"{name}[{i}].{key}"] = message.format(item[key], seen[item[key]] + 1)
        seen.setdefault(item[key], i)
    return errors


class SoundSerializer(StrictSerializer):
    """Text spoken, or an uploaded audio file of the number played instead of it."""

    text = text_field()
    audio = audio_field()


class NodeSerializer(StrictSerializer):
    kind = serializers.CharField()
    name = serializers.CharField(max_length=MAX_LABEL, allow_blank=True, required=False, default="")


class MessageNode(NodeSerializer):
    text = text_field()
    audio = audio_field()
    language = language_field()
    next = node_ref()

    def validate(self, attrs):
        if not attrs["text"] and attrs["audio"] is None:
            raise serializers.ValidationError({"text": "A message needs a text or an audio file."})
        return attrs


class MenuBranch(StrictSerializer):
    key = serializers.ChoiceField(KEYS, error_messages={"invalid_choice": "A key is one of 0-9, * and #."})
    keyword = serializers.CharField(max_length=60)
    next = node_ref()


class MenuNode(NodeSerializer):
    prompt = SoundSerializer(required=False, default=lambda: {"text": "", "audio": None})
    prompt_alone = serializers.BooleanField(required=False, default=False)
    retries = serializers.IntegerField(min_value=1, max_value=9, required=False, default=3)
    language = language_field()
    branches = MenuBranch(many=True, allow_empty=False, max_length=len(KEYS))
    no_input = node_ref(required=False)

    def validate(self, attrs):
        errors = {}
        prompt = attrs["prompt"]
        if attrs["prompt_alone"] and not prompt["text"] and prompt["audio"] is None:
            errors["prompt"] = "A menu whose prompt is used alone needs a prompt text or an audio file."
        errors.update(_duplicates(attrs["branches"], "branches", "key", "Key {} is already used by branch {}."))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class HoursNode(NodeSerializer):
    calendar = serializers.IntegerField(min_value=1)
    in_hours = node_ref()
    out_of_hours = node_ref()
    holiday = node_ref(required=False)


class RouteTarget(StrictSerializer):
    TYPES = ("policy", "user", "schedule", "external")

    type = serializers.ChoiceField(TYPES)
    id = serializers.IntegerField(min_value=1, required=False)
    number = serializers.CharField(max_length=32, required=False)
    label = serializers.CharField(max_length=MAX_LABEL, allow_blank=True, required=False)

    def validate(self, attrs):
        if attrs["type"] == "external":
            if "id" in attrs:
                raise serializers.ValidationError({"id": "An external number has no id."})
            if not attrs.get("number"):
                raise serializers.ValidationError({"number": "Give the phone number to dial."})
            try:
                attrs["number"] = e164(attrs["number"])
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"number": exc.detail}) from exc
            attrs.setdefault("label", "")
        else:
            if "number" in attrs or "label" in attrs:
                extra = "number" if "number" in attrs else "label"
                raise serializers.ValidationError({extra: f"Only an external target has a {extra}."})
            if "id" not in attrs:
                raise serializers.ValidationError({"id": f"Choose the {attrs['type']}."})
        return attrs


def e164(value):
    """VALUE as E.164 (+441234567890) or a ValidationError."""
    try:
        parsed = phonenumbers.parse(str(value).strip(), None)
    except phonenumbers.NumberParseException:
        raise serializers.ValidationError("Not a phone number: use international format, for example +441234567890.")
    if not phonenumbers.is_valid_number(parsed):
        raise serializers.ValidationError("Not a valid phone number: use international format, for example +441234567890.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class RouteNode(NodeSerializer):
    STYLES = ("sequential", "random", "simultaneous")

    targets = RouteTarget(many=True, allow_empty=False, max_length=50,
                          error_messages={"empty": "A route needs at least one target."})
    style = serializers.ChoiceField(STYLES, required=False, default="sequential")
    ring_timeout = serializers.IntegerField(min_value=5, max_value=120, required=False, default=30)
    repeat = serializers.IntegerField(min_value=1, max_value=5, required=False, default=1)
    hold_music = audio_field()
    no_answer = node_ref(required=False)


class VoicemailNode(NodeSerializer):
    greeting = SoundSerializer(required=False, default=lambda: {"text": "", "audio": None})
    # The range of today's number setting, so that every existing number compiles to a valid document.
    max_length = serializers.IntegerField(min_value=3, max_value=7200, required=False, default=120)
    transcription = serializers.BooleanField(required=False, default=True)


class PinCode(StrictSerializer):
    code = serializers.RegexField(r"^[0-9]{1,12}$", error_messages={"invalid": "A PIN is 1 to 12 digits."})
    label = serializers.CharField(max_length=MAX_LABEL, allow_blank=True, required=False, default="")


class PinNode(NodeSerializer):
    prompt = SoundSerializer()
    codes = PinCode(many=True, allow_empty=False, max_length=500)
    retries = serializers.IntegerField(min_value=1, max_value=9, required=False, default=3)
    language = language_field()
    next = node_ref()
    wrong = node_ref()

    def validate(self, attrs):
        errors = {}
        if not attrs["prompt"]["text"] and attrs["prompt"]["audio"] is None:
            errors["prompt"] = "A PIN node needs a prompt text or an audio file."
        errors.update(_duplicates(attrs["codes"], "codes", "code", "PIN {} is already used by code {}."))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class CallerListNode(NodeSerializer):
    entries = serializers.ListField(
        child=serializers.RegexField(
            ENTRY, error_messages={"invalid": "A number in international format (+4930...), a prefix ending in * "
                                              "(+4930*), or anonymous."}),
        allow_empty=False, max_length=1000,
    )
    listed = node_ref()
    not_listed = node_ref()


class IncidentNode(NodeSerializer):
    alert_source = serializers.IntegerField(min_value=1, allow_null=True, required=False, default=None)
    priority = serializers.ChoiceField(Priority.values, required=False, default=Priority.HIGH)
    policy = serializers.IntegerField(min_value=1, allow_null=True, required=False, default=None)
    accept_when_answered = serializers.BooleanField(required=False, default=True)
    next = node_ref()


class HangupNode(NodeSerializer):
    text = text_field()
    audio = audio_field()
    language = language_field()


NODE_SERIALIZERS = {
    Kind.MESSAGE: MessageNode, Kind.MENU: MenuNode, Kind.HOURS: HoursNode, Kind.ROUTE: RouteNode,
    Kind.VOICEMAIL: VoicemailNode, Kind.PIN: PinNode, Kind.CALLER_LIST: CallerListNode, Kind.INCIDENT: IncidentNode,
    Kind.HANGUP: HangupNode,
}
KINDS = tuple(NODE_SERIALIZERS)


class DocumentSerializer(StrictSerializer):
    """The top level of a document (the nodes are checked one by one with NODE_SERIALIZERS)."""

    schema = serializers.IntegerField()
    language = serializers.ChoiceField(LANGUAGES, required=False, default=phrases.DEFAULT_LANGUAGE)
    start = serializers.RegexField(NODE_ID, error_messages={"invalid": "Not a node id."})
    nodes = serializers.DictField(child=serializers.JSONField())

    def validate_schema(self, value):
        if value != SCHEMA:
            raise serializers.ValidationError(f"Unknown schema {value}: this version reads schema {SCHEMA}.")
        return value

    def validate_nodes(self, value):
        if not value:
            raise serializers.ValidationError("A flow needs at least one node.")
        if len(value) > MAX_NODES:
            raise serializers.ValidationError(f"A flow has at most {MAX_NODES} nodes.")
        return value


# --- Parsing ---------------------------------------------------------------------------------------------------


def _flatten(detail, prefix=""):
    """[(field path or None, message)] of a DRF error detail (dicts and lists nest)."""
    out = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                out += _flatten(value, prefix)
            else:
                path = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
                out += _flatten(value, path)
    elif isinstance(detail, list):
        if detail and all(isinstance(item, (dict, list)) for item in detail):
            for i, item in enumerate(detail):
                out += _flatten(item, f"{prefix}[{i}]")
        else:
            for item in detail:
                out += _flatten(item, prefix) if isinstance(item, (dict, list)) else [(prefix or None, str(item))]
    else:
        out.append((prefix or None, str(detail)))
    return out


def parse_node(node_id, data):
    """(node dict with defaults, [NodeError]) for one node."""
    if not isinstance(data, dict):
        return None, [NodeError(node_id, None, "A node is an object with a kind.")]
    kind = data.get("kind")
    if kind not in NODE_SERIALIZERS:
        return None, [NodeError(node_id, "kind", f"Unknown kind {kind!r}: one of {', '.join(KINDS)}.")]
    serializer = NODE_SERIALIZERS[kind](data=data)
    if serializer.is_valid():
        return _plain(serializer.validated_data), []
    return None, [NodeError(node_id, path, message) for path, message in _flatten(serializer.errors)]


def _plain(value):
    """Serializer output as plain dicts and lists (validated_data nests OrderedDicts and ReturnDicts)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def parse(data, lookup=None):
    """(FlowDocument or None, [NodeError]) for DATA, a document dict; see the module docstring.

    The FlowDocument is returned whenever every node could be read, even if the graph has errors (unreachable
    nodes, loops, missing targets): the editor still shows it, with its errors on the nodes."""
    top = DocumentSerializer(data=data)
    if not top.is_valid():
        return None, [NodeError(None, path, message) for path, message in _flatten(top.errors)]
    attrs = top.validated_data
    errors, nodes = [], {}
    for node_id, node_data in attrs["nodes"].items():
        if not NODE_ID.match(str(node_id)):
            errors.append(NodeError(str(node_id), None, "A node id is 1 to 40 of a-z, 0-9, _ and -."))
            continue
        node, node_errors = parse_node(node_id, node_data)
        errors += node_errors
        if node is not None:
            nodes[node_id] = node
    if errors:  # the graph cannot be judged with nodes missing; the objects the readable ones name can
        return None, errors + (_reference_errors(nodes, lookup) if lookup is not None else [])
    if attrs["start"] not in nodes:
        errors.append(NodeError(None, "start", f"The start node {attrs['start']!r} does not exist."))
    errors += _graph_errors(nodes, attrs["start"])
    if lookup is not None:
        errors += _reference_errors(nodes, lookup)
    normal = {"schema": SCHEMA, "language": attrs["language"], "start": attrs["start"], "nodes": nodes}
    document = FlowDocument(language=attrs["language"], start=attrs["start"], nodes=MappingProxyType(nodes), data=normal)
    return document, errors


def validate(data, lookup=None):
    """The [NodeError] of DATA (empty: it can be published)."""
    return parse(data, lookup)[1]


def _graph_errors(nodes, start):
    errors = []
    for node_id, node in nodes.items():
        for branch in branches(node):
            if branch.target is None:
                if not branch.optional:
                    errors.append(NodeError(node_id, branch.field, f"Choose where “{branch.label}” goes."))
            elif branch.target not in nodes:
                errors.append(NodeError(node_id, branch.field, f"“{branch.label}” goes to {branch.target!r}, which does not exist."))
    if start in nodes:
        seen = _reachable(nodes, start)
        for node_id in nodes:
            if node_id not in seen:
                errors.append(NodeError(node_id, None, "No caller can reach this node: connect it or delete it."))
        errors += _loop_errors(nodes)
    return errors


def successors(node, nodes):
    return [b.target for b in branches(node) if b.target is not None and b.target in nodes]


def _reachable(nodes, start):
    seen, todo = {start}, [start]
    while todo:
        for target in successors(nodes[todo.pop()], nodes):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _loop_errors(nodes):
    """A loop through nodes none of which waits for the caller (menu, PIN) could spin forever: one error per loop,
    on its first node (by id), naming the loop."""
    graph = {
        node_id: [t for t in successors(node, nodes) if nodes[t]["kind"] not in INPUT_KINDS]
        for node_id, node in nodes.items() if node["kind"] not in INPUT_KINDS
    }
    errors = []
    for component in _strongly_connected(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        members = set(component)
        first = min(component)
        path, at = [first], first
        while True:  # walk the loop inside the component back to its first node, for the message
            at = min(t for t in graph[at] if t in members)
            if at == first or at in path:
                path.append(at)
                break
            path.append(at)
        errors.append(NodeError(
            first, None,
            "This node is in a loop with no menu or PIN node in it, so a caller could go round it forever: "
            + " → ".join(path) + ".",
        ))
    return errors


def _strongly_connected(graph):
    """Tarjan's strongly connected components of GRAPH {node: [successors]}, iteratively (no recursion limit)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def _reference_errors(nodes, lookup):
    errors = []
    for node_id, node in nodes.items():
        for path, name, value in _references(node):
            known = getattr(lookup, name)
            if known is not None and value not in known:
                errors.append(NodeError(node_id, path, f"The {_REFERENCE_WORDS[name]} {value} does not exist."))
    return errors
