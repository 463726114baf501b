"""The flow editor's forms: one form per node kind, configuring the node in place on the editor page.

A form is built from the node (a dict of the flow document) and gives back the changed node; the node's branches
are kept (they are edited on the tree, not here). Field errors are the form's (a retry count that is not a number,
a PIN that is not digits); what only the whole flow can tell (a branch without a target, a route without targets)
is flows/document.py's validation, shown on the node after the draft is saved.
Lists inside a node (a menu's keys, a route's targets, PIN codes) are rows of numbered fields plus one empty row
to add another; a row is removed with its "remove" box.
"""
from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import ValidationError

from escalation.models import EscalationPolicy, OnCallSchedule, User, normalize_phone_number
from incidents.models import Priority

from ..phrases import LANGUAGE_CHOICES
from ..tenancy import scoped
from .lookup import LookupChoiceField, label_of

TEXT = forms.Textarea(attrs={"rows": 2})
KEYS = [(key, key) for key in "1234567890*#"]
STYLES = [("sequential", "One after another"), ("random", "Random order"), ("simultaneous", "All at once")]
TARGET_MODELS = {"policy": EscalationPolicy, "user": User, "schedule": OnCallSchedule}
TARGET_NAMES = {"policy": "Escalation policy", "user": "Person", "schedule": "On-call schedule", "external": "External number"}
MAX_TEXT = 1000


@dataclass
class Choices:
    """What the node forms offer from the account: audio files of the number, support calendars, alert sources
    ([(id, label)]), and the account for the searchable people, schedules and policies."""

    account: object
    audio: list = field(default_factory=list)
    calendars: list = field(default_factory=list)
    alert_sources: list = field(default_factory=list)


def _optional(choices, empty="—"):
    return [("", empty), *[(str(pk), label) for pk, label in choices]]


def _id_or_none(value):
    return int(value) if value not in (None, "") else None


class NodeForm(forms.Form):
    """Base of the node forms. Subclasses declare fields, fill `initial_from(node)` and `apply(node, data)`."""

    name = forms.CharField(max_length=80, help_text="Shown in the editor, the call log and the dry run.")

    def __init__(self, data=None, *, node_id, node, choices):
        self.node_id, self.node, self.choices = node_id, node, choices
        initial = {"name": node.get("name", ""), **self.initial_from(node)}
        super().__init__(data, initial=initial, prefix=f"n-{node_id}", auto_id=f"id_{node_id}_%s")
        self.add_fields()

    # Subclass hooks.
    def initial_from(self, node):
        return {}

    def add_fields(self):
        pass

    def apply(self, node, data):
        return node

    def changed_node(self):
        """The node with the form's settings (call after is_valid())."""
        node = {**self.node, "name": self.cleaned_data["name"]}
        return self.apply(node, self.cleaned_data)

    ROW_PREFIXES = ("key_", "code_", "target_", "add_")

    def plain_fields(self):
        """The visible fields that are not rows of a list (those the template lays out as rows)."""
        return [bound for bound in self.visible_fields() if not bound.name.startswith(self.ROW_PREFIXES)]

    def add_fields_bound(self):
        return [bound for bound in self.visible_fields() if bound.name.startswith("add_")]

    # Helpers for fields that several kinds share.
    def audio_field(self, name, label):
        self.fields[name] = forms.ChoiceField(
            choices=_optional(self.choices.audio, "— none: speak the text —"), required=False, label=label
        )

    def language_field(self):
        self.fields["language"] = forms.ChoiceField(
            choices=[("", "The flow's language"), *LANGUAGE_CHOICES], required=False, label="Language"
        )

    def rows(self, prefix, names):
        """[{name: bound field}] of the numbered row fields PREFIX_<name>_<i>, in order (the empty row last)."""
        found, i = [], 0
        while f"{prefix}_{names[0]}_{i}" in self.fields:
            found.append({name: self[f"{prefix}_{name}_{i}"] for name in names if f"{prefix}_{name}_{i}" in self.fields})
            i += 1
        return found

    def row_values(self, prefix, names):
        """[{name: cleaned value}] of the rows not marked for removal and not left empty."""
        found, i = [], 0
        while f"{prefix}_{names[0]}_{i}" in self.fields:
            values = {name: self.cleaned_data.get(f"{prefix}_{name}_{i}") for name in names}
            values["index"] = i
            i += 1
            if values.pop("remove", False) or not any(v not in (None, "", False) for k, v in values.items()
                                                       if k not in ("index", "order")):
                continue
            found.append(values)
        return found


class MessageForm(NodeForm):
    text = forms.CharField(widget=TEXT, required=False, max_length=MAX_TEXT, label="Say")

    def initial_from(self, node):
        return {"text": node.get("text", ""), "audio": node.get("audio") or "", "language": node.get("language") or ""}

    def add_fields(self):
        self.audio_field("audio", "Or play")
        self.language_field()

    def apply(self, node, data):
        return {**node, "text": data["text"], "audio": _id_or_none(data["audio"]), "language": data["language"] or None}


class HangupForm(MessageForm):
    text = forms.CharField(widget=TEXT, required=False, max_length=MAX_TEXT, label="Say before hanging up")

    def add_fields(self):
        self.audio_field("audio", "Or play")

    def apply(self, node, data):
        return {**node, "text": data["text"], "audio": _id_or_none(data["audio"])}


class MenuForm(NodeForm):
    prompt = forms.CharField(widget=TEXT, required=False, max_length=MAX_TEXT, label="Prompt",
                             help_text="“Press 1 for …” is added from the keys unless the prompt is used alone.")
    prompt_alone = forms.BooleanField(required=False, label="Use the prompt alone")
    retries = forms.IntegerField(min_value=1, max_value=9, label="Tries before “no input”")

    def initial_from(self, node):
        prompt = node.get("prompt") or {}
        return {"prompt": prompt.get("text", ""), "prompt_audio": prompt.get("audio") or "",
                "prompt_alone": node.get("prompt_alone", False), "retries": node.get("retries", 3),
                "language": node.get("language") or ""}

    def add_fields(self):
        self.audio_field("prompt_audio", "Or play")
        self.language_field()
        branches = self.node.get("branches") or []
        for i, branch in enumerate([*branches, {}]):
            self.fields[f"key_key_{i}"] = forms.ChoiceField(choices=[("", "—"), *KEYS], required=False, label="Key",
                                                            initial=branch.get("key", ""))
            self.fields[f"key_keyword_{i}"] = forms.CharField(max_length=40, required=False, label="Spoken keyword",
                                                              initial=branch.get("keyword", ""))
            if i < len(branches):
                self.fields[f"key_remove_{i}"] = forms.BooleanField(required=False, label="Remove")

    def key_rows(self):
        return self.rows("key", ["key", "keyword", "remove"])

    def clean(self):
        data = super().clean()
        seen = set()
        for row in self.row_values("key", ["key", "keyword", "remove"]):
            if not row["key"]:
                self.add_error(f"key_key_{row['index']}", "Choose the key callers press.")
            elif row["key"] in seen:
                self.add_error(f"key_key_{row['index']}", f"Key {row['key']} is used twice in this menu.")
            seen.add(row["key"])
        return data

    def apply(self, node, data):
        old = node.get("branches") or []
        branches = [
            {"key": row["key"], "keyword": row["keyword"],
             "next": old[row["index"]].get("next") if row["index"] < len(old) else None}
            for row in self.row_values("key", ["key", "keyword", "remove"])
        ]
        # A removed key's subtree stays in the draft, shown as not reachable, until it is deleted or linked again.
        return {**node, "prompt": {"text": data["prompt"], "audio": _id_or_none(data["prompt_audio"])},
                "prompt_alone": data["prompt_alone"], "retries": data["retries"],
                "language": data["language"] or None, "branches": branches}


class HoursForm(NodeForm):
    def initial_from(self, node):
        return {"calendar": node.get("calendar") or ""}

    def add_fields(self):
        self.fields["calendar"] = forms.ChoiceField(
            choices=_optional(self.choices.calendars, "— choose a support calendar —"), required=False,
            label="Support calendar", help_text="Shared by the account's flows; edited on the calendars page.",
        )

    def apply(self, node, data):
        return {**node, "calendar": _id_or_none(data["calendar"])}


class RouteForm(NodeForm):
    style = forms.ChoiceField(choices=STYLES, label="Call")
    ring_timeout = forms.IntegerField(min_value=5, max_value=120, label="Ring each for (seconds)")
    repeat = forms.IntegerField(min_value=1, max_value=5, label="Go through the list (times)")

    def initial_from(self, node):
        return {"style": node.get("style", "sequential"), "ring_timeout": node.get("ring_timeout", 30),
                "repeat": node.get("repeat", 1), "hold_music": node.get("hold_music") or ""}

    def add_fields(self):
        self.audio_field("hold_music", "Hold music")
        self.fields["hold_music"].choices = _optional(self.choices.audio, "— the default music —")
        for i, target in enumerate(self.node.get("targets") or []):
            self.fields[f"target_order_{i}"] = forms.IntegerField(min_value=1, max_value=999, initial=i + 1,
                                                                  label="Order")
            self.fields[f"target_remove_{i}"] = forms.BooleanField(required=False, label="Remove")
        account = self.choices.account
        self.fields["add_policy"] = LookupChoiceField(scoped(EscalationPolicy, account), required=False,
                                                      label="Add an escalation policy")
        self.fields["add_user"] = LookupChoiceField(scoped(User, account).filter(is_active=True), required=False,
                                                    label="Add a person")
        self.fields["add_schedule"] = LookupChoiceField(scoped(OnCallSchedule, account), required=False,
                                                        label="Add an on-call schedule")
        self.fields["add_number"] = forms.CharField(required=False, max_length=32, label="Add an external number",
                                                    help_text="International format: +44 1234 567890.")
        self.fields["add_label"] = forms.CharField(required=False, max_length=80, label="Its label",
                                                   help_text="Who answers it, for the call log.")

    def target_rows(self, labels):
        """[(order field, remove field, description)] of the current targets; LABELS names them."""
        rows = []
        for i, target in enumerate(self.node.get("targets") or []):
            rows.append((self[f"target_order_{i}"], self[f"target_remove_{i}"], describe_target(target, labels)))
        return rows

    def clean_add_number(self):
        value = self.cleaned_data["add_number"].strip()
        if not value:
            return ""
        try:
            return normalize_phone_number(value)
        except ValidationError as exc:
            raise ValidationError(exc.messages[0]) from exc

    def apply(self, node, data):
        kept = []
        for i, target in enumerate(node.get("targets") or []):
            if not data.get(f"target_remove_{i}"):
                kept.append((data[f"target_order_{i}"], i, target))
        targets = [target for _, _, target in sorted(kept, key=lambda row: (row[0], row[1]))]
        for kind in ("policy", "user", "schedule"):
            if data.get(f"add_{kind}") is not None:
                targets.append({"type": kind, "id": data[f"add_{kind}"].pk})
        if data.get("add_number"):
            targets.append({"type": "external", "number": data["add_number"], "label": data.get("add_label", "")})
        return {**node, "targets": targets, "style": data["style"], "ring_timeout": data["ring_timeout"],
                "repeat": data["repeat"], "hold_music": _id_or_none(data["hold_music"])}


def describe_target(target, labels):
    """"Escalation policy: Outage team" for a target; LABELS is {(type, id): name} of the account's rows."""
    kind = target.get("type")
    if kind == "external":
        label = target.get("label") or ""
        return f"{TARGET_NAMES['external']}: {target.get('number', '')}" + (f" ({label})" if label else "")
    name = labels.get((kind, target.get("id")), f"#{target.get('id')} (not found)")
    return f"{TARGET_NAMES.get(kind, kind)}: {name}"


STYLE_NAMES = dict(STYLES)


def summary(node, labels, calendars):
    """One line saying what NODE does, for its card; LABELS names targets, CALENDARS is {id: name}."""
    kind = node.get("kind")

    def said(text, audio):
        return "plays an audio file" if audio else (f"says “{_short(text)}”" if text else "")

    if kind in ("message", "hangup"):
        return said(node.get("text"), node.get("audio")).capitalize()
    if kind == "menu":
        prompt = node.get("prompt") or {}
        keys = ", ".join(str(b.get("key")) for b in node.get("branches") or [])
        return f"{said(prompt.get('text'), prompt.get('audio')).capitalize() or 'Announces its keys'}; keys {keys or 'none yet'}; {node.get('retries')} tries."
    if kind == "hours":
        calendar = node.get("calendar")
        return f"Support calendar: {calendars.get(calendar, 'none chosen') if calendar else 'none chosen'}."
    if kind == "route":
        return (f"{STYLE_NAMES.get(node.get('style'), node.get('style'))}, ringing {node.get('ring_timeout')} s each, "
                f"{node.get('repeat')} time{'s' if node.get('repeat') != 1 else ''} through the list.")
    if kind == "voicemail":
        greeting = node.get("greeting") or {}
        return (f"{said(greeting.get('text'), greeting.get('audio')).capitalize() or 'The standard greeting'}; up to "
                f"{node.get('max_length')} s{', transcribed' if node.get('transcription') else ''}.")
    if kind == "pin":
        codes = ", ".join(code.get("label") or code.get("code", "") for code in node.get("codes") or [])
        return f"PIN codes: {codes or 'none yet'}; {node.get('retries')} tries."
    if kind == "caller_list":
        entries = node.get("entries") or []
        return f"{len(entries)} number{'s' if len(entries) != 1 else ''}: {_short(', '.join(entries), 80)}" if entries else "No numbers yet."
    if kind == "incident":
        policy = node.get("policy")
        return (f"{str(node.get('priority', '')).capitalize()} priority"
                + (f", policy {labels.get(('policy', policy), policy)}" if policy else "")
                + (", accepted when answered" if node.get("accept_when_answered") else "") + ".")
    return ""


def _short(text, length=60):
    text = " ".join(str(text).split())
    return text if len(text) <= length else text[: length - 1] + "…"


def target_labels(account, documents):
    """{(type, id): name} of every policy, person and schedule the DOCUMENTS' routes name: one query a kind."""
    wanted = {kind: set() for kind in TARGET_MODELS}
    for document in documents:
        for node in (document.get("nodes") or {}).values():
            if node.get("kind") == "route":
                for target in node.get("targets") or []:
                    if target.get("type") in wanted and isinstance(target.get("id"), int):
                        wanted[target["type"]].add(target["id"])
            if node.get("kind") == "incident" and isinstance(node.get("policy"), int):
                wanted["policy"].add(node["policy"])
    labels = {}
    for kind, ids in wanted.items():
        if ids:
            for row in scoped(TARGET_MODELS[kind], account).filter(pk__in=ids):
                labels[(kind, row.pk)] = label_of(row)
    return labels


class VoicemailForm(NodeForm):
    greeting = forms.CharField(widget=TEXT, required=False, max_length=MAX_TEXT, label="Mailbox greeting",
                               help_text="Empty: the standard “leave a message after the tone”.")
    max_length = forms.IntegerField(min_value=5, max_value=600, label="Longest message (seconds)")
    transcription = forms.BooleanField(required=False, label="Transcribe messages")

    def initial_from(self, node):
        greeting = node.get("greeting") or {}
        return {"greeting": greeting.get("text", ""), "greeting_audio": greeting.get("audio") or "",
                "max_length": node.get("max_length", 120), "transcription": node.get("transcription", True)}

    def add_fields(self):
        self.audio_field("greeting_audio", "Or play")

    def apply(self, node, data):
        return {**node, "greeting": {"text": data["greeting"], "audio": _id_or_none(data["greeting_audio"])},
                "max_length": data["max_length"], "transcription": data["transcription"]}


class PinForm(NodeForm):
    prompt = forms.CharField(widget=TEXT, required=False, max_length=MAX_TEXT, label="Prompt")
    retries = forms.IntegerField(min_value=1, max_value=9, label="Tries before “wrong PIN”")

    def initial_from(self, node):
        prompt = node.get("prompt") or {}
        return {"prompt": prompt.get("text", ""), "prompt_audio": prompt.get("audio") or "",
                "retries": node.get("retries", 3)}

    def add_fields(self):
        self.audio_field("prompt_audio", "Or play")
        codes = self.node.get("codes") or []
        for i, code in enumerate([*codes, {}]):
            self.fields[f"code_code_{i}"] = forms.CharField(max_length=12, required=False, label="PIN",
                                                            initial=code.get("code", ""))
            self.fields[f"code_label_{i}"] = forms.CharField(max_length=80, required=False, label="Who (label)",
                                                             initial=code.get("label", ""))
            if i < len(codes):
                self.fields[f"code_remove_{i}"] = forms.BooleanField(required=False, label="Remove")

    def code_rows(self):
        return self.rows("code", ["code", "label", "remove"])

    def clean(self):
        data = super().clean()
        seen = set()
        for row in self.row_values("code", ["code", "label", "remove"]):
            name = f"code_code_{row['index']}"
            if not (row["code"] or "").isdigit():
                self.add_error(name, "A PIN is digits only.")
            elif row["code"] in seen:
                self.add_error(name, "This PIN is listed twice.")
            seen.add(row["code"])
        return data

    def apply(self, node, data):
        codes = [{"code": row["code"], "label": row["label"]} for row in self.row_values("code", ["code", "label", "remove"])]
        return {**node, "prompt": {"text": data["prompt"], "audio": _id_or_none(data["prompt_audio"])},
                "retries": data["retries"], "codes": codes}


class CallerListForm(NodeForm):
    entries = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, label="Caller numbers",
                              help_text="One a line: a number (+441111111111), a prefix ending in * (+4420*), or "
                                        "“anonymous” for callers who hide their number.")

    def initial_from(self, node):
        return {"entries": "\n".join(node.get("entries") or [])}

    def clean_entries(self):
        entries = []
        for line in self.cleaned_data["entries"].splitlines():
            entry = line.strip().replace(" ", "")
            if not entry:
                continue
            if entry.lower() == "anonymous":
                entries.append("anonymous")
            elif entry.endswith("*") and entry[:-1].lstrip("+").isdigit():
                entries.append(entry)
            else:
                try:
                    entries.append(normalize_phone_number(entry))
                except ValidationError as exc:
                    raise ValidationError(exc.messages[0]) from exc
        if len(entries) > 500:
            raise ValidationError("At most 500 entries.")
        return entries

    def apply(self, node, data):
        return {**node, "entries": data["entries"]}


class IncidentForm(NodeForm):
    priority = forms.ChoiceField(choices=Priority.choices, label="Priority")
    accept_when_answered = forms.BooleanField(required=False, label="Accept the incident when an agent answers")

    def initial_from(self, node):
        return {"alert_source": node.get("alert_source") or "", "priority": node.get("priority", "high"),
                "accept_when_answered": node.get("accept_when_answered", True), "policy": node.get("policy")}

    def add_fields(self):
        self.fields["alert_source"] = forms.ChoiceField(
            choices=_optional(self.choices.alert_sources, "— the number's alert source —"), required=False,
            label="Alert source")
        self.fields["policy"] = LookupChoiceField(scoped(EscalationPolicy, self.choices.account), required=False,
                                                  label="Escalation policy")

    def apply(self, node, data):
        return {**node, "alert_source": _id_or_none(data["alert_source"]), "priority": data["priority"],
                "policy": data["policy"].pk if data.get("policy") is not None else None,
                "accept_when_answered": data["accept_when_answered"]}


FORMS = {
    "message": MessageForm, "menu": MenuForm, "hours": HoursForm, "route": RouteForm, "voicemail": VoicemailForm,
    "pin": PinForm, "caller_list": CallerListForm, "incident": IncidentForm, "hangup": HangupForm,
}


def node_form(node_id, node, choices, data=None):
    """The form configuring NODE (bound to DATA when given); None for a kind the editor does not know."""
    form_class = FORMS.get(node.get("kind"))
    return form_class(data, node_id=node_id, node=node, choices=choices) if form_class else None
