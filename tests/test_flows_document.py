"""The flow document: each validation rule, errors pinned to nodes, the account lookup, and the compiler's
documents (each kind of settings) with their recogniser is_simple()."""
import copy
from dataclasses import replace

import pytest

from callrouting.flows import compiler, document
from callrouting.flows.compiler import NumberSettings, OptionSettings
from callrouting.flows.document import Lookup, NodeError, parse, validate

EXAMPLE = {
    "schema": 1,
    "language": "en-GB",
    "start": "vip",
    "nodes": {
        "vip": {"kind": "caller_list", "name": "Blocked", "entries": ["+441111111111", "+4420*", "anonymous"],
                "listed": "bye", "not_listed": "hours"},
        "hours": {"kind": "hours", "name": "Office hours", "calendar": 7, "in_hours": "greeting", "out_of_hours": "vm",
                  "holiday": None},
        "greeting": {"kind": "message", "name": "Greeting", "text": "Welcome to Acme support.", "audio": None,
                     "language": None, "next": "main"},
        "main": {"kind": "menu", "name": "Main menu", "prompt": {"text": "", "audio": None}, "prompt_alone": False,
                 "retries": 3, "language": None,
                 "branches": [{"key": "1", "keyword": "outage", "next": "inc"},
                              {"key": "2", "keyword": "customers", "next": "pin"}],
                 "no_input": None},
        "inc": {"kind": "incident", "name": "Create incident", "alert_source": 2, "priority": "high", "policy": 3,
                "accept_when_answered": True, "next": "outage"},
        "outage": {"kind": "route", "name": "Outage team",
                   "targets": [{"type": "policy", "id": 3}, {"type": "user", "id": 9}, {"type": "schedule", "id": 4},
                               {"type": "external", "number": "+441234567890", "label": "Team lead mobile"}],
                   "style": "sequential", "ring_timeout": 30, "repeat": 1, "hold_music": None, "no_answer": "vm"},
        "pin": {"kind": "pin", "name": "Key customers", "prompt": {"text": "Enter your PIN", "audio": None},
                "codes": [{"code": "1234", "label": "Globex"}], "retries": 3, "language": None, "next": "outage",
                "wrong": "bye"},
        "vm": {"kind": "voicemail", "name": "Voicemail", "greeting": {"text": "", "audio": None}, "max_length": 120,
               "transcription": True},
        "bye": {"kind": "hangup", "name": "Goodbye", "text": "Goodbye.", "audio": None, "language": None},
    },
}


def errors_of(data, lookup=None):
    return {(e.node_id, e.field) for e in validate(data, lookup)}


def changed(**nodes):
    """EXAMPLE with NODES {id: {field: value} or None (removed)} merged in."""
    data = copy.deepcopy(EXAMPLE)
    for node_id, fields in nodes.items():
        if fields is None:
            data["nodes"].pop(node_id)
        else:
            data["nodes"].setdefault(node_id, {}).update(fields)
    return data


def test_the_example_is_valid_and_comes_back_unchanged():
    parsed, errors = parse(EXAMPLE)
    assert errors == []
    assert parsed.data == EXAMPLE
    assert parsed.kind("outage") == "route"
    assert parsed.language_of("pin") == "en-GB"


def test_defaults_are_filled_in():
    parsed, errors = parse({"schema": 1, "start": "a", "nodes": {
        "a": {"kind": "route", "targets": [{"type": "policy", "id": 1}]}}})
    assert errors == []
    assert parsed.language == "en-US"
    assert parsed.node("a") == {"kind": "route", "name": "", "targets": [{"type": "policy", "id": 1}],
                                "style": "sequential", "ring_timeout": 30, "repeat": 1, "hold_music": None,
                                "no_answer": None}


@pytest.mark.parametrize("data, expected", [
    ({"schema": 2, "start": "a", "nodes": {"a": {"kind": "hangup"}}}, {(None, "schema")}),
    ({"schema": 1, "start": "a", "nodes": {"a": {"kind": "hangup"}}, "extra": 1}, {(None, "extra")}),
    ({"schema": 1, "start": "a", "nodes": {}}, {(None, "nodes")}),
    ({"schema": 1, "start": "a", "language": "xx-XX", "nodes": {"a": {"kind": "hangup"}}}, {(None, "language")}),
    ([], {(None, None)}),
])
def test_document_level_errors(data, expected):
    assert errors_of(data) == expected


@pytest.mark.parametrize("nodes, expected", [
    ({"bye": {"kind": "teleport"}}, {("bye", "kind")}),
    ({"bye": {"colour": "red"}}, {("bye", "colour")}),
    ({"greeting": {"next": None}}, {("greeting", "next")}),
    ({"greeting": {"next": "nowhere"}}, {("greeting", "next")}),
    ({"greeting": {"text": "", "audio": None}}, {("greeting", "text")}),
    ({"orphan": {"kind": "hangup", "text": "x"}}, {("orphan", None)}),
    ({"main": {"branches": [{"key": "1", "keyword": "a", "next": "inc"}, {"key": "1", "keyword": "b", "next": "pin"}]}},
     {("main", "branches[1].key")}),
    ({"main": {"branches": [{"key": "x", "keyword": "a", "next": "inc"}, {"key": "2", "keyword": "b", "next": "pin"}]}},
     {("main", "branches[0].key")}),
    ({"main": {"retries": 0}}, {("main", "retries")}),
    ({"main": {"retries": 10}}, {("main", "retries")}),
    ({"main": {"prompt_alone": True}}, {("main", "prompt")}),
    ({"main": {"prompt": {"text": "x" * 1001, "audio": None}}}, {("main", "prompt.text")}),
    ({"outage": {"targets": []}}, {("outage", "targets")}),
    ({"outage": {"targets": [{"type": "external", "number": "12"}]}}, {("outage", "targets[0].number")}),
    ({"outage": {"targets": [{"type": "policy"}]}}, {("outage", "targets[0].id")}),
    ({"outage": {"ring_timeout": 4}}, {("outage", "ring_timeout")}),
    ({"outage": {"ring_timeout": 121}}, {("outage", "ring_timeout")}),
    ({"outage": {"repeat": 6}}, {("outage", "repeat")}),
    ({"outage": {"style": "loudest"}}, {("outage", "style")}),
    ({"vm": {"max_length": 2}}, {("vm", "max_length")}),
    ({"vm": {"max_length": 7201}}, {("vm", "max_length")}),
    ({"pin": {"codes": [{"code": "12a4"}]}}, {("pin", "codes[0].code")}),
    ({"pin": {"codes": [{"code": "1234"}, {"code": "1234"}]}}, {("pin", "codes[1].code")}),
    ({"pin": {"prompt": {"text": "", "audio": None}}}, {("pin", "prompt")}),
    ({"pin": {"wrong": None}}, {("pin", "wrong")}),
    ({"vip": {"entries": ["0201234"]}}, {("vip", "entries[0]")}),
    ({"inc": {"priority": "urgent"}}, {("inc", "priority")}),
    ({"hours": {"in_hours": None}}, {("hours", "in_hours")}),
    ({"bye": {"text": "x" * 1001}}, {("bye", "text")}),
])
def test_node_errors_are_pinned_to_the_node_and_field(nodes, expected):
    errors = errors_of(changed(**nodes))
    assert expected <= errors
    # Besides, only nodes cut off by the broken branch may be reported (as unreachable).
    assert {field for _, field in errors - expected} <= {None}


def test_a_bad_node_id_is_an_error():
    data = changed(**{"Bad Id": {"kind": "hangup", "text": "x"}})
    assert ("Bad Id", None) in errors_of(data)


def test_a_loop_without_caller_input_is_refused_and_named():
    data = changed(outage={"no_answer": "again"}, again={"kind": "message", "text": "Still trying.", "next": "outage"})
    errors = validate(data)
    assert [e for e in errors if e.node_id == "again"] == [NodeError(
        "again", None, "This node is in a loop with no menu or PIN node in it, so a caller could go round it "
        "forever: again → outage → again.")]


def test_a_loop_through_a_menu_is_allowed():
    data = changed(outage={"no_answer": "main"})
    assert validate(data) == []


def test_the_lookup_names_missing_and_foreign_objects():
    lookup = Lookup(policies=frozenset({3}), users=frozenset(), schedules=frozenset({4}), calendars=frozenset({7}),
                    audio=frozenset(), alert_sources=frozenset({2}))
    assert {(e.node_id, e.field, e.message) for e in validate(EXAMPLE, lookup)} == {
        ("outage", "targets[1].id", "The user 9 does not exist."),
    }


def test_external_numbers_are_stored_in_e164():
    parsed, errors = parse(changed(outage={"targets": [{"type": "external", "number": "+44 20 7946 0958"}]}))
    assert errors == []
    assert parsed.node("outage")["targets"] == [{"type": "external", "number": "+442079460958", "label": ""}]


def test_branches_label_every_edge():
    labels = [b.label for b in document.branches(EXAMPLE["nodes"]["main"])]
    assert labels == ["1 outage", "2 customers", "no input"]
    assert [b.label for b in document.branches(EXAMPLE["nodes"]["pin"])] == ["correct PIN", "wrong PIN"]


# --- The compiler on plain settings -----------------------------------------------------------------------------

OPTIONS = (OptionSettings(1, "Outage", 5, False), OptionSettings(2, "Billing", 6, True))
BASE = NumberSettings(language="en-US", greeting="Welcome to Acme.", options=OPTIONS, alert_source=3)

SETTINGS = {
    "menu": BASE,
    "single option": replace(BASE, options=OPTIONS[:1]),
    "no option": replace(BASE, options=()),
    "voicemail on": replace(BASE, voicemail_enabled=True, voicemail_greeting="Leave a message.", voicemail_max_length=60),
    "voicemail only": replace(BASE, voicemail_enabled=True, voicemail_only=True),
    "greeting only": replace(BASE, greeting_only=True),
    "audio": replace(BASE, greeting_audio=11, hold_music=12, mailbox_audio=13, voicemail_enabled=True),
    "hours menu/voicemail": replace(BASE, support_hours_enabled=True, calendar=7, voicemail_enabled=True,
                                    in_hours_calling="simultaneous", out_of_hours_target="voicemail"),
    "hours option/option": replace(BASE, support_hours_enabled=True, calendar=7, in_hours_target="option",
                                   in_hours_option=2, out_of_hours_target="option", out_of_hours_option=1,
                                   out_of_hours_calling="sequential"),
    "hours without a calendar": replace(BASE, support_hours_enabled=True, out_of_hours_target="option",
                                        out_of_hours_option=2),
    "ringing timeout": replace(BASE, ringing_timeout=45),
}


@pytest.mark.parametrize("name", SETTINGS)
def test_compiled_documents_are_valid_normal_and_simple(name):
    data = compiler.compile_settings(SETTINGS[name])
    parsed, errors = parse(data)
    assert errors == []
    assert parsed.data == data  # every field present: stored and compared as compiled
    assert compiler.is_simple(data)


def test_menu_settings_compile_to_a_menu_of_routes():
    data = compiler.compile_settings(BASE)
    assert data["start"] == "menu"
    menu = data["nodes"]["menu"]
    assert menu["prompt"] == {"text": "Welcome to Acme.", "audio": None} and menu["prompt_alone"] is False
    assert menu["retries"] == 3 and menu["no_input"] is None  # the first option after three misses
    assert menu["branches"] == [{"key": "1", "keyword": "Outage", "next": "option-1"},
                                {"key": "2", "keyword": "Billing", "next": "option-2"}]
    assert data["nodes"]["option-1"]["style"] == "sequential"
    assert data["nodes"]["option-2"]["style"] == "simultaneous"
    assert data["nodes"]["option-2"]["targets"] == [{"type": "policy", "id": 6}]
    assert data["nodes"]["option-1"]["no_answer"] is None  # voicemail off: nobody available


def test_a_single_option_plays_the_greeting_first():
    data = compiler.compile_settings(SETTINGS["single option"])
    assert data["start"] == "greeting-option-1"
    assert data["nodes"]["greeting-option-1"]["text"] == "Welcome to Acme."
    assert data["nodes"]["greeting-option-1"]["next"] == "option-1"


def test_voicemail_on_catches_unanswered_routes():
    data = compiler.compile_settings(SETTINGS["voicemail on"])
    assert {n["no_answer"] for i, n in data["nodes"].items() if n["kind"] == "route"} == {"voicemail"}
    assert data["nodes"]["voicemail"]["greeting"] == {"text": "Leave a message.", "audio": None}
    assert data["nodes"]["voicemail"]["max_length"] == 60


def test_voicemail_only_records_with_the_first_options_policy():
    data = compiler.compile_settings(SETTINGS["voicemail only"])
    assert data["start"] == "incident"
    assert data["nodes"]["incident"]["policy"] == 5 and data["nodes"]["incident"]["alert_source"] == 3
    assert set(data["nodes"]) == {"incident", "voicemail"}


def test_support_hours_targets_and_calling_styles():
    data = compiler.compile_settings(SETTINGS["hours menu/voicemail"])
    hours = data["nodes"]["hours"]
    assert (hours["calendar"], hours["in_hours"], hours["out_of_hours"], hours["holiday"]) == (
        7, "menu-simultaneous", "incident", None)
    assert {n["style"] for n in data["nodes"].values() if n["kind"] == "route"} == {"simultaneous"}
    data = compiler.compile_settings(SETTINGS["hours option/option"])
    hours = data["nodes"]["hours"]
    assert hours["in_hours"] == "greeting-option-2" and hours["out_of_hours"] == "greeting-option-1-sequential"
    assert data["nodes"]["option-2"]["style"] == "simultaneous"


def test_greeting_only_without_a_greeting_still_speaks_the_menu():
    data = compiler.compile_settings(replace(BASE, greeting="", greeting_only=True))
    assert data["nodes"]["menu"]["prompt_alone"] is False
    assert validate(data) == []


def test_a_recorded_greeting_replaces_the_spoken_menu():
    data = compiler.compile_settings(SETTINGS["audio"])
    assert data["nodes"]["menu"]["prompt"] == {"text": "Welcome to Acme.", "audio": 11}
    assert data["nodes"]["menu"]["prompt_alone"] is True
    assert data["nodes"]["option-1"]["hold_music"] == 12
    assert data["nodes"]["voicemail"]["greeting"]["audio"] == 13


@pytest.mark.parametrize("change", [
    lambda d: d["nodes"]["menu"].update(name="Main menu"),
    lambda d: d["nodes"]["menu"]["branches"][0].update(keyword="Outages"),
    lambda d: d["nodes"]["option-1"].update(repeat=2),
    lambda d: d["nodes"]["option-1"]["targets"].append({"type": "user", "id": 3}),
    lambda d: d["nodes"].update(extra={"kind": "hangup", "text": "x"}),
])
def test_anything_the_settings_cannot_say_is_not_simple(change):
    data = compiler.compile_settings(BASE)
    change(data)
    assert not compiler.is_simple(data)


def test_the_example_flow_is_not_simple():
    assert not compiler.is_simple(EXAMPLE)
