"""What the flow engine works with and returns: the call's place in the flow, the context of an event, and the
effects the live call (callrouting.calls) or the dry run (flows.dryrun) carries out.

Plain frozen dataclasses with no Django in them: the engine is tested without a database or HTTP.
"""
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class DialTarget:
    """One phone to ring on a route: an account user (USER_ID) or an external number (USER_ID None)."""

    kind: str  # "user" | "external"
    user_id: int | None
    phone: str
    label: str


class World(Protocol):
    """What the engine asks about the account at the moment of the event (the live database or a test world)."""

    def calendar_status(self, calendar_id: int, at: datetime) -> str:
        """"in_hours", "out_of_hours" or "holiday" for the support calendar CALENDAR_ID at AT."""

    def dial_targets(self, targets: list, at: datetime) -> list[DialTarget]:
        """The route TARGETS (document dicts) resolved at AT, in order: a policy's users in escalation order, a
        schedule's on-call user, a user, an external number; users without a phone number left out."""


class Urls(Protocol):
    """Where the NCCOs send Vonage back to (per call); the dry run's builder returns readable placeholders."""

    def input(self, seq: int) -> str: ...

    def recording(self) -> str: ...

    def recording_started(self) -> str: ...

    def transcription(self) -> str: ...

    def audio(self, audio_id: int) -> str | None: ...

    def hold_music(self, audio_id: int | None) -> str: ...


@dataclass(frozen=True)
class Context:
    """Everything an event is decided with besides the document and the call's state."""

    now: datetime
    caller: str  # E.164, or what Vonage sent for a withheld number ("", "anonymous", "Unknown")
    call_uuid: str  # seeds the "random" route order, so a dry run and a replay agree
    world: World
    urls: Urls
    number_name: str = ""
    conversation: str = ""  # the caller's hold conversation (agents join it)


@dataclass(frozen=True)
class CallState:
    """Where a call is: NODE, that node's small state DATA (menu tries, PIN tries, route round and targets), and
    what the call carries from node to node. SEQ grows with every change; input URLs carry it, so an input
    meant for an earlier prompt is recognised as stale."""

    node: str
    data: dict = field(default_factory=dict)
    seq: int = 0
    incident: bool = False  # the call's incident exists (created once, by the first incident, route or voicemail node)
    pin_label: str = ""  # the label of the PIN the caller entered (goes into the incident)
    ended: bool = False

    def as_json(self):
        """Call.node_state: everything but the node id."""
        return {"data": self.data, "seq": self.seq, "incident": self.incident, "pin_label": self.pin_label,
                "ended": self.ended}

    @classmethod
    def from_json(cls, node, value):
        value = value if isinstance(value, dict) else {}
        data = value.get("data")
        return cls(
            node=str(node or ""), data=data if isinstance(data, dict) else {}, seq=int(value.get("seq") or 0),
            incident=bool(value.get("incident")), pin_label=str(value.get("pin_label") or ""),
            ended=bool(value.get("ended")),
        )


@dataclass(frozen=True)
class Visit:
    """One node entered or acted on during an event: the NCCO actions and effects it added (for the dry run and
    the call log)."""

    node: str
    kind: str
    ncco: tuple = ()
    effects: tuple = ()
    branch: str = ""  # the branch taken out of the node ("1 outage (key)", "no_input", "listed"), "" where it waits


@dataclass(frozen=True)
class Step:
    """The engine's answer to one event. NCCO None: nothing new for the caller (they stay where they are); a list
    is never empty and ends with something the caller hears or waits on. STATE is the call's state after the
    event (unchanged for a stale or duplicate event)."""

    ncco: list | None
    effects: tuple
    state: CallState
    visits: tuple = ()

    @property
    def changed(self):
        return bool(self.visits)


# --- Effects -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateIncident:
    """Create the call's incident (once per call). ALERT_SOURCE / POLICY None: the number's alert source / none
    (the route's first policy when a route creates it); PRIORITY "" = the alert source's default."""

    node_id: str
    title: str
    details: str = ""
    alert_source: int | None = None
    priority: str = ""
    policy: int | None = None
    accept_when_answered: bool = True
    pin_label: str = ""


@dataclass(frozen=True)
class RouteTo:
    """Ring TARGETS (a snapshot, already in this round's order) while the caller holds: one after another
    (sequential, random) or all at once (simultaneous), each RING_TIMEOUT seconds. ROUND counts from 1 to REPEAT.
    RING identifies this round within the call (no other round of any route of the call has it): the live call
    reports the round's end with engine.on_route_outcome(..., ring=RING), so a late report of an earlier round,
    even of another route node, changes nothing."""

    node_id: str
    targets: tuple
    style: str
    ring_timeout: int
    round: int
    repeat: int
    about: str  # what the agent's whisper says the call is about (the route's name, with a PIN's label)
    hold_music: str = ""
    ring: int = 0


@dataclass(frozen=True)
class StartVoicemail:
    """The caller is in the mailbox of NODE_ID: the incident is held back until the message is in."""

    node_id: str
    max_length: int
    transcription: bool
    how: str = ""


@dataclass(frozen=True)
class EndCall:
    """The flow ends the call: OUTCOME (a Call.Outcome value), ESCALATE a reason to hand the incident back to its
    escalation policy now."""

    outcome: str
    escalate: str = ""
    reason: str = ""


@dataclass(frozen=True)
class PinAccepted:
    """The caller entered the PIN labelled LABEL (added to the incident if it exists already)."""

    node_id: str
    label: str


@dataclass(frozen=True)
class LogLine:
    """A line for the call log (a blocked caller, a wrong PIN, nobody to ring): no incident is made for it."""

    node_id: str
    text: str


# Outcomes the flow ends a call with (Call.Outcome values; the last three are new with call flows).
NO_AGENT = "no_agent"
VOICEMAIL = "voicemail"
FLOW_ENDED = "flow_ended"  # a hang-up node
BLOCKED = "blocked"  # a hang-up reached from a caller list's "listed" branch
FLOW_ERROR = "flow_error"  # the step guard stopped a loop
