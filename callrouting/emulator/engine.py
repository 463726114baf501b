"""The phone network: call legs executing NCCOs with Vonage's semantics, and the webhooks Vonage sends.

One `Leg` per call leg (an inbound call placed through the control API, an outbound call created with POST
/v1/calls or a connect action). Each leg runs in its own thread: it rings, fetches its NCCO (answer URL) or takes the
inline one, and executes the actions in order (talk, stream, input, conversation, connect, record, notify). A
transfer (PUT /v1/calls/{uuid}) replaces the running NCCO; what an input's eventUrl returns replaces it too.

Events go to the leg's event URL in order, one sender per leg, with the status sequences Vonage uses:
outbound started -> ringing -> answered [-> human|machine] -> completed, or busy / timeout / unanswered / rejected /
failed / cancelled instead of answered; inbound started -> ringing -> answered -> completed. Every webhook is signed
like Vonage's (signing.py). Every NCCO is checked as Vonage checks it (validation.py): an invalid one gets Vonage's
error event, then the fallback URL. Only a timeout, a connection error, 429, 503 or 504 is tried again.

Time: every duration of the simulated world (speech, ringing, input and recording timeouts, scripted delays) is
multiplied by `speed` (1.0: real time for the browser; 0: as fast as the webhooks allow, for tests). Scripted steps
(what a simulated caller or agent does, and when) are applied by the leg's own thread at their simulated time, so
a step due at the same moment as a timeout wins, whatever the speed.
"""
import datetime as dt
import json
import logging
import math
import re
import threading
import time
import uuid as uuid_lib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

import requests

from .signing import sign_webhook
from .validation import ncco_problems

log = logging.getLogger(__name__)

WORDS_PER_SECOND = 2.5
STREAM_SECONDS = 5.0  # how long one loop of a streamed file "plays"
DEFAULT_RINGING_TIMER = 60
ANSWER_TIMEOUT = (1, 5)  # connect, read seconds (answer and fallback webhooks)
EVENT_TIMEOUT = (1, 10)
RETRY_STATUSES = {429, 503, 504}  # with timeouts and connection errors, the only failures Vonage retries
BRIDGE_PREFIX = "connect-"  # the conversation a connect action joins its two legs in (not a transfer)
PRIMARY = "primary"
SECONDARY = "secondary"
DEFAULT_REGION_URL = "https://api-eu-1.vonage.com"  # region_url when no host is known (no PhoneNetwork)
KEEP_ENDED_LEGS = 2000
WAKE_CAP = 0.5  # real seconds a waiting leg sleeps at most before it looks again (see Network.touch)
DIGITS = set("0123456789*#")
RING_OUTCOMES = {"answer", "machine", "reject", "busy", "unanswered", "fail"}
# One silent MPEG-1 Layer III frame (128 kbit/s, 44.1 kHz, 417 bytes): about 26 ms of silence.
SILENT_MP3_FRAME = b"\xff\xfb\x90\x00" + b"\x00" * 413
MP3_FRAMES_PER_SECOND = 38.28


def utc_now():
    return dt.datetime.now(dt.timezone.utc)


def iso(moment):
    """Vonage's timestamp format: 2020-01-01T12:00:00.000Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def digits_only(number):
    return "".join(ch for ch in str(number or "") if ch.isdigit())


def speech_seconds(text):
    return max(len(str(text).split()) / WORDS_PER_SECOND, 0.5)


class Interrupted(Exception):
    """The leg was hung up or transferred while an action ran."""


class Conversation:
    """A named conversation: its legs (uuid -> (startOnEnter, endOnExit)) and whether it has started."""

    def __init__(self, name):
        self.name = name
        self.uuid = f"CON-{uuid_lib.uuid4()}"
        self.members = {}
        self.started = False
        self.ended = False


class Leg:
    """One call leg. All mutable state is guarded by the network's lock."""

    def __init__(self, network, *, direction, from_, to, event_urls, event_method="POST", ncco=None, answer_url=None,
                 answer_method="GET", ringing_timer=None, machine_detection=None, length_timer=None, steps=(),
                 conversation_uuid=None, parent=None, label="", region=PRIMARY):
        self.network = network
        self.uuid = str(uuid_lib.uuid4())
        self.conversation_uuid = conversation_uuid or f"CON-{uuid_lib.uuid4()}"
        self.current_conversation_uuid = self.conversation_uuid  # where transfers move it (transfer events)
        self.region = region  # the data centre that holds the leg: modify requests elsewhere get 404
        self.direction = direction
        self.from_ = digits_only(from_) or str(from_ or "")
        self.to = digits_only(to)
        self.event_urls = list(event_urls or [])
        self.event_method = event_method or "POST"
        self.initial_ncco = ncco
        self.answer_url = answer_url
        self.answer_method = answer_method or "GET"
        self.ringing_timer = ringing_timer or DEFAULT_RINGING_TIMER
        self.machine_detection = machine_detection
        self.length_timer = length_timer
        self.parent = parent  # the leg whose connect action created this one
        self.children = []  # the legs this leg's connect actions created
        self.label = label
        self.steps = [dict(step) for step in steps]  # scripted behaviour, applied in order per trigger
        self.status = "started"
        self.state = "calling" if direction == "inbound" else "dialling"
        self.created_at = utc_now()
        self.answered_at = None
        self.ended_at = None
        self.ncco = []
        self.pc = 0
        self.generation = 0
        self.hangup_requested = False
        self.disconnected_by = None
        self.ring_outcome = None  # what the phone did: answer, machine, reject, busy, unanswered, fail
        self.machine = False
        # Keys an "accept" on the ringing phone pressed ahead of the prompt: pressed as soon as the leg listens (a
        # talk or stream with bargeIn, or an input); a talk without bargeIn holds them back until the input.
        self.after_answer_keys = ""
        self.barge_in = False  # Vonage: once a talk or stream sets bargeIn, it stays on until an input
        # Asked for through the control API ("hold_talk"): the next barge-in talk or stream goes on past its length
        # until a key, words or a hangup stop it, so a test that must press a key while it plays cannot be too slow.
        self.hold_talk = False
        self.dtmf_buffer = ""  # keys pressed during a barge-in talk, for the next input
        self.pending_digits = deque()  # keys pressed while an input is listening
        self.pending_speech = deque()
        self.voicemail = None  # (text, audio bytes or None, content type) given while recording
        self.conversation = None  # name of the conversation this leg is in
        self.waiting = None  # what the leg waits for (for the control API)
        self.transfer_to = None  # an NCCO (or ("url", url)) a transfer request put in place of the running one
        self.speech_barge_in = None  # words that stopped a barge-in talk, for the next input
        self.bridge_after_answer = []  # a connect's bridge, joined after an onAnswer NCCO
        self.after_end = []  # webhooks (url, method, payload) sent after the leg's final event (see _action_record)
        self.transcript = []
        self._transcript_seq = 0
        self.thread = None
        self.cond = threading.Condition(network.lock)  # the leg's thread waits here (see Network.touch)

    # --- what the control API shows ---------------------------------------------------------------------------

    def snapshot(self):
        net = self.network
        conversation = net.conversations.get(self.conversation) if self.conversation else None
        others = [uuid for uuid in (conversation.members if conversation else {}) if uuid != self.uuid]
        return {
            "uuid": self.uuid,
            "conversation_uuid": self.conversation_uuid,
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "label": self.label,
            "status": self.status,
            "state": self.state,
            "waiting": self.waiting,
            "conversation": (
                {"name": conversation.name, "started": conversation.started, "others": others}
                if conversation
                else None
            ),
            "scripted": bool(self.steps),
            "region": self.region,
            "machine_detection": self.machine_detection,
            "parent": self.parent.uuid if self.parent else None,
            "created_at": self.created_at.timestamp(),
            "answered_at": self.answered_at.timestamp() if self.answered_at else None,
            "ended_at": self.ended_at.timestamp() if self.ended_at else None,
            "transcript": list(self.transcript),
        }

    def note(self, kind, text="", **extra):
        """Add a transcript entry (under the lock) and wake up watchers."""
        self._transcript_seq += 1
        entry = {"seq": self._transcript_seq, "at": time.time(), "kind": kind, "text": text, **extra}
        self.transcript.append(entry)
        self.network.touch(self)
        return entry

    @property
    def ended(self):
        return self.ended_at is not None

    def base_payload(self):
        return {
            "from": self.from_,
            "to": self.to,
            "uuid": self.uuid,
            "conversation_uuid": self.conversation_uuid,
            "timestamp": iso(utc_now()),
        }


class Network:
    """Legs, conversations, simulated phones and the webhooks to the application.

    APP: the application's webhooks, {"answer_url", "event_url", "fallback_url", "answer_method",
    "fallback_method"} (both methods GET unless set, as on a Vonage application); SIGNING: {"secret", "api_key",
    "application_id"}; FILES: callable(bytes, content_type) -> URL that serves a recording (the REST layer's
    add_recording); VERIFY: TLS verification for https webhooks (requests' verify).

    Opt-in faults Vonage shows now and then: DISORDER_EVENTS (every leg's status events arrive duplicated and
    out of order) and UNSIGNED_CALLBACKS (that many next webhooks go out without Authorization, and again signed
    after a 5xx). REGION_URLS maps a region (PRIMARY, SECONDARY) to the API host that holds its calls;
    INBOUND_REGION is where inbound calls land.
    """

    def __init__(self, *, app, signing, files=None, speed=1.0, verify=True):
        self.app = dict(app)
        self.signing = dict(signing)
        self.files = files
        self.speed = float(speed)
        self.verify = verify
        self.disorder_events = False
        self.unsigned_callbacks = 0
        self.region_urls = {}
        self.inbound_region = PRIMARY
        self._held = {}  # leg uuid -> the status event held back while disorder_events is on
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.version = 0
        self.legs = {}
        self.conversations = {}
        self.phones = {}  # digits -> steps for outbound legs to that number ("*": every number)
        self.scenarios = []  # per-call agent behaviour (see place_inbound_call)
        self._senders = ThreadPoolExecutor(max_workers=32, thread_name_prefix="emulator-webhook")
        self._outboxes = {}  # leg uuid -> deque of (url, method, payload)
        self._sending = set()
        self._local = threading.local()
        self.webhook_log = deque(maxlen=500)  # (time, method, url, status) of recent webhooks
        self.invalid_nccos = deque(maxlen=500)  # {"uuid", "kind", "reason"} of the NCCOs Vonage would refuse
        # Called after each webhook, outside the lock: (started epoch s, seconds, method, url, payload, status or
        # None on a network error). Vonage's view of the application's latency: manage.py benchmark uses it.
        self.on_webhook = None

    # --- bookkeeping -------------------------------------------------------------------------------------------

    def touch(self, *legs):
        """Something changed (lock held): bump the version, wake the watchers of the whole network
        (wait_for_change) and the threads of the legs that can see the change: LEGS themselves, the leg that
        connected each of them, the legs they connected and the other members of their conversation. With no
        LEGS, every leg's thread wakes.

        Waking only those matters with hundreds of calls in progress: every transcript line is a change, and
        waking every leg's thread for each one costs more CPU than the calls themselves. A leg's wait is also
        capped (WAKE_CAP), so a change this misses delays a leg by that much at most.
        """
        self.version += 1
        self.cond.notify_all()
        for leg in (self._related(legs) if legs else list(self.legs.values())):
            leg.cond.notify_all()

    def _related(self, legs):
        related = {}
        for leg in legs:
            related[leg.uuid] = leg
            if leg.parent is not None:
                related[leg.parent.uuid] = leg.parent
            for child in leg.children:
                related[child.uuid] = child
            conversation = self.conversations.get(leg.conversation) if leg.conversation else None
            for uuid in conversation.members if conversation else ():
                other = self.legs.get(uuid)
                if other is not None:
                    related[uuid] = other
        return related.values()

    def sim(self, seconds):
        """Real seconds for SECONDS of simulated time."""
        return max(0.0, float(seconds)) * self.speed

    def wait_for_change(self, since, timeout):
        """Block until the version differs from SINCE or TIMEOUT seconds pass; returns the version."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self.lock:
            while self.version == since:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
            return self.version

    def snapshot(self, uuids=None):
        with self.lock:
            legs = [leg for leg in self.legs.values() if uuids is None or leg.uuid in uuids]
            return {"version": self.version, "legs": [leg.snapshot() for leg in legs]}

    def leg(self, uuid):
        with self.lock:
            return self.legs.get(uuid)

    def region_url(self, region):
        return self.region_urls.get(region) or self.region_urls.get(PRIMARY) or DEFAULT_REGION_URL

    def call_info(self, uuid):
        """GET /v1/calls/{uuid}: the call record as Vonage shows it, or None."""
        with self.lock:
            leg = self.legs.get(uuid)
            if leg is None:
                return None
            info = {
                "uuid": leg.uuid,
                "status": leg.status,
                "direction": leg.direction,
                "conversation_uuid": leg.conversation_uuid,
                "to": {"type": "phone", "number": leg.to},
                "from": {"type": "phone", "number": leg.from_},
                "start_time": iso(leg.answered_at) if leg.answered_at else None,
                "end_time": iso(leg.ended_at) if leg.ended_at else None,
            }
            return info

    def reset(self):
        """Hang up every live leg and forget everything (tests)."""
        with self.lock:
            for leg in self.legs.values():
                if not leg.ended:
                    self._request_hangup(leg, "platform")
            self.legs.clear()
            self.conversations.clear()
            self.phones.clear()
            self.scenarios.clear()
            self._held.clear()
            self.invalid_nccos.clear()
            self.disorder_events = False
            self.unsigned_callbacks = 0
            self.inbound_region = PRIMARY
            self.touch()

    def close(self):
        self.reset()
        self._senders.shutdown(wait=False, cancel_futures=True)

    def _prune(self):
        ended = [leg for leg in self.legs.values() if leg.ended]
        if len(ended) > KEEP_ENDED_LEGS:
            ended.sort(key=lambda leg: leg.ended_at)
            for leg in ended[: len(ended) - KEEP_ENDED_LEGS]:
                self.legs.pop(leg.uuid, None)

    # --- simulated phones ------------------------------------------------------------------------------------

    def set_phone(self, number, steps):
        """Outbound calls to NUMBER ("*" for every number) follow STEPS; None makes the phone interactive."""
        key = "*" if number == "*" else digits_only(number)
        with self.lock:
            if steps is None:
                self.phones.pop(key, None)
            else:
                self.phones[key] = [dict(step) for step in steps]
            self.touch()

    def _steps_for_outbound(self, from_, to):
        """The scripted steps for a new outbound leg FROM -> TO: a live scenario of the called number first."""
        for scenario in reversed(self.scenarios):
            if scenario["number"] != from_:
                continue
            inbound = self.legs.get(scenario["uuid"])
            if inbound is not None and inbound.ended and (utc_now() - inbound.ended_at).total_seconds() > 30:
                continue
            if to in scenario["agents"]:
                return scenario["agents"][to]
            if scenario["sequence"]:
                return scenario["sequence"].pop(0)
            if scenario["default"] is not None:
                return scenario["default"]
        if to in self.phones:
            return self.phones[to]
        return self.phones.get("*", [])

    # --- calls -------------------------------------------------------------------------------------------------

    def place_inbound_call(self, *, from_, to, steps=(), agents=None, agent_sequence=(), default_agent=None,
                           region=None, answer_url=None):
        """A phone calls TO from FROM_: the application's answer URL decides. Returns the leg's snapshot.

        REGION: the data centre that takes the call (inbound_region unless given). ANSWER_URL: the answer URL of
        another application the number is linked to (default: this network's application).

        STEPS script the caller. AGENTS ({number: steps}), AGENT_SEQUENCE (the n-th outbound leg presenting TO as
        its caller id gets the n-th entry) and DEFAULT_AGENT script the agent legs the application dials for this
        call (outbound legs from TO while this call lasts).
        """
        to_digits = digits_only(to)
        if not to_digits:
            raise ValueError("to must be a phone number")
        leg = Leg(
            self,
            direction="inbound",
            from_=from_,
            to=to_digits,
            event_urls=[self.app["event_url"]],
            answer_url=answer_url or self.app["answer_url"],
            answer_method=self.app.get("answer_method", "GET"),
            steps=steps,
            region=region or self.inbound_region,
        )
        with self.lock:
            self.legs[leg.uuid] = leg
            if agents or agent_sequence or default_agent is not None:
                self.scenarios.append(
                    {
                        "uuid": leg.uuid,
                        "number": to_digits,
                        "agents": {digits_only(number): list(s) for number, s in (agents or {}).items()},
                        "sequence": [list(s) for s in agent_sequence],
                        "default": list(default_agent) if default_agent is not None else None,
                    }
                )
                del self.scenarios[:-1000]
            self._prune()
            self.touch(leg)
            snapshot = leg.snapshot()
        self._start(leg, self._run_inbound)
        return snapshot

    def place_outbound_call(self, body, region=PRIMARY):
        """POST /v1/calls (received by REGION's host, which then holds the call): ring the phone in BODY["to"];
        returns the 201 body. Raises ValueError if unusable."""
        endpoint = body["to"][0] if isinstance(body["to"][0], dict) else {}
        if endpoint.get("type", "phone") != "phone" or not digits_only(endpoint.get("number")):
            raise ValueError("the emulator rings phone endpoints only")
        source = body.get("from") if isinstance(body.get("from"), dict) else {}
        leg = self._outbound_leg(
            to=endpoint["number"],
            from_=source.get("number") or "",
            event_urls=body.get("event_url") or [self.app["event_url"]],
            event_method=body.get("event_method", "POST"),
            ncco=body.get("ncco"),
            answer_url=(body.get("answer_url") or [None])[0],
            answer_method=body.get("answer_method", "GET"),
            ringing_timer=body.get("ringing_timer"),
            machine_detection=body.get("machine_detection"),
            length_timer=body.get("length_timer"),
            dtmf_answer=endpoint.get("dtmfAnswer"),
            region=region,
        )
        return {"uuid": leg.uuid, "status": "started", "direction": "outbound", "conversation_uuid": leg.conversation_uuid}

    def _outbound_leg(self, *, to, from_, parent=None, dtmf_answer=None, bridge=(), **options):
        with self.lock:
            steps = self._steps_for_outbound(digits_only(from_), digits_only(to))
            leg = Leg(self, direction="outbound", from_=from_, to=to, parent=parent, steps=steps, **options)
            leg.bridge_after_answer = list(bridge)
            if parent is not None:
                parent.children.append(leg)
            self.legs[leg.uuid] = leg
            self._prune()
            self.touch(leg)
        self._start(leg, self._run_outbound)
        return leg

    def _start(self, leg, target):
        leg.thread = threading.Thread(target=self._guard, args=(leg, target), name=f"leg-{leg.uuid[:8]}", daemon=True)
        leg.thread.start()

    def _guard(self, leg, target):
        try:
            target(leg)
        except Exception:
            log.exception("emulator leg=%s crashed", leg.uuid)
            with self.lock:
                leg.note("error", "the emulator failed while running this leg")
                if not leg.ended:
                    self._finish(leg, "failed" if leg.answered_at is None else "completed", detail="internal_error")

    # --- control: what people (or scripts) do on their phones -------------------------------------------------

    def act(self, uuid, action, **params):
        """Apply a control ACTION to leg UUID. Returns None, or (status, message) when it cannot be applied."""
        with self.lock:
            leg = self.legs.get(uuid)
            if leg is None:
                return 404, f"no leg {uuid}"
            if leg.ended:
                return 409, "the call has ended"
            error = self._apply(leg, {"do": action, **params})
            self.touch(leg)
            return error

    def _apply(self, leg, step):
        """Carry out one step (lock held): a control action or a scripted step. Returns None or (status, msg)."""
        do = step.get("do")
        if do == "dtmf":
            digits = "".join(ch for ch in str(step.get("digits", "")) if ch in DIGITS)
            if not digits:
                return 400, "no valid keys"
            self._press(leg, digits)
        elif do == "say":
            text = " ".join(str(step.get("text", "")).split())
            if not text:
                return 400, "nothing to say"
            leg.note("said", text)
            leg.pending_speech.append(text)
        elif do in RING_OUTCOMES:
            if leg.direction != "outbound" or leg.state != "ringing":
                return 409, "the phone is not ringing"
            leg.ring_outcome = do
            then_press = "".join(ch for ch in str(step.get("then_press", "")) if ch in DIGITS)
            if then_press:
                leg.after_answer_keys = then_press
        elif do == "hangup":
            self._request_hangup(leg, "user")
        elif do == "voicemail":
            if leg.state != "recording":
                return 409, "the call is not recording"
            leg.voicemail = (str(step.get("text", "")), step.get("audio"), step.get("content_type") or "audio/mpeg")
        elif do == "steps":
            leg.steps.extend(dict(s) for s in step.get("steps", []))
        elif do == "hold_talk":
            leg.hold_talk = True
        else:
            return 400, f"unknown action {do!r}"
        return None

    def _press(self, leg, digits):
        leg.note("dtmf", digits)
        for digit in digits:
            if leg.waiting and leg.waiting.get("kind") in ("input", "record"):
                leg.pending_digits.append(digit)
            elif leg.waiting and leg.waiting.get("kind") == "talk" and leg.waiting.get("barge_in"):
                leg.dtmf_buffer += digit
                leg.pending_digits.append(digit)  # stops the talk
            elif leg.waiting and leg.waiting.get("kind") == "ringing":
                pass
            else:
                leg.note("ignored", f"key {digit} pressed while nothing listened")

    def _request_hangup(self, leg, by):
        if leg.hangup_requested or leg.ended:
            return
        leg.hangup_requested = True
        leg.disconnected_by = by
        leg.generation += 1
        self.touch(leg)

    # --- REST: modify, talk/stream/dtmf into a call -------------------------------------------------------------

    def _held_leg(self, uuid, region):
        """Leg UUID if REGION's data centre holds it (lock held): another region's host does not know the call."""
        leg = self.legs.get(uuid)
        return leg if leg is not None and (region is None or leg.region == region) else None

    def modify_call(self, uuid, body, region=None):
        """PUT /v1/calls/{uuid}, received by REGION's host. Returns None (204) or (status, detail)."""
        action = body.get("action")
        with self.lock:
            leg = self._held_leg(uuid, region)
            if leg is None:
                return 404, f"Call {uuid} not found"
            if leg.ended:
                return None  # hanging up an ended call is harmless
            if action == "hangup":
                leg.note("api", "hung up through the API")
                self._request_hangup(leg, "platform")
            elif action == "transfer":
                destination = body["destination"]
                if leg.answered_at is None:
                    return 400, "the call is not answered yet"
                ncco = destination.get("ncco")
                if ncco is None:
                    url = (destination.get("url") or [None])[0]
                    ncco = ("url", url)
                leg.note("api", "transferred through the API")
                self._leave_conversation(leg)
                leg.transfer_to = ncco
                leg.generation += 1
                self.touch(leg)
            else:
                leg.note("api", f"{action} through the API")
        return None

    def play_into_call(self, uuid, media, body, region=None):
        with self.lock:
            leg = self._held_leg(uuid, region)
            if leg is None or leg.ended:
                return 404, f"Call {uuid} not found"
            if media == "talk":
                leg.note("talk", str(body.get("text", "")), language=body.get("language"), source="api")
            elif media == "stream":
                leg.note("stream", "", url=(body.get("stream_url") or [None])[0], source="api")
            else:
                leg.note("dtmf_sent", str(body.get("digits", "")))
        return None

    # --- the leg's life ------------------------------------------------------------------------------------------

    def _run_inbound(self, leg):
        self._event(leg, "started")
        with self.lock:
            leg.status = "ringing"
            self.touch(leg)
        self._event(leg, "ringing")
        ncco = self._fetch_answer(leg, leg.answer_url, leg.answer_method)
        if ncco is None:
            with self.lock:
                leg.note("error", "no NCCO from the answer or fallback URL: the call is dropped")
                self._finish(leg, "failed", detail="no_ncco")
            return
        with self.lock:
            leg.status = "answered"
            leg.state = "answered"
            leg.answered_at = utc_now()
            leg.note("status", "answered")
        self._event(leg, "answered", start_time=iso(leg.answered_at))
        self._run_ncco(leg, ncco)

    def _run_outbound(self, leg):
        self._event(leg, "started")
        with self.lock:
            leg.status = "ringing"
            leg.state = "ringing"
            leg.note("ringing", f"ringing {leg.to}")
        self._event(leg, "ringing")
        with self.lock:
            leg.waiting = {"kind": "ringing", "timeout": leg.ringing_timer, "since": time.time()}
            result = self._wait(leg, "ringing", leg.ringing_timer, lambda: leg.ring_outcome is not None, leg.generation)
            leg.waiting = None
            outcome = leg.ring_outcome
            if result == "interrupted":
                leg.note("status", "cancelled before it was answered")
                self._finish(leg, "cancelled")
                return
            if result == "timeout":
                leg.note("status", "nobody answered")
                self._finish(leg, "timeout")
                return
            if outcome in ("reject", "busy", "unanswered", "fail"):
                status, detail = {
                    "reject": ("rejected", "declined"),
                    "busy": ("busy", ""),
                    "unanswered": ("unanswered", "unavailable"),
                    "fail": ("failed", "cannot_route"),
                }[outcome]
                leg.note("status", {"reject": "declined the call", "busy": "busy", "unanswered": "unavailable",
                                    "fail": "the call failed"}[outcome])
                self._finish(leg, status, detail=detail)
                return
            leg.machine = outcome == "machine"
            leg.status = "answered"
            leg.state = "answered"
            leg.answered_at = utc_now()
            leg.note("status", "answered by an answering machine" if leg.machine else "answered")
        self._event(leg, "answered", start_time=iso(leg.answered_at))
        if leg.machine_detection:
            kind = "machine" if leg.machine else "human"
            self._event(leg, kind, include_uuid=False, call_uuid=leg.uuid)
            if leg.machine and leg.machine_detection == "hangup":
                with self.lock:
                    leg.note("status", "machine detected: hung up")
                    leg.disconnected_by = "platform"
                    self._finish(leg, "completed")
                return
        if leg.initial_ncco is not None:
            ncco = leg.initial_ncco
        else:
            ncco = self._fetch_answer(leg, leg.answer_url, leg.answer_method)
            if ncco is None:
                with self.lock:
                    leg.note("error", "no NCCO from the answer URL: hung up")
                    self._finish(leg, "completed")
                return
            ncco = list(ncco) + list(leg.bridge_after_answer)
        self._run_ncco(leg, ncco)

    def _run_ncco(self, leg, ncco):
        with self.lock:
            leg.ncco, leg.pc = list(ncco), 0
        while True:
            with self.lock:
                if leg.hangup_requested:
                    break
                transfer = leg.transfer_to
                if transfer is not None:
                    leg.transfer_to = None
                    leg.generation += 1
                if transfer is None and leg.pc >= len(leg.ncco):
                    break
                generation = leg.generation
            if transfer is not None:
                if isinstance(transfer, tuple):
                    transfer = self._fetch_answer(leg, transfer[1], "GET") or []
                self._transfer_event(leg, leg.conversation_uuid)
                with self.lock:
                    leg.ncco, leg.pc = list(transfer), 0
                    leg.barge_in = False
                continue
            with self.lock:
                action = leg.ncco[leg.pc]
                leg.pc += 1
            try:
                replacement = self._execute(leg, action, generation)
            except Interrupted:
                continue
            if replacement is not None:
                with self.lock:
                    if leg.generation == generation and not leg.hangup_requested:
                        leg.ncco, leg.pc = list(replacement), 0
        with self.lock:
            self._leave_conversation(leg)
            if not leg.disconnected_by:
                leg.disconnected_by = "platform"  # the NCCO ran out
            self._finish(leg, "completed")

    def _finish(self, leg, status, *, detail=""):
        """End LEG with STATUS (lock held) and send the final event."""
        if leg.ended:
            return
        leg.ended_at = utc_now()
        leg.status = status
        leg.state = "ended"
        leg.waiting = None
        self._leave_conversation(leg)
        extra = {"detail": detail} if detail else {}
        if status == "completed" and leg.answered_at:
            duration = int((leg.ended_at - leg.answered_at).total_seconds())
            extra.update(
                start_time=iso(leg.answered_at),
                end_time=iso(leg.ended_at),
                duration=str(duration),
                rate="0.00000000",
                price="0.00000000",
                network="EMULATOR",
                disconnected_by=leg.disconnected_by or "user",
            )
        leg.note("ended", status + (f" ({detail})" if detail else ""))
        self._event(leg, status, **extra)
        for url, method, payload in leg.after_end:
            self._queue(leg, url, method, payload)
        leg.after_end = []
        self.touch(leg)

    # --- waiting, with scripted steps ---------------------------------------------------------------------------

    def _wait(self, leg, kind, timeout, done, generation):
        """Wait (lock held) until DONE(), an interruption, or TIMEOUT simulated seconds (None: no limit).

        KIND (or a callable returning it) is the trigger scripted steps wait for; the first pending step with
        on == KIND fires `after` simulated seconds into it. Returns "done", "interrupted" or "timeout".
        """
        start = time.monotonic()
        deadline = None if timeout is None else start + self.sim(timeout)
        current = kind() if callable(kind) else kind
        phase_start = start
        while True:
            if leg.generation != generation or leg.hangup_requested:
                return "interrupted"
            if done():
                return "done"
            now = time.monotonic()
            trigger = kind() if callable(kind) else kind
            if trigger != current:
                current, phase_start = trigger, now
            step = next((s for s in leg.steps if s.get("on") == current), None)
            step_at = phase_start + self.sim(step.get("after", 0)) if step else None
            if step is not None and (deadline is None or step_at <= deadline) and now >= step_at:
                leg.steps.remove(step)
                leg.note("script", _describe_step(step))
                self._apply(leg, step)
                self.touch(leg)
                continue
            if deadline is not None and now >= deadline:
                return "timeout"
            step_due = step_at if step is not None and (deadline is None or step_at <= deadline) else None
            wakes = [t for t in (deadline, step_due) if t is not None]
            leg.cond.wait(min([WAKE_CAP] + [max(0.0, t - now) for t in wakes]))

    def _sleep(self, leg, seconds, generation, *, kind="talk", stop=None):
        """Let SECONDS of simulated time pass (lock held); STOP() ends it early. Raises Interrupted."""
        result = self._wait(leg, kind, seconds, stop or (lambda: False), generation)
        if result == "interrupted":
            raise Interrupted()
        return result

    # --- NCCO actions ------------------------------------------------------------------------------------------

    def _execute(self, leg, action, generation):
        """Run one NCCO action; returns a replacement NCCO or None. Raises Interrupted."""
        name = action.get("action") if isinstance(action, dict) else None
        handler = getattr(self, f"_action_{name}", None) if isinstance(name, str) else None
        if handler is None:
            with self.lock:
                leg.note("error", f"unsupported NCCO action {name!r}: skipped")
            return None
        return handler(leg, action, generation)

    def _action_talk(self, leg, action, generation):
        text = str(action.get("text", ""))
        return self._play(leg, generation, kind="talk", seconds=speech_seconds(text), action=action,
                          entry={"text": text, "language": action.get("language")})

    def _action_stream(self, leg, action, generation):
        url = (action.get("streamUrl") or [None])[0]
        return self._play(leg, generation, kind="stream", seconds=STREAM_SECONDS, action=action, entry={"url": url})

    def _play(self, leg, generation, *, kind, seconds, action, entry):
        loop = action.get("loop", 1)
        loops = None if loop in (0, "0") else max(1, int(loop or 1))
        total = None if loops is None else seconds * loops
        with self.lock:
            leg.barge_in = barge_in = leg.barge_in or bool(action.get("bargeIn"))
            held = barge_in and leg.hold_talk
            if held:
                leg.hold_talk = False
                entry["held"] = True
            leg.note(kind, entry.pop("text", ""), barge_in=barge_in, loop=loop, seconds=total, **entry)
            leg.waiting = {"kind": "talk", "barge_in": barge_in, "media": kind, "seconds": total, "since": time.time()}
            leg.pending_digits.clear()
            leg.pending_speech.clear()
            if barge_in and leg.after_answer_keys:
                self._press_answer_keys(leg)
            if barge_in and leg.dtmf_buffer:
                # Keys pressed during an earlier barge-in talk: this one is cut off at once too.
                leg.waiting = None
                leg.note("barge_in", f"{kind} stopped by a key", played=0.0, seconds=total)
                return None
            stop = (lambda: bool(leg.pending_digits or leg.pending_speech)) if barge_in else None
            started = time.monotonic()
            try:
                result = self._sleep(leg, None if held else total, generation, kind="talk", stop=stop)
            finally:
                leg.waiting = None
            if result == "done":
                # How much of it played, in simulated seconds (what a caller heard before the key or the words;
                # more than its length when it was held).
                played = (time.monotonic() - started) / self.speed if self.speed else 0.0
                leg.note("barge_in", f"{kind} stopped by the caller", played=round(played, 2), seconds=total)
                leg.pending_digits.clear()  # the keys are in dtmf_buffer for the next input
                if leg.pending_speech:
                    leg.speech_barge_in = leg.pending_speech.popleft()
                    leg.pending_speech.clear()
        return None

    def _press_answer_keys(self, leg):
        """Press the keys an "accept" on the ringing phone sent ahead (lock held): into the next input."""
        keys, leg.after_answer_keys = leg.after_answer_keys, ""
        leg.note("dtmf", keys)
        leg.dtmf_buffer += keys

    def _action_input(self, leg, action, generation):
        types = action.get("type") or ["dtmf"]
        dtmf_on, speech_on = "dtmf" in types, "speech" in types
        dtmf = action.get("dtmf") or {}
        speech = action.get("speech") or {}
        max_digits = int(dtmf.get("maxDigits", 4) or 4)
        digit_timeout = float(dtmf.get("timeOut", 3) if dtmf.get("timeOut") is not None else 3)
        submit_on_hash = bool(dtmf.get("submitOnHash"))
        start_timeout = float(speech.get("startTimeout", 10) or 10)
        with self.lock:
            leg.barge_in = False
            digits = leg.dtmf_buffer if dtmf_on else ""
            leg.dtmf_buffer = ""
            said = leg.speech_barge_in if speech_on else None
            leg.speech_barge_in = None
            leg.pending_digits.clear()
            leg.pending_speech.clear()
            leg.waiting = {
                "kind": "input",
                "dtmf": dtmf_on,
                "speech": speech_on,
                "max_digits": max_digits,
                "hints": list(speech.get("context") or []),
                "since": time.time(),
            }
            leg.note("input", "waiting for " + " or ".join(
                part for part, on in (("keys", dtmf_on), ("speech", speech_on)) if on),
                max_digits=max_digits, hints=list(speech.get("context") or []))
            if leg.after_answer_keys:
                self._press_answer_keys(leg)
                digits += leg.dtmf_buffer if dtmf_on else ""
                leg.dtmf_buffer = ""
            timed_out = False
            state = {"done": False}

            def collect():
                """Take the keys and words that arrived; True when the input is complete or a key restarts the
                inter-digit timer."""
                nonlocal digits, said
                got = False
                while leg.pending_digits and not state["done"]:
                    digit = leg.pending_digits.popleft()
                    if not dtmf_on:
                        continue
                    if digit == "#" and submit_on_hash:
                        state["done"] = True
                        break
                    digits += digit
                    got = True
                    if len(digits) >= max_digits:
                        state["done"] = True
                while leg.pending_speech and not state["done"]:
                    text = leg.pending_speech.popleft()
                    if speech_on and not digits:
                        said = text
                        state["done"] = True
                    else:
                        leg.note("ignored", "words while nothing listened for speech")
                return state["done"] or got

            if said or (digits and len(digits) >= max_digits):
                state["done"] = True
            while not state["done"]:
                first_timeout = digit_timeout if not speech_on else max(digit_timeout, start_timeout)
                timeout = digit_timeout if digits else first_timeout
                try:
                    result = self._sleep(leg, timeout, generation, kind="input", stop=collect)
                except Interrupted:
                    leg.waiting = None
                    raise
                if result == "timeout":
                    timed_out = True
                    break
            leg.waiting = None
            payload = leg.base_payload()
            if dtmf_on:
                payload["dtmf"] = {"digits": digits if not said else "", "timed_out": timed_out}
            if speech_on:
                if said:
                    payload["speech"] = {"results": [{"confidence": "0.93", "text": said}]}
                elif timed_out and not digits:
                    payload["speech"] = {"timeout_reason": "start_timeout", "results": []}
                else:
                    payload["speech"] = {"results": []}
            leg.note("input_result", said or digits or "(nothing)", timed_out=timed_out)
        url = (action.get("eventUrl") or [self.app["event_url"]])[0]
        return self._ncco_webhook(leg, url, action.get("eventMethod", "POST"), payload, "event_url")

    def _action_notify(self, leg, action, generation):
        url = (action.get("eventUrl") or [None])[0]
        if not url:
            return None
        payload = action.get("payload") or {}
        with self.lock:
            leg.note("notify", json.dumps(payload)[:200])
        return self._ncco_webhook(leg, url, action.get("eventMethod", "POST"), payload, "event_url")

    def _conversation_kind(self, leg):
        conversation = self.conversations.get(leg.conversation)
        if conversation and conversation.started and len(conversation.members) > 1:
            return "connected"
        return "hold"

    def _action_conversation(self, leg, action, generation):
        name = str(action.get("name") or "")
        start_on_enter = action.get("startOnEnter", True) not in (False, "false")
        end_on_exit = action.get("endOnExit", False) in (True, "true")
        music = (action.get("musicOnHoldUrl") or [None])[0]
        with self.lock:
            conversation = self.conversations.get(name)
            if conversation is None or conversation.ended:
                conversation = self.conversations[name] = Conversation(name)
            conversation.members[leg.uuid] = (start_on_enter, end_on_exit)
            if not name.startswith(BRIDGE_PREFIX) and leg.current_conversation_uuid != conversation.uuid:
                self._transfer_event(leg, conversation.uuid)  # joining a named conversation moves the leg
            if start_on_enter:
                conversation.started = True
            leg.conversation = name
            leg.note("conversation", f"joined conversation {name}", start_on_enter=start_on_enter,
                     end_on_exit=end_on_exit, music_url=music)

            def update_state():
                connected = self._conversation_kind(leg) == "connected"
                state = "connected" if connected else "on_hold"
                if state != leg.state:
                    leg.state = state
                    if connected:
                        leg.note("connected", "connected: " + ", ".join(
                            self.legs[uuid].to if self.legs[uuid].direction == "outbound" else self.legs[uuid].from_
                            for uuid in conversation.members if uuid != leg.uuid and uuid in self.legs))
                    elif conversation.started:
                        leg.note("hold", "waiting in the conversation")
                    else:
                        leg.note("hold", "hold music" if music else "silence: waiting for the conversation to start",
                                 music_url=music)
                leg.waiting = {"kind": "conversation", "name": name, "started": conversation.started,
                               "music_url": None if conversation.started else music, "connected": connected,
                               "since": leg.waiting.get("since") if leg.waiting else time.time()}
                return conversation.ended or leg.conversation != name

            try:
                self._wait(leg, lambda: (update_state(), self._conversation_kind(leg))[1], None,
                           lambda: conversation.ended or leg.conversation != name, generation)
            finally:
                leg.waiting = None
                if leg.state in ("on_hold", "connected"):
                    leg.state = "answered"
            if leg.generation != generation or leg.hangup_requested:
                raise Interrupted()
            leg.note("conversation_end", f"left conversation {name}")
            self._leave_conversation(leg)
        return None

    def _leave_conversation(self, leg):
        """LEG leaves its conversation (lock held); a leg with endOnExit ends it for everyone."""
        name = leg.conversation
        if not name:
            return
        leg.conversation = None
        conversation = self.conversations.get(name)
        if conversation is None:
            return
        _, end_on_exit = conversation.members.pop(leg.uuid, (False, False))
        if end_on_exit and not conversation.ended:
            conversation.ended = True
            for uuid in list(conversation.members):
                other = self.legs.get(uuid)
                if other is not None:
                    other.note("conversation_end", "the conversation ended")
        if not conversation.members:
            self.conversations.pop(name, None)
        self.touch(leg, *(self.legs[uuid] for uuid in conversation.members if uuid in self.legs))

    def _action_connect(self, leg, action, generation):
        endpoint = (action.get("endpoint") or [{}])[0]
        if endpoint.get("type", "phone") != "phone" or not digits_only(endpoint.get("number")):
            with self.lock:
                leg.note("error", f"connect to a {endpoint.get('type')!r} endpoint is not emulated: skipped")
            return None
        bridge = f"{BRIDGE_PREFIX}{leg.uuid}-{generation}-{leg.pc}"
        on_answer = endpoint.get("onAnswer") or {}
        join = [{"action": "conversation", "name": bridge, "startOnEnter": True, "endOnExit": True}]
        ncco = join
        answer_url = None
        if on_answer.get("url"):
            answer_url = on_answer["url"]
            ncco = None
        with self.lock:
            leg.note("connect", f"connecting to {endpoint['number']}")
            leg.state = "dialling"
        other = self._outbound_leg(
            to=endpoint["number"],
            from_=action.get("from") or leg.to,
            parent=leg,
            event_urls=action.get("eventUrl") or [self.app["event_url"]],
            event_method=action.get("eventMethod", "POST"),
            ncco=ncco,
            answer_url=answer_url,
            ringing_timer=action.get("timeout", 60),
            machine_detection=action.get("machineDetection"),
            length_timer=action.get("limit"),
            conversation_uuid=leg.conversation_uuid,
            bridge=join if answer_url else (),
            region=leg.region,
        )
        with self.lock:
            result = self._wait(leg, "connecting", None, lambda: other.ended or other.answered_at is not None, generation)
            if result == "interrupted":
                self._request_hangup(other, "platform")
                raise Interrupted()
            if other.ended:
                leg.note("connect_failed", f"{endpoint['number']}: {other.status}")
                leg.state = "answered"
                return None
        return self._action_conversation(
            leg, {"action": "conversation", "name": bridge, "startOnEnter": True, "endOnExit": True}, generation)

    def _action_record(self, leg, action, generation):
        """Record until the end key, a "voicemail" step (the caller's words, and the recording ends) or the time
        limit; words said meanwhile are the message. Vonage sends the record webhook once the recording is
        finished: when the caller hangs up during it, after the leg's "completed" event."""
        end_on_key = str(action.get("endOnKey") or "")
        timeout = float(action.get("timeOut", 7200) or 7200)
        fmt = action.get("format", "mp3")
        with self.lock:
            if action.get("beepStart"):
                leg.note("beep", "beep")
            leg.note("record", "recording", end_on_key=end_on_key, max_seconds=timeout)
            leg.state = "recording"
            leg.voicemail = None
            leg.pending_digits.clear()
            leg.pending_speech.clear()
            leg.waiting = {"kind": "record", "end_on_key": end_on_key, "max_seconds": timeout, "since": time.time()}
            started, began = utc_now(), time.monotonic()
            ended_by = {}

            def stop():
                while leg.pending_digits:
                    if leg.pending_digits.popleft() == end_on_key and end_on_key:
                        ended_by["why"] = "key"
                        return True
                return leg.voicemail is not None

            result = self._wait(leg, "record", timeout, stop, generation)
            leg.waiting = None
            if leg.state == "recording":
                leg.state = "answered"
            said = " ".join(leg.pending_speech)
            leg.pending_speech.clear()
            text, audio, content_type = leg.voicemail or (said, None, "audio/mpeg")
            leg.voicemail = None
            # The recording's length in simulated seconds (the network's speed scales real time).
            seconds = max(1.0, speech_seconds(text)) if text else 1.0
            if result == "timeout":
                seconds = timeout
            elif self.speed > 0:
                seconds = max(seconds, (time.monotonic() - began) / self.speed)
            ended = started + dt.timedelta(seconds=seconds)
            hung_up = result == "interrupted" and leg.hangup_requested
            leg.note("recorded", text or "(no words)", seconds=round(seconds, 1), audio=bool(audio))
        if audio is None:
            content_type = "audio/wav" if fmt == "wav" else "audio/mpeg"
            audio = _silence(min(seconds, 30), fmt)
        recording_url = self.files(audio, content_type) if self.files else ""
        recording_uuid = str(uuid_lib.uuid4())
        webhooks = [((action.get("eventUrl") or [self.app["event_url"]])[0], action.get("eventMethod", "POST"), {
            "start_time": iso(started),
            "recording_url": recording_url,
            "size": len(audio),
            "recording_uuid": recording_uuid,
            "end_time": iso(ended),
            "conversation_uuid": leg.conversation_uuid,
            "timestamp": iso(utc_now()),
        })]
        transcription = action.get("transcription")
        if isinstance(transcription, dict):
            document = {
                "channels": [{"transcript": [{"sentence": text, "raw_sentence": text, "start_time": 0,
                                              "end_time": seconds}] if text else []}],
                "language": transcription.get("language", "en-US"),
            }
            transcript_url = self.files(json.dumps(document).encode(), "application/json") if self.files else ""
            webhooks.append(((transcription.get("eventUrl") or action.get("eventUrl") or [self.app["event_url"]])[0],
                             transcription.get("eventMethod", "POST"), {
                                 "conversation_uuid": leg.conversation_uuid,
                                 "type": "transcription",
                                 "recording_uuid": recording_uuid,
                                 "status": "successful",
                                 "transcription_url": transcript_url,
                                 "timestamp": iso(utc_now()),
                             }))
        if hung_up:
            with self.lock:
                if not leg.ended:
                    leg.after_end.extend(webhooks)  # sent by _finish, after the "completed" event
                    webhooks = []
        for url, method, payload in webhooks:
            self._queue(leg, url, method, payload)
        if result == "interrupted":
            raise Interrupted()
        return None

    # --- webhooks ----------------------------------------------------------------------------------------------

    def _event(self, leg, status, *, include_uuid=True, **fields):
        """Queue a status event of LEG for its event URL (sent in order, asynchronously)."""
        payload = leg.base_payload()
        if not include_uuid:
            payload.pop("uuid")
        payload.update(status=status, direction=leg.direction, **fields)
        self._queue_event(leg, payload)

    def _queue_event(self, leg, payload):
        for url in leg.event_urls[:1]:
            self._queue(leg, url, leg.event_method, payload)

    def _transfer_event(self, leg, conversation_uuid_to):
        """LEG moves to another conversation: Vonage's transfer event (it has no status)."""
        with self.lock:
            moved_from, leg.current_conversation_uuid = leg.current_conversation_uuid, conversation_uuid_to
        self._queue_event(leg, {"conversation_uuid_from": moved_from, "conversation_uuid_to": conversation_uuid_to,
                                "uuid": leg.uuid, "timestamp": iso(utc_now())})

    def _report_invalid_ncco(self, leg, kind, reason):
        """Vonage's only report of an NCCO it could not run: an error event (no status) to LEG's event URL."""
        log.warning("emulator leg=%s invalid NCCO from the %s: %s", leg.uuid, kind, reason)
        with self.lock:
            self.invalid_nccos.append({"uuid": leg.uuid, "kind": kind, "reason": reason})
            leg.note("error", f"invalid NCCO from the {kind}: {reason}")
        self._queue_event(leg, {"reason": reason, "conversation_uuid": leg.conversation_uuid,
                                "timestamp": iso(utc_now())})

    def _queue(self, leg, url, method, payload):
        with self.lock:
            items = [(url, method, payload)]
            if self.disorder_events and "status" in payload:
                # Hold each status event until the next one, then send the newer first and again after the
                # older: duplicated and out of order, as Vonage may deliver them. The leg's last event flushes.
                held = self._held.pop(leg.uuid, None)
                if held is None and not leg.ended:
                    self._held[leg.uuid] = items[0]
                    return
                items = [items[0], *([held] if held else []), items[0]]
            box = self._outboxes.setdefault(leg.uuid, deque())
            box.extend(items)
            if leg.uuid in self._sending:
                return
            self._sending.add(leg.uuid)
        try:
            self._senders.submit(self._drain, leg.uuid)
        except RuntimeError:  # shut down
            pass

    def _drain(self, uuid):
        while True:
            with self.lock:
                box = self._outboxes.get(uuid)
                if not box:
                    self._sending.discard(uuid)
                    self._outboxes.pop(uuid, None)
                    return
                url, method, payload = box.popleft()
            try:
                self._send(url, method, payload, EVENT_TIMEOUT)
            except requests.RequestException as exc:
                log.info("emulator event to %s failed: %s", url, exc)

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # never send webhooks through a proxy from the environment
        return session

    def _send(self, url, method, payload, timeout):
        """Send one signed webhook; returns the response.

        While `unsigned_callbacks` is above zero, the webhook first goes out without Authorization (Vonage
        rarely sends one so) and, answered with a status Vonage retries (429, 503, 504), again signed."""
        method = (method or "POST").upper()
        if method == "GET":
            parts = urlsplit(url)
            query = parse_qsl(parts.query, keep_blank_values=True)
            query += [(key, value if isinstance(value, str) else json.dumps(value)) for key, value in payload.items()]
            url = urlunsplit(parts._replace(query=urlencode(query)))
            body = b""
        else:
            body = json.dumps(payload).encode()
        with self.lock:
            unsigned = self.unsigned_callbacks > 0
            self.unsigned_callbacks -= unsigned
        response = None
        for signed in (False, True) if unsigned else (True,):
            if response is not None and response.status_code not in RETRY_STATUSES:
                break
            headers = {"User-Agent": "Vonage-Emulator/1.0"}
            if signed:
                headers["Authorization"] = sign_webhook(body, **self.signing)
            if body:
                headers["Content-Type"] = "application/json"
            response = self._request(method, url, body, headers, timeout, payload)
        return response

    def _request(self, method, url, body, headers, timeout, payload):
        verify = self.verify if url.startswith("https://") else True
        started, clock = time.time(), time.perf_counter()
        try:
            response = self._session().request(method, url, data=body or None, headers=headers, timeout=timeout,
                                               verify=verify, allow_redirects=False)
        except requests.RequestException:
            if self.on_webhook is not None:
                self.on_webhook(started, time.perf_counter() - clock, method, url, payload, None)
            raise
        if self.on_webhook is not None:
            self.on_webhook(started, time.perf_counter() - clock, method, url, payload, response.status_code)
        with self.lock:
            self.webhook_log.append((time.time(), method, url, response.status_code))
        return response

    def _request_ncco(self, url, method, payload, *, empty_ok=False):
        """Ask URL for an NCCO as Vonage does: a second try only after a timeout, a connection error or a 429,
        503 or 504; any other failure is final, and the body of a non-2xx answer is never used.

        Returns (ncco, failure, invalid): the NCCO; else why not (INVALID: the answer was a 2xx whose NCCO Vonage
        would refuse). With EMPTY_OK an empty 2xx answer is (None, None, False): go on with the running NCCO."""
        failure = "no URL"
        for _ in range(2 if url else 0):
            try:
                response = self._send(url, method, payload, ANSWER_TIMEOUT)
            except (requests.Timeout, requests.ConnectionError) as exc:
                failure = type(exc).__name__
                continue
            except requests.RequestException as exc:
                return None, type(exc).__name__, False
            if response.status_code in RETRY_STATUSES:
                failure = f"HTTP {response.status_code}"
                continue
            if not 200 <= response.status_code < 300:
                return None, f"HTTP {response.status_code}", False
            if empty_ok and not response.content.strip():
                return None, None, False
            try:
                ncco = response.json()
            except ValueError:
                return None, "Invalid NCCO: the answer is not JSON", True
            problems = ncco_problems(ncco)
            if problems:
                return None, "Invalid NCCO: " + "; ".join(f"{p['name']}: {p['reason']}" for p in problems), True
            return ncco, None, False
        return None, failure, False

    def _ncco_webhook(self, leg, url, method, payload, kind):
        """A webhook whose answer may be an NCCO (input, notify): the new NCCO, or None to go on with the current
        one. A failed request or an invalid NCCO goes to the fallback URL, as Vonage does."""
        ncco, failure, invalid = self._request_ncco(url, method, payload, empty_ok=True)
        if ncco is not None or failure is None:
            return ncco
        return self._fallback(leg, url, kind, failure, invalid)

    def _fetch_answer(self, leg, url, method):
        """The NCCO from the answer URL, else from the fallback URL, else None (the call is dropped)."""
        payload = leg.base_payload()
        payload.pop("timestamp")
        payload.update(endpoint_type="phone", region_url=self.region_url(leg.region))
        if not url:
            return None
        ncco, failure, invalid = self._request_ncco(url, method, payload)
        if ncco is not None:
            return ncco
        return self._fallback(leg, url, "answer_url", failure, invalid)

    def _fallback(self, leg, original_url, kind, reason, invalid):
        """After a failed NCCO request (INVALID: an NCCO Vonage refused, reported first with an error event), the
        NCCO from the application's fallback URL, with the application's fallback method (GET by default)."""
        if invalid:
            self._report_invalid_ncco(leg, kind, reason)
        url = self.app.get("fallback_url")
        with self.lock:
            leg.note("error", f"{kind} failed ({reason})" + (": trying the fallback URL" if url else ""))
        if not url:
            return None
        payload = leg.base_payload()
        payload.update(reason=reason, original_request={"url": original_url, "type": kind})
        ncco, failure, invalid = self._request_ncco(url, self.app.get("fallback_method") or "GET", payload)
        if invalid:
            self._report_invalid_ncco(leg, "fallback_url", failure)
        return ncco


def _silence(seconds, fmt):
    if fmt == "wav":
        import io
        import wave

        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(b"\x00\x00" * int(8000 * seconds))
        return buffer.getvalue()
    return SILENT_MP3_FRAME * max(1, math.ceil(seconds * MP3_FRAMES_PER_SECOND))


def _describe_step(step):
    do = step.get("do")
    detail = step.get("digits") or step.get("text") or ""
    return f"script: {do}" + (f" {detail}" if detail else "")


STEP_TRIGGERS = {"ringing", "input", "talk", "hold", "connected", "record", "connecting"}
STEP_ACTIONS = {"dtmf", "say", "hangup", "voicemail", *RING_OUTCOMES}


def validate_steps(steps):
    """STEPS as a list of clean dicts; raises ValueError for anything the engine would not understand."""
    if not isinstance(steps, list):
        raise ValueError("steps must be a list")
    clean = []
    for step in steps:
        if not isinstance(step, dict) or step.get("on") not in STEP_TRIGGERS or step.get("do") not in STEP_ACTIONS:
            raise ValueError(f"bad step {step!r}: on must be one of {sorted(STEP_TRIGGERS)}, do one of {sorted(STEP_ACTIONS)}")
        after = step.get("after", 0)
        if isinstance(after, bool) or not isinstance(after, (int, float)) or after < 0:
            raise ValueError(f"bad step {step!r}: after must be a number of seconds >= 0")
        clean.append({key: step[key] for key in ("on", "do", "after", "digits", "text", "then_press") if key in step})
    return clean


def phone_pattern_ok(number):
    return bool(re.fullmatch(r"\+?[0-9]{3,15}", str(number or "")))
