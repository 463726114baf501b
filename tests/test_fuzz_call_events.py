"""Property test: random interleavings of the webhook events of one routed call.

Hypothesis draws a routing option (one after another or all at once, 1-4 agents), the number's voicemail and
keep-open settings, and a sequence of events as Vonage may deliver them: agent leg events (started, ringing,
answered, busy, unanswered, rejected, failed, timeout, machine, completed, cancelled), agents' keys (1, 2,
none, another key), repeats of the previous event, in any order, and the caller hanging up at any point (or
only at the end). Events only go to legs whose call was placed (Vonage cannot report on a call it never made).
Then the call is finished the way Vonage finishes it: the caller's leg and every placed agent leg complete.

After every event and at the end, the invariants of the call flow must hold (see check_invariants). Each
example is a fresh call in the same test database; per-call queries keep examples apart.
"""
import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from callrouting import tasks
from callrouting.calls import flow
from callrouting.flows.actions import sync_simple_flow
from callrouting.models import AgentLeg, Call, RoutingNumber
from incidents.models import Incident, IncidentEvent
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

L = AgentLeg.Status
S = Call.State
AGENT_EVENTS = [
    ("started", {}),
    ("ringing", {}),
    ("answered", {}),
    ("busy", {}),
    ("unanswered", {"detail": "timeout"}),
    ("rejected", {"detail": "declined"}),
    ("rejected", {"detail": "restricted"}),
    ("failed", {"detail": "cannot_route"}),
    ("timeout", {}),
    ("machine", {"sub_state": "beep_start"}),
    ("completed", {}),
    ("cancelled", {}),
]

leg_event = st.tuples(st.just("leg"), st.integers(0, 3), st.sampled_from(range(len(AGENT_EVENTS))))
key_press = st.tuples(st.just("press"), st.integers(0, 3), st.sampled_from(["1", "1", "2", "", "9"]))
again = st.just(("again",))
agent_events = st.lists(st.one_of(leg_event, leg_event, key_press, again), max_size=14)
# The caller hangs up at most once (repeats come from "again"), at any point of the story, or only at the end.
caller_gone = st.none() | st.tuples(st.integers(0, 14), st.sampled_from(["completed", "disconnected"]))


@pytest.fixture
def setup(acme, alice, bob, carol):
    """A number whose digits 1-4 call 1-4 agents one after another and 5-8 the same agents all at once."""
    dave = UserFactory(account=acme, username="dave", first_name="Dave", phone="+4915110000004")
    agents = [alice, bob, carol, dave]
    number = RoutingNumberFactory(account=acme, phone_number="+4930901830")
    for count in range(1, 5):
        policy = policy_of(acme, *agents[:count])
        RoutingOptionFactory(routing_number=number, digit=count, label=f"Sequential {count}", escalation_policy=policy)
        RoutingOptionFactory(
            routing_number=number, digit=count + 4, label=f"Together {count}", escalation_policy=policy, simultaneous=True
        )
    return number


class Story:
    """One call as the test sends it: the responses, the legs placed, the keys and what they got."""

    def __init__(self, phone, vonage_api, number):
        self.phone, self.api, self.number = phone, vonage_api, number
        self.statuses = []
        self.joined = set()  # legs whose key press was answered with the join NCCO
        self.last = None

    def send(self, response):
        self.statuses.append(response.status_code)
        return response

    def dialled_legs(self, call):
        """Legs whose call was placed, in the order they were placed (one create-call request each)."""
        tokens = [r["event_url"][0].split("/leg/")[1].split("/")[0] for r in self.phone.dialled() if "/vonage/leg/" in r["event_url"][0]]
        by_token = {leg.token: leg for leg in call.legs.all()}
        return tokens, [by_token[t] for t in tokens if t in by_token]

    def apply(self, call, event):
        if event == ("again",):
            event = self.last
            if event is None:
                return
        self.last = event
        kind = event[0]
        if kind == "caller":
            self.send(self.phone.hang_up(call.vonage_uuid, status=event[1]))
            return
        _, placed = self.dialled_legs(call)
        if not placed:
            return
        leg = placed[event[1] % len(placed)]
        if kind == "leg":
            status, extra = AGENT_EVENTS[event[2]]
            self.send(self.phone.leg_event(leg, status, **extra))
        else:
            response = self.send(self.phone.agent_press(leg, event[2]))
            ncco = response.json()
            assert isinstance(ncco, list) and ncco, ncco
            if ncco[0]["action"] == "conversation":
                assert ncco[0]["name"] == call.conversation_name and ncco[0]["startOnEnter"] is True
                self.joined.add(leg.pk)


def transfers(vonage_api, call):
    return [m["destination"]["ncco"] for m in vonage_api.modifications(call.vonage_uuid) if m["action"] == "transfer"]


def escalations(incident):
    return incident.events.filter(kind=IncidentEvent.Kind.ESCALATED, message__startswith="Escalating").count()


def check_invariants(story, call, incidents_before):
    call.refresh_from_db()
    legs = list(call.legs.all())
    statuses = [leg.status for leg in legs]

    assert all(code < 500 for code in story.statuses), story.statuses

    # At most one agent takes the call, and it is the connected one; only that agent heard the join NCCO.
    accepted = [leg for leg in legs if leg.status == L.ACCEPTED]
    assert len(accepted) <= 1, statuses
    if accepted:
        assert call.connected_leg_id == accepted[0].pk
        assert call.state in (S.CONNECTED, S.ENDED) and call.outcome in ("", Call.Outcome.ANSWERED)
    else:
        assert call.connected_leg_id is None and call.state != S.CONNECTED
    assert story.joined <= {leg.pk for leg in accepted}, (story.joined, statuses)

    # No agent is dialled twice; one after another means in order and never two at once.
    tokens, placed = story.dialled_legs(call)
    assert len(tokens) == len(set(tokens)), "an agent was dialled twice"
    if not call.simultaneous:
        assert [leg.position for leg in placed] == sorted(leg.position for leg in placed)
        assert sum(status in flow.LEG_ACTIVE for status in statuses) <= 1, statuses

    # The caller is never stuck: while agents are called one of them is being called; when nobody is left the
    # caller was moved on (voicemail or "nobody available").
    if call.state == S.ROUTING:
        assert any(status in flow.LEG_ACTIVE for status in statuses), f"caller on hold with nobody called: {statuses}"
    moved = transfers(story.api, call)
    if call.state == S.VOICEMAIL or call.outcome in (Call.Outcome.VOICEMAIL, Call.Outcome.NO_MESSAGE):
        assert moved and moved[-1][-2]["action"] == "record"
    if call.outcome == Call.Outcome.NO_AGENT:
        assert moved and moved[-1][0]["text"].startswith("Sorry, no one is available")

    # Once the call has ended, so has every agent leg.
    if call.state == S.ENDED:
        assert all(status in flow.LEG_FINISHED for status in statuses), statuses

    # Exactly one incident for the routed call, consistent with the call.
    new_incidents = list(Incident.objects.filter(pk__gt=incidents_before))
    assert [i.pk for i in new_incidents] == [call.incident_id]
    incident = new_incidents[0]
    if accepted:
        assert incident.assigned_to_id == accepted[0].user_id
        keep_open = story.number.keep_incident_open
        ended = call.state == S.ENDED
        expected = Incident.Status.RESOLVED if ended and not keep_open else Incident.Status.ACCEPTED
        assert incident.status == expected, (incident.status, call.state, keep_open)
        assert escalations(incident) == 0
    else:
        assert incident.status == Incident.Status.PENDING
        handed_back = call.outcome in (Call.Outcome.ABANDONED, Call.Outcome.NO_AGENT, Call.Outcome.NO_MESSAGE)
        assert escalations(incident) == (1 if handed_back else 0), (call.state, call.outcome)
        assert incident.escalation_suppressed is not handed_back
    return call, legs, incident


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 50)),  # FUZZ_EXAMPLES=1000 for a long local run
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no "explain" phase: it reruns slow examples
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    digit=st.integers(1, 8),
    voicemail=st.booleans(),
    keep_open=st.booleans(),
    agent_script=agent_events,
    caller=caller_gone,
)
def test_any_interleaving_of_call_events_keeps_the_call_consistent(setup, phone, vonage_api, digit, voicemail, keep_open, agent_script, caller):
    number = setup
    RoutingNumber.objects.filter(pk=number.pk).update(voicemail_enabled=voicemail, keep_incident_open=keep_open, voicemail_transcription=False)
    number.refresh_from_db()
    sync_simple_flow(number)  # the queryset update skipped the signal that compiles the number's flow
    vonage_api.reset()
    incidents_before = Incident.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    story = Story(phone, vonage_api, number)

    response, uuid = phone.dial(number.phone_number)
    story.send(response)
    story.send(phone.press(response.json(), str(digit)))
    call = the_call(uuid)
    assert call.state == S.ROUTING and call.simultaneous == (digit > 4)
    agents = (digit - 1) % 4 + 1
    assert call.legs.count() == agents
    check_invariants(story, call, incidents_before)

    script = list(agent_script)
    if caller is not None:
        script.insert(caller[0], ("caller", caller[1]))
    for step in script:
        story.apply(call, step)
        check_invariants(story, call, incidents_before)

    # Vonage finishes the call: the caller's leg completes, then every placed agent leg.
    story.send(phone.hang_up(call.vonage_uuid))
    _, placed = story.dialled_legs(call)
    for leg in placed:
        story.send(phone.leg_event(leg, "completed"))
    call, legs, incident = check_invariants(story, call, incidents_before)
    note(f"outcome={call.outcome} legs={'/'.join(sorted(leg.status for leg in legs))}"[:80])
    assert call.state == S.ENDED and call.ended_at is not None
    # Every leg that was still ringing when it was given up is hung up (not left ringing an agent's phone);
    # a leg the network cancelled has no call left to hang up.
    for leg in legs:
        if leg.status == L.CANCELLED and leg.vonage_uuid and not leg.detail.startswith("cancelled by the network"):
            assert {"action": "hangup"} in vonage_api.modifications(leg.vonage_uuid), leg.detail

    if call.outcome == Call.Outcome.NO_MESSAGE:
        # The caller left no message: the incident went back to escalation when they hung up, and only then.
        tasks.voicemail_deadline(call.pk)
        incident.refresh_from_db()
        assert escalations(incident) == 1 and not incident.escalation_suppressed
