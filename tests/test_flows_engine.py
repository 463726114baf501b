"""The pure call flow engine (callrouting.flows.engine): every node kind and every branch, without HTTP or a
database. Documents come from tests/flow_documents.py; the world is fixed data (StaticWorld)."""
import dataclasses

import pytest

from callrouting.emulator.validation import ncco_problems
from callrouting.flows import engine
from callrouting.flows.steps import (
    BLOCKED, FLOW_ENDED, FLOW_ERROR, NO_AGENT, CallState, CreateIncident, EndCall, LogLine, PinAccepted, RouteTo,
    StartVoicemail,
)
from tests import flow_documents as fd
from tests.flow_documents import ALICE, BOB, CAROL, DAVE, EXTERNAL, POLICY_3


def texts(ncco):
    return [a["text"] for a in ncco or () if a["action"] == "talk"]


def kinds(ncco):
    return [a["action"] for a in ncco or ()]


def of(step, cls):
    return [e for e in step.effects if isinstance(e, cls)]


def start(doc, **ctx):
    step = engine.start(doc, fd.context(**ctx))
    assert step.ncco is None or (step.ncco and not ncco_problems(step.ncco)), step.ncco
    return step


def two_level():
    """greeting -> main menu (1 outage route, 2 billing submenu) -> billing (1 invoices route, 2 voicemail)."""
    return fd.document(
        "greeting",
        greeting=fd.message("main"),
        main=fd.menu([("1", "outage", "outage"), ("2", "billing", "billing")]),
        billing=fd.menu([("1", "invoices", "invoices"), ("2", "message", "vm")], name="Billing"),
        outage=fd.route([POLICY_3, EXTERNAL], no_answer="vm"),
        invoices=fd.route([{"type": "user", "id": 3}], name="Invoices"),
        vm=fd.voicemail(),
    )


# --- message ---------------------------------------------------------------------------------------------------


def test_message_speaks_then_continues_to_the_next_node_in_the_same_answer():
    step = start(two_level())
    assert texts(step.ncco)[0] == "Welcome to Acme support."
    assert [v.node for v in step.visits] == ["greeting", "main"]
    assert step.state.node == "main" and step.state.data == {"tries": 0}


def test_message_audio_plays_the_uploaded_file_instead_of_the_text():
    doc = fd.document("hello", hello=fd.message("bye", text="ignored", audio=11), bye=fd.hangup())
    step = start(doc)
    assert step.ncco[0] == {"action": "stream", "streamUrl": ["dry-run:audio/11"]}
    assert texts(step.ncco) == ["Goodbye."]


def test_message_in_its_own_language_and_long_text_in_several_talks():
    long_text = ("This is a long sentence about our service. " * 50).strip()
    doc = fd.document("hello", hello=fd.message("bye", text=long_text, language="de-DE"), bye=fd.hangup())
    step = start(doc)
    parts = [a for a in step.ncco if a["action"] == "talk"][:-1]
    assert len(parts) == 2 and all(len(a["text"]) <= 1500 and a["language"] == "de-DE" for a in parts)
    assert " ".join(a["text"] for a in parts) == long_text


# --- menu ------------------------------------------------------------------------------------------------------


def test_menu_text_is_generated_from_the_branches_and_the_input_takes_one_key_or_a_keyword():
    step = start(two_level())
    assert texts(step.ncco) == ["Welcome to Acme support.",
                                "Press 1 or say outage for outage. Press 2 or say billing for billing."]
    listen = step.ncco[-1]
    assert listen["action"] == "input" and listen["dtmf"]["maxDigits"] == 1
    assert listen["speech"]["context"] == ["outage", "billing"] and listen["eventUrl"] == ["dry-run:input/1"]
    # Everything before the input may be interrupted by a key (bargeIn), nothing else is.
    assert all(a.get("bargeIn") for a in step.ncco[:-1])


def test_menu_star_and_hash_keys_are_spoken_as_words_and_a_branch_without_keyword_says_the_key():
    doc = fd.document("m", m=fd.menu([("*", "", "bye"), ("#", "operator", "bye")]), bye=fd.hangup())
    assert texts(start(doc).ncco) == ["Press star. Press hash or say operator for operator."]


def test_menu_prompt_alone_and_audio_prompt():
    doc = fd.document("m", m=fd.menu([("1", "sales", "bye")], text="Press 1 for sales.", prompt_alone=True), bye=fd.hangup())
    assert texts(start(doc).ncco) == ["Press 1 for sales."]
    doc = fd.document("m", m=fd.menu([("1", "sales", "bye")], audio=11), bye=fd.hangup())
    step = start(doc)
    assert kinds(step.ncco) == ["stream", "talk", "input"] and step.ncco[0]["bargeIn"] is True


def test_menu_with_a_single_branch_still_plays_the_greeting_and_asks():
    doc = fd.document("g", g=fd.message("m"), m=fd.menu([("1", "support", "r")]), r=fd.route([POLICY_3]))
    step = start(doc)
    assert texts(step.ncco) == ["Welcome to Acme support.", "Press 1 or say support for support."]


@pytest.mark.parametrize("digits, speech, branch", [
    ("2", [], "billing"),
    ("", ["billing please"], "billing"),
    ("", ["two"], "billing"),
    ("", ["number 2 please"], "billing"),
    ("21", [], "billing"),  # only the first key counts
])
def test_menu_input_chooses_a_branch_by_key_keyword_or_digit_word(digits, speech, branch):
    doc = two_level()
    step = engine.on_input(doc, start(doc).state, fd.context(), digits, speech)
    assert step.state.node == branch
    assert step.visits[0].branch.startswith("2 billing")


def test_menu_speech_matches_the_longest_keyword_first():
    doc = fd.document("m", m=fd.menu([("1", "billing", "a"), ("2", "billing support", "b")]),
                      a=fd.hangup("A"), b=fd.hangup("B"))
    step = engine.on_input(doc, start(doc).state, fd.context(), "", ["I need billing support"])
    assert step.state.node == "b"


def test_menu_german_digit_words():
    doc = fd.document("m", "de-DE", m=fd.menu([("1", "Störung", "a"), ("2", "Rechnung", "b")]),
                      a=fd.hangup("A"), b=fd.hangup("B"))
    state = start(doc).state
    assert engine.on_input(doc, state, fd.context(), "", ["zwei"]).state.node == "b"
    assert engine.on_input(doc, state, fd.context(), "", ["Storung"]).state.node == "a"  # accents ignored


def test_menu_unknown_key_or_silence_repeats_the_menu_and_counts_the_try():
    doc = two_level()
    state = start(doc).state
    step = engine.on_input(doc, state, fd.context(), "9", [])
    assert step.state.node == "main" and step.state.data == {"tries": 1}
    assert texts(step.ncco) == ["Press 1 or say outage for outage. Press 2 or say billing for billing."]
    assert step.ncco[-1]["eventUrl"] == [f"dry-run:input/{step.state.seq}"]
    step = engine.on_input(doc, step.state, fd.context(), "", [])
    assert step.state.data == {"tries": 2} and step.effects == ()


def test_menu_no_input_after_the_retries_takes_the_first_branch_and_says_so():
    doc = two_level()
    state = start(doc).state
    for _ in range(2):
        state = engine.on_input(doc, state, fd.context(), "", []).state
    step = engine.on_input(doc, state, fd.context(), "", [])
    assert step.state.node == "outage"
    assert texts(step.ncco)[0] == "Sorry, we did not get your choice. We will put you through to outage."
    assert step.visits[0].branch == "no_input"


def test_menu_no_input_branch_to_voicemail_is_announced_and_retries_are_honoured():
    doc = fd.document("m", m=fd.menu([("1", "sales", "r")], retries=1, no_input="vm"), r=fd.route([POLICY_3]),
                      vm=fd.voicemail())
    step = engine.on_input(doc, start(doc).state, fd.context(), "", [])
    assert step.state.node == "vm"
    assert texts(step.ncco)[0] == "Sorry, we did not get your choice. Please leave us a message."


def test_menu_no_input_branch_to_another_menu_lets_that_menu_speak():
    doc = fd.document("m", m=fd.menu([("1", "sales", "bye")], retries=1, no_input="m2"),
                      m2=fd.menu([("1", "again", "bye")], name="Second"), bye=fd.hangup())
    step = engine.on_input(doc, start(doc).state, fd.context(), "", [])
    assert texts(step.ncco) == ["Press 1 or say again for again."]


def test_nested_menus_reach_the_second_level():
    doc = two_level()
    state = engine.on_input(doc, start(doc).state, fd.context(), "2", []).state
    assert state.node == "billing"
    step = engine.on_input(doc, state, fd.context(), "1", [])
    assert step.state.node == "invoices" and of(step, RouteTo)[0].targets == (CAROL,)


def test_a_stale_input_for_an_earlier_prompt_changes_nothing_and_answers_where_the_caller_is():
    doc = two_level()
    first = start(doc).state
    second = engine.on_input(doc, first, fd.context(), "2", [], seq=first.seq).state  # now in the billing menu
    again = engine.on_input(doc, second, fd.context(), "2", [], seq=first.seq)  # the same webhook, re-delivered
    assert not again.changed and again.state == second and again.effects == ()
    assert texts(again.ncco) == ["Press 1 or say invoices for invoices. Press 2 or say message for message."]


# --- hours -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, holiday, reached", [
    ("in_hours", None, "a"), ("out_of_hours", None, "b"), ("holiday", "c", "c"), ("holiday", None, "b"),
])
def test_hours_branches(status, holiday, reached):
    doc = fd.document("h", h=fd.hours("a", "b", holiday), a=fd.hangup("A"), b=fd.hangup("B"), c=fd.hangup("C"))
    the_world = fd.world()
    the_world.calendars = {7: status}
    assert engine.start(doc, fd.context(the_world=the_world)).state.node == reached


def test_hours_ask_the_world_at_the_time_of_the_call():
    asked = []
    the_world = fd.world()
    the_world.calendars = {7: lambda at: asked.append(at) or "out_of_hours"}
    doc = fd.document("h", h=fd.hours("a", "b"), a=fd.hangup("A"), b=fd.hangup("B"))
    assert engine.start(doc, fd.context(the_world=the_world)).state.node == "b" and asked == [fd.AT]


# --- route -----------------------------------------------------------------------------------------------------


def test_route_creates_the_incident_holds_the_caller_and_rings_the_targets_once_each_in_order():
    doc = fd.document("r", r=fd.route([POLICY_3, {"type": "user", "id": 2}, {"type": "schedule", "id": 4}, EXTERNAL],
                                      ring_timeout=25, repeat=2))
    step = start(doc)
    assert texts(step.ncco) == ["Connecting you, please hold."]
    hold = step.ncco[-1]
    assert hold["action"] == "conversation" and hold["name"] == "conv-1" and hold["startOnEnter"] is False
    assert hold["musicOnHoldUrl"] == ["dry-run:music/default"]
    (created,) = of(step, CreateIncident)
    assert created.policy == 3 and created.title == f"Call from {fd.CALLER} for Outage team"
    (routed,) = of(step, RouteTo)
    assert routed.targets[:3] == (ALICE, BOB, CAROL) and routed.targets[3].kind == "external"  # Bob once
    assert (routed.round, routed.repeat, routed.ring_timeout, routed.style) == (1, 2, 25, "sequential")
    assert step.state.incident and step.state.data["round"] == 1


def test_route_hold_music_of_the_node():
    step = start(fd.document("r", r=fd.route([POLICY_3], hold_music=11)))
    assert step.ncco[-1]["musicOnHoldUrl"] == ["dry-run:music/11"] and of(step, RouteTo)[0].hold_music == "dry-run:music/11"


def test_route_random_order_is_seeded_by_the_call_uuid():
    targets = [{"type": "user", "id": n} for n in (1, 2, 3, 4)]
    doc = fd.document("r", r=fd.route(targets, style="random"))
    orders = {uuid: of(start(doc, call_uuid=uuid), RouteTo)[0].targets for uuid in [f"call-{n}" for n in range(12)]}
    assert all(sorted(o, key=lambda t: t.user_id) == [ALICE, BOB, CAROL, DAVE] for o in orders.values())
    assert len(set(orders.values())) > 1  # not the document's order every time
    assert of(start(doc, call_uuid="call-3"), RouteTo)[0].targets == orders["call-3"]  # a replay agrees


def test_route_simultaneous_rings_all_and_repeats_rounds_then_takes_nobody_answered():
    doc = fd.document("r", r=fd.route([POLICY_3], style="simultaneous", repeat=2, no_answer="vm"), vm=fd.voicemail())
    state = start(doc).state
    step = engine.on_route_outcome(doc, state, fd.context(), "nobody_answered", round=1)
    assert step.ncco is None  # the caller stays on hold
    (again,) = of(step, RouteTo)
    assert again.round == 2 and again.style == "simultaneous" and again.targets == (ALICE, BOB)
    # The round-1 report arriving twice changes nothing.
    assert not engine.on_route_outcome(doc, step.state, fd.context(), "nobody_answered", round=1).changed
    step = engine.on_route_outcome(doc, step.state, fd.context(), "nobody_answered", round=2)
    assert step.state.node == "vm" and step.visits[0].branch == "no_answer"
    assert of(step, CreateIncident) == []  # the route made it already
    assert kinds(step.ncco) == ["talk", "notify", "record", "talk"]


def test_route_nobody_answered_without_a_branch_says_nobody_is_available_and_ends():
    doc = fd.document("r", r=fd.route([POLICY_3]))
    step = engine.on_route_outcome(doc, start(doc).state, fd.context(), "nobody_answered")
    assert texts(step.ncco)[0].startswith("Sorry, no one is available")
    assert of(step, EndCall) == [EndCall(NO_AGENT, escalate="nobody took the call")] and step.state.ended


def test_route_with_nobody_to_ring_goes_to_nobody_answered_at_once():
    doc = fd.document("r", r=fd.route([{"type": "policy", "id": 5}], no_answer="bye"), bye=fd.hangup())
    step = start(doc)
    assert step.state.node == "bye" and len(of(step, CreateIncident)) == 1 and of(step, RouteTo) == []
    assert of(step, LogLine)[0].text == "Nobody to call on “Outage team”."
    assert of(step, EndCall)[0].outcome == NO_AGENT and of(step, EndCall)[0].escalate


def test_route_answered_ends_the_flow_with_the_call():
    doc = fd.document("r", r=fd.route([POLICY_3], repeat=3, no_answer="vm"), vm=fd.voicemail())
    step = engine.on_route_outcome(doc, start(doc).state, fd.context(), "answered", round=1)
    assert step.ncco is None and step.effects == () and step.state.data["answered"]
    late = engine.on_route_outcome(doc, step.state, fd.context(), "nobody_answered", round=1)
    assert not late.changed and late.state == step.state


def test_route_chain_route_external_number_voicemail():
    doc = fd.document("a", a=fd.route([{"type": "user", "id": 1}], no_answer="b"),
                      b=fd.route([EXTERNAL], name="Team lead", no_answer="vm"), vm=fd.voicemail())
    state = start(doc).state
    step = engine.on_route_outcome(doc, state, fd.context(), "nobody_answered")
    assert [t.label for t in of(step, RouteTo)[0].targets] == ["Team lead mobile"] and of(step, CreateIncident) == []
    assert texts(step.ncco) == ["Connecting you, please hold."]
    step = engine.on_route_outcome(doc, step.state, fd.context(), "nobody_answered")
    assert step.state.node == "vm" and of(step, StartVoicemail)


def test_an_input_while_on_hold_changes_nothing():
    doc = fd.document("r", r=fd.route([POLICY_3]))
    state = start(doc).state
    step = engine.on_input(doc, state, fd.context(), "1", [])
    assert not step.changed and kinds(step.ncco) == ["conversation"]


# --- voicemail -------------------------------------------------------------------------------------------------


def test_voicemail_greeting_notify_record_thanks_and_its_incident():
    doc = fd.document("vm", vm=fd.voicemail(max_length=60))
    step = start(doc)
    assert kinds(step.ncco) == ["talk", "notify", "record", "talk"]
    assert step.ncco[1]["payload"] == {"mailbox": "recording"}
    record = step.ncco[2]
    assert record["timeOut"] == 60 and record["transcription"]["language"] == "en-GB"
    (created,) = of(step, CreateIncident)
    assert created.title == f"Voicemail for Acme support from {fd.CALLER}"
    assert of(step, StartVoicemail) == [StartVoicemail("vm", 60, True, "voicemail")]


def test_voicemail_without_greeting_records_at_once_and_without_transcription():
    step = start(fd.document("vm", vm=fd.voicemail(text="", transcription=False)))
    assert kinds(step.ncco) == ["notify", "record", "talk"] and "transcription" not in step.ncco[1]


def test_voicemail_audio_greeting():
    step = start(fd.document("vm", vm=fd.voicemail(text="", audio=11)))
    assert kinds(step.ncco)[0] == "stream"


# --- pin -------------------------------------------------------------------------------------------------------


def pin_doc(wrong="bye", retries=3):
    return fd.document("p", p=fd.pin("r", wrong, codes=(("1234", "Globex"), ("98765", "Initech")), retries=retries),
                       r=fd.route([POLICY_3]), bye=fd.hangup())


def test_pin_asks_for_a_code_of_the_longest_length_ended_by_hash():
    step = start(pin_doc())
    assert texts(step.ncco) == ["Enter your PIN"]
    assert step.ncco[-1]["dtmf"] == {"maxDigits": 5, "timeOut": 5, "submitOnHash": True}
    assert "speech" not in step.ncco[-1]


def test_pin_correct_code_continues_and_its_label_goes_into_the_incident():
    doc = pin_doc()
    step = engine.on_input(doc, start(doc).state, fd.context(), "1234#", [])
    assert of(step, PinAccepted) == [PinAccepted("p", "Globex")]
    (created,) = of(step, CreateIncident)
    assert created.pin_label == "Globex" and "Globex" in created.title
    assert of(step, RouteTo)[0].about == "Outage team, Globex"


def test_pin_wrong_code_asks_again_then_takes_the_wrong_branch():
    doc = pin_doc(retries=2)
    step = engine.on_input(doc, start(doc).state, fd.context(), "1111", [])
    assert texts(step.ncco) == ["Sorry, that PIN is not valid.", "Enter your PIN"] and step.state.data == {"tries": 1}
    step = engine.on_input(doc, step.state, fd.context(), "", [])
    assert step.state.node == "bye" and of(step, EndCall)[0].outcome == FLOW_ENDED
    assert of(step, LogLine)[0].text == "No valid PIN after 2 tries." and of(step, CreateIncident) == []


def test_pin_wrong_without_a_branch_says_goodbye():
    doc = pin_doc(wrong=None, retries=1)
    step = engine.on_input(doc, start(doc).state, fd.context(), "0000", [])
    assert texts(step.ncco) == ["Sorry, that PIN is not valid. Goodbye."] and step.state.ended


# --- caller list -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller, listed", [
    ("+441111111111", True), ("+442071234567", True), ("+441111111112", False), ("", True), ("Unknown", True),
    ("anonymous", True), ("+4915550000100", False),
])
def test_caller_list_numbers_prefixes_and_anonymous(caller, listed):
    doc = fd.document("l", l=fd.caller_list(["+441111111111", "+4420*", "anonymous"], "bye", "r"),
                      bye=fd.hangup("You are blocked."), r=fd.route([POLICY_3]))
    step = start(doc, caller=caller)
    assert step.state.node == ("bye" if listed else "r")
    if listed:  # blocked: a line in the call log, no incident
        assert of(step, CreateIncident) == [] and of(step, EndCall)[0].outcome == BLOCKED and of(step, LogLine)


def test_caller_list_to_route_key_customers_first():
    doc = fd.document("l", l=fd.caller_list(["+4915550000*"], "vip", "r"), vip=fd.route([EXTERNAL], name="VIP"),
                      r=fd.route([POLICY_3]))
    assert start(doc).state.node == "vip" and start(doc, caller="+33123456789").state.node == "r"


# --- incident --------------------------------------------------------------------------------------------------


def test_incident_node_creates_the_incident_with_its_settings_and_a_later_route_creates_none():
    doc = fd.document("i", i=fd.incident("r", accept=False), r=fd.route([POLICY_3]))
    step = start(doc)
    (created,) = of(step, CreateIncident)
    assert (created.alert_source, created.priority, created.policy, created.accept_when_answered) == (2, "high", 3, False)
    assert [e.node_id for e in step.effects if isinstance(e, (CreateIncident, RouteTo))] == ["i", "r"]


def test_a_second_incident_node_makes_no_second_incident():
    doc = fd.document("i", i=fd.incident("j"), j=fd.incident("bye"), bye=fd.hangup())
    step = start(doc)
    assert len(of(step, CreateIncident)) == 1 and of(step, LogLine)[0].node_id == "j"
    assert of(step, EndCall)[0].escalate  # the incident goes back to its policy when the flow ends the call


# --- hangup ----------------------------------------------------------------------------------------------------


def test_hangup_default_goodbye_and_outcome():
    step = start(fd.document("bye", bye=fd.hangup(text="")))
    assert texts(step.ncco) == ["Goodbye."] and of(step, EndCall) == [EndCall(FLOW_ENDED)] and step.state.ended
    assert not engine.on_input(fd.document("bye", bye=fd.hangup()), step.state, fd.context(), "1").changed


# --- the engine ------------------------------------------------------------------------------------------------


def test_a_loop_without_input_is_stopped_by_the_step_guard_with_an_apology():
    doc = fd.document("a", a=fd.message("b", text="A"), b=fd.message("a", text="B"))
    step = start(doc)
    assert len(step.visits) == engine.MAX_NODES_PER_EVENT + 1
    assert texts(step.ncco)[-1].startswith("Sorry, we are having technical difficulties")
    assert of(step, EndCall)[0].outcome == FLOW_ERROR and step.state.ended


def test_a_branch_to_a_missing_node_ends_with_an_apology():
    step = start(fd.document("a", a=fd.message("nowhere")))
    assert of(step, EndCall)[0].outcome == FLOW_ERROR and texts(step.ncco)[-1].startswith("Sorry")
    assert of(start(fd.document("missing")), EndCall)[0].outcome == FLOW_ERROR


@pytest.mark.parametrize("where, kwargs, outcome, escalates", [
    ("menu", {}, "abandoned", False),
    ("route", {}, "abandoned", True),
    ("answered", {}, "answered", False),
    ("voicemail", {}, "no_message", True),
    ("voicemail", {"recording_started": True}, "voicemail", False),
    ("voicemail", {"message_left": True}, "voicemail", False),
])
def test_caller_gone(where, kwargs, outcome, escalates):
    doc = fd.document("m", m=fd.menu([("1", "a", "r"), ("2", "b", "vm")]), r=fd.route([POLICY_3]), vm=fd.voicemail())
    state = start(doc).state
    if where in ("route", "answered"):
        state = engine.on_input(doc, state, fd.context(), "1").state
    if where == "answered":
        state = engine.on_route_outcome(doc, state, fd.context(), "answered").state
    if where == "voicemail":
        state = engine.on_input(doc, state, fd.context(), "2").state
    step = engine.on_caller_gone(doc, state, fd.context(), **kwargs)
    (end,) = of(step, EndCall)
    assert end.outcome == outcome and bool(end.escalate) == escalates and step.state.ended
    assert not engine.on_caller_gone(doc, step.state, fd.context()).changed


def test_current_ncco_is_where_the_caller_belongs():
    doc = two_level()
    state = start(doc).state
    assert kinds(engine.current_ncco(doc, state, fd.context()))[-1] == "input"
    state = engine.on_input(doc, state, fd.context(), "1").state
    assert kinds(engine.current_ncco(doc, state, fd.context())) == ["conversation"]
    ended = dataclasses.replace(state, ended=True)
    assert texts(engine.current_ncco(doc, ended, fd.context()))[0].startswith("Sorry")


def test_call_state_round_trips_through_json():
    doc = two_level()
    state = engine.on_input(doc, start(doc).state, fd.context(), "1").state
    assert CallState.from_json(state.node, state.as_json()) == state
    assert CallState.from_json("x", None) == CallState("x")


def test_the_engine_accepts_a_parsed_document_object():
    class Parsed:
        def as_json(self):
            return two_level()

    assert engine.start(Parsed(), fd.context()).state.node == "main"


# --- the dry run (pure, with the StaticWorld) --------------------------------------------------------------------


def test_dry_run_records_the_path_what_is_heard_and_who_is_dialled():
    from callrouting.flows.dryrun import dry_run

    doc = fd.document("g", g=fd.message("m", audio=11), m=fd.menu([("1", "outage", "p")]),
                      p=fd.pin("r", "bye"), r=fd.route([POLICY_3, EXTERNAL], repeat=2, no_answer="vm"),
                      vm=fd.voicemail(), bye=fd.hangup())
    run = dry_run(doc, at=fd.AT, caller=fd.CALLER, world=fd.world(), number_name="Acme support",
                  inputs=["say:outage", "pin:0000", "pin:1234", "1", "nobody_answers", "nobody_answers", "answers"])
    rows = [(s["event"], s["node"], s["kind"], s["branch"]) for s in run.steps]
    assert rows == [
        ("call", "g", "message", "next"), ("call", "m", "menu", ""),
        ("say:outage", "m", "menu", "1 outage (speech)"), ("say:outage", "p", "pin", ""),
        ("pin:0000", "p", "pin", ""),
        ("pin:1234", "p", "pin", "correct PIN"), ("pin:1234", "r", "route", ""),
        ("1", "r", "ignored", ""),  # a key while on hold changes nothing
        ("nobody_answers", "r", "route", ""),
        ("nobody_answers", "r", "route", "no_answer"), ("nobody_answers", "vm", "voicemail", ""),
        ("answers", "vm", "ignored", ""),  # nobody rings any more: the call is in the mailbox
    ]
    assert run.steps[0]["hears"] == ["audio: welcome.mp3"]
    assert run.steps[6]["dials"] == [["Alice", "Bob", "Team lead mobile"]]
    assert run.steps[8]["dials"] == [["Alice", "Bob", "Team lead mobile"]]  # round 2
    assert run.steps[10]["hears"][-1] == "Thank you for your message. Goodbye." and not run.ended


def test_who_would_be_called_and_the_routes_a_call_can_reach_now():
    from callrouting.flows.dryrun import routes_now, who_would_be_called

    doc = fd.document("h", h=fd.hours("m", "night"), m=fd.menu([("1", "outage", "day"), ("2", "billing", "bill")]),
                      day=fd.route([POLICY_3, {"type": "user", "id": 2}], name="Day"),
                      bill=fd.route([{"type": "policy", "id": 5}], name="Billing", no_answer="vm"),
                      night=fd.route([{"type": "schedule", "id": 4}], name="Night", style="simultaneous"),
                      vm=fd.voicemail())
    assert who_would_be_called(doc, "day", fd.AT, fd.world()) == [ALICE, BOB]
    assert who_would_be_called(doc, "vm", fd.AT, fd.world()) == []
    rows = routes_now(doc, fd.AT, fd.world())
    assert [(r["node"], r["key"], [t.label for t in r["dials"]], r["otherwise"]) for r in rows] == [
        ("day", "1", ["Alice", "Bob"], None), ("bill", "2", [], "vm")]
    night = fd.world()
    night.calendars = {7: "out_of_hours"}
    assert [(r["node"], r["style"]) for r in routes_now(doc, fd.AT, night)] == [("night", "all at once")]


def test_the_engine_and_the_dry_run_import_nothing_of_django():
    import subprocess
    import sys

    code = ("import sys, callrouting.flows.engine, callrouting.flows.dryrun; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
