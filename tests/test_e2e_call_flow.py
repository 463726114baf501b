"""The live call flow end to end over real HTTP: the product's web server and django-q2 worker (subprocesses on a
throwaway database) and the phone network, which places the calls and plays caller and agents from scripts.

E2E support (+4930111000): option 1 "Outage" calls Agent1, Agent2, Agent3 one after another, option 2 "Billing"
all at once; 30 s ringing; voicemail with transcription. The network runs at speed 0.05 (a second is 50 ms).
"""

import pytest

from callrouting.emulator.script import Agent, Caller, ScriptedCall
from tests.e2e_stack import AGENTS, E2E_LONG_RING_NUMBER, E2E_NUMBER, Stack

pytestmark = pytest.mark.slow

CALL = "select id, state, outcome, incident_id, escalated_at from callrouting_call where vonage_uuid = %s"
LEGS = (
    "select l.phone_number, l.status, l.detail from callrouting_agentleg l join callrouting_call c on c.id = l.call_id "
    "where c.vonage_uuid = %s order by l.position"
)
INCIDENT = "select status from incidents_incident where id = %s"
TIMELINE = "select message from incidents_incidentevent where incident_id = %s order by at, id"
VOICEMAIL = (
    "select v.transcript, v.recording, v.recording_saved_at from callrouting_voicemail v "
    "join callrouting_call c on c.id = v.call_id where c.vonage_uuid = %s"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("e2e")).start()
    yield stack
    stack.stop()


@pytest.fixture(autouse=True)
def every_ncco_is_one_vonage_runs(stack):
    """The product's NCCOs must be ones Vonage runs: its fallback could otherwise hide a refused one."""
    before = len(stack.phone.network.invalid_nccos)
    yield
    assert list(stack.phone.network.invalid_nccos)[before:] == []


def ended_call(stack, uuid):
    """(state, outcome, incident id, escalated_at) once the call log says the call ended."""
    rows = stack.wait_for(CALL, (uuid,), expect=lambda rows: rows and rows[0][1] == "ended")
    return rows[0][1:]


def leg_statuses(stack, uuid):
    return [(phone, status) for phone, status, _ in stack.query(LEGS, (uuid,))]


def incident_status(stack, incident_id, expected):
    return stack.wait_for(INCIDENT, (incident_id,), expect=lambda rows: rows and rows[0][0] == expected)[0][0]


def timeline(stack, incident_id):
    return "\n".join(message for (message,) in stack.query(TIMELINE, (incident_id,)))


def run(stack, to=E2E_NUMBER, **kwargs):
    return ScriptedCall(to=to, **kwargs).run(stack.client, timeout=30)


def test_a_digit_routes_the_call_and_the_accepted_call_ending_resolves_the_incident(stack):
    outcome = run(stack, caller=Caller(press="1", after=0.5, hang_up_after=2), agent_sequence=[Agent.accept(after=2)])

    assert outcome.connected
    # The greeting (the menu's prompt) and the generated menu are two talks (issue 17).
    assert outcome.said_to_caller()[:2] == ["Welcome to E2E.", "Press 1 or say Outage for Outage. Press 2 or say Billing for Billing."]
    state, result, incident, _ = ended_call(stack, outcome.caller["uuid"])
    assert result == "answered"
    assert leg_statuses(stack, outcome.caller["uuid"]) == [
        (AGENTS[0], "accepted"), (AGENTS[1], "cancelled"), (AGENTS[2], "cancelled")]
    assert incident_status(stack, incident, "resolved") == "resolved"
    steps = timeline(stack, incident)
    assert "chose 1 “Outage” (digit)" in steps
    assert "Agent1 E2E accepted the call and is connected to the caller." in steps
    assert "Call ended: answered by an agent." in steps


@pytest.mark.parametrize("disorder", [False, True], ids=["events-in-order", "events-duplicated-out-of-order"])
def test_sequential_calling_goes_on_after_a_decline(stack, disorder):
    stack.client.faults(disorder_events=disorder)  # Vonage may deliver a leg's events twice and out of order
    try:
        outcome = run(stack, caller=Caller(press="1", hang_up_after=1),
                      agent_sequence=[Agent.decline(), Agent.accept()])
    finally:
        stack.client.faults(disorder_events=False)

    assert [leg["to"] for leg in outcome.agents] == [AGENTS[0][1:], AGENTS[1][1:]]
    assert outcome.connected
    _, result, incident, _ = ended_call(stack, outcome.caller["uuid"])
    assert result == "answered"
    assert leg_statuses(stack, outcome.caller["uuid"]) == [
        (AGENTS[0], "declined"), (AGENTS[1], "accepted"), (AGENTS[2], "cancelled")]
    incident_status(stack, incident, "resolved")


@pytest.mark.parametrize(
    "first, status, emulator_status",
    [(Agent.busy(), "busy", "busy"), (Agent.no_answer(), "no_answer", "timeout"), (Agent.machine(), "machine", "completed")],
    ids=["busy", "no-answer", "machine"],
)
def test_the_next_agent_is_called_when_the_first_cannot_take_the_call(stack, first, status, emulator_status):
    outcome = run(stack, caller=Caller(press="1", hang_up_after=1), agent_sequence=[first, Agent.accept()])

    assert outcome.connected
    assert outcome.agents[0]["status"] == emulator_status
    ended_call(stack, outcome.caller["uuid"])
    assert leg_statuses(stack, outcome.caller["uuid"])[:2] == [(AGENTS[0], status), (AGENTS[1], "accepted")]


def test_simultaneous_calling_rings_everyone_and_hangs_up_the_others_when_one_accepts(stack):
    outcome = run(
        stack,
        to=E2E_LONG_RING_NUMBER,  # Agent3's phone still rings when Agent2 accepts, however busy the machine
        caller=Caller(say="billing", hang_up_after=1),
        # Each leg is dialled by a task of its own, in any order: Agent2 lets the phone ring long enough (12 s of
        # the network's time) for Agent1's decline to land first, however busy the machine is.
        agents={AGENTS[0]: Agent.decline(), AGENTS[1]: Agent.accept(after=12), AGENTS[2]: Agent.no_answer()},
    )

    assert outcome.connected
    assert {leg["to"]: leg["status"] for leg in outcome.agents} == {
        AGENTS[0][1:]: "completed", AGENTS[1][1:]: "completed", AGENTS[2][1:]: "cancelled"}
    _, result, incident, _ = ended_call(stack, outcome.caller["uuid"])
    assert result == "answered"
    statuses = dict(leg_statuses(stack, outcome.caller["uuid"]))
    # Agent1's decline and Agent2's accept race (each leg is dialled by its own task, paced to Vonage's rate): when
    # the accept lands first, Agent1's phone is hung up with the others before the decline arrives.
    assert statuses[AGENTS[0]] in ("declined", "cancelled")
    assert (statuses[AGENTS[1]], statuses[AGENTS[2]]) == ("accepted", "cancelled")
    assert "chose 2 “Billing” (speech). Calling agents all at once." in timeline(stack, incident)


def test_nobody_takes_the_call_and_the_caller_leaves_a_voicemail_with_a_transcript(stack):
    outcome = run(
        stack,
        caller=Caller(press="1", voicemail="The server room is flooding"),
        agent_sequence=[Agent.busy(), Agent.reject(), Agent.unavailable()],
    )

    assert not outcome.connected
    assert outcome.said_to_caller()[-2:] == ["Leave a message.", "Thank you for your message. Goodbye."]
    _, result, incident, _ = ended_call(stack, outcome.caller["uuid"])
    assert result == "voicemail"
    assert dict(leg_statuses(stack, outcome.caller["uuid"])) == {
        AGENTS[0]: "busy", AGENTS[1]: "declined", AGENTS[2]: "no_answer"}
    transcript, recording, saved = stack.wait_for(
        VOICEMAIL, (outcome.caller["uuid"],), expect=lambda rows: rows and rows[0][0] and rows[0][2])[0]
    assert transcript == "The server room is flooding" and recording
    assert (stack.directory / "media" / recording).stat().st_size > 1000
    stack.wait_for(TIMELINE, (incident,), expect=lambda rows: any("Escalat" in m for (m,) in rows))
    assert "Voicemail transcript: The server room is flooding" in timeline(stack, incident)


def test_a_caller_who_leaves_a_message_and_hangs_up_gets_a_voicemail(stack):
    """No '#': the caller speaks after the beep and hangs up. The network sends the record webhook after the
    leg's "completed" event, as Vonage does; the call still ends as a voicemail and the message is escalated."""
    words = "The backup job failed twice tonight please call me back"
    outcome = run(
        stack,
        caller=Caller(press="1", voicemail=words, hang_up_in_voicemail=6),
        agent_sequence=[Agent.busy(), Agent.busy(), Agent.busy()],
    )

    assert not outcome.connected
    assert outcome.said_to_caller()[-1] == "Leave a message."  # hung up before the thank-you
    _, result, incident, _ = ended_call(stack, outcome.caller["uuid"])
    assert result == "voicemail"
    transcript, recording, saved = stack.wait_for(
        VOICEMAIL, (outcome.caller["uuid"],), expect=lambda rows: rows and rows[0][0] and rows[0][2])[0]
    assert transcript == words and recording
    stack.wait_for(TIMELINE, (incident,), expect=lambda rows: any("Escalating" in m for (m,) in rows))
    steps = timeline(stack, incident)
    assert "The caller heard the mailbox greeting; recording their message." in steps
    assert "Escalating: the caller left a voicemail" in steps
    assert "before leaving a message" not in steps


def test_the_caller_hanging_up_while_an_agent_rings_stops_the_ringing_and_escalates(stack):
    call = ScriptedCall(to=E2E_NUMBER, caller=Caller(press="1"), agent_sequence=[Agent.no_answer()])
    uuid = call.start(stack.client)
    stack.wait_until(lambda: any(
        leg["direction"] == "outbound" and leg["from"] == E2E_NUMBER[1:] and leg["state"] == "ringing"
        for leg in stack.client.state()["legs"] if leg["created_at"] >= call._started_at), "an agent phone to ring")

    stack.client.act(uuid, "hangup")
    outcome = call.wait(stack.client, timeout=20)

    assert outcome.agents[0]["status"] == "cancelled"
    _, result, incident, escalated_at = ended_call(stack, uuid)
    assert result == "abandoned" and escalated_at is not None
    assert leg_statuses(stack, uuid)[0] == (AGENTS[0], "cancelled")
    stack.wait_for(TIMELINE, (incident,), expect=lambda rows: any("Escalat" in m for (m,) in rows))


def test_the_agent_hanging_up_ends_the_call_and_resolves_the_incident(stack):
    outcome = run(stack, caller=Caller(press="1"), agent_sequence=[Agent.accept(hang_up_after=2)])

    assert outcome.connected and outcome.caller["status"] == "completed"
    _, result, incident, _ = ended_call(stack, outcome.caller["uuid"])
    assert result == "answered"
    incident_status(stack, incident, "resolved")

