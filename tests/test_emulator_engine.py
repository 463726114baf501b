"""The phone network (callrouting/emulator) against a tiny webhook target: NCCO semantics, status sequences,
signed webhooks, the REST API's JWT check and the control API. Speed 0: simulated time passes at once."""
import datetime as dt
import hashlib
import json
import threading
import time
import uuid
from collections import deque

import jwt
import pytest
import requests
from django.http import JsonResponse

from callrouting.emulator import engine
from callrouting.emulator.control import MAX_LONG_POLL
from callrouting.emulator.rest import Credentials
from callrouting.emulator.script import Agent, Caller, EmulatorClient, EmulatorError, ScriptedCall
from callrouting.emulator.server import PhoneNetwork
from callrouting.emulator.validation import ncco_problems
from incidents.telephony import TelephonyError, get_telephony, reset_telephony
from tests.emulator_helpers import SECRET, WebhookTarget, wait_until
from tests.fake_vonage import assert_runnable_ncco

TOKEN = "control-token-for-tests"
CALLER = "+4915550000100"
NUMBER = "+4930901820"


@pytest.fixture
def app():
    target = WebhookTarget()
    yield target
    target.stop()


@pytest.fixture(scope="module")
def credentials():
    return Credentials.generate()


@pytest.fixture
def network(app, fake_vonage, credentials, tmp_path):
    # The certificate comes from the session fake's CA, which requests in this process already trust.
    phone = PhoneNetwork(webhook_base=app.base_url, credentials=credentials, signature_secret=SECRET,
                         control_token=TOKEN, speed=0, ca=fake_vonage.server.ca).start()
    phone.credentials = credentials
    phone.ca_file = str(phone.write_ca_bundle(tmp_path / "ca.pem"))
    yield phone
    phone.stop()


@pytest.fixture
def client(network):
    return EmulatorClient(network.base_url, TOKEN, verify=network.ca_file)


def app_jwt(credentials, **claims):
    now = int(time.time())
    payload = {"application_id": credentials.application_id, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4()),
               **claims}
    return jwt.encode(payload, credentials.private_key_pem, algorithm="RS256")


def rest(network, method, path, body=None, *, token=True):
    headers = {"Authorization": f"Bearer {app_jwt(network.credentials)}"} if token else {}
    return requests.request(method, network.base_url + path, json=body, headers=headers, verify=network.ca_file,
                            timeout=5)


def answer_with(app, ncco):
    app.routes["/vonage/answer"] = lambda hit: ncco


def leg_of(client, uuid):
    return client.leg(uuid)


def ended(client, uuid):
    return wait_until(lambda: (leg := client.leg(uuid))["ended_at"] and leg, message=f"leg {uuid} to end")


def kinds(leg, *wanted):
    return [(entry["kind"], entry["text"]) for entry in leg["transcript"] if entry["kind"] in wanted]


# --- inbound calls and signed webhooks -------------------------------------------------------------------------


def test_an_inbound_call_fetches_the_answer_ncco_and_reports_the_vonage_status_sequence(app, client):
    answer_with(app, [{"action": "talk", "text": "Hello there"}])

    leg = client.place_call(to=NUMBER, from_=CALLER)
    done = ended(client, leg["uuid"])

    assert kinds(done, "talk") == [("talk", "Hello there")]
    wait_until(lambda: "completed" in app.statuses(leg["uuid"]))
    assert app.statuses(leg["uuid"]) == ["started", "ringing", "answered", "completed"]
    answer = app.hits_to("/vonage/answer")[0]
    # GET with Vonage's fields; digits without "+"
    assert answer.method == "GET"
    assert answer.query["to"] == "4930901820" and answer.query["from"] == "4915550000100"
    assert answer.query["uuid"] == leg["uuid"] and answer.query["conversation_uuid"].startswith("CON-")
    claims = answer.claims()
    assert {"iat", "jti", "api_key", "application_id"} <= set(claims) and "payload_hash" not in claims
    completed = app.events(leg["uuid"])[-1]
    assert completed["direction"] == "inbound" and completed["duration"].isdigit()
    assert {"start_time", "end_time", "rate", "price", "network", "disconnected_by"} <= set(completed)


def test_every_posted_webhook_carries_the_sha256_of_its_body(app, client):
    answer_with(app, [{"action": "talk", "text": "Hi"}])
    leg = client.place_call(to=NUMBER, from_=CALLER)
    ended(client, leg["uuid"])
    wait_until(lambda: len(app.events(leg["uuid"])) == 4)

    for hit in app.hits_to("/vonage/event"):
        assert hit.claims()["payload_hash"] == hashlib.sha256(hit.body).hexdigest()
        with pytest.raises(jwt.InvalidSignatureError):
            hit.claims(secret="another-secret-another-secret-0123456789")


# --- talk and input ----------------------------------------------------------------------------------------------


def test_a_key_during_a_barge_in_talk_stops_it_and_reaches_the_input_whose_answer_replaces_the_ncco(app, client):
    answer_with(app, [
        {"action": "talk", "text": "Press 1 for sales", "bargeIn": True, "loop": 0},
        {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1}, "eventUrl": [app.url("/input")]},
        {"action": "talk", "text": "never reached"},
    ])
    app.routes["/input"] = lambda hit: [{"action": "talk", "text": f"You chose {hit.json['dtmf']['digits']}"}]

    # loop 0 plays forever: only the key ends it
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "talk", "do": "dtmf", "digits": "1"}])
    done = ended(client, leg["uuid"])

    payload = app.hits_to("/input")[0].json
    assert payload["dtmf"] == {"digits": "1", "timed_out": False}
    assert payload["uuid"] == leg["uuid"] and payload["to"] == "4930901820"
    assert kinds(done, "talk") == [("talk", "Press 1 for sales"), ("talk", "You chose 1")]


def test_a_key_during_a_talk_without_barge_in_is_lost(app, client):
    answer_with(app, [
        {"action": "talk", "text": "Listen to this"},
        {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1, "timeOut": 1}, "eventUrl": [app.url("/input")]},
    ])
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "talk", "do": "dtmf", "digits": "5"}])
    ended(client, leg["uuid"])

    assert app.hits_to("/input")[0].json["dtmf"] == {"digits": "", "timed_out": True}


def test_dtmf_input_takes_max_digits_default_four(app, client):
    answer_with(app, [{"action": "input", "type": ["dtmf"], "eventUrl": [app.url("/input")]}])
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "input", "do": "dtmf", "digits": "123456"}])
    ended(client, leg["uuid"])

    assert app.hits_to("/input")[0].json["dtmf"] == {"digits": "1234", "timed_out": False}


def test_dtmf_input_submits_on_hash_or_after_the_inter_digit_timeout(app, client):
    answer_with(app, [
        {"action": "input", "type": ["dtmf"], "dtmf": {"submitOnHash": True, "maxDigits": 10}, "eventUrl": [app.url("/a")]},
        {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 10, "timeOut": 2}, "eventUrl": [app.url("/b")]},
    ])
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[
        {"on": "input", "do": "dtmf", "digits": "42#"},
        {"on": "input", "do": "dtmf", "digits": "7"},
    ])
    ended(client, leg["uuid"])

    assert app.hits_to("/a")[0].json["dtmf"] == {"digits": "42", "timed_out": False}
    assert app.hits_to("/b")[0].json["dtmf"] == {"digits": "7", "timed_out": True}


def test_speech_input_reports_what_was_said(app, client):
    answer_with(app, [{
        "action": "input", "type": ["dtmf", "speech"], "dtmf": {"maxDigits": 1},
        "speech": {"language": "en-US", "context": ["billing", "outage"]}, "eventUrl": [app.url("/input")],
    }])
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "input", "do": "say", "text": "billing please"}])
    done = ended(client, leg["uuid"])

    payload = app.hits_to("/input")[0].json
    assert payload["speech"]["results"][0]["text"] == "billing please"
    assert payload["dtmf"] == {"digits": "", "timed_out": False}
    assert next(e for e in done["transcript"] if e["kind"] == "input")["hints"] == ["billing", "outage"]


def test_an_input_nobody_answers_times_out_and_an_empty_answer_continues_the_ncco(app, client):
    answer_with(app, [
        {"action": "input", "type": ["dtmf", "speech"], "eventUrl": [app.url("/input")]},
        {"action": "talk", "text": "Still here"},
    ])
    app.routes["/input"] = lambda hit: None  # 204: no new NCCO
    leg = client.place_call(to=NUMBER, from_=CALLER)
    done = ended(client, leg["uuid"])

    payload = app.hits_to("/input")[0].json
    assert payload["dtmf"]["timed_out"] is True and payload["speech"]["timeout_reason"] == "start_timeout"
    assert kinds(done, "talk") == [("talk", "Still here")]


def test_a_failing_input_webhook_goes_to_the_fallback_url(app, client):
    answer_with(app, [{"action": "input", "type": ["dtmf"], "eventUrl": [app.url("/input")]}])
    app.routes["/input"] = lambda hit: 500
    app.routes["/vonage/fallback"] = lambda hit: [{"action": "talk", "text": "Sorry"}]
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "input", "do": "dtmf", "digits": "1"}])
    done = ended(client, leg["uuid"])

    # 500 is not retried; the fallback comes with GET (Vonage's default), its fields as query parameters
    assert len(app.hits_to("/input")) == 1
    fallback = app.hits_to("/vonage/fallback")[0]
    assert fallback.method == "GET" and not fallback.body
    assert json.loads(fallback.query["original_request"]) == {"url": app.url("/input"), "type": "event_url"}
    assert fallback.query["reason"] == "HTTP 500"
    assert kinds(done, "talk") == [("talk", "Sorry")]


def test_a_failing_answer_url_is_tried_twice_then_the_fallback_url(app, client):
    app.routes["/vonage/answer"] = lambda hit: 503
    app.routes["/vonage/fallback"] = lambda hit: [{"action": "talk", "text": "Fallback speaking"}]
    leg = client.place_call(to=NUMBER, from_=CALLER)
    done = ended(client, leg["uuid"])

    assert len(app.hits_to("/vonage/answer")) == 2
    assert json.loads(app.hits_to("/vonage/fallback")[0].query["original_request"])["type"] == "answer_url"
    assert kinds(done, "talk") == [("talk", "Fallback speaking")]


# --- conversations -------------------------------------------------------------------------------------------


def test_a_caller_waits_with_hold_music_until_a_leg_with_start_on_enter_joins(app, client, network):
    answer_with(app, [{"action": "conversation", "name": "room-1", "startOnEnter": False, "endOnExit": True,
                       "musicOnHoldUrl": ["https://example.test/hold.mp3"]}])
    caller = client.place_call(to=NUMBER, from_=CALLER)
    waiting = wait_until(lambda: (leg := client.leg(caller["uuid"]))["state"] == "on_hold" and leg)
    assert waiting["waiting"]["music_url"] == "https://example.test/hold.mp3"

    client.set_phone("4915112345671", [{"on": "ringing", "do": "answer"}])
    response = rest(network, "POST", "/v1/calls", {
        "to": [{"type": "phone", "number": "4915112345671"}], "from": {"type": "phone", "number": "4930901820"},
        "event_url": [app.url("/agent-event")],
        "ncco": [{"action": "conversation", "name": "room-1", "startOnEnter": True, "endOnExit": True}],
    })
    agent = response.json()["uuid"]
    wait_until(lambda: client.leg(caller["uuid"])["state"] == "connected", message="caller connected")
    assert client.leg(agent)["state"] == "connected"

    client.act(caller["uuid"], "hangup")  # endOnExit: the conversation ends for the agent too

    assert ended(client, agent)["status"] == "completed"
    assert ended(client, caller["uuid"])["status"] == "completed"
    wait_until(lambda: "completed" in app.statuses(agent, "/agent-event"))
    assert app.statuses(agent, "/agent-event") == ["started", "ringing", "answered", "completed"]


def test_the_conversation_goes_on_when_a_leg_without_end_on_exit_leaves(app, client):
    answer_with(app, [{"action": "conversation", "name": "room-2"}, {"action": "talk", "text": "after"}])
    first = client.place_call(to=NUMBER, from_=CALLER)
    second = client.place_call(to=NUMBER, from_="+4915550000200")
    wait_until(lambda: client.leg(first["uuid"])["state"] == "connected")
    client.act(second["uuid"], "hangup")
    ended(client, second["uuid"])  # a leg leaves its conversation as it ends: endOnExit would have ended it by now

    alone = client.leg(first["uuid"])
    assert alone["ended_at"] is None and kinds(alone, "conversation_end") == []
    client.act(first["uuid"], "hangup")
    assert ended(client, first["uuid"])


# --- outbound calls through the REST API ------------------------------------------------------------------------


def outbound(network, app, number="4915112345671", **extra):
    body = {"to": [{"type": "phone", "number": number}], "from": {"type": "phone", "number": "4930901820"},
            "event_url": [app.url("/leg-event")], "ncco": [{"action": "talk", "text": "Hello agent"}], **extra}
    response = rest(network, "POST", "/v1/calls", body)
    assert response.status_code == 201, response.text
    return response.json()


def test_late_create_calls_are_placed_then_answered_late_once_each(network, app, client):
    for bad in ({"count": 0, "seconds": 1}, {"count": 1, "seconds": 0}, {"count": 1, "seconds": MAX_LONG_POLL + 1}, 3):
        with pytest.raises(EmulatorError):
            client.faults(late_create_calls=bad)
    client.faults(late_create_calls={"count": 1, "seconds": 0.5})
    late = outbound(network, app)
    assert client.leg(late["uuid"])["to"] == "4915112345671"  # placed: the phone rings, its events go out
    wait_until(lambda: "ringing" in app.statuses(late["uuid"], "/leg-event"))
    outbound(network, app, number="4915112345672")
    assert [r.fault for r in network.rest.requests if r.path == "/v1/calls"] == ["late", None]  # only the next one
    client.reset()
    client.faults(late_create_calls={"count": 2, "seconds": 0.5})
    client.reset()
    outbound(network, app)
    assert [r.fault for r in network.rest.requests if r.path == "/v1/calls"][-1] is None  # reset cleared it


def test_creating_a_call_needs_the_application_jwt(network, app):
    body = {"to": [{"type": "phone", "number": "4915112345671"}], "from": {"type": "phone", "number": "4930901820"},
            "event_url": [app.url("/e")], "ncco": []}
    assert rest(network, "POST", "/v1/calls", body, token=False).status_code == 401
    other = Credentials.generate(application_id=network.credentials.application_id)
    forged = requests.post(network.base_url + "/v1/calls", json=body, verify=network.ca_file, timeout=5,
                           headers={"Authorization": f"Bearer {app_jwt(other)}"})
    assert forged.status_code == 401


@pytest.mark.parametrize(
    "agent, statuses, detail",
    [
        (Agent.busy(), ["started", "ringing", "busy"], None),
        (Agent.reject(), ["started", "ringing", "rejected"], "declined"),
        (Agent.unavailable(), ["started", "ringing", "unanswered"], "unavailable"),
        (Agent.fail(), ["started", "ringing", "failed"], "cannot_route"),
        (Agent.no_answer(), ["started", "ringing", "timeout"], None),
        (Agent.accept(), ["started", "ringing", "answered", "completed"], None),
    ],
)
def test_an_outbound_call_reports_what_the_phone_did(network, app, client, agent, statuses, detail):
    client.set_phone("4915112345671", agent.steps)
    call = outbound(network, app, ringing_timer=20)
    ended(client, call["uuid"])

    wait_until(lambda: app.statuses(call["uuid"], "/leg-event")[-1:] == statuses[-1:])
    assert app.statuses(call["uuid"], "/leg-event") == statuses
    last = app.events(call["uuid"], "/leg-event")[-1]
    assert last.get("detail") == detail and last["direction"] == "outbound"


def test_machine_detection_hangup_reports_machine_with_call_uuid_and_ends_the_call(network, app, client):
    client.set_phone("4915112345671", Agent.machine().steps)
    call = outbound(network, app, machine_detection="hangup")
    ended(client, call["uuid"])
    wait_until(lambda: "completed" in app.statuses(call["uuid"], "/leg-event"))

    events = app.events(call["uuid"], "/leg-event")
    assert [e["status"] for e in events] == ["started", "ringing", "answered", "machine", "completed"]
    machine = events[3]
    assert machine["call_uuid"] == call["uuid"] and "uuid" not in machine
    assert kinds(client.leg(call["uuid"]), "talk") == []  # hung up before the NCCO ran


def test_an_answered_call_with_an_answer_url_fetches_its_ncco(network, app, client):
    client.set_phone("4915112345671", Agent.accept().steps)
    app.routes["/agent-answer"] = lambda hit: [{"action": "talk", "text": "From the answer URL"}]
    body = {"to": [{"type": "phone", "number": "4915112345671"}], "from": {"type": "phone", "number": "4930901820"},
            "event_url": [app.url("/leg-event")], "answer_url": [app.url("/agent-answer")]}
    call = rest(network, "POST", "/v1/calls", body).json()
    done = ended(client, call["uuid"])

    assert app.hits_to("/agent-answer")[0].query["uuid"] == call["uuid"]
    assert kinds(done, "talk") == [("talk", "From the answer URL")]


def announcement_then_keypress(app, *, barge_in):
    """An agent's answer NCCO: an announcement, then a one-key input whose answer is echoed back."""
    talk = {"action": "talk", "text": "A caller for support is on the line, press 1 to accept or 2 to decline"}
    if barge_in:
        talk["bargeIn"] = True
    app.routes["/agent-input"] = lambda hit: [{"action": "talk", "text": f"You pressed {hit.json['dtmf']['digits']}"}]
    return [talk, {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1}, "eventUrl": [app.url("/agent-input")]}]


def entries(leg, *wanted):
    return [entry for entry in leg["transcript"] if entry["kind"] in wanted]


@pytest.mark.parametrize("key", ["1", "2"])
def test_accept_or_decline_on_the_ringing_phone_cuts_a_barge_in_announcement_short(network, app, client, key):
    # Real time, and an announcement that repeats for ever (loop 0): only the key can end it, so the input's
    # answer arriving at all shows that the key did not wait for the announcement.
    network.network.speed = 1
    ncco = announcement_then_keypress(app, barge_in=True)
    ncco[0]["loop"] = 0
    call = outbound(network, app, ncco=ncco)
    wait_until(lambda: client.leg(call["uuid"])["state"] == "ringing")

    client.act(call["uuid"], "answer", then_press=key)
    wait_until(lambda: app.hits_to("/agent-input"), message="the input webhook")

    assert app.hits_to("/agent-input")[0].json["dtmf"] == {"digits": key, "timed_out": False}
    leg = client.leg(call["uuid"])
    order = [entry["kind"] for entry in entries(leg, "talk", "dtmf", "barge_in", "input", "input_result")]
    assert order[:5] == ["talk", "dtmf", "barge_in", "input", "input_result"]
    talk, stopped = entries(leg, "talk")[0], entries(leg, "barge_in")[0]
    assert talk["seconds"] is None and stopped["played"] == 0.0  # cut off as it began
    client.act(call["uuid"], "hangup")


def test_a_key_during_a_barge_in_announcement_ends_it_before_its_length(network, app, client):
    network.network.speed = 1
    call = outbound(network, app, ncco=announcement_then_keypress(app, barge_in=True))
    wait_until(lambda: client.leg(call["uuid"])["state"] == "ringing")
    # Ten real seconds per simulated second from here: the announcement lasts over a minute, so the key lands
    # while it plays however busy the machine.
    network.network.speed = 10
    client.act(call["uuid"], "answer")
    wait_until(lambda: (client.leg(call["uuid"])["waiting"] or {}).get("kind") == "talk")

    client.act(call["uuid"], "dtmf", digits="1")
    wait_until(lambda: app.hits_to("/agent-input"), message="the input webhook")

    leg = client.leg(call["uuid"])
    talk, stopped = entries(leg, "talk")[0], entries(leg, "barge_in")[0]
    # In the network's own simulated time: the announcement was cut off before its full length.
    assert stopped["played"] < talk["seconds"] == stopped["seconds"]
    assert app.hits_to("/agent-input")[0].json["dtmf"] == {"digits": "1", "timed_out": False}
    client.act(call["uuid"], "hangup")


def test_a_held_announcement_goes_on_until_the_key(network, app, client):
    # The phone rings in real time; then, at speed 0, an announcement would end as it begins. Held (the control
    # API's hold_talk, for tests that press a key while it plays), it is still playing when looked at, and the key
    # stops it.
    network.network.speed = 1
    call = outbound(network, app, ncco=announcement_then_keypress(app, barge_in=True))
    wait_until(lambda: client.leg(call["uuid"])["state"] == "ringing")
    network.network.speed = 0
    client.act(call["uuid"], "hold_talk")
    client.act(call["uuid"], "answer")
    wait_until(lambda: (client.leg(call["uuid"])["waiting"] or {}).get("kind") == "talk")

    client.act(call["uuid"], "dtmf", digits="2")
    wait_until(lambda: app.hits_to("/agent-input"), message="the input webhook")

    leg = client.leg(call["uuid"])
    order = [entry["kind"] for entry in entries(leg, "talk", "dtmf", "barge_in", "input", "input_result")]
    assert order[:5] == ["talk", "dtmf", "barge_in", "input", "input_result"]
    talk, stopped = entries(leg, "talk")[0], entries(leg, "barge_in")[0]
    assert talk["held"] is True and stopped["text"] == "talk stopped by the caller"
    assert app.hits_to("/agent-input")[0].json["dtmf"] == {"digits": "2", "timed_out": False}
    # Only that one: the talk after the input plays its length.
    done = ended(client, call["uuid"])
    assert [entry.get("held") for entry in entries(done, "talk")] == [True, None]
    assert len(entries(done, "barge_in")) == 1


def test_an_announcement_without_barge_in_holds_the_accept_key_back_until_the_input(network, app, client):
    # The page's "Accept" on a ringing phone, as a scripted step: answer, then press 1.
    client.set_phone("4915112345671", [{"on": "ringing", "do": "answer", "then_press": "1"}])
    call = outbound(network, app, ncco=announcement_then_keypress(app, barge_in=False))
    done = ended(client, call["uuid"])

    order = [entry["kind"] for entry in entries(done, "talk", "dtmf", "barge_in", "input", "input_result")]
    assert order == ["talk", "input", "dtmf", "input_result", "talk"]  # played in full, then the key
    assert app.hits_to("/agent-input")[0].json["dtmf"] == {"digits": "1", "timed_out": False}


def test_barge_in_stays_on_until_an_input(app, client):
    # Vonage: once a talk sets bargeIn, the talks after it can be interrupted too, until an input.
    answer_with(app, [
        {"action": "talk", "text": "Welcome", "bargeIn": True},
        {"action": "talk", "text": "Press 1 for sales, and listen to this long list of other options", "loop": 0},
        {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1}, "eventUrl": [app.url("/input")]},
        {"action": "talk", "text": "Not interruptible", "loop": 3},
    ])
    app.routes["/input"] = lambda hit: None
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[
        {"on": "talk", "do": "dtmf", "digits": "1", "after": 2},  # during the endless second talk
    ])
    wait_until(lambda: app.hits_to("/input"), message="the input webhook")

    assert app.hits_to("/input")[0].json["dtmf"] == {"digits": "1", "timed_out": False}
    done = ended(client, leg["uuid"])
    assert [entry["barge_in"] for entry in entries(done, "talk")] == [True, True, False]


def test_hanging_up_a_ringing_call_cancels_it(network, app, client):
    network.network.speed = 1  # real time: the interactive phone rings for 60 s unless someone acts
    call = outbound(network, app)
    wait_until(lambda: client.leg(call["uuid"])["state"] == "ringing")

    assert rest(network, "PUT", f"/v1/calls/{call['uuid']}", {"action": "hangup"}).status_code == 204
    ended(client, call["uuid"])
    wait_until(lambda: app.statuses(call["uuid"], "/leg-event")[-1:] == ["cancelled"])
    assert rest(network, "PUT", "/v1/calls/no-such-call", {"action": "hangup"}).status_code == 404


def caller_on_hold(app, client):
    """An inbound call waiting in a conversation that has not started."""
    answer_with(app, [{"action": "conversation", "name": "hold-room", "startOnEnter": False}])
    caller = client.place_call(to=NUMBER, from_=CALLER)
    wait_until(lambda: client.leg(caller["uuid"])["state"] == "on_hold")
    return caller


def transfer(network, uuid, ncco):
    return rest(network, "PUT", f"/v1/calls/{uuid}", {"action": "transfer",
                                                       "destination": {"type": "ncco", "ncco": ncco}})


def test_a_transfer_replaces_the_running_ncco(network, app, client):
    caller = caller_on_hold(app, client)

    assert transfer(network, caller["uuid"], [{"action": "talk", "text": "Moved"}]).status_code == 204
    done = ended(client, caller["uuid"])
    assert kinds(done, "talk") == [("talk", "Moved")]


def test_talk_into_a_call_is_noted_in_its_transcript(network, app, client):
    answer_with(app, [{"action": "conversation", "name": "room-3", "startOnEnter": False}])
    caller = client.place_call(to=NUMBER, from_=CALLER)
    wait_until(lambda: client.leg(caller["uuid"])["state"] == "on_hold")

    assert rest(network, "PUT", f"/v1/calls/{caller['uuid']}/talk", {"text": "Announcement"}).status_code == 200
    assert ("talk", "Announcement") in kinds(client.leg(caller["uuid"]), "talk")
    client.act(caller["uuid"], "hangup")


def test_connect_rings_a_new_leg_and_bridges_it_until_it_hangs_up(network, app, client):
    answer_with(app, [
        {"action": "connect", "from": "4930901820", "endpoint": [{"type": "phone", "number": "4915112345679"}],
         "eventUrl": [app.url("/connect-event")]},
        {"action": "talk", "text": "The other side left"},
    ])
    client.set_phone("4915112345679", [{"on": "ringing", "do": "answer"}, {"on": "connected", "do": "hangup"}])
    caller = client.place_call(to=NUMBER, from_=CALLER)
    done = ended(client, caller["uuid"])

    assert ("connected", "connected: 4915112345679") in kinds(done, "connected")
    assert kinds(done, "talk") == [("talk", "The other side left")]
    other = [leg for leg in client.state()["legs"] if leg["to"] == "4915112345679"][0]
    wait_until(lambda: "completed" in app.statuses(other["uuid"], "/connect-event"))


def test_connect_to_a_busy_phone_goes_on_with_the_next_action(network, app, client):
    answer_with(app, [
        {"action": "connect", "from": "4930901820", "endpoint": [{"type": "phone", "number": "4915112345679"}]},
        {"action": "talk", "text": "Busy, sorry"},
    ])
    client.set_phone("4915112345679", Agent.busy().steps)
    done = ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])
    assert kinds(done, "talk") == [("talk", "Busy, sorry")]


# --- recording -------------------------------------------------------------------------------------------------


def test_a_recording_is_reported_served_and_transcribed(network, app, client):
    answer_with(app, [
        {"action": "record", "format": "mp3", "endOnKey": "#", "beepStart": True, "timeOut": 60,
         "eventUrl": [app.url("/recording")],
         "transcription": {"language": "en-US", "eventUrl": [app.url("/transcription")]}},
        {"action": "talk", "text": "Thanks"},
    ])
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "record", "do": "voicemail", "text": "Call me back"}])
    done = ended(client, leg["uuid"])
    wait_until(lambda: app.hits_to("/transcription"))

    assert [kind for kind, _ in kinds(done, "beep", "record", "recorded", "talk")] == ["beep", "record", "recorded", "talk"]
    record = app.hits_to("/recording")[0].json
    assert {"start_time", "end_time", "size", "recording_uuid", "conversation_uuid"} <= set(record)
    assert rest(network, "GET", record["recording_url"].removeprefix(network.base_url), token=False).status_code == 401
    audio = rest(network, "GET", record["recording_url"].removeprefix(network.base_url))
    assert audio.status_code == 200 and len(audio.content) == record["size"] and audio.content[:2] == b"\xff\xfb"
    transcription = app.hits_to("/transcription")[0].json
    assert transcription["recording_uuid"] == record["recording_uuid"] and transcription["status"] == "successful"
    document = rest(network, "GET", transcription["transcription_url"].removeprefix(network.base_url)).json()
    assert document["channels"][0]["transcript"][0]["sentence"] == "Call me back"


def test_a_recording_ends_on_its_key_and_keeps_the_callers_own_audio(network, app, client):
    network.network.speed = 1  # real time: the recording waits for the caller
    answer_with(app, [{"action": "record", "endOnKey": "#", "eventUrl": [app.url("/recording")]}])
    leg = client.place_call(to=NUMBER, from_=CALLER)
    wait_until(lambda: client.leg(leg["uuid"])["state"] == "recording")
    client.act(leg["uuid"], "voicemail", text="", audio_base64="AAECAw==", content_type="audio/webm")
    ended(client, leg["uuid"])
    record = wait_until(lambda: app.hits_to("/recording"))[0].json

    audio = rest(network, "GET", record["recording_url"].removeprefix(network.base_url))
    assert audio.content == b"\x00\x01\x02\x03" and audio.headers["Content-Type"] == "audio/webm"


def test_hanging_up_while_recording_delivers_the_recording_after_the_completed_event(network, app, client):
    """As Vonage does: the record webhook goes out when the recording is finished, and a recording the caller
    ends by hanging up finishes after the leg's "completed" event. What the caller said is the message."""
    answer_with(app, [{"action": "record", "eventUrl": [app.url("/recording")],
                       "transcription": {"language": "en-US", "eventUrl": [app.url("/transcription")]}}])
    words = "The server room is flooding again please call"  # 8 words: 3.2 s
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[
        {"on": "record", "do": "say", "text": words}, {"on": "record", "do": "hangup", "after": 4}])
    ended(client, leg["uuid"])
    wait_until(lambda: app.hits_to("/transcription"))

    order = [hit.path if hit.path != "/vonage/event" else hit.json.get("status") for hit in app.hits
             if hit.path != "/vonage/answer"]
    assert order == ["started", "ringing", "answered", "completed", "/recording", "/transcription"]
    record = app.hits_to("/recording")[0].json
    started, finished = (dt.datetime.fromisoformat(record[key].replace("Z", "+00:00")) for key in ("start_time", "end_time"))
    assert finished - started == dt.timedelta(seconds=3.2)
    document = rest(network, "GET", app.hits_to("/transcription")[0].json["transcription_url"].removeprefix(network.base_url))
    assert document.json()["channels"][0]["transcript"][0]["sentence"] == words


def test_a_notify_sends_its_payload_and_an_empty_answer_goes_on_with_the_ncco(network, app, client):
    answer_with(app, [
        {"action": "talk", "text": "Leave a message."},
        {"action": "notify", "payload": {"mailbox": "recording"}, "eventUrl": [app.url("/notify")], "eventMethod": "POST"},
        {"action": "record", "eventUrl": [app.url("/recording")]},
    ])
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "record", "do": "voicemail", "text": "Hi"}])
    done = ended(client, leg["uuid"])
    wait_until(lambda: app.hits_to("/recording"))

    (notify,) = app.hits_to("/notify")
    assert notify.method == "POST" and notify.json == {"mailbox": "recording"}
    assert notify.claims()["payload_hash"]  # signed like every webhook
    assert [kind for kind, _ in kinds(done, "talk", "notify", "record")] == ["talk", "notify", "record"]
    assert network.network.invalid_nccos == deque()


def test_a_notify_answered_with_an_ncco_replaces_the_running_one(app, client):
    app.routes["/notify"] = lambda hit: [{"action": "talk", "text": "Replaced"}]
    answer_with(app, [
        {"action": "notify", "payload": {"step": "one"}, "eventUrl": [app.url("/notify")]},
        {"action": "talk", "text": "Never heard"},
    ])
    done = ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])
    assert kinds(done, "talk") == [("talk", "Replaced")]


# --- the control API, time and the product's own client -------------------------------------------------------


def test_the_control_api_needs_its_token(network):
    assert requests.get(network.base_url + "/_emulator/health", verify=network.ca_file, timeout=5).status_code == 200
    wrong = EmulatorClient(network.base_url, "wrong", verify=network.ca_file)
    with pytest.raises(EmulatorError, match="401"):
        wrong.state()


def test_the_control_api_refuses_bad_steps_and_actions(client, app):
    answer_with(app, [{"action": "conversation", "name": "r", "startOnEnter": False}])
    with pytest.raises(EmulatorError, match="400"):
        client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "whenever", "do": "dtmf"}])
    leg = client.place_call(to=NUMBER, from_=CALLER)
    with pytest.raises(EmulatorError, match="409"):
        client.act(leg["uuid"], "answer")  # not a ringing agent phone
    with pytest.raises(EmulatorError, match="404"):
        client.act("no-such-leg", "hangup")
    client.act(leg["uuid"], "hangup")


def test_the_state_long_poll_returns_on_a_change(client, app):
    answer_with(app, [{"action": "talk", "text": "Hi"}])
    version = client.state()["version"]
    polled = []
    # Without a change the poll would wait the emulator's longest, MAX_LONG_POLL (30 s); the change ends it. The
    # join waits most of that: far more than a local round trip needs on a busy machine, less than a missed change.
    poll = threading.Thread(target=lambda: polled.append(client.state(since=version, wait=300)), daemon=True)
    poll.start()
    client.place_call(to=NUMBER, from_=CALLER)
    poll.join(timeout=MAX_LONG_POLL - 5)
    assert not poll.is_alive() and polled[0]["version"] > version


def test_the_speed_factor_makes_speech_take_its_time(network, app, client):
    network.network.speed = 0.1
    answer_with(app, [{"action": "talk", "text": "one two three four five six seven eight nine ten"}])  # 4 s
    started = time.monotonic()
    ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])
    # At least the scaled speaking time (0.4 s of 4 s); how much longer depends on the machine's load.
    assert time.monotonic() - started > 0.35


def test_a_scripted_call_returns_the_caller_and_agent_legs(network, app, client):
    answer_with(app, [{"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1}, "eventUrl": [app.url("/menu")]}])

    def menu(hit):
        rest(network, "POST", "/v1/calls", {
            "to": [{"type": "phone", "number": "4915112345671"}], "from": {"type": "phone", "number": "4930901820"},
            "event_url": [app.url("/leg-event")],
            "ncco": [{"action": "conversation", "name": "sc", "startOnEnter": True, "endOnExit": True}]})
        return [{"action": "conversation", "name": "sc", "startOnEnter": False, "endOnExit": True}]

    app.routes["/menu"] = menu
    outcome = ScriptedCall(to=NUMBER, caller=Caller(press="3", hang_up_after=1), default_agent=Agent.accept()).run(
        client, timeout=10)

    assert outcome.connected and outcome.caller["status"] == "completed"
    assert [leg["to"] for leg in outcome.agents] == ["4915112345671"]
    assert "dtmf 3" in outcome.transcript()


def test_the_products_telephony_client_places_calls_through_the_emulator(network, app, client, settings):
    settings.VONAGE_API_HOST = settings.VONAGE_REST_HOST = network.host
    settings.VONAGE_APPLICATION_ID = network.credentials.application_id
    settings.VONAGE_PRIVATE_KEY = network.credentials.private_key_pem
    reset_telephony()
    client.set_phone("4915112345671", Agent.accept().steps)

    uuid_ = get_telephony().create_call(to="+4915112345671", from_="+4930901820", event_url=app.url("/leg-event"),
                                        ncco=[{"action": "talk", "text": "Through the SDK"}], ringing_timer=20)

    done = ended(client, uuid_)
    assert kinds(done, "talk") == [("talk", "Through the SDK")]


class StoppedClock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_call_creation_is_rate_limited_like_vonage(network, app):
    # The limiter's clock stands still, so the requests fall within one second however slowly the machine runs.
    clock = network.rest.clock = StoppedClock()
    network.rest.call_rate = 3
    body = {"to": [{"type": "phone", "number": "4915112345671"}], "from": {"type": "phone", "number": "4930901820"},
            "event_url": [app.url("/e")], "ncco": [{"action": "talk", "text": "x"}]}

    def create():
        return rest(network, "POST", "/v1/calls", body).status_code

    assert [create() for _ in range(4)] == [201, 201, 201, 429]
    clock.now = 0.5
    assert create() == 429  # the first three are still within the last second
    clock.now = 1.0
    assert [create() for _ in range(4)] == [201, 201, 201, 429]  # a second later their slots are free again


# --- as strict as Vonage: NCCOs, create-call bodies, retries and the fallback URL --------------------------------

LISTEN = {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1}, "eventUrl": ["https://example.test/in"]}
BAD_NCCOS = {
    "eventUrl as a string": [{**LISTEN, "eventUrl": "https://example.test/in"}],
    "an unknown field": [{"action": "talk", "text": "Hello", "voiceName": "Amy"}],
    "talk over 1,500 characters": [{"action": "talk", "text": "word " * 301}],
    "an unknown action": [{"action": "play", "text": "Hello"}],
    "an unknown field the models would drop": [{"action": "record", "transcription": {"language": "en-US",
                                                                                       "summary": True}}],
}


@pytest.mark.parametrize("bad", BAD_NCCOS.values(), ids=BAD_NCCOS.keys())
def test_an_ncco_vonage_would_refuse_gets_an_error_event_and_then_the_fallback(app, client, bad):
    answer_with(app, bad)
    app.routes["/vonage/fallback"] = lambda hit: [{"action": "talk", "text": "From the fallback"}]
    leg = client.place_call(to=NUMBER, from_=CALLER)
    done = ended(client, leg["uuid"])

    assert len(app.hits_to("/vonage/answer")) == 1  # a 200 is not retried, whatever it holds
    error = wait_until(lambda: app.statusless())[0]
    assert set(error) == {"reason", "conversation_uuid", "timestamp"}
    assert error["conversation_uuid"] == leg["conversation_uuid"] and error["reason"].startswith("Invalid NCCO")
    fallback = app.hits_to("/vonage/fallback")[0]
    assert fallback.query["reason"] == error["reason"]
    assert kinds(done, "talk") == [("talk", "From the fallback")]


def test_documented_fields_the_sdk_models_drop_are_accepted():
    assert ncco_problems([
        {"action": "record", "eventUrl": ["https://example.test/r"],
         "transcription": {"language": "en-US", "eventUrl": ["https://example.test/t"], "sentimentAnalysis": True}},
        {"action": "input", "type": ["dtmf"], "mode": "asynchronous"},
        {"action": "connect", "from": "4930901820", "endpoint": [{"type": "phone", "number": "4915112345679"}]},
    ]) == []
    assert [p["name"] for p in ncco_problems([{"action": "input", "type": ["dtmf"], "mode": "sometimes"},
                                              {"action": "talk", "text": "x" * 1500}])] == ["ncco[0].mode"]


def test_an_invalid_ncco_from_an_input_webhook_gets_an_error_event_and_the_fallback(app, client):
    answer_with(app, [{**LISTEN, "eventUrl": [app.url("/input")]}])
    app.routes["/input"] = lambda hit: [{"action": "talk", "text": "Bye", "eventUrl": [app.url("/x")]}]
    app.routes["/vonage/fallback"] = lambda hit: [{"action": "talk", "text": "Sorry"}]
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "input", "do": "dtmf", "digits": "1"}])
    done = ended(client, leg["uuid"])

    assert "ncco[0].eventUrl: unknown field" in wait_until(lambda: app.statusless())[0]["reason"]
    assert json.loads(app.hits_to("/vonage/fallback")[0].query["original_request"])["type"] == "event_url"
    assert kinds(done, "talk") == [("talk", "Sorry")]


@pytest.mark.parametrize("status, tries", [(429, 2), (503, 2), (504, 2), (400, 1), (401, 1), (404, 1), (500, 1)])
def test_the_answer_url_is_tried_again_only_after_429_503_504_and_a_refusal_is_never_played(app, client, status,
                                                                                             tries):
    app.routes["/vonage/answer"] = lambda hit: (status, [{"action": "talk", "text": "The refusal's body"}])
    app.routes["/vonage/fallback"] = lambda hit: [{"action": "talk", "text": "Fallback speaking"}]
    leg = client.place_call(to=NUMBER, from_=CALLER)
    done = ended(client, leg["uuid"])

    assert len(app.hits_to("/vonage/answer")) == tries
    assert kinds(done, "talk") == [("talk", "Fallback speaking")]
    assert app.statusless() == []  # a failed request is not an invalid NCCO


def test_a_timed_out_answer_url_is_tried_again(app, client, monkeypatch):
    """The first try gets a short read timeout and no answer until the second try has arrived, so it times out
    however slow the machine is; the second try gets the usual read timeout, so a slow answer still counts."""
    usual = engine.ANSWER_TIMEOUT
    monkeypatch.setattr(engine, "ANSWER_TIMEOUT", (1, 0.2))
    hits, second_try = [], threading.Event()

    def first_hangs(hit):
        hits.append(hit)
        if len(hits) == 1:
            monkeypatch.setattr(engine, "ANSWER_TIMEOUT", usual)  # read again by the engine for the second try
            second_try.wait(timeout=60)  # only so that a broken retry cannot keep this thread forever
        else:
            second_try.set()
        return [{"action": "talk", "text": "Second try"}]

    app.routes["/vonage/answer"] = first_hangs
    done = ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])

    assert len(hits) == 2 and kinds(done, "talk") == [("talk", "Second try")]
    assert app.hits_to("/vonage/fallback") == []


@pytest.mark.parametrize("status, tries", [(500, 1), (503, 2)])
def test_a_refused_fallback_drops_the_call_in_silence(app, client, status, tries):
    app.routes["/vonage/answer"] = lambda hit: 500
    app.routes["/vonage/fallback"] = lambda hit: (status, [{"action": "talk", "text": "Never heard"}])
    done = ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])

    assert len(app.hits_to("/vonage/answer")) == 1 and len(app.hits_to("/vonage/fallback")) == tries
    assert kinds(done, "talk") == [] and done["answered_at"] is None


def test_an_invalid_fallback_ncco_is_reported_too_and_drops_the_call(app, client):
    answer_with(app, [{"action": "talk"}])
    app.routes["/vonage/fallback"] = lambda hit: [{"action": "talk", "text": "x", "bargein": True}]
    done = ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])

    reasons = [event["reason"] for event in wait_until(lambda: len(app.statusless()) == 2 and app.statusless())]
    assert "ncco[0].text: Field required" in reasons[0] and "ncco[0].bargein: unknown field" in reasons[1]
    assert kinds(done, "talk") == []


def test_the_fallback_method_can_be_post(app, network, client):
    network.network.app["fallback_method"] = "POST"
    app.routes["/vonage/answer"] = lambda hit: 404
    app.routes["/vonage/fallback"] = lambda hit: [{"action": "talk", "text": "Posted"}]
    done = ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])

    fallback = app.hits_to("/vonage/fallback")[0]
    assert fallback.method == "POST" and fallback.json["reason"] == "HTTP 404"
    assert fallback.json["original_request"] == {"url": app.url("/vonage/answer"), "type": "answer_url"}
    assert kinds(done, "talk") == [("talk", "Posted")]


@pytest.mark.parametrize("change, name", [
    ({"ncco": [{"action": "talk", "text": "Hi", "eventUrl": "https://example.test/e"}]}, "ncco[0].eventUrl"),
    ({"ncco": [{"action": "talk", "text": "x" * 1501}]}, "ncco[0].text"),
    ({"ncco": [{"action": "wait"}]}, "ncco[0].action"),  # not an action a create-call body may carry
    ({"event_url": "https://example.test/e"}, "event_url"),
    ({"ringing_timer": 300}, "ringing_timer"),
    ({"to": [{"type": "phone", "number": "4915112345671", "dtmf_answer": "1"}]}, "to[0].dtmf_answer"),
    ({"callback": "https://example.test/e"}, "callback"),
])
def test_a_create_call_body_vonage_would_refuse_gets_400_from_the_network_and_the_test_fake(network, app,
                                                                                             vonage_api, change,
                                                                                             name):
    body = {"to": [{"type": "phone", "number": "4915112345671"}], "from": {"type": "phone", "number": "4930901820"},
            "event_url": [app.url("/leg-event")], "ncco": [{"action": "talk", "text": "Hello agent"}], **change}
    fake = requests.post(vonage_api.base_url + "/v1/calls", json=body, timeout=5,
                         headers={"Authorization": f"Bearer {app_jwt(vonage_api.credentials)}"})
    for response in (rest(network, "POST", "/v1/calls", body), fake):
        assert response.status_code == 400
        assert name in [problem["name"] for problem in response.json()["invalid_parameters"]]
    assert network.network.snapshot()["legs"] == []


def test_a_transfer_with_an_ncco_vonage_would_refuse_gets_400_from_the_network_and_the_test_fake(network, app,
                                                                                                  client, vonage_api):
    caller = caller_on_hold(app, client)
    bad = [{"action": "talk", "txt": "Moved"}]

    assert transfer(network, caller["uuid"], bad).status_code == 400
    assert client.leg(caller["uuid"])["state"] == "on_hold"
    client.act(caller["uuid"], "hangup")
    with pytest.raises(TelephonyError):
        get_telephony().transfer_ncco(caller["uuid"], bad)  # the product's client against the test fake
    assert vonage_api.modifications() == []


def test_the_test_fakes_webhook_client_fails_a_test_on_an_ncco_vonage_would_refuse():
    def answer(ncco, status=200):
        return assert_runnable_ncco(JsonResponse(ncco, safe=False, status=status)).status_code

    assert answer([{"action": "talk", "text": "Hi"}]) == 200
    assert answer([{"action": "talk"}], status=401) == 401  # Vonage never plays a refusal's body
    with pytest.raises(AssertionError, match=r"ncco\[0\]\.eventUrl"):
        answer([{"action": "input", "type": ["dtmf"], "eventUrl": "https://example.test/in"}])


def test_every_transfer_of_a_leg_sends_a_transfer_event_without_status(network, app, client):
    caller = caller_on_hold(app, client)
    transfer(network, caller["uuid"], [{"action": "talk", "text": "Moved"}])
    ended(client, caller["uuid"])

    joined, moved = wait_until(lambda: len(app.statusless()) == 2 and app.statusless())
    for event in (joined, moved):
        assert set(event) == {"conversation_uuid_from", "conversation_uuid_to", "uuid", "timestamp"}
        assert event["uuid"] == caller["uuid"]
    assert joined["conversation_uuid_from"] == caller["conversation_uuid"] == moved["conversation_uuid_to"]
    assert joined["conversation_uuid_to"] == moved["conversation_uuid_from"] != caller["conversation_uuid"]


# --- opt-in faults: disordered events, unsigned callbacks, a second region --------------------------------------


def test_events_can_arrive_duplicated_and_out_of_order(network, app, client):
    assert client.faults(disorder_events=True)["disorder_events"] is True
    client.set_phone("4915112345671", Agent.accept().steps)
    call = outbound(network, app)
    ended(client, call["uuid"])

    ordered = ["started", "ringing", "answered", "completed"]
    statuses = wait_until(lambda: len(app.statuses(call["uuid"], "/leg-event")) == 6
                          and app.statuses(call["uuid"], "/leg-event"))
    assert statuses == ["ringing", "started", "ringing", "completed", "answered", "completed"]
    assert sorted(set(statuses)) == sorted(ordered)
    client.reset()
    assert client.faults()["disorder_events"] is False


def test_an_unsigned_callback_is_sent_again_signed_after_a_5xx(app, client):
    assert client.faults(unsigned_callbacks=1)["unsigned_callbacks"] == 1

    def refuse_unsigned(answer):
        return lambda hit: answer if hit.headers.get("authorization") else 503

    app.routes["/vonage/answer"] = refuse_unsigned([{"action": "talk", "text": "Signed"}])
    app.routes["/vonage/event"] = refuse_unsigned(None)
    done = ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])
    wait_until(lambda: "completed" in app.statuses(done["uuid"]))

    unsigned = [index for index, hit in enumerate(app.hits) if "authorization" not in hit.headers]
    assert len(unsigned) == 1
    first = app.hits[unsigned[0]]
    again = next(hit for hit in app.hits[unsigned[0] + 1:] if hit.path == first.path)
    assert (again.body, again.query) == (first.body, first.query) and again.claims()["application_id"]
    assert kinds(done, "talk") == [("talk", "Signed")]
    assert client.faults()["unsigned_callbacks"] == 0


@pytest.mark.parametrize("status", [401, 500])  # Vonage retries only 429, 503 and 504
def test_an_unsigned_callback_answered_with_another_refusal_is_not_sent_again(app, client, status):
    client.faults(unsigned_callbacks=1)
    refuse_unsigned = lambda hit: None if hit.headers.get("authorization") else status  # noqa: E731
    app.routes["/vonage/event"] = refuse_unsigned
    app.routes["/vonage/answer"] = lambda hit: refuse_unsigned(hit) or [{"action": "talk", "text": "Hi"}]
    app.routes["/vonage/fallback"] = lambda hit: [{"action": "talk", "text": "Hi"}]
    done = ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])
    wait_until(lambda: "completed" in app.statuses(done["uuid"]))

    (first,) = [hit for hit in app.hits if "authorization" not in hit.headers]
    assert [(hit.body, hit.query) for hit in app.hits_to(first.path)].count((first.body, first.query)) == 1


@pytest.fixture
def two_regions(app, fake_vonage, credentials, tmp_path):
    phone = PhoneNetwork(webhook_base=app.base_url, credentials=credentials, signature_secret=SECRET,
                         control_token=TOKEN, speed=0, ca=fake_vonage.server.ca, second_region=True).start()
    phone.credentials = credentials
    phone.ca_file = str(phone.write_ca_bundle(tmp_path / "ca.pem"))
    yield phone
    phone.stop()


def put_call(base_url, network, uuid, body):
    return requests.put(f"{base_url}/v1/calls/{uuid}", json=body, verify=network.ca_file, timeout=5,
                        headers={"Authorization": f"Bearer {app_jwt(network.credentials)}"})


def test_a_call_is_modified_only_on_the_host_of_its_region(app, two_regions):
    client = EmulatorClient(two_regions.base_url, TOKEN, verify=two_regions.ca_file)
    answer_with(app, [{"action": "conversation", "name": "hold-room", "startOnEnter": False}])
    caller = client.place_call(to=NUMBER, from_=CALLER, region="secondary")
    wait_until(lambda: client.leg(caller["uuid"])["state"] == "on_hold")

    assert app.hits_to("/vonage/answer")[0].query["region_url"] == two_regions.second_base_url
    hangup = {"action": "hangup"}
    assert put_call(two_regions.base_url, two_regions, caller["uuid"], hangup).status_code == 404
    assert client.leg(caller["uuid"])["ended_at"] is None
    assert put_call(two_regions.second_base_url, two_regions, caller["uuid"], hangup).status_code == 204
    assert ended(client, caller["uuid"])["status"] == "completed"


def test_an_outbound_call_lives_in_the_region_whose_host_created_it(app, two_regions):
    client = EmulatorClient(two_regions.base_url, TOKEN, verify=two_regions.ca_file)
    client.set_phone("4915112345671", Agent.silent().steps)
    app.routes["/agent-answer"] = lambda hit: [{"action": "conversation", "name": "agent-room"}]
    body = {"to": [{"type": "phone", "number": "4915112345671"}], "from": {"type": "phone", "number": "4930901820"},
            "event_url": [app.url("/leg-event")], "answer_url": [app.url("/agent-answer")]}
    created = requests.post(two_regions.second_base_url + "/v1/calls", json=body, verify=two_regions.ca_file,
                            timeout=5, headers={"Authorization": f"Bearer {app_jwt(two_regions.credentials)}"})
    uuid_ = created.json()["uuid"]
    wait_until(lambda: app.hits_to("/agent-answer"))

    assert app.hits_to("/agent-answer")[0].query["region_url"] == two_regions.second_base_url
    transfer = {"action": "transfer", "destination": {"type": "ncco", "ncco": [{"action": "talk", "text": "Bye"}]}}
    assert put_call(two_regions.base_url, two_regions, uuid_, transfer).status_code == 404
    assert put_call(two_regions.second_base_url, two_regions, uuid_, transfer).status_code == 204
    assert kinds(ended(client, uuid_), "talk") == [("talk", "Bye")]


def test_with_one_region_the_answer_webhook_names_the_networks_own_host(app, network, client):
    answer_with(app, [{"action": "talk", "text": "Hi"}])
    ended(client, client.place_call(to=NUMBER, from_=CALLER)["uuid"])
    assert app.hits_to("/vonage/answer")[0].query["region_url"] == network.base_url
    with pytest.raises(EmulatorError, match="400"):
        client.place_call(to=NUMBER, from_=CALLER, region="secondary")
