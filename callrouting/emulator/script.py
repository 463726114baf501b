"""Scripted calls through the phone network: a client of the control API and a small language for callers and agents.

    from callrouting.emulator.script import Agent, Caller, EmulatorClient, ScriptedCall

    client = EmulatorClient("https://127.0.0.1:8001", token, verify="/path/ca.pem")
    outcome = ScriptedCall(
        to="+4930901820",
        caller=Caller(press="1", after=0.5, hang_up_after=2),
        agents={"+4915112345671": Agent.decline()},
        default_agent=Agent.accept(after=2),
    ).run(client, timeout=30)
    print(outcome.transcript())

Times (after=...) are simulated seconds: the network's speed factor scales them like every other duration.
Agent behaviour applies to the outbound calls that present the called number as caller id while the call lasts
(that is how the product dials agents); AGENT_SEQUENCE scripts them by position (first agent called, second...).
"""
import time
from dataclasses import dataclass, field

import requests

DEFAULT_CALLER_ID = "+4915550000100"


class EmulatorError(Exception):
    pass


class EmulatorClient:
    """The control API over HTTPS. VERIFY: the CA file of the emulator (or False)."""

    def __init__(self, base_url, token, *, verify=True, timeout=10):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["X-Emulator-Token"] = token
        self.session.verify = verify
        self.timeout = timeout

    def _request(self, method, path, *, json=None, params=None, timeout=None):
        try:
            response = self.session.request(method, f"{self.base_url}/_emulator/{path}", json=json, params=params,
                                            timeout=timeout or self.timeout)
        except requests.RequestException as exc:
            raise EmulatorError(f"the phone network at {self.base_url} cannot be reached: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:200]
            raise EmulatorError(f"{method} {path}: HTTP {response.status_code}: {detail}")
        return response.json()

    def health(self):
        return self._request("GET", "health")

    def state(self, *, since=None, wait=20, uuids=None):
        params = {}
        if since is not None:
            params.update(since=since, wait=wait)
        if uuids:
            params["uuids"] = ",".join(uuids)
        return self._request("GET", "state", params=params, timeout=(wait or 0) + self.timeout)

    def leg(self, uuid):
        return self._request("GET", f"legs/{uuid}")

    def place_call(self, *, to, from_=DEFAULT_CALLER_ID, steps=(), agents=None, agent_sequence=(), default_agent=None,
                   region=None):
        body = {"from": from_, "to": to, "steps": list(steps)}
        if region is not None:
            body["region"] = region
        if agents:
            body["agents"] = agents
        if agent_sequence:
            body["agent_sequence"] = list(agent_sequence)
        if default_agent is not None:
            body["default_agent"] = default_agent
        return self._request("POST", "calls", json=body)

    def act(self, uuid, action, **body):
        return self._request("POST", f"legs/{uuid}/{action}", json=body)

    def set_phone(self, number, steps):
        if steps is None:
            return self._request("DELETE", f"phones/{number}")
        return self._request("PUT", f"phones/{number}", json={"steps": steps})

    def faults(self, **faults):
        """Switch opt-in faults on or off (disorder_events, unsigned_callbacks, inbound_region) or delay the answers
        of the next create-call requests (late_create_calls={"count": n, "seconds": s}); returns the switches."""
        return self._request("POST", "faults", json=faults)

    def reset(self):
        return self._request("POST", "reset")


# --- callers and agents ------------------------------------------------------------------------------------------


@dataclass
class Caller:
    """A scripted caller. PRESS (keys) or SAY (words) AFTER seconds into the first menu prompt; HANG_UP_ON_HOLD:
    hang up that many seconds into the hold music; HANG_UP_AFTER: hang up that many seconds after an agent is
    connected; VOICEMAIL: the words left at the beep (the recording then ends, as with '#');
    HANG_UP_IN_VOICEMAIL: instead, say VOICEMAIL's words and hang up that many seconds into the recording.
    STEPS: raw steps appended (see engine.validate_steps)."""

    press: str = None
    say: str = None
    after: float = 0.0
    hang_up_on_hold: float = None
    hang_up_after: float = None
    voicemail: str = None
    hang_up_in_voicemail: float = None
    steps: list = field(default_factory=list)

    def to_steps(self):
        steps = []
        if self.press:
            steps.append({"on": "input", "do": "dtmf", "digits": self.press, "after": self.after})
        if self.say:
            steps.append({"on": "input", "do": "say", "text": self.say, "after": self.after})
        if self.hang_up_on_hold is not None:
            steps.append({"on": "hold", "do": "hangup", "after": self.hang_up_on_hold})
        if self.hang_up_after is not None:
            steps.append({"on": "connected", "do": "hangup", "after": self.hang_up_after})
        if self.hang_up_in_voicemail is not None:
            if self.voicemail:
                steps.append({"on": "record", "do": "say", "text": self.voicemail, "after": 0})
            steps.append({"on": "record", "do": "hangup", "after": self.hang_up_in_voicemail})
        elif self.voicemail is not None:
            steps.append({"on": "record", "do": "voicemail", "text": self.voicemail, "after": 0})
        return steps + list(self.steps)


@dataclass
class Agent:
    """A scripted agent's phone. Build one with the class methods."""

    steps: list
    name: str = ""

    @classmethod
    def accept(cls, after=0.0, *, key="1", hang_up_after=None):
        """Answer AFTER seconds of ringing and press KEY at the prompt; hang up HANG_UP_AFTER s into the call."""
        steps = [{"on": "ringing", "do": "answer", "after": after}, {"on": "input", "do": "dtmf", "digits": key}]
        if hang_up_after is not None:
            steps.append({"on": "connected", "do": "hangup", "after": hang_up_after})
        return cls(steps, f"accept after {after:g} s")

    @classmethod
    def decline(cls, after=0.0, *, key="2"):
        """Answer and press KEY (decline) at the prompt."""
        return cls([{"on": "ringing", "do": "answer", "after": after}, {"on": "input", "do": "dtmf", "digits": key}],
                   "decline")

    @classmethod
    def reject(cls, after=0.0):
        """Reject the call while it rings (the red button)."""
        return cls([{"on": "ringing", "do": "reject", "after": after}], "reject")

    @classmethod
    def busy(cls):
        return cls([{"on": "ringing", "do": "busy"}], "busy")

    @classmethod
    def no_answer(cls):
        """Let it ring until the ringing timer runs out."""
        return cls([], "no answer")

    @classmethod
    def unavailable(cls):
        return cls([{"on": "ringing", "do": "unanswered"}], "unavailable")

    @classmethod
    def machine(cls, after=0.0):
        """An answering machine picks up."""
        return cls([{"on": "ringing", "do": "machine", "after": after}], "machine")

    @classmethod
    def silent(cls, after=0.0):
        """Answer and never press a key."""
        return cls([{"on": "ringing", "do": "answer", "after": after}], "silent")

    @classmethod
    def fail(cls):
        return cls([{"on": "ringing", "do": "fail"}], "fail")

    @classmethod
    def parse(cls, text):
        """An Agent from the command line: accept[:AFTER], decline, reject, busy, no-answer, unavailable, machine,
        silent, fail."""
        name, _, argument = str(text).strip().lower().partition(":")
        makers = {
            "accept": lambda: cls.accept(float(argument or 0)),
            "decline": lambda: cls.decline(float(argument or 0)),
            "reject": lambda: cls.reject(float(argument or 0)),
            "busy": cls.busy,
            "no-answer": cls.no_answer,
            "noanswer": cls.no_answer,
            "unavailable": cls.unavailable,
            "machine": lambda: cls.machine(float(argument or 0)),
            "silent": lambda: cls.silent(float(argument or 0)),
            "fail": cls.fail,
        }
        if name not in makers:
            raise ValueError(f"unknown agent behaviour {text!r}: one of {', '.join(sorted(makers))}")
        try:
            return makers[name]()
        except ValueError:
            raise ValueError(f"bad delay in {text!r}") from None


# --- a scripted call --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened: the caller's leg and the agent legs (outbound calls presenting the called number)."""

    caller: dict
    agents: list
    started_at: float
    finished_at: float

    @property
    def connected(self):
        return any(entry["kind"] == "connected" for entry in self.caller["transcript"])

    @property
    def connected_after(self):
        """Seconds from placing the call to the caller being connected to an agent, or None."""
        for entry in self.caller["transcript"]:
            if entry["kind"] == "connected":
                return entry["at"] - self.started_at
        return None

    @property
    def duration(self):
        return self.finished_at - self.started_at

    def said_to_caller(self):
        """Everything the caller heard spoken (talk actions), in order."""
        return [entry["text"] for entry in self.caller["transcript"] if entry["kind"] == "talk"]

    def agent(self, number):
        digits = "".join(ch for ch in number if ch.isdigit())
        return [leg for leg in self.agents if leg["to"] == digits]

    def transcript(self):
        lines = []
        for leg in [self.caller, *self.agents]:
            who = f"caller {leg['from']} -> {leg['to']}" if leg["direction"] == "inbound" else f"agent phone {leg['to']}"
            lines.append(f"== {who} ({leg['status']})")
            for entry in leg["transcript"]:
                at = entry["at"] - self.started_at
                text = f" {entry['text']}" if entry.get("text") else ""
                lines.append(f"  {at:7.2f}s {entry['kind']}{text}")
        return "\n".join(lines)


@dataclass
class ScriptedCall:
    to: str
    caller: Caller = field(default_factory=Caller)
    from_: str = DEFAULT_CALLER_ID
    agents: dict = field(default_factory=dict)
    agent_sequence: list = field(default_factory=list)
    default_agent: Agent = None

    def start(self, client):
        """Place the call; returns the caller leg's uuid (see wait())."""
        self._started_at = time.time()
        leg = client.place_call(
            to=self.to,
            from_=self.from_,
            steps=self.caller.to_steps(),
            agents={number: agent.steps for number, agent in self.agents.items()},
            agent_sequence=[agent.steps for agent in self.agent_sequence],
            default_agent=self.default_agent.steps if self.default_agent is not None else None,
        )
        self.uuid = leg["uuid"]
        return self.uuid

    def run(self, client, timeout=30):
        """Place the call and wait until it and its agent legs have ended; returns the Outcome."""
        self.start(client)
        return self.wait(client, timeout)

    def wait(self, client, timeout=30):
        deadline = time.monotonic() + timeout
        called = "".join(ch for ch in self.to if ch.isdigit())
        version = None
        while True:
            state = client.state(since=version, wait=min(5, max(0.1, deadline - time.monotonic())))
            version = state["version"]
            legs = state["legs"]
            caller = next((leg for leg in legs if leg["uuid"] == self.uuid), None)
            if caller is None:
                raise EmulatorError(f"the call {self.uuid} is gone from the phone network")
            agents = sorted(
                (leg for leg in legs if leg["direction"] == "outbound" and leg["from"] == called
                 and leg["created_at"] >= self._started_at - 0.5
                 and (caller["ended_at"] is None or leg["created_at"] <= caller["ended_at"] + 0.5)),
                key=lambda leg: leg["created_at"],
            )
            if caller["ended_at"] is not None and all(leg["ended_at"] is not None for leg in agents):
                return Outcome(caller, agents, self._started_at, time.time())
            if time.monotonic() > deadline:
                outcome = Outcome(caller, agents, self._started_at, time.time())
                raise TimeoutError(f"the call did not end within {timeout} s:\n{outcome.transcript()}")
