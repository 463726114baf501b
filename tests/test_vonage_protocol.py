"""The call flow on the failure paths of Vonage's protocol, through signed webhooks and the real `vonage` SDK
against the local fake of the Vonage API (tests/fake_vonage.py):

- calls are modified where they live: the caller's call on the data centre of its answer webhook's region_url,
  an agent's leg on the host that created it; a region_url naming a host that is not Vonage's is ignored;
- the fallback URL, called as Vonage calls it (GET or POST, original_request in any of its three shapes);
- events without a status (transfer and error events) are answered 204, error events kept and shown;
- the hang-ups of a large simultaneous fan-out keep to Vonage's limit of modify requests.

Acme's number has "Outage" (Alice then Bob) and "Billing" (Bob and Carol at once).
"""
import json
import logging

import pytest

from callrouting.calls import legs
from callrouting.models import AgentLeg, Call
from incidents import pacing
from incidents.models import Notification, VonageErrorEvent
from incidents.telephony import Telephony, get_telephony
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)
from tests.factories import UserFactory
from tests.fake_vonage import FakeVonage, signed_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def number(acme, alice, bob, carol):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901860", name="Acme support", greeting="Welcome to Acme.")
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    RoutingOptionFactory(
        routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob, carol), simultaneous=True
    )
    return number


@pytest.fixture
def region(vonage_api, monkeypatch, tmp_path):
    """A second Vonage data centre: another fake of the API (same account and application) on its own port of
    the same machine, trusted like the first."""
    fake = FakeVonage(credentials=vonage_api.credentials).start()
    bundle = tmp_path / "both-cas.pem"
    bundle.write_bytes(vonage_api.server.ca.cert_pem.bytes() + fake.server.ca.cert_pem.bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    yield fake
    fake.stop()


def texts(ncco):
    return [action.get("text") for action in ncco if action["action"] == "talk"]


def route(phone, number, digit, **dial):
    response, uuid = phone.dial(number.phone_number, **dial)
    phone.press(response.json(), digit)
    return the_call(uuid)


def hangups(fake):
    return [r.path.rsplit("/", 1)[1] for r in fake.requests_matching("PUT", r"^/v1/calls/[^/]+$")
            if r.status == 204 and r.json.get("action") == "hangup"]


def transfers(fake):
    return [r.path.rsplit("/", 1)[1] for r in fake.requests_matching("PUT", r"^/v1/calls/[^/]+$")
            if r.status == 204 and r.json.get("action") == "transfer"]


# --- a signed token proves one request -------------------------------------------------------------------------


def test_a_captured_answer_token_cannot_start_another_call(number, vonage_client):
    # An answer webhook is a GET: no body, so no payload_hash ties its token to the query. Sent again with
    # another caller and call uuid, the token is refused by its jti and the replay hears a goodbye.
    headers = signed_headers(None)
    params = {"to": number.phone_number[1:], "from": "4917612345678", "uuid": "CALL-1", "conversation_uuid": "CON-1"}
    first = vonage_client.get("/vonage/answer", params, **headers)
    replay = vonage_client.get("/vonage/answer", {**params, "from": "4917666666666", "uuid": "CALL-2"}, **headers)

    assert first.json()[-1]["action"] == "input"
    assert replay.status_code == 200
    assert texts(replay.json()) == ["Sorry, we are having technical difficulties. Please call again later. Goodbye."]
    assert list(Call.objects.values_list("vonage_uuid", flat=True)) == ["CALL-1"]


def test_a_replayed_agent_key_press_changes_nothing(phone, number, bob, carol, vonage_client):
    call = route(phone, number, "2")
    bob_leg, carol_leg = phone.leg(bob), phone.leg(carol)
    request = next(body for body in phone.dialled() if f"/leg/{bob_leg.token}/" in body["event_url"][0])
    path = request["ncco"][-1]["eventUrl"][0].replace("https://callrouting.test", "")
    body = json.dumps({"dtmf": {"digits": "2", "timed_out": False}, "uuid": bob_leg.vonage_uuid}).encode()
    headers = signed_headers(body)
    assert texts(vonage_client.post(path, body, content_type="application/json", **headers).json())
    bob_leg.refresh_from_db()
    assert bob_leg.status == AgentLeg.Status.DECLINED

    # The same request again (a replay): the goodbye, and Carol's leg and the call are untouched.
    replay = vonage_client.post(path, body, content_type="application/json", **headers)
    assert replay.status_code == 200
    assert texts(replay.json()) == ["Sorry, we are having technical difficulties. Please call again later. Goodbye."]
    carol_leg.refresh_from_db()
    call.refresh_from_db()
    assert carol_leg.status == AgentLeg.Status.DIALLING and call.state == Call.State.ROUTING


# --- calls are modified where they live -----------------------------------------------------------------------


def test_the_callers_call_is_transferred_and_hung_up_in_its_region(phone, number, alice, bob, vonage_api, region):
    call = route(phone, number, "1", region_url=region.base_url)
    assert call.region_url == region.base_url
    phone.leg_event(phone.leg(alice), "busy")
    # Bob's leg was placed on the configured API host: it stays there.
    assert len(phone.dialled()) == 2 and region.calls_created() == []
    # Nobody takes the call and the number has no voicemail: "nobody available" is a transfer of the caller's
    # call, which only the region that holds it can do.
    region.fail_next("PUT", rf"^/v1/calls/{call.vonage_uuid}$", 500, times=3)
    phone.leg_event(phone.leg(bob), "busy")

    assert [r.json["action"] for r in region.requests_matching("PUT", rf"^/v1/calls/{call.vonage_uuid}$")] == [
        "transfer", "transfer", "transfer", "hangup",
    ]
    assert hangups(region) == [call.vonage_uuid]
    assert vonage_api.requests_matching("PUT", r"^/v1/calls/") == []


def test_an_agent_leg_is_hung_up_on_the_host_that_created_it(phone, number, bob, carol, vonage_api, region, settings):
    call = route(phone, number, "2", region_url=region.base_url)
    bob_leg, carol_leg = phone.leg(bob), phone.leg(carol)
    assert {bob_leg.api_host, carol_leg.api_host} == {vonage_api.host}
    # The configured API host changes while the legs ring (a move to a regional host): the legs live on.
    settings.VONAGE_API_HOST = region.host
    phone.leg_event(bob_leg, "answered")
    phone.agent_press(bob_leg, "1")

    assert hangups(vonage_api) == [carol_leg.vonage_uuid]
    assert hangups(region) == []
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED


def test_a_leg_adopted_from_its_first_event_still_learns_the_host_that_created_it(phone, number, alice, bob):
    # Vonage may send a leg's first event before the create-call request has answered: the event's uuid is
    # adopted first, and the host comes with the answer.
    call = route(phone, number, "1")
    leg = phone.leg(alice)
    AgentLeg.objects.filter(pk=leg.pk).update(vonage_uuid=None, api_host="")
    leg.refresh_from_db()
    assert legs.adopt_leg_call(call, leg, "ADOPTED-1")
    assert legs.leg_dialled(leg.pk, "ADOPTED-1", "api-us-3.vonage.com") is True
    leg.refresh_from_db()
    assert (leg.vonage_uuid, leg.api_host) == ("ADOPTED-1", "api-us-3.vonage.com")
    # Another call's answer for the same leg (a retried create-call) changes neither.
    assert legs.leg_dialled(leg.pk, "ORPHAN-2", "api-eu-1.vonage.com") is False
    leg.refresh_from_db()
    assert (leg.vonage_uuid, leg.api_host) == ("ADOPTED-1", "api-us-3.vonage.com")


@pytest.mark.parametrize("region_url", [
    "https://evil.example.com",  # not Vonage's: our application JWT must not go there
    "https://api-us-3.vonage.com",  # Vonage's, but this deployment talks to a test double of the API
    "http://{host}",  # not https
    "https://user:pass@{host}",
    "https://[::1",
    "",
])
def test_a_region_url_that_is_not_acceptable_is_not_used(phone, number, bob, carol, vonage_api, region, region_url):
    call = route(phone, number, "2", region_url=region_url.format(host=region.host))
    assert call.region_url == ""
    phone.hang_up(call.vonage_uuid)  # the caller hangs up while both agents' phones ring

    assert sorted(hangups(vonage_api)) == sorted([phone.leg(bob).vonage_uuid, phone.leg(carol).vonage_uuid])
    assert region.requests == []


@pytest.mark.parametrize("api_host, region_url, host", [
    ("api.nexmo.com", "https://api-us-3.vonage.com", "api-us-3.vonage.com"),
    ("api.nexmo.com", "https://api-ap-4.nexmo.com/", "api-ap-4.nexmo.com"),
    ("api.nexmo.com", "https://api-us-3.vonage.com:443", "api-us-3.vonage.com:443"),
    ("api-eu-1.vonage.com", "https://api-us-3.vonage.com", "api-us-3.vonage.com"),
    ("api.nexmo.com", "https://api-us-3.vonage.com:8443", ""),
    ("api.nexmo.com", "https://vonage.com.evil.example", ""),
    ("api.nexmo.com", "https://evilvonage.com", ""),
    ("api.nexmo.com", "http://api-us-3.vonage.com", ""),
    ("api.nexmo.com", "https://me@api-us-3.vonage.com", ""),
    ("api.nexmo.com", "ftp://api-us-3.vonage.com", ""),
    ("127.0.0.1:8443", "https://127.0.0.1:9443", "127.0.0.1:9443"),
    ("127.0.0.1:8443", "https://localhost:9443", "localhost:9443"),
    ("127.0.0.1:8443", "https://api-eu-1.vonage.com", ""),
    ("127.0.0.1:8443", "https://10.0.0.1:9443", ""),
])
def test_region_hosts_are_vonages_or_the_configured_machines(api_host, region_url, host):
    assert Telephony(api_host=api_host).region_host(region_url) == host


# --- the fallback URL -----------------------------------------------------------------------------------------


def _original_request(shape, url):
    if shape == "object":
        return {"original_request": {"url": url, "type": "event"}}
    if shape == "json string":
        return {"original_request": f'{{"url": "{url}", "type": "event"}}'}
    if shape == "dotted keys":
        return {"original_request.url": url, "original_request.type": "event"}
    return {"original_request[url]": url, "original_request[type]": "event"}


SHAPES = ["object", "json string", "dotted keys", "bracket keys"]


# A GET carries only strings: there original_request arrives as a JSON string or flattened keys.
@pytest.mark.parametrize("method, shape", [("POST", "object"), ("POST", "json string"), *(("GET", shape) for shape in SHAPES[1:])])
def test_fallback_for_a_callers_input_keeps_a_routed_caller_on_hold(phone, number, alice, method, shape):
    call = route(phone, number, "1")
    fields = {"reason": "read_timeout", **_original_request(shape, f"https://callrouting.test/vonage/call/{call.token}/input")}
    response = phone.get("/vonage/fallback", fields) if method == "GET" else phone.post("/vonage/fallback", fields)

    assert response.status_code == 200
    sorry, conversation = response.json()
    assert sorry["text"] == "Sorry, we are having technical difficulties. Please hold."
    assert conversation["name"] == call.conversation_name and conversation["startOnEnter"] is False


@pytest.mark.parametrize("shape", SHAPES)
def test_fallback_for_an_agents_key_press_offers_the_call_again(phone, number, alice, shape):
    route(phone, number, "1")
    leg = phone.leg(alice)
    phone.leg_event(leg, "answered")
    url = f"https://callrouting.test/vonage/leg/{leg.token}/input"
    fields = {"reason": "connection_timeout", "uuid": leg.vonage_uuid, "to": "4915110000001",
              "from": number.phone_number[1:], **_original_request(shape, url)}
    response = phone.get("/vonage/fallback", fields) if shape != "object" else phone.post("/vonage/fallback", fields)

    whisper, prompt = response.json()
    assert whisper["text"] == "Acme support: Outage call from 4 9 1 7 6 1 2 3 4 5 6 7 8. Press 1 to accept, 2 to decline."
    assert prompt["action"] == "input" and prompt["eventUrl"][0] == url
    leg.refresh_from_db()
    assert leg.status == AgentLeg.Status.ANSWERED  # nothing decided for the agent: they press their key again


def test_fallback_for_an_agent_found_by_uuid_alone_is_never_not_in_service(phone, number, bob, carol):
    call = route(phone, number, "2")
    bob_leg, carol_leg = phone.leg(bob), phone.leg(carol)
    phone.leg_event(carol_leg, "answered")
    phone.agent_press(carol_leg, "1")
    # Bob's key press failed and the fallback's original_request is missing: his leg is known by its uuid. The
    # call went to Carol, and "to" is Bob's phone, which no routing number is: never "not in service".
    response = phone.get("/vonage/fallback", {"reason": "read_timeout", "uuid": bob_leg.vonage_uuid,
                                              "to": "4915110000002", "direction": "outbound"})
    assert texts(response.json()) == ["This call has already been taken by someone else. Goodbye."]
    # The connected agent's own failed request joins them to the caller.
    response = phone.post("/vonage/fallback", {"reason": "read_timeout", "uuid": carol_leg.vonage_uuid})
    assert response.json() == [{"action": "conversation", "name": call.conversation_name, "startOnEnter": True,
                                "endOnExit": True}]
    # An unknown outbound leg hears the goodbye, not "not in service".
    response = phone.get("/vonage/fallback", {"reason": "read_timeout", "uuid": "unknown-leg", "to": "4915110000002"})
    assert texts(response.json()) == ["Sorry, we are having technical difficulties. Please call again later. Goodbye."]


def test_fallback_for_a_notification_key_press_asks_for_the_key_again(phone, number, bob, vonage_api):
    call = route(phone, number, "2")
    notification = Notification.objects.create(
        incident=call.incident, user=bob, channel=Notification.Channel.VOICE, contact="+4915110000002",
        status=Notification.Status.SENT, due_at=call.incident.created_at,
    )
    url = f"https://callrouting.test/incidents/voice/{notification.token}/input"
    response = phone.get("/vonage/fallback", {"reason": "read_timeout", "original_request.url": url})
    talk, entry = response.json()
    assert talk["text"] == "Press 4 to accept, or 6 to resolve."
    assert entry["action"] == "input" and entry["eventUrl"][0].startswith(url)


# --- events without a status ------------------------------------------------------------------------------------


def test_transfer_events_are_acknowledged_and_change_nothing(phone, number, bob, carol):
    call = route(phone, number, "2")
    leg = phone.leg(bob)
    transfer = {"conversation_uuid_from": "CON-a", "conversation_uuid_to": "CON-b", "timestamp": "2026-11-30T10:00:00Z"}
    assert phone.post("/vonage/event", {"uuid": call.vonage_uuid, **transfer}).status_code == 204
    request = next(body for body in phone.dialled() if f"/leg/{leg.token}/" in body["event_url"][0])
    assert phone.post(request["event_url"][0], {"uuid": leg.vonage_uuid, **transfer}).status_code == 204
    call.refresh_from_db()
    leg.refresh_from_db()
    assert call.state == Call.State.ROUTING and leg.status == AgentLeg.Status.DIALLING
    assert not VonageErrorEvent.objects.exists()


def test_error_events_are_logged_kept_and_shown_in_recent_failures(phone, number, bob, carol, caplog, client, sam):
    call = route(phone, number, "2")
    leg = phone.leg(bob)
    caplog.set_level(logging.INFO)
    error = {"reason": "Invalid NCCO: eventUrl must be an array", "conversation_uuid": call.conversation_uuid,
             "timestamp": "2026-11-30T10:00:00Z"}
    assert phone.post("/vonage/event", error).status_code == 204
    request = next(body for body in phone.dialled() if f"/leg/{leg.token}/" in body["event_url"][0])
    over_rate = {"reason": "Call rejected: rate limit exceeded", "conversation_uuid": "CON-agent",
                 "uuid": leg.vonage_uuid}
    assert phone.post(request["event_url"][0], over_rate).status_code == 204

    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "error_event" in r.getMessage()]
    assert [r.getMessage().rsplit("reason=", 1)[1] for r in errors] == [error["reason"], over_rate["reason"]]
    assert all(leg.token not in r.getMessage() for r in errors)
    assert list(VonageErrorEvent.objects.order_by("id").values_list("reason", "webhook")) == [
        (error["reason"], "/vonage/event"), (over_rate["reason"], "/vonage/leg/<token>/event"),
    ]
    call.refresh_from_db()
    assert call.state == Call.State.ROUTING

    client.force_login(sam)
    page = client.get("/admin/callrouting/call/failures/").content.decode()
    table = page.split('id="vonage-errors"', 1)[1].split("</table>", 1)[0]
    assert error["reason"] in table and over_rate["reason"] in table
    assert f"/admin/callrouting/call/{call.pk}/change/" in table


def test_an_agent_call_vonage_could_not_place_moves_on_to_the_next_agent_at_once(phone, number, alice, bob, vonage_api):
    # Over its rate Vonage may answer the create-call 201 and then send an error event instead of placing it.
    call = route(phone, number, "1")
    alice_leg = phone.leg(alice)
    request = next(body for body in phone.dialled() if f"/leg/{alice_leg.token}/" in body["event_url"][0])
    error = {"reason": "Call rejected: rate limit exceeded", "conversation_uuid": "CON-alice", "uuid": alice_leg.vonage_uuid}
    assert phone.post(request["event_url"][0], error).status_code == 204

    alice_leg.refresh_from_db()
    assert alice_leg.status == AgentLeg.Status.FAILED and "rate limit exceeded" in alice_leg.detail
    assert ["+" + body["to"][0]["number"] for body in phone.dialled()] == [alice.primary_phone(), bob.primary_phone()]
    assert hangups(vonage_api) == [alice_leg.vonage_uuid]  # in case it lives after all
    # A repeated error event changes nothing more.
    assert phone.post(request["event_url"][0], error).status_code == 204
    assert len(phone.dialled()) == 2 and VonageErrorEvent.objects.count() == 2
    call.refresh_from_db()
    assert call.state == Call.State.ROUTING


def test_a_notification_calls_error_event_is_acknowledged(phone, number, bob, vonage_client):
    call = route(phone, number, "2")
    notification = Notification.objects.create(
        incident=call.incident, user=bob, channel=Notification.Channel.VOICE, contact="+4915110000002",
        status=Notification.Status.SENT, due_at=call.incident.created_at,
    )
    response = vonage_client.post_webhook(f"/incidents/voice/{notification.token}/event", {"reason": "Invalid NCCO"})
    assert response.status_code == 204
    assert VonageErrorEvent.objects.get().webhook == "/incidents/voice/<token>/event"


def test_an_event_without_status_reason_or_transfer_is_still_refused(phone, number):
    assert phone.post("/vonage/event", {"uuid": "x", "conversation_uuid": "CON-x"}).status_code == 400


# --- Vonage's limit of modify requests ---------------------------------------------------------------------------


def test_the_hang_ups_of_a_large_fan_out_keep_to_vonages_modify_limit(phone, acme, vonage_api, inline_tasks, monkeypatch):
    agents = [UserFactory(account=acme, phone=f"+49151400{i:05d}") for i in range(20)]
    number = RoutingNumberFactory(account=acme, phone_number="+4930901861")
    RoutingOptionFactory(routing_number=number, digit=1, label="All hands", escalation_policy=policy_of(acme, *agents),
                         simultaneous=True)
    RoutingOptionFactory(routing_number=number, digit=2, label="Other")
    reserved = []
    reserve = pacing.reserve_modify_slot
    monkeypatch.setattr(pacing, "reserve_modify_slot", lambda now=None: reserved.append(reserve(now)) or reserved[-1])
    route(phone, number, "1")
    assert len(phone.dialled()) == 20
    first = AgentLeg.objects.get(user=agents[0])
    phone.leg_event(first, "answered")
    phone.agent_press(first, "1")

    others = set(AgentLeg.objects.exclude(pk=first.pk).values_list("vonage_uuid", flat=True))
    assert set(hangups(vonage_api)) == others and len(hangups(vonage_api)) == 19
    # Every hang-up waited for its slot: never more than 15 of them within Vonage's second (1.1 s).
    assert len(reserved) == 19
    assert all(later - earlier >= 1.1 - 1e-6 for earlier, later in zip(reserved, reserved[15:]))
    assert reserved[15] - reserved[0] == pytest.approx(1.1)


def test_modify_slots_go_out_fifteen_per_window(settings):
    at = 1_800_000_000.0
    slots = [pacing.reserve_modify_slot(now=at) - at for _ in range(20)]
    assert [round(slot, 3) for slot in slots] == [0.0] * 15 + [1.1] * 5
    # Call creations keep their own window.
    assert pacing.reserve_call_slot(now=at) == at


def test_a_transfer_waits_for_its_modify_slot(phone, number, alice, bob, vonage_api, inline_tasks):
    call = route(phone, number, "1")
    for _ in range(15):  # another worker just used the whole second
        pacing.reserve_modify_slot(now=pacing.clock())
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    assert transfers(vonage_api) == [call.vonage_uuid]
    assert inline_tasks[-1] == pytest.approx(1.1)


def test_the_telephony_client_modifies_a_call_on_the_host_given(vonage_api, region):
    get_telephony().hangup("CALL-1", host=region.host)
    get_telephony().transfer_ncco("CALL-2", [{"action": "talk", "text": "Hi"}])
    assert hangups(region) == ["CALL-1"] and transfers(vonage_api) == ["CALL-2"]
