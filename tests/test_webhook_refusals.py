"""Every Vonage webhook of the product refuses what Vonage did not send, the way Vonage needs it refused.

The webhooks are found in the URLconf (the views decorated with incidents.webhooks.vonage_webhook), so a new one
is covered by these tests the day it is added. For each, aimed at the tokens of live calls, legs and a voice
notification, with a payload that would change something if it were believed:
- no Authorization header (GET and POST): 503, so that Vonage sends the rare unsigned callback again, signed;
- a bad, stale, replayed or foreign signature, or a token with another algorithm: 200 with a spoken NCCO on a URL
  that answers with an NCCO (Vonage plays no body of a non-2xx answer), 401 on an event URL;
- nothing changes in the database and nothing goes to Vonage;
- each refusal is logged exactly once, with its reason and never the token.

Acme's number has "Outage" (Alice then Bob) and "Billing" (Bob and Carol at once).
"""
import hashlib
import json
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from callrouting.log_privacy import scrub
from callrouting.models import AgentLeg, Call
from incidents.models import Notification
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)
from tests.fake_vonage import assert_runnable_ncco, signed_headers

pytestmark = pytest.mark.django_db

# What each webhook answers with, decided here and not read from the product: a new webhook fails
# test_every_vonage_webhook_in_the_urlconf_is_listed until it is listed in one of the two.
NCCO_WEBHOOKS = {"callrouting:answer", "callrouting:fallback", "callrouting:call-input", "callrouting:leg-input",
                 "incidents:voice-input", "callrouting:benchmark-floor"}
EVENT_WEBHOOKS = {"callrouting:event", "callrouting:call-recording-started", "callrouting:call-recording",
                  "callrouting:call-transcription",
                  "callrouting:leg-event", "incidents:voice-event", "incidents:test-call-event"}
OTHER_SECRET = "another-accounts-signature-secret-0123456789"


def url_patterns(resolver=None, prefix="", namespace=""):
    """(route, qualified name, URLPattern) of every URL of the product."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            yield from url_patterns(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = ":".join(filter(None, [namespace, entry.name]))
            yield prefix + str(entry.pattern), name, entry


def vonage_webhooks():
    """{qualified name: (route, "ncco" | "event")} of the views decorated with vonage_webhook."""
    return {name: (route, pattern.callback.vonage_webhook) for route, name, pattern in url_patterns()
            if hasattr(pattern.callback, "vonage_webhook")}


WEBHOOKS = sorted(vonage_webhooks())


def test_every_vonage_webhook_in_the_urlconf_is_listed():
    found = vonage_webhooks()
    assert {name for name, (_, kind) in found.items() if kind == "ncco"} == NCCO_WEBHOOKS
    assert {name for name, (_, kind) in found.items() if kind == "event"} == EVENT_WEBHOOKS


def test_no_url_takes_unauthenticated_posts_without_a_signature_check():
    # A view exempt from CSRF takes POSTs from anywhere: it must be a signed webhook (or the token-authenticated API).
    for route, name, pattern in url_patterns():
        callback = pattern.callback
        if getattr(callback, "csrf_exempt", False) and not hasattr(callback, "cls"):
            assert hasattr(callback, "vonage_webhook"), f"{route} ({name}) is CSRF-exempt but not a signed webhook"
        if route.startswith("vonage/") or "/voice/" in route:
            assert hasattr(callback, "vonage_webhook"), f"{route} ({name}) looks like a Vonage webhook but is not signed"


# --- the live calls the refused requests aim at -----------------------------------------------------------------


@pytest.fixture
def live(acme, alice, bob, carol, phone):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901880", voicemail_enabled=True)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    RoutingOptionFactory(
        routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob, carol), simultaneous=True
    )
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), "2")
    call = the_call(uuid)
    leg = phone.leg(bob)
    phone.leg_event(leg, "answered")
    notification = Notification.objects.create(
        incident=call.incident, user=bob, channel=Notification.Channel.VOICE, contact="+4915110000002",
        status=Notification.Status.SENT, due_at=call.incident.created_at,
    )
    return {"number": number, "call": the_call(uuid), "leg": AgentLeg.objects.get(pk=leg.pk),
            "notification": notification}


def webhook_url(name, live):
    """The URL of webhook NAME for the live call, leg or notification its token names."""
    route = vonage_webhooks()[name][0]
    if "<str:token>" not in route:
        return reverse(name)
    if route.startswith("vonage/call/"):
        token = live["call"].token
    elif route.startswith("vonage/leg/"):
        token = live["leg"].token
    else:
        token = live["notification"].token
    return reverse(name, kwargs={"token": token})


def believable_payload(live):
    """Fields that would change the live call if they were believed: an accept key (1 for an agent, 4 for a
    notification), a call ending, a recording, a new caller."""
    call, leg = live["call"], live["leg"]
    return {
        "uuid": leg.vonage_uuid, "conversation_uuid": call.conversation_uuid, "status": "completed",
        "to": live["number"].phone_number[1:], "from": "4917600000666",
        "dtmf": {"digits": "1", "timed_out": False}, "reason": "read_timeout",
        "original_request": {"url": f"https://callrouting.test/vonage/leg/{leg.token}/input", "type": "event"},
        "recording_url": "https://api.nexmo.com/v1/files/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
        "recording_uuid": "REC-1", "transcription_url": "https://api.nexmo.com/v1/files/transcript",
    }


def snapshot():
    """Every row of every table the product owns, to compare before and after a refused request."""
    return {model._meta.label: list(model.objects.order_by("pk").values())
            for model in apps.get_models() if model._meta.app_label in ("callrouting", "incidents", "escalation")}


def rs256_token(claims):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return jwt.encode(claims, pem, algorithm="RS256")


def forgeries(body, used_headers, settings):
    """(what, Authorization header) of requests Vonage did not send for BODY."""
    now = int(time.time())
    good = {"iat": now, "jti": "forged-jti", "application_id": settings.VONAGE_APPLICATION_ID,
            "payload_hash": hashlib.sha256(body).hexdigest()}
    yield "bad signature", signed_headers(body, secret=OTHER_SECRET)["HTTP_AUTHORIZATION"]
    yield "stale", signed_headers(body, iat=now - settings.VONAGE_SIGNATURE_MAX_AGE - 5)["HTTP_AUTHORIZATION"]
    yield "from the future", signed_headers(body, iat=now + 600)["HTTP_AUTHORIZATION"]
    yield "replayed", used_headers["HTTP_AUTHORIZATION"]
    yield "foreign application", signed_headers(body, extra_claims={"application_id": "another-app"})["HTTP_AUTHORIZATION"]
    yield "no jti", signed_headers(body, extra_claims={"jti": None})["HTTP_AUTHORIZATION"]
    yield "other body", signed_headers(b'{"status": "started"}')["HTTP_AUTHORIZATION"]
    yield "alg none", "Bearer " + jwt.encode(good, None, algorithm="none")
    yield "alg RS256", "Bearer " + rs256_token(good)
    yield "garbled", "Bearer not.a.jwt"


def refusal_lines(caplog, url):
    """The log records about URL (logged with its per-call token scrubbed, see callrouting.log_privacy)."""
    return [record for record in caplog.records if scrub(url) in record.getMessage()]


@pytest.mark.parametrize("name", WEBHOOKS)
def test_an_unsigned_request_gets_503_and_changes_nothing(name, live, client, vonage_api, caplog):
    url = webhook_url(name, live)
    body = json.dumps(believable_payload(live)).encode()
    before, traffic = snapshot(), len(vonage_api.requests)
    for send in (lambda: client.post(url, data=body, content_type="application/json"),
                 lambda: client.get(url, {"dtmf": "1", "status": "completed", "from": "4917600000666"})):
        caplog.clear()
        caplog.set_level(logging.DEBUG)
        response = send()
        assert response.status_code == 503, name
        lines = refusal_lines(caplog, url)
        assert [record.getMessage() for record in lines] == [
            f"webhook refused path={scrub(url)} status=503 reason=no Authorization header"]
    assert snapshot() == before
    assert len(vonage_api.requests) == traffic


@pytest.mark.parametrize("name", WEBHOOKS)
def test_a_request_vonage_did_not_sign_is_refused_and_changes_nothing(name, live, client, vonage_client, vonage_api,
                                                                      caplog, settings):
    url = webhook_url(name, live)
    ncco_url = name in NCCO_WEBHOOKS
    body = json.dumps(believable_payload(live)).encode()
    # A token that was used once already, by a request to another webhook: sent again it is a replay.
    used = signed_headers(json.dumps({"status": "started", "uuid": "CALL-X"}).encode())
    first_use = vonage_client.post("/incidents/voice/test-call/event", content_type="application/json",
                                   data=json.dumps({"status": "started", "uuid": "CALL-X"}), **used)
    assert first_use.status_code == 204
    before = snapshot()
    traffic = len(vonage_api.requests)

    for what, authorization in forgeries(body, used, settings):
        caplog.clear()
        caplog.set_level(logging.DEBUG)
        response = client.post(url, data=body, content_type="application/json", HTTP_AUTHORIZATION=authorization)
        if ncco_url:
            assert response.status_code == 200, (name, what)
            ncco = assert_runnable_ncco(response).json()
            assert ncco and {action["action"] for action in ncco} == {"talk"}, (name, what, ncco)
        else:
            assert response.status_code == 401, (name, what)
            assert response.content == b"invalid signature"
        lines = refusal_lines(caplog, url)
        assert len(lines) == 1, (name, what, [record.getMessage() for record in caplog.records])
        assert lines[0].levelno == logging.WARNING and " reason=" in lines[0].getMessage()
        assert f"status={200 if ncco_url else 401}" in lines[0].getMessage()
        header, _, signature = authorization.removeprefix("Bearer ").rpartition(".")
        assert header not in caplog.text, (name, what)
        assert not signature or signature not in caplog.text, (name, what)

    assert snapshot() == before, name
    assert len(vonage_api.requests) == traffic


def test_the_refusals_say_why(live, client, settings, caplog):
    url = webhook_url("callrouting:leg-input", live)
    body = json.dumps(believable_payload(live)).encode()
    used = signed_headers(body)
    assert client.post(url, data=body, content_type="application/json", **used).status_code == 200
    caplog.set_level(logging.INFO)
    reasons = {}
    for what, authorization in forgeries(body, used, settings):
        caplog.clear()
        client.post(url, data=body, content_type="application/json", HTTP_AUTHORIZATION=authorization)
        reasons[what] = refusal_lines(caplog, url)[0].getMessage().split(" reason=", 1)[1]
    assert reasons == {
        "bad signature": "bad signature",
        "stale": f"token is {settings.VONAGE_SIGNATURE_MAX_AGE + 5} s old",
        "from the future": "token issued in the future",
        "replayed": "token already used (a replay)",
        "foreign application": "token is for another application",
        "no jti": "token has no usable jti",
        "other body": "payload_hash does not match the body",
        "alg none": "unreadable token (InvalidAlgorithmError)",
        "alg RS256": "unreadable token (InvalidAlgorithmError)",
        "garbled": "unreadable token (DecodeError)",
    }
    leg = AgentLeg.objects.get(pk=live["leg"].pk)
    assert leg.status == AgentLeg.Status.ACCEPTED and the_call(live["call"].vonage_uuid).state == Call.State.CONNECTED
