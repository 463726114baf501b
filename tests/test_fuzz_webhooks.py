"""Fuzzing every Vonage webhook of the product with hypothesis.

Signed requests (a valid signature, so they reach the view logic) carry random JSON objects built from the
fields Vonage sends with values of any type (the live calls' real uuids among them, so they reach deep code),
random raw bodies (not JSON, JSON that is not an object, huge strings, unicode), or random query strings. They
go to the answer (GET and POST), event and fallback URLs, to the tokenised per-call and per-leg URLs of live
calls and to the notification keypress URL. Whatever arrives:
- never a 5xx other than the 503 of an unsigned request (which Vonage sends again, signed);
- an NCCO endpoint always answers with a JSON list of actions; a refused request gets 200 and the safe NCCO
  there (Vonage plays no body of a non-2xx answer), 401 or 400 on an event URL;
- a refused request changes nothing: row counts, call states, leg and incident statuses, Vonage traffic.
Unsigned requests get 503, forged ones 401 (event URLs) or the safe NCCO, and change nothing.

Text is drawn without NUL characters and lone surrogates: the database cannot store them, so the product
refuses any payload holding one (incidents.webhooks.check_storable); test_lone_surrogates_* and
test_nul_characters_* cover them on their own.
"""
import hashlib
import json
import uuid as uuid_lib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrouting.models import AgentLeg, Call, Voicemail
from callrouting.views import goodbye_ncco
from escalation.models import User
from incidents import voice
from incidents.models import Incident, IncidentEvent, Notification
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)
from tests.fake_vonage import signed_headers

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SECRET_NOT_OURS = "not-the-signature-secret-but-long-enough-0123456789"
FIELDS = [
    "uuid", "call_uuid", "conversation_uuid", "to", "from", "status", "direction", "detail", "timestamp", "dtmf",
    "digits", "timed_out", "speech", "results", "text", "recording_url", "recording_uuid", "start_time", "end_time",
    "size", "reason", "original_request", "url", "type", "transcription", "transcript", "transcription_url",
    "endpoint_type", "custom_data", "sub_state", "disconnected_by", "duration",
]
STATUSES = [
    "started", "ringing", "answered", "busy", "cancelled", "unanswered", "rejected", "failed", "timeout",
    "disconnected", "human", "machine", "completed", "transfer", "error", "COMPLETED", "",
]


# --- the live calls the webhooks hit ------------------------------------------------------------------------


@pytest.fixture
def live(acme, alice, bob, carol, phone, vonage_api, settings, tmp_path):
    """Live calls of Acme's number in each state (menu, routing with legs ringing, voicemail) and a voice
    notification of an incident: their tokens and uuids are what the fuzzed webhooks aim at."""
    settings.MEDIA_ROOT = tmp_path
    number = RoutingNumberFactory(account=acme, phone_number="+4930901840", voicemail_enabled=True)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    RoutingOptionFactory(
        routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob, carol), simultaneous=True
    )
    response, menu_uuid = phone.dial(number.phone_number)
    routing = _route(phone, number, "2")
    voicemail = _route(phone, number, "1")
    for leg in voicemail.legs.all():
        phone.leg_event(leg, "busy")
    calls = [the_call(menu_uuid), the_call(routing.vonage_uuid), the_call(voicemail.vonage_uuid)]
    assert [c.state for c in calls] == [Call.State.MENU, Call.State.ROUTING, Call.State.VOICEMAIL]
    incident = calls[1].incident
    notification = Notification.objects.create(
        incident=incident, user=bob, channel=Notification.Channel.VOICE, contact="+4915110000002",
        status=Notification.Status.SENT, due_at=incident.created_at, provider_id=str(uuid_lib.uuid4()),
    )
    legs = list(AgentLeg.objects.filter(call__in=calls))
    return {"number": number, "calls": calls, "legs": legs, "notification": notification}


def _route(phone, number, digit):
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), digit)
    return the_call(uuid)


def endpoints(live):
    """(path, answers with an NCCO) for every Vonage webhook of the product, per-call URLs of every live call."""
    found = [("/vonage/answer", True), ("/vonage/event", False), ("/vonage/fallback", True)]
    for call in live["calls"]:
        found += [
            (f"/vonage/call/{call.token}/input", True),
            (f"/vonage/call/{call.token}/recording", False),
            (f"/vonage/call/{call.token}/transcription", False),
        ]
    for leg in live["legs"]:
        found += [(f"/vonage/leg/{leg.token}/event", False), (f"/vonage/leg/{leg.token}/input", True)]
    token = live["notification"].token
    found += [(f"/incidents/voice/{token}/input", True), (f"/incidents/voice/{token}/event", False)]
    found += [("/incidents/voice/test-call/event", False)]  # test calls of the People page
    return found


# --- strategies ---------------------------------------------------------------------------------------------

# No NUL (see test_nul_characters_*) and no lone surrogates (they cannot even be put into a URL).
text = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40)
huge = st.integers(2_000, 20_000).map(lambda n: "ü" * n)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    text, huge, st.sampled_from(STATUSES), st.sampled_from(["1", "2", "4", "6", "#", "12", " 1 ", "https://x/"]),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | text, inner, max_size=4),
    max_leaves=12,
)


def payloads(live):
    """JSON objects of Vonage's fields with values of any type; uuids, statuses and URLs of the live calls
    appear often enough to get past the first checks."""
    uuids = [c.vonage_uuid for c in live["calls"]] + [leg.vonage_uuid for leg in live["legs"] if leg.vonage_uuid]
    urls = [f"https://callrouting.test{path}" for path, _ in endpoints(live)]
    field_value = st.one_of(
        json_values,
        st.sampled_from(uuids),
        st.sampled_from(STATUSES),
        st.sampled_from(urls),
        st.just(live["number"].phone_number[1:]),
        st.fixed_dictionaries({}, optional={"digits": json_values, "timed_out": json_values, "url": st.sampled_from(urls), "results": json_values}),
    )
    return st.dictionaries(st.sampled_from(FIELDS) | text, field_value, max_size=8)


raw_bodies = st.one_of(
    st.binary(min_size=1, max_size=200),
    text.filter(bool).map(str.encode),
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.just(b'{"uuid": "x", "status": '),
    huge.map(lambda s: json.dumps({"uuid": s, "status": s, "to": s, "text": s}).encode()),
)
query_strings = st.dictionaries(st.sampled_from(FIELDS) | text, text | huge | st.sampled_from(STATUSES), max_size=6)


# --- checks -------------------------------------------------------------------------------------------------


def snapshot(vonage_api):
    """Everything a webhook could change."""
    return {
        "counts": [m.objects.count() for m in (Call, AgentLeg, Incident, IncidentEvent, Voicemail, Notification, User)],
        "calls": list(Call.objects.order_by("pk").values_list("pk", "state", "outcome", "tries", "option_id", "connected_leg_id", "escalated_at")),
        "legs": list(AgentLeg.objects.order_by("pk").values_list("pk", "status", "vonage_uuid", "attempts")),
        "incidents": list(Incident.objects.order_by("pk").values_list("pk", "status", "assigned_to_id", "escalation_suppressed")),
        "voicemails": list(Voicemail.objects.order_by("pk").values_list("pk", "recording_url", "transcript")),
        "notifications": list(Notification.objects.order_by("pk").values_list("pk", "status", "answered_at")),
        "vonage_requests": len(vonage_api.requests),
    }


def check(response, ncco_endpoint, before, vonage_api):
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if ncco_endpoint:
        assert response["Content-Type"].startswith("application/json"), response.content[:300]
        ncco = response.json()
        assert isinstance(ncco, list) and ncco and all(isinstance(a, dict) and a.get("action") for a in ncco), ncco
    if response.status_code >= 400:
        assert snapshot(vonage_api) == before, f"a refused request ({response.status_code}) changed state"
    # Whatever was accepted, no call has two connected agents.
    accepted = AgentLeg.objects.filter(status=AgentLeg.Status.ACCEPTED)
    assert accepted.count() == accepted.values("call").distinct().count()


def check_refused(response, ncco_endpoint, before, vonage_api, status):
    """A refused request: STATUS on an event URL, 200 with the safe NCCO on an NCCO URL; nothing changed."""
    if ncco_endpoint:
        assert response.status_code == 200, response.status_code
        assert response.json() in (goodbye_ncco(), voice.safe_ncco(None)), response.json()
    else:
        assert response.status_code == status, response.status_code
    assert snapshot(vonage_api) == before, "a refused request changed state"


def post_raw(phone, path, body, headers):
    with phone.capture(execute=True):
        return phone.client.post(path, data=body, content_type="application/json", **headers)


# --- signed: they reach the views ---------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_signed_json_bodies_never_5xx(live, phone, vonage_api, data):
    path, ncco = data.draw(st.sampled_from(endpoints(live)), label="endpoint")
    payload = data.draw(payloads(live), label="payload")
    before = snapshot(vonage_api)
    check(phone.post(path, payload), ncco, before, vonage_api)


@FUZZ
@given(data=st.data())
def test_signed_raw_bodies_are_refused_without_5xx(live, phone, vonage_api, data):
    path, ncco = data.draw(st.sampled_from(endpoints(live)), label="endpoint")
    body = data.draw(raw_bodies, label="body")
    before = snapshot(vonage_api)
    response = post_raw(phone, path, body, signed_headers(body))
    check(response, ncco, before, vonage_api)
    if not body.startswith(b"{"):
        check_refused(response, ncco, before, vonage_api, 400)


@FUZZ
@given(data=st.data())
def test_signed_query_strings_never_5xx(live, phone, vonage_api, data):
    path, ncco = data.draw(st.sampled_from(endpoints(live)), label="endpoint")
    params = data.draw(query_strings, label="params")
    if data.draw(st.booleans(), label="aim at a live call"):
        params["uuid"] = data.draw(st.sampled_from([c.vonage_uuid for c in live["calls"]]))
        params["to"] = live["number"].phone_number[1:]
    before = snapshot(vonage_api)
    check(phone.get(path, params), ncco, before, vonage_api)


# --- unsigned and forged: refused before the view -----------------------------------------------------------


def forged_headers(kind, body):
    if kind == "none":
        return {}
    if kind == "wrong secret":
        return signed_headers(body, secret=SECRET_NOT_OURS)
    if kind == "other body":
        return signed_headers(body + b" ")
    if kind == "stale":
        return signed_headers(body, iat=1_600_000_000)
    if kind == "no hash":
        return signed_headers(body, extra_claims={"payload_hash": None})
    if kind == "alg none":
        return {"HTTP_AUTHORIZATION": "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpYXQiOjE3MDAwMDAwMDB9."}
    if kind == "garbage":
        return {"HTTP_AUTHORIZATION": "Bearer " + hashlib.sha256(body).hexdigest()}
    raise AssertionError(kind)


@FUZZ
@given(data=st.data())
def test_unsigned_or_forged_requests_are_refused_and_change_nothing(live, phone, vonage_api, data):
    path, ncco = data.draw(st.sampled_from(endpoints(live)), label="endpoint")
    kind = data.draw(st.sampled_from(["none", "wrong secret", "other body", "stale", "no hash", "alg none", "garbage"]))
    # Mostly the requests an attacker would want: real uuids, accept keys, hang-ups.
    payload = data.draw(payloads(live) | st.sampled_from([{"dtmf": {"digits": "1"}}, {"dtmf": {"digits": "4"}}]), label="payload")
    if data.draw(st.booleans(), label="GET"):
        before = snapshot(vonage_api)
        headers = forged_headers(kind, b"") if kind not in ("other body", "no hash") else {}
        response = phone.client.get(path, {k: str(v)[:200] for k, v in payload.items()}, **headers)
    else:
        body = json.dumps(payload).encode()
        before = snapshot(vonage_api)
        headers = forged_headers(kind, body)
        response = post_raw(phone, path, body, headers)
    if not headers:  # unsigned: Vonage retries a 503, signed
        assert response.status_code == 503, (kind, response.status_code)
        assert snapshot(vonage_api) == before
    else:
        check_refused(response, ncco, before, vonage_api, 401)
        check(response, ncco, before, vonage_api)


# --- text the database cannot store ------------------------------------------------------------------------
# JSON allows the escape \ud800 (a lone surrogate, which cannot be encoded as UTF-8) and \u0000 (NUL, which
# PostgreSQL text cannot hold; %00 in a GET query too). Stored, or even used in a filter, either made the view
# answer 500 with an HTML page. A signed payload holding one anywhere is refused: 400 on an event URL, 200 with the
# safe NCCO on an NCCO URL.


def json_with(payload, raw):
    """PAYLOAD as JSON with the escape RAW (e.g. '\\ud800') appended to its one string marked with '@'."""
    return json.dumps(payload).replace("@", raw).encode()


def unstorable_requests(live):
    """(path, ncco endpoint, payload with one '@' marking where the bad character goes)."""
    voicemail_call, menu_call = live["calls"][2], live["calls"][0]
    number = live["number"].phone_number[1:]
    return [
        ("/vonage/answer", True, {"to": number, "from": "4917612345678@", "uuid": str(uuid_lib.uuid4())}),
        ("/vonage/answer", True, {"to": number, "from": "4917612345678", "uuid": f"{uuid_lib.uuid4()}@"}),
        ("/vonage/event", False, {"status": "completed", "uuid": "abc@"}),
        (f"/vonage/call/{voicemail_call.token}/transcription", False, {"transcript": "hello @ world"}),
        (f"/vonage/call/{voicemail_call.token}/recording", False, {"recording_url": "https://api.nexmo.com/v1/files/@"}),
        (f"/vonage/call/{menu_call.token}/input", True, {"speech": {"results": [{"text": "@"}]}}),
    ]


def test_lone_surrogates_in_signed_webhooks_are_not_a_5xx(live, phone, vonage_api):
    phone.client.raise_request_exception = False  # see the 500 response instead of the exception
    failures = []
    for path, ncco, payload in unstorable_requests(live):
        body = json_with(payload, "\\ud800")
        before = snapshot(vonage_api)
        response = post_raw(phone, path, body, signed_headers(body))
        try:
            check(response, ncco, before, vonage_api)
            check_refused(response, ncco, before, vonage_api, 400)
        except AssertionError:
            failures.append((path.split("/")[-1], response.status_code))
    assert not failures, failures


def test_nul_characters_in_signed_webhooks_are_not_a_5xx(live, phone, vonage_api):
    phone.client.raise_request_exception = False
    failures = []
    for path, ncco, payload in unstorable_requests(live):
        body = json_with(payload, "\\u0000")
        before = snapshot(vonage_api)
        response = post_raw(phone, path, body, signed_headers(body))
        try:
            check(response, ncco, before, vonage_api)
            check_refused(response, ncco, before, vonage_api, 400)
        except AssertionError:
            failures.append((path.split("/")[-1], response.status_code))
    params = {"to": live["number"].phone_number[1:], "from": "49176\x00", "uuid": str(uuid_lib.uuid4())}
    response = phone.get("/vonage/answer", params)
    if response.status_code != 200 or response.json() != goodbye_ncco():
        failures.append(("answer GET", response.status_code))
    assert not failures, failures
