"""Vonage's protocol end to end: the product's web server and worker (subprocesses) against a phone network that
serves a second data centre on a second host (PhoneNetwork(second_region=True)) and can send a callback unsigned.

- A caller whose call lives in the second region is moved to voicemail by a transfer sent to that region's host
  (the network answers 404 to a modify request on the other host), while the agents' calls, created on the
  configured API host, are hung up there.
- An unsigned callback is answered 503 by the product, sent again signed by the network, and the call goes on.

E2E support (+4930111000): option 1 "Outage" calls Agent1, Agent2, Agent3 one after another, option 2 "Billing"
all at once; voicemail with transcription.
"""
import time
from urllib.parse import urlsplit

import pytest

from callrouting.emulator.script import Agent, Caller, ScriptedCall
from incidents.telephony import Telephony
from tests.e2e_stack import AGENTS, E2E_LONG_RING_NUMBER, E2E_NUMBER, Stack

pytestmark = pytest.mark.slow

CALL = "select state, outcome, region_url from callrouting_call where vonage_uuid = %s"
LEG_HOSTS = (
    "select l.vonage_uuid, l.api_host, l.status from callrouting_agentleg l join callrouting_call c on c.id = l.call_id "
    "where c.vonage_uuid = %s order by l.position"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("e2e-protocol"), second_region=True).start()
    yield stack
    stack.stop()


@pytest.fixture(autouse=True)
def faults_off(stack):
    yield
    stack.client.faults(disorder_events=False, unsigned_callbacks=0, inbound_region="primary")


def ended_call(stack, uuid):
    return stack.wait_for(CALL, (uuid,), expect=lambda rows: rows and rows[0][0] == "ended")[0]


def modifications(stack, uuid):
    """(region, action, status) of every modify request for the call UUID, on either host."""
    return [(request.region, request.json.get("action"), request.status) for request in stack.phone.rest.requests
            if request.method == "PUT" and request.path == f"/v1/calls/{uuid}"]


def test_the_emulators_second_host_is_a_region_the_product_accepts(stack):
    # The product's allow-list of region hosts takes the network's second host when the API host is its first.
    product = Telephony(api_host=stack.phone.host)
    assert product.region_host(stack.phone.second_base_url) == stack.phone.second_host
    assert stack.phone.second_host != stack.phone.host


def test_a_caller_in_the_second_region_is_moved_to_voicemail_on_that_regions_host(stack):
    stack.client.faults(inbound_region="secondary")
    started = time.time()
    outcome = ScriptedCall(
        to=E2E_NUMBER, caller=Caller(press="1", voicemail="Disk full on db2"),
        agent_sequence=[Agent.busy(), Agent.busy(), Agent.busy()],
    ).run(stack.client, timeout=30)
    caller = outcome.caller["uuid"]

    assert outcome.said_to_caller()[-2:] == ["Leave a message.", "Thank you for your message. Goodbye."]
    state, result, region_url = ended_call(stack, caller)
    assert (result, region_url) == ("voicemail", stack.phone.second_base_url)
    # The transfer to voicemail went to the second region's host only, and it was accepted there.
    assert modifications(stack, caller) == [("secondary", "transfer", 204)]
    # The agents' calls were created on the configured API host (the first region) and live there.
    legs = stack.query(LEG_HOSTS, (caller,))
    assert [(host, status) for _, host, status in legs] == [(stack.phone.host, "busy")] * 3
    created = [request.region for request in stack.phone.rest.requests
               if request.method == "POST" and request.path == "/v1/calls" and request.received_at >= started]
    assert created == ["primary"] * 3


def test_the_other_agents_of_a_fan_out_are_hung_up_where_their_calls_live(stack):
    stack.client.faults(inbound_region="secondary")
    outcome = ScriptedCall(
        # The others' phones still ring when Agent2 accepts, however busy the machine.
        to=E2E_LONG_RING_NUMBER, caller=Caller(press="2", hang_up_after=1),
        agents={AGENTS[0]: Agent.no_answer(), AGENTS[1]: Agent.accept(after=1), AGENTS[2]: Agent.no_answer()},
    ).run(stack.client, timeout=30)
    caller = outcome.caller["uuid"]

    assert outcome.connected
    state, result, region_url = ended_call(stack, caller)
    assert (result, region_url) == ("answered", stack.phone.second_base_url)
    hung_up = {uuid for uuid, _, status in stack.query(LEG_HOSTS, (caller,)) if status == "cancelled"}
    assert len(hung_up) == 2
    for uuid in hung_up:
        assert modifications(stack, uuid) == [("primary", "hangup", 204)]
    # Nothing modified the caller's call on the wrong host, and no modify request anywhere got a 404.
    assert [request.status for request in stack.phone.rest.requests if request.method == "PUT"].count(404) == 0


def wait_until_quiet(stack, polls=300):
    """Wait (a bounded number of polls) until every leg of the network has ended and no webhook went out between
    two polls."""
    last = None
    for _ in range(polls):
        sent = len(stack.phone.network.webhook_log)
        if all(leg["state"] == "ended" for leg in stack.client.state()["legs"]) and sent == last:
            return
        last = sent
        time.sleep(0.1)
    raise AssertionError(f"the phone network was still busy after {polls} polls")


def test_an_unsigned_callback_is_refused_503_and_its_signed_retry_is_answered(stack):
    log_path = stack.directory / "stack.log"
    refusals_before = log_path.read_bytes().count(b"webhook refused path=/vonage/answer status=503")
    wait_until_quiet(stack)  # no late event of an earlier call may take the unsigned slot
    seen_before = len(stack.phone.network.webhook_log)
    stack.client.faults(unsigned_callbacks=1)  # the next webhook, the answer URL of this call, goes out unsigned

    outcome = ScriptedCall(to=E2E_NUMBER, caller=Caller(press="1", hang_up_after=1),
                           agent_sequence=[Agent.accept()]).run(stack.client, timeout=30)

    answers = [status for _, method, url, status in list(stack.phone.network.webhook_log)[seen_before:]
               if urlsplit(url).path == "/vonage/answer"]
    assert answers == [503, 200]
    assert outcome.said_to_caller()[0].startswith("Welcome to E2E.")
    assert outcome.connected
    state, result, _ = ended_call(stack, outcome.caller["uuid"])
    assert result == "answered"
    assert stack.query("select count(*) from callrouting_call where vonage_uuid = %s", (outcome.caller["uuid"],)) == [(1,)]
    refusals = log_path.read_bytes().count(b"webhook refused path=/vonage/answer status=503")
    assert refusals - refusals_before == 1
