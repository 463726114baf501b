"""The phone network (callrouting/emulator) against a tiny webhook target: NCCO semantics, status sequences,
signed webhooks, the REST API's JWT check and the control API. Speed 0: simulated time passes at once."""
import hashlib
import threading
import time
import uuid

import jwt
import pytest
import requests

from callrouting.emulator.control import MAX_LONG_POLL
from callrouting.emulator.rest import Credentials
from callrouting.emulator.script import Agent, Caller, EmulatorClient, EmulatorError, ScriptedCall
from callrouting.emulator.server import PhoneNetwork
from incidents.telephony import get_telephony, reset_telephony
from tests.emulator_helpers import SECRET, WebhookTarget, wait_until

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

    fallback = app.hits_to("/vonage/fallback")[0].json
    assert fallback["original_request"] == {"url": app.url("/input"), "type": "event_url"}
    assert fallback["reason"] == "HTTP 500"
    assert kinds(done, "talk") == [("talk", "Sorry")]


def test_a_failing_answer_url_is_tried_twice_then_the_fallback_url(app, client):
    app.routes["/vonage/answer"] = lambda hit: 503
    app.routes["/vonage/fallback"] = lambda hit: [{"action": "talk", "text": "Fallback speaking"}]
    leg = client.place_call(to=NUMBER, from_=CALLER)
    done = ended(client, leg["uuid"])

    assert len(app.hits_to("/vonage/answer")) == 2
    assert app.hits_to("/vonage/fallback")[0].json["original_request"]["type"] == "answer_url"
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
    time.sleep(0.1)

    assert client.leg(first["uuid"])["ended_at"] is None
    client.act(first["uuid"], "hangup")
    assert ended(client, first["uuid"])


# --- outbound calls through the REST API ------------------------------------------------------------------------


def outbound(network, app, number="4915112345671", **extra):
    body = {"to": [{"type": "phone", "number": number}], "from": {"type": "phone", "number": "4930901820"},
            "event_url": [app.url("/leg-event")], "ncco": [{"action": "talk", "text": "Hello agent"}], **extra}
    response = rest(network, "POST", "/v1/calls", body)
    assert response.status_code == 201, response.text
    return response.json()


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


def test_hanging_up_a_ringing_call_cancels_it(network, app, client):
    network.network.speed = 1  # real time: the interactive phone rings for 60 s unless someone acts
    call = outbound(network, app)
    wait_until(lambda: client.leg(call["uuid"])["state"] == "ringing")

    assert rest(network, "PUT", f"/v1/calls/{call['uuid']}", {"action": "hangup"}).status_code == 204
    ended(client, call["uuid"])
    wait_until(lambda: app.statuses(call["uuid"], "/leg-event")[-1:] == ["cancelled"])
    assert rest(network, "PUT", "/v1/calls/no-such-call", {"action": "hangup"}).status_code == 404


def test_a_transfer_replaces_the_running_ncco(network, app, client):
    answer_with(app, [{"action": "conversation", "name": "hold-room", "startOnEnter": False}])
    caller = client.place_call(to=NUMBER, from_=CALLER)
    wait_until(lambda: client.leg(caller["uuid"])["state"] == "on_hold")

    response = rest(network, "PUT", f"/v1/calls/{caller['uuid']}", {
        "action": "transfer", "destination": {"type": "ncco", "ncco": [{"action": "talk", "text": "Moved"}]}})
    assert response.status_code == 204
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
        {"action": "connect", "endpoint": [{"type": "phone", "number": "4915112345679"}]},
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


def test_hanging_up_while_recording_still_delivers_the_recording(network, app, client):
    answer_with(app, [{"action": "record", "eventUrl": [app.url("/recording")]}])
    leg = client.place_call(to=NUMBER, from_=CALLER, steps=[{"on": "record", "do": "hangup"}])
    ended(client, leg["uuid"])
    assert wait_until(lambda: app.hits_to("/recording"))


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


def test_call_creation_is_rate_limited_like_vonage(network, app):
    network.rest.call_rate = 3
    body = {"to": [{"type": "phone", "number": "4915112345671"}], "from": {"type": "phone", "number": "4930901820"},
            "event_url": [app.url("/e")], "ncco": [{"action": "talk", "text": "x"}]}
    statuses = [rest(network, "POST", "/v1/calls", body).status_code for _ in range(4)]
    assert statuses.count(429) >= 1 and statuses[:3] == [201, 201, 201]
