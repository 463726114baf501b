"""The call flow state machine (callrouting.calls.flow) without HTTP or database: states and events in, NCCO and
effects out."""
import datetime as dt

import pytest

from callrouting.calls import flow
from callrouting.models import AgentLeg, Call, RoutingNumber, RoutingOption

S, L = Call.State, AgentLeg.Status


def number(language="en-US", **fields):
    return RoutingNumber(name="Acme support", phone_number="+4930901820", language=language, greeting="Welcome.", **fields)


def options(*labels):
    return [RoutingOption(pk=i + 10, digit=i + 1, label=label, escalation_policy_id=1) for i, label in enumerate(labels)]


def call(state=S.MENU, **fields):
    return Call(pk=5, state=state, token="t" * 32, conversation_name="cr-conv", caller="4917612345678", **fields)


def leg(status=L.DIALLING, pk=7):
    return AgentLeg(pk=pk, status=status, token="l" * 32, phone_number="+4915110000001")


def actions(step):
    return [action["action"] for action in step.ncco or []]


def test_answer_with_menu():
    step = flow.on_answer(number(), options("Outage", "Billing"), call())
    assert actions(step) == ["talk", "input"] and step.effects == ()
    assert step.ncco[0]["text"] == "Welcome. Press 1 or say Outage for Outage. Press 2 or say Billing for Billing."
    assert step.ncco[1]["eventUrl"] == ["https://callrouting.test/vonage/call/" + "t" * 32 + "/input"]


def test_answer_single_option_routes_at_once():
    step = flow.on_answer(number(), options("Support"), call())
    assert actions(step) == ["talk", "conversation"]
    assert step.effects == (flow.Route(10, "single option"),)


def test_answer_without_options_ends_call():
    step = flow.on_answer(number(), [], call())
    assert step.effects == (flow.EndCall(Call.Outcome.NO_AGENT),) and "no one is available" in step.ncco[0]["text"]


def test_answer_again_after_routing_keeps_caller_on_hold():
    step = flow.on_answer(number(), options("A", "B"), call(S.ROUTING))
    assert actions(step) == ["conversation"] and step.effects == ()


@pytest.mark.parametrize(
    "digits, speech, expected",
    [
        ("2", [], (11, "digit")),
        ("", ["billing please"], (11, "speech")),
        ("", ["I want option two"], (11, "speech")),
        ("", ["number 1"], (10, "speech")),
        ("", ["", "OUTAGE!"], (10, "speech")),
    ],
)
def test_menu_input_matches(digits, speech, expected):
    step = flow.on_menu_input(number(), options("Outage", "Billing"), call(), digits=digits, speech_texts=speech)
    assert step.effects == (flow.Route(*expected),) and actions(step) == ["talk", "conversation"]


def test_speech_matches_digit_words_in_the_numbers_language():
    option, how = flow.match_option(options("Störung", "Rechnung"), "de-DE", speech_texts=["zwei bitte"])
    assert option.label == "Rechnung" and how == "speech"
    option, _ = flow.match_option(options("Störung", "Rechnung"), "de-DE", speech_texts=["eine Störung"])
    assert option.label == "Störung"


def test_longest_label_wins():
    option, _ = flow.match_option(options("Billing", "Billing disputes"), "en-US", speech_texts=["billing disputes"])
    assert option.label == "Billing disputes"


def test_unmatched_input_repeats_menu_then_routes_to_first_option():
    opts = options("Outage", "Billing")
    first = flow.on_menu_input(number(), opts, call(tries=0), digits="")
    assert first.effects == (flow.CountTry(),) and actions(first) == ["talk", "input"]
    second = flow.on_menu_input(number(), opts, call(tries=1), digits="9")
    assert second.effects == (flow.CountTry(),)
    third = flow.on_menu_input(number(), opts, call(tries=2), speech_texts=["hello?"])
    assert third.effects == (flow.Route(10, "no choice after 3 tries"),)


def test_input_after_routing_changes_nothing():
    step = flow.on_menu_input(number(), options("A", "B"), call(S.ROUTING), digits="2")
    assert step.effects == () and actions(step) == ["conversation"]


@pytest.mark.parametrize(
    "state, expected",
    [
        (S.MENU, flow.EndCall(Call.Outcome.ABANDONED)),
        (S.ROUTING, flow.EndCall(Call.Outcome.ABANDONED, cancel_legs=True, escalate="the caller hung up while agents were called")),
        (S.CONNECTED, flow.EndCall(Call.Outcome.ANSWERED, cancel_legs=True, resolve=True)),
        (S.VOICEMAIL, flow.EndCall(Call.Outcome.NO_MESSAGE, escalate="the caller hung up before leaving a message")),
    ],
)
def test_caller_gone(state, expected):
    assert flow.on_caller_gone(call(state)).effects == (expected,)


def test_caller_gone_after_leaving_a_message():
    effects = flow.on_caller_gone(call(S.VOICEMAIL), message_left=True).effects
    assert effects == (flow.EndCall(Call.Outcome.VOICEMAIL),)


def test_caller_gone_while_recording_ends_as_a_voicemail_awaiting_its_recording():
    """Past the greeting (the notify came), no recording yet: Vonage sends it after the hang-up."""
    started = call(S.VOICEMAIL, recording_started_at=NOW)
    assert flow.on_caller_gone(started).effects == (flow.EndCall(Call.Outcome.VOICEMAIL),)


NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone.utc)
NO_MESSAGE = Call.Outcome.NO_MESSAGE


@pytest.mark.parametrize(
    "state, outcome, seconds, expected",
    [
        # Cut short by the hang-up: under two seconds is no message, escalated at once.
        (S.ENDED, Call.Outcome.VOICEMAIL, 1, flow.ChangeOutcome(
            Call.Outcome.VOICEMAIL, NO_MESSAGE,
            "the recording is only 1 s long: the caller hung up before leaving a message",
            "the caller hung up before leaving a message")),
        (S.ENDED, Call.Outcome.VOICEMAIL, 2, None),
        (S.ENDED, Call.Outcome.VOICEMAIL, None, None),  # no times in the webhook: a message
        # The notify was lost but a message came: a voicemail after all (escalated already).
        (S.ENDED, NO_MESSAGE, 12, flow.ChangeOutcome(
            NO_MESSAGE, Call.Outcome.VOICEMAIL,
            "a recording of 12 s came in after the caller hung up: they left a message after all")),
        (S.ENDED, NO_MESSAGE, 1, None),
        # The caller still on the line: the recording ended on '#' or at the maximum length, a message.
        (S.VOICEMAIL, "", 0, None),
        (S.ENDED, Call.Outcome.ANSWERED, 1, None),
    ],
)
def test_a_recording_after_the_hang_up_decides_the_outcome(state, outcome, seconds, expected):
    step = flow.on_recording(call(state, outcome=outcome), seconds)
    assert step.ncco is None and step.effects == ((expected,) if expected else ())


def test_caller_gone_twice_does_nothing():
    assert flow.on_caller_gone(call(S.ENDED)).effects == ()


@pytest.mark.parametrize(
    "current, status, detail, expected",
    [
        (L.DIALLING, "ringing", "", L.RINGING),
        (L.RINGING, "answered", "", L.ANSWERED),
        (L.RINGING, "busy", "", L.BUSY),
        (L.RINGING, "unanswered", "timeout", L.NO_ANSWER),
        (L.RINGING, "timeout", "", L.NO_ANSWER),
        (L.RINGING, "rejected", "declined", L.DECLINED),
        (L.RINGING, "rejected", "restricted", L.FAILED),
        (L.DIALLING, "failed", "cannot_route", L.FAILED),
        (L.ANSWERED, "machine", "", L.MACHINE),
        (L.ANSWERED, "completed", "", L.NO_ANSWER),
        (L.RINGING, "completed", "", L.NO_ANSWER),
    ],
)
def test_agent_events(current, status, detail, expected):
    step = flow.on_agent_event(call(S.ROUTING), leg(current), status, detail)
    assert [(e.status) for e in step.effects] == [expected]


@pytest.mark.parametrize("status", ["answered", "ringing", "busy", "completed", "started", "human"])
def test_late_or_repeated_agent_events_change_nothing(status):
    assert flow.on_agent_event(call(S.ROUTING), leg(L.BUSY), status).effects == ()


def test_answered_after_completed_changes_nothing():
    assert flow.on_agent_event(call(S.ROUTING), leg(L.NO_ANSWER), "answered").effects == ()


def test_connected_agent_hanging_up_ends_the_call():
    connected = call(S.CONNECTED, connected_leg_id=7)
    step = flow.on_agent_event(connected, leg(L.ACCEPTED), "completed")
    assert step.effects == (flow.EndCall(Call.Outcome.ANSWERED, resolve=True),)


def test_agent_accepts():
    step = flow.on_agent_input(number(), call(S.ROUTING), leg(L.ANSWERED), "Outage", digits="1")
    assert step.effects == (flow.Connect(7),)
    assert step.ncco == [{"action": "conversation", "name": "cr-conv", "startOnEnter": True, "endOnExit": True}]


def test_agent_accepting_a_taken_call_hears_so():
    step = flow.on_agent_input(number(), call(S.CONNECTED, connected_leg_id=8), leg(L.ANSWERED), "Outage", digits="1")
    assert step.ncco[0]["text"].startswith("This call has already been taken")
    assert step.effects == (flow.SetLegStatus(7, L.CANCELLED, "call already taken or ended"),)


def test_agent_accepting_after_caller_left_hears_so():
    step = flow.on_agent_input(number(), call(S.ENDED), leg(L.CANCELLED), "Outage", digits="1")
    assert step.ncco[0]["text"] == "The caller has already hung up. Goodbye." and step.effects == ()


def test_repeated_accept_of_the_connected_agent_gets_the_same_answer():
    step = flow.on_agent_input(number(), call(S.CONNECTED, connected_leg_id=7), leg(L.ACCEPTED), "Outage", digits="1")
    assert actions(step) == ["conversation"] and step.effects == ()


@pytest.mark.parametrize(
    "digits, timed_out, expected",
    [("2", False, L.DECLINED), ("", True, L.NO_ANSWER), ("", False, L.NO_ANSWER)],
)
def test_agent_declines_or_presses_nothing(digits, timed_out, expected):
    step = flow.on_agent_input(number(), call(S.ROUTING), leg(L.ANSWERED), "Outage", digits=digits, timed_out=timed_out)
    assert [e.status for e in step.effects] == [expected] and step.ncco[0]["text"] == "Goodbye."


def test_agent_pressing_another_key_hears_the_prompt_again():
    step = flow.on_agent_input(number(), call(S.ROUTING), leg(L.ANSWERED), "Outage", digits="5")
    assert step.effects == () and step.ncco[0]["text"].endswith("Press 1 to accept, 2 to decline.")


def test_agent_whisper_in_german():
    ncco = flow.agent_whisper_ncco(number("de-DE"), "Störung", "+4917612", leg())
    assert ncco[0]["text"] == "Acme support: Störung, Anruf von 4 9 1 7 6 1 2. Drücken Sie 1 zum Annehmen, 2 zum Ablehnen."
    assert ncco[0]["language"] == "de-DE"


@pytest.mark.parametrize(
    "simultaneous, statuses, voicemail, expected",
    [
        (False, [L.QUEUED, L.QUEUED], False, flow.DialNext()),
        (False, [L.RINGING, L.QUEUED], False, None),
        (False, [L.BUSY, L.QUEUED], False, flow.DialNext()),
        (False, [L.BUSY, L.DECLINED], True, flow.NobodyLeft(voicemail=True)),
        (True, [L.QUEUED, L.QUEUED], False, flow.DialNext()),
        (True, [L.BUSY, L.RINGING], False, None),
        (True, [L.BUSY, L.FAILED], False, flow.NobodyLeft(voicemail=False)),
        (False, [], False, flow.NobodyLeft(voicemail=False)),
    ],
)
def test_next_dial(simultaneous, statuses, voicemail, expected):
    step = flow.next_dial(call(S.ROUTING, simultaneous=simultaneous), statuses, voicemail)
    assert step.effects == ((expected,) if expected else ())


def test_next_dial_after_the_call_moved_on_does_nothing():
    assert flow.next_dial(call(S.CONNECTED), [L.QUEUED], True).effects == ()


def test_voicemail_ncco():
    vm = number(voicemail_enabled=True, voicemail_greeting="Leave a message.", voicemail_max_length=60)
    ncco = flow.voicemail_ncco(vm, call(S.VOICEMAIL))
    assert actions(flow.Step(ncco)) == ["talk", "notify", "record", "talk"]
    # Right before the recording, Vonage tells the product the caller got past the greeting.
    assert ncco[1] == {"action": "notify", "payload": {"mailbox": "recording"}, "eventMethod": "POST",
                       "eventUrl": ["https://callrouting.test/vonage/call/" + "t" * 32 + "/recording-started"]}
    assert ncco[2]["timeOut"] == 60 and ncco[2]["transcription"]["language"] == "en-US"
    vm.voicemail_greeting, vm.voicemail_transcription = "", False
    ncco = flow.voicemail_ncco(vm, call(S.VOICEMAIL))
    assert actions(flow.Step(ncco)) == ["notify", "record", "talk"] and "transcription" not in ncco[1]


# --- support hours targets and voicemail-only mode (no database: unsaved numbers have no custom audio) ----------


def test_answer_option_target_greets_without_menu_and_routes():
    from callrouting.models import CallTarget, Target

    step = flow.on_answer(number(), options("Outage", "Billing"), call(), CallTarget(Target.OPTION, 11, "option", False))
    assert actions(step) == ["talk", "talk", "conversation"]
    assert step.ncco[0] == {"action": "talk", "text": "Welcome.", "language": "en-US"}
    assert step.effects == (flow.Route(11, "direct outside support hours"),)


def test_answer_voicemail_target_and_voicemail_only_mode_record_at_once():
    from callrouting.models import CallTarget, Target

    step = flow.on_answer(number(voicemail_enabled=True), options("Outage", "Billing"), call(),
                          CallTarget(Target.VOICEMAIL, None, "option", False))
    assert actions(step) == ["notify", "record", "talk"]
    assert step.effects == (flow.StartVoicemail(10, "outside support hours"),)
    step = flow.on_answer(number(voicemail_enabled=True, voicemail_only=True), options("Outage"), call())
    assert actions(step) == ["notify", "record", "talk"]
    assert step.effects == (flow.StartVoicemail(10, "voicemail-only mode"),)
    # Once in voicemail, a repeated answer webhook gets the recording again and changes nothing.
    step = flow.on_answer(number(voicemail_enabled=True, voicemail_only=True), options("Outage"), call(S.VOICEMAIL))
    assert actions(step) == ["notify", "record", "talk"] and step.effects == ()
