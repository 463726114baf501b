"""The live call flow as a state machine: given a call's state and an event, the next NCCO and the effects.

Nothing here touches the database or the network; callrouting.calls reads the state (under a row lock),
asks this module what happens next, and applies the effects with conditional updates.

Caller (Call.State)                                   Agent leg (AgentLeg.Status)
  MENU -- option chosen / single option / 3rd miss --> ROUTING     QUEUED -> DIALLING -> RINGING -> ANSWERED
  MENU -- support hours target: an option --> ROUTING (greeting, no menu)
  MENU -- target voicemail / voicemail-only mode --> VOICEMAIL
  ROUTING -- an agent presses 1 --> CONNECTED                       ANSWERED -- 1 --> ACCEPTED
  ROUTING -- nobody left, voicemail on --> VOICEMAIL                any active -- 2 / no key / busy / no answer /
  ROUTING -- nobody left, voicemail off --> ENDED (no_agent)           machine / failed --> the next agent is called
  MENU/ROUTING -- caller hangs up --> ENDED (abandoned)             any not ended -- caller gone / taken --> CANCELLED
  CONNECTED -- either side hangs up --> ENDED (answered)
  VOICEMAIL -- caller hangs up --> ENDED: voicemail when the recording is in or under way (its record webhook
             follows the hang-up); no_message, escalated at once, when the caller left during the mailbox greeting
  ENDED (voicemail) -- a recording under MIN_MESSAGE_SECONDS arrives after the hang-up --> no_message, escalated
  ENDED (no_message) -- a longer recording arrives after all --> voicemail

Vonage sends the record webhook when the recording is finished, which for a caller who speaks and hangs up comes
after the leg's "completed" event. So the mailbox NCCO has a notify action right before its record action: its
webhook (Call.recording_started_at) tells a caller who hung up during the greeting from one whose message is
still on its way.
"""
import re
import unicodedata
from dataclasses import dataclass, field

from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse

from .. import ncco, phrases
from ..models import AgentLeg, Call, CallTarget, NumberAudio, Target

MAX_MENU_TRIES = 3
# A recording shorter than this that ends with the caller hanging up holds no message (the beep, a breath).
MIN_MESSAGE_SECONDS = 2
HUNG_UP_BEFORE_MESSAGE = "the caller hung up before leaving a message"
# What the notify action right before the record action sends (callrouting:call-recording-started).
RECORDING_STARTED = {"mailbox": "recording"}
HOLD_MUSIC = "callrouting/hold-music.mp3"

S = Call.State
L = AgentLeg.Status

# The states a call may move into a state from: every change is filter(state__in=CALL_FROM[new]).update(...).
CALL_FROM = {
    S.ROUTING: (S.MENU,),
    S.CONNECTED: (S.ROUTING,),
    S.VOICEMAIL: (S.MENU, S.ROUTING),
    S.ENDED: (S.MENU, S.ROUTING, S.CONNECTED, S.VOICEMAIL),
}
LEG_ACTIVE = (L.DIALLING, L.RINGING, L.ANSWERED)
LEG_FINISHED = (L.ACCEPTED, L.DECLINED, L.NO_ANSWER, L.BUSY, L.MACHINE, L.FAILED, L.CANCELLED)
LEG_FROM = {
    L.DIALLING: (L.QUEUED,),
    L.RINGING: (L.DIALLING,),
    L.ANSWERED: (L.DIALLING, L.RINGING),
    L.ACCEPTED: LEG_ACTIVE,
    L.CANCELLED: (L.QUEUED, *LEG_ACTIVE),
    **{status: LEG_ACTIVE for status in (L.DECLINED, L.NO_ANSWER, L.BUSY, L.MACHINE, L.FAILED)},
}


# --- Effects: what services must do besides answering Vonage -------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Route the call to OPTION_ID (create the incident, put the caller on hold, start calling agents)."""

    option_id: int
    how: str


@dataclass(frozen=True)
class StartVoicemail:
    """Send the caller straight to voicemail (support hours target, voicemail-only mode): create the incident
    for OPTION_ID's policy (None: the alert source's), held back until the message is in."""

    option_id: int | None
    how: str


@dataclass(frozen=True)
class CountTry:
    """Count one more menu attempt without a usable answer."""


@dataclass(frozen=True)
class SetLegStatus:
    """Move LEG_ID to STATUS (from the states LEG_FROM allows); an ended leg lets the next agent be called."""

    leg_id: int
    status: str
    detail: str = ""


@dataclass(frozen=True)
class Connect:
    """LEG_ID's agent takes the call: the call is CONNECTED, the incident accepted, every other leg hung up."""

    leg_id: int


@dataclass(frozen=True)
class EndCall:
    outcome: str
    cancel_legs: bool = False
    escalate: str = ""  # a reason: hand the incident back to its escalation policy
    resolve: bool = False


@dataclass(frozen=True)
class ChangeOutcome:
    """An ended call's outcome turns out otherwise once its recording is in: OLD becomes NEW, with WHY on the
    timeline (and ESCALATE, a reason, when the incident goes back to its escalation policy now)."""

    old: str
    new: str
    why: str
    escalate: str = ""


@dataclass(frozen=True)
class DialNext:
    """Call the next waiting agent (sequential) or every waiting agent (simultaneous)."""


@dataclass(frozen=True)
class NobodyLeft:
    """Every agent was tried: voicemail, or 'nobody available' and the end of the call."""

    voicemail: bool


@dataclass(frozen=True)
class Step:
    ncco: list | None = None
    effects: tuple = field(default_factory=tuple)


# --- URLs and NCCOs ------------------------------------------------------------------------------------------


def absolute_url(name, **kwargs):
    return settings.PUBLIC_BASE_URL + reverse(name, kwargs=kwargs or None)


def hold_music_url(number=None):
    """The number's own hold music, else the one shipped with the product."""
    custom = number.audio_urls().get(NumberAudio.Kind.HOLD_MUSIC) if number is not None else None
    if custom:
        return custom
    url = static(HOLD_MUSIC)
    return url if url.startswith("http") else settings.PUBLIC_BASE_URL + url


def greeting_ncco(number, options, *, barge_in):
    """The greeting a caller hears first: the number's recording if it has one (it replaces the spoken greeting
    and menu), else the spoken greeting with the menu for OPTIONS (none: greeting only)."""
    custom = number.audio_urls().get(NumberAudio.Kind.GREETING)
    if custom:
        return [ncco.stream(custom, barge_in=barge_in)]
    text = number.greeting_text(options)
    return ncco.talks(text, number.language, barge_in=barge_in) if text else []


def menu_ncco(number, options, call):
    """The greeting with the menu (barge-in) and an input for one key or a spoken label."""
    actions = greeting_ncco(number, options, barge_in=True)
    actions.append(
        ncco.menu_input(
            absolute_url("callrouting:call-input", token=call.token),
            number.language,
            speech_hints=[o.label for o in options],
        )
    )
    return actions


def hold_ncco(number, call, *, announce=True):
    """'Connecting you, please hold', then hold music in the call's conversation until an agent joins."""
    language = number.language
    actions = [ncco.talk(phrases.phrase(language, "connecting"), language)] if announce else []
    actions.append(
        ncco.conversation(
            call.conversation_name, start_on_enter=False, end_on_exit=True, music_on_hold_url=hold_music_url(number)
        )
    )
    return actions


def voicemail_ncco(number, call):
    """The mailbox greeting (recording or text; none: the recording starts at once), a notify that the recording
    begins (the caller got past the greeting: callrouting:call-recording-started), then record_ncco."""
    actions = []
    custom = number.audio_urls().get(NumberAudio.Kind.MAILBOX_GREETING)
    greeting = number.voicemail_greeting.strip()
    if custom:
        actions.append(ncco.stream(custom))
    elif greeting:
        actions.extend(ncco.talks(greeting, number.language))
    actions.append(ncco.notify(absolute_url("callrouting:call-recording-started", token=call.token), RECORDING_STARTED))
    return actions + record_ncco(number, call)


def record_ncco(number, call):
    """The recording (with its transcription when the number has it on) and a thank-you."""
    return [
        ncco.record(
            absolute_url("callrouting:call-recording", token=call.token),
            max_seconds=number.voicemail_max_length,
            transcription_language=number.language if number.voicemail_transcription else None,
            transcription_event_url=absolute_url("callrouting:call-transcription", token=call.token),
        ),
        ncco.talk(phrases.phrase(number.language, "voicemail_thanks"), number.language),
    ]


def nobody_available_ncco(language):
    return [ncco.talk(phrases.phrase(language, "nobody_available"), language)]


def talk_ncco(language, key):
    return [ncco.talk(phrases.phrase(language, key), language)]


def spoken_digits(number):
    """A phone number as digits TTS reads one by one ('+49 30' -> '4 9 3 0')."""
    return " ".join(ch for ch in str(number or "") if ch.isdigit())


def agent_whisper_ncco(number, option_label, caller, leg):
    """What an agent hears on answering: who is calling about what, and the accept/decline prompt."""
    language = number.language
    caller_words = spoken_digits(caller) or phrases.phrase(language, "unknown_caller")
    text = phrases.phrase(language, "agent_whisper", name=number.name, label=option_label, caller=caller_words)
    return [
        ncco.talk(text, language, barge_in=True),
        ncco.keypress_input(absolute_url("callrouting:leg-input", token=leg.token)),
    ]


def agent_join_ncco(call):
    """The accepting agent joins the caller's conversation: the music stops, the call ends when they leave."""
    return [ncco.conversation(call.conversation_name, start_on_enter=True, end_on_exit=True)]


def caller_ncco_for_state(number, options, call):
    """Where the caller belongs now (for a repeated answer or input webhook, or the fallback)."""
    if call.state == S.MENU:
        return menu_ncco(number, options, call)
    if call.state in (S.ROUTING, S.CONNECTED):
        return hold_ncco(number, call, announce=False)
    if call.state == S.VOICEMAIL:
        return voicemail_ncco(number, call)
    return talk_ncco(number.language, "error_goodbye")


# --- Caller events ------------------------------------------------------------------------------------------


def _hours_phrase(target):
    if target.in_support_hours is None:
        return ""
    return "during support hours" if target.in_support_hours else "outside support hours"


def on_answer(number, options, call, target=None):
    """The answer webhook. TARGET (a CallTarget; default: the menu) says where a new call goes: the greeting
    with the menu (a single option is routed at once), an option directly (the greeting without the menu), or
    voicemail. A number in voicemail-only mode records every call."""
    if call.state != S.MENU:
        return Step(caller_ncco_for_state(number, options, call))
    target = target or CallTarget()
    first = options[0].pk if options else None
    if number.voicemail_only:
        return Step(voicemail_ncco(number, call), (StartVoicemail(first, "voicemail-only mode"),))
    if target.kind == Target.VOICEMAIL:
        return Step(voicemail_ncco(number, call), (StartVoicemail(first, _hours_phrase(target) or "voicemail"),))
    if not options:
        return Step(nobody_available_ncco(number.language), (EndCall(Call.Outcome.NO_AGENT),))
    direct = next((o for o in options if o.pk == target.option_id), None) if target.kind == Target.OPTION else None
    if direct is not None:
        how = " ".join(filter(None, ["direct", _hours_phrase(target)]))
        return Step(greeting_ncco(number, [], barge_in=False) + hold_ncco(number, call), (Route(direct.pk, how),))
    if len(options) == 1:
        return Step(hold_ncco(number, call), (Route(options[0].pk, "single option"),))
    return Step(menu_ncco(number, options, call))


def _normalise(text):
    text = unicodedata.normalize("NFKD", str(text or "").lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.findall(r"\w+", text))


def match_option(options, language, digits="", speech_texts=()):
    """(option, how) for a pressed DIGITS key or the first recognised text naming a label or digit; else (None, "")."""
    by_digit = {str(o.digit): o for o in options}
    digits = str(digits or "").strip()
    if digits:
        return (by_digit.get(digits[:1]), "digit") if digits[:1] in by_digit else (None, "")
    words = phrases.digit_words(language)
    for text in speech_texts:
        said = f" {_normalise(text)} "
        if said.strip() == "":
            continue
        # Longest label first, so "billing support" wins over "billing".
        for option in sorted(options, key=lambda o: -len(o.label)):
            label = _normalise(option.label)
            if label and f" {label} " in said:
                return option, "speech"
        for option in options:
            if f" {option.digit} " in said or f" {words[option.digit]} " in said:
                return option, "speech"
    return None, ""


def on_menu_input(number, options, call, *, digits="", speech_texts=()):
    """The menu input webhook: route the chosen option, repeat the menu, or after three misses take the first."""
    if call.state != S.MENU:
        return Step(caller_ncco_for_state(number, options, call))
    if not options:
        return Step(nobody_available_ncco(number.language), (EndCall(Call.Outcome.NO_AGENT),))
    option, how = match_option(options, number.language, digits, speech_texts)
    if option is not None:
        return Step(hold_ncco(number, call), (Route(option.pk, how),))
    if call.tries + 1 >= MAX_MENU_TRIES:
        return Step(hold_ncco(number, call), (Route(options[0].pk, f"no choice after {MAX_MENU_TRIES} tries"),))
    return Step(menu_ncco(number, options, call), (CountTry(),))


def on_caller_gone(call, *, message_left=False):
    """The caller's leg ended (hung up, or the network dropped it). MESSAGE_LEFT: a voicemail recording came in.

    In the mailbox, a caller whose recording had not started (call.recording_started_at: they hung up during
    the greeting) left no message: escalated at once. One whose recording had started ends as a voicemail whose
    record webhook is still to come (Vonage sends it after the hang-up; Call.recording_due_at flags it if never)."""
    if call.state == S.MENU:
        # A flow's incident node may have made the incident before a menu: the team hears of the caller now.
        return Step(effects=(EndCall(Call.Outcome.ABANDONED, escalate="the caller hung up" if call.incident_id else ""),))
    if call.state == S.ROUTING:
        return Step(
            effects=(EndCall(Call.Outcome.ABANDONED, cancel_legs=True, escalate="the caller hung up while agents were called"),)
        )
    if call.state == S.CONNECTED:
        return Step(effects=(EndCall(Call.Outcome.ANSWERED, cancel_legs=True, resolve=True),))
    if call.state == S.VOICEMAIL:
        if message_left or call.recording_started_at is not None:
            return Step(effects=(EndCall(Call.Outcome.VOICEMAIL),))
        return Step(effects=(EndCall(Call.Outcome.NO_MESSAGE, escalate=HUNG_UP_BEFORE_MESSAGE),))
    return Step()


def on_recording(call, seconds):
    """Vonage's record webhook, new for CALL: a recording of SECONDS (None: unknown).

    Only a recording that arrives after the call ended changes anything: it was cut short by the hang-up. One
    under MIN_MESSAGE_SECONDS holds no message (the call ends as no_message, escalated at once); one that arrives
    for a call ended as no_message (its notify was lost) is a message after all. A recording that arrives while
    the caller is still on the line ended on '#' or at the maximum length: a message, however short."""
    if call.state != S.ENDED:
        return Step()
    short = seconds is not None and seconds < MIN_MESSAGE_SECONDS
    if call.outcome == Call.Outcome.VOICEMAIL and short:
        why = f"the recording is only {seconds} s long: {HUNG_UP_BEFORE_MESSAGE}"
        return Step(effects=(ChangeOutcome(call.outcome, Call.Outcome.NO_MESSAGE, why, HUNG_UP_BEFORE_MESSAGE),))
    if call.outcome == Call.Outcome.NO_MESSAGE and not short:
        length = f"of {seconds} s " if seconds is not None else ""
        why = f"a recording {length}came in after the caller hung up: they left a message after all"
        return Step(effects=(ChangeOutcome(call.outcome, Call.Outcome.VOICEMAIL, why),))
    return Step()


# --- Agent events -------------------------------------------------------------------------------------------

# Vonage call status -> (leg status, detail). completed/disconnected depend on the leg's state (below).
_AGENT_STATUS = {
    "ringing": (L.RINGING, ""),
    "answered": (L.ANSWERED, ""),
    "busy": (L.BUSY, "busy"),
    "unanswered": (L.NO_ANSWER, "no answer"),
    "timeout": (L.NO_ANSWER, "rang out"),
    "failed": (L.FAILED, "call failed"),
    "cancelled": (L.CANCELLED, "cancelled by the network"),
    "machine": (L.MACHINE, "answering machine"),
}


def on_agent_event(call, leg, status, detail=""):
    """An event webhook of an agent's leg. Returns the effects (no NCCO)."""
    status = str(status or "").lower()
    if status in ("completed", "disconnected"):
        if leg.status == L.ACCEPTED and call.state == S.CONNECTED:
            return Step(effects=(EndCall(Call.Outcome.ANSWERED, resolve=True),))
        if leg.status in LEG_ACTIVE:
            why = "hung up before pressing a key" if leg.status == L.ANSWERED else "call ended before it was answered"
            return Step(effects=(SetLegStatus(leg.id, L.NO_ANSWER, why),))
        return Step()
    if status == "rejected":
        new, why = (L.DECLINED, "rejected on the phone") if detail == "declined" else (L.FAILED, f"rejected: {detail}")
    elif status in _AGENT_STATUS:
        new, why = _AGENT_STATUS[status]
        if detail:
            why = f"{why} ({detail})" if why else detail
    else:
        return Step()
    if leg.status not in LEG_FROM[new]:
        return Step()  # duplicate or late event: the leg has moved on
    return Step(effects=(SetLegStatus(leg.id, new, why),))


def on_agent_input(number, call, leg, option_label, *, digits="", timed_out=False):
    """The agent pressed a key (or did not): accept, decline, or hear that the call is gone."""
    language = number.language
    key = str(digits or "").strip()[:1]
    if leg.status not in LEG_ACTIVE:
        if call.state == S.CONNECTED and call.connected_leg_id == leg.id:
            return Step(agent_join_ncco(call))  # a repeated accept webhook: same answer
        return Step(talk_ncco(language, "caller_gone" if call.state != S.CONNECTED else "call_taken"))
    if key == "1":
        if call.state == S.ROUTING:
            return Step(agent_join_ncco(call), (Connect(leg.id),))
        gone = "call_taken" if call.state == S.CONNECTED else "caller_gone"
        return Step(talk_ncco(language, gone), (SetLegStatus(leg.id, L.CANCELLED, "call already taken or ended"),))
    if key == "2":
        return Step(talk_ncco(language, "declined"), (SetLegStatus(leg.id, L.DECLINED, "pressed 2"),))
    if not key or timed_out:
        return Step(talk_ncco(language, "declined"), (SetLegStatus(leg.id, L.NO_ANSWER, "no key pressed"),))
    return Step(agent_whisper_ncco(number, option_label, call.caller, leg))


def on_agent_fallback(number, call, leg, option_label):
    """The agent's key press could not be answered (Vonage called the fallback URL): while the call is still
    theirs to take, the offer again; a connected agent joins the caller; otherwise where the call went."""
    if call.state == S.ROUTING and leg.status in LEG_ACTIVE:
        return Step(agent_whisper_ncco(number, option_label, call.caller, leg))
    if call.state == S.CONNECTED and call.connected_leg_id == leg.id:
        return Step(agent_join_ncco(call))
    return Step(talk_ncco(number.language, "call_taken" if call.state == S.CONNECTED else "caller_gone"))


def next_dial(call, leg_statuses, voicemail_enabled):
    """What to do when agents have been chosen or a leg has ended: wait while a leg is ringing, else call the
    next agent (sequential) or all waiting agents (simultaneous), else give up on agents."""
    if call.state != S.ROUTING:
        return Step()
    if any(status in LEG_ACTIVE for status in leg_statuses):
        return Step()
    if any(status == L.QUEUED for status in leg_statuses):
        return Step(effects=(DialNext(),))
    return Step(effects=(NobodyLeft(voicemail=voicemail_enabled),))
