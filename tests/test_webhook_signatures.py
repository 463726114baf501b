"""Signed Vonage webhooks (incidents/webhooks.py), through a test-only urlconf defined in this module.

A request without an Authorization header gets 503 (Vonage sends it again, signed). Otherwise a refusal on an
NCCO-returning URL (answer_view, with a safe NCCO) is 200 with the safe NCCO, so the caller hears it; on an event
URL (event_view) it is 401 for the signature and 400 for the payload.
"""
import datetime as dt
import hashlib
import json
import logging
import threading
import time

import jwt
import pytest
from django.db import connection, connections
from django.http import JsonResponse
from django.test import RequestFactory
from django.urls import path

from incidents.models import WebhookToken
from incidents.tasks import sweep
from incidents.webhooks import MalformedWebhook, SignatureError, forget_expired_tokens, verify_signature, vonage_webhook
from tests.fake_vonage import VonageWebhookClient, signed_headers

SAFE_NCCO = [{"action": "talk", "text": "Sorry, we cannot take your call right now."}]


@vonage_webhook
def event_view(request, payload):
    return JsonResponse({"payload": payload, "claims": request.vonage_claims})


@vonage_webhook(safe_ncco=lambda request: SAFE_NCCO)
def answer_view(request, payload, token):
    if "from" not in payload:
        raise MalformedWebhook("answer webhook without from")
    return JsonResponse([{"action": "talk", "text": f"Hello {payload.get('from')} via {token}"}], safe=False)


urlpatterns = [
    path("vonage/event", event_view),
    path("vonage/answer/<str:token>", answer_view),
]

# The used tokens (jti) are remembered in the database.
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

EVENT = {
    "uuid": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
    "status": "answered",
    "from": "4915110000001",
    "to": "4930123456789",
}
OTHER_SECRET = "another-accounts-signature-secret-0123456789"


def post_raw(client, url, body, headers):
    return client.post(url, data=body, content_type="application/json", **headers)


def test_signed_post_passes_with_claims(vonage_client):
    response = vonage_client.post_webhook("/vonage/event", EVENT)

    assert response.status_code == 200
    data = response.json()
    assert data["payload"] == EVENT
    assert data["claims"]["payload_hash"] == hashlib.sha256(json.dumps(EVENT).encode()).hexdigest()
    assert data["claims"]["iss"] == "Vonage"


def test_signed_get_with_query_params_needs_no_body_hash(vonage_client):
    response = vonage_client.get_webhook("/vonage/answer/tok123", {"from": "4915110000001", "uuid": "leg-1"})

    assert response.status_code == 200
    assert response.json() == [{"action": "talk", "text": "Hello 4915110000001 via tok123"}]


def test_views_are_csrf_exempt():
    client = VonageWebhookClient(enforce_csrf_checks=True)
    assert client.post_webhook("/vonage/event", EVENT).status_code == 200


def test_missing_authorization_is_503_so_that_vonage_sends_it_again_signed(client):
    # Vonage retries 503 (and never a 401): the rare unsigned callback comes back signed.
    assert post_raw(client, "/vonage/event", json.dumps(EVENT).encode(), {}).status_code == 503
    response = client.get("/vonage/answer/tok123", {"from": "4915110000001"})
    assert response.status_code == 503


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer ####", "Token abc"],
)
def test_garbled_authorization_is_refused(client, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization}
    response = post_raw(client, "/vonage/event", json.dumps(EVENT).encode(), headers)
    assert response.status_code == 401


def test_wrong_secret_is_refused(client):
    body = json.dumps(EVENT).encode()
    response = post_raw(client, "/vonage/event", body, signed_headers(body, secret=OTHER_SECRET))
    assert response.status_code == 401


def test_tampered_body_is_refused(client):
    body = json.dumps(EVENT).encode()
    tampered = json.dumps(EVENT | {"status": "completed"}).encode()
    response = post_raw(client, "/vonage/event", tampered, signed_headers(body))
    assert response.status_code == 401


def test_body_without_payload_hash_is_refused(client):
    body = json.dumps(EVENT).encode()
    response = post_raw(client, "/vonage/event", body, signed_headers(body, extra_claims={"payload_hash": None}))
    assert response.status_code == 401


def test_stale_token_is_refused(client, settings):
    body = json.dumps(EVENT).encode()
    stale = int(time.time()) - settings.VONAGE_SIGNATURE_MAX_AGE - 5
    fresh_enough = int(time.time()) - settings.VONAGE_SIGNATURE_MAX_AGE + 30
    assert post_raw(client, "/vonage/event", body, signed_headers(body, iat=stale)).status_code == 401
    assert post_raw(client, "/vonage/event", body, signed_headers(body, iat=fresh_enough)).status_code == 200


def test_token_from_the_future_is_refused(client):
    body = json.dumps(EVENT).encode()
    now = int(time.time())
    assert post_raw(client, "/vonage/event", body, signed_headers(body, iat=now + 120)).status_code == 401
    # Some clock skew is tolerated.
    assert post_raw(client, "/vonage/event", body, signed_headers(body, iat=now + 30)).status_code == 200


@pytest.mark.parametrize("iat", [None, "yesterday"])
def test_missing_or_unreadable_iat_is_refused(client, iat):
    body = json.dumps(EVENT).encode()
    response = post_raw(client, "/vonage/event", body, signed_headers(body, extra_claims={"iat": iat}))
    assert response.status_code == 401


def test_unsigned_algorithm_is_refused(client):
    body = json.dumps(EVENT).encode()
    claims = {"iat": int(time.time()), "payload_hash": hashlib.sha256(body).hexdigest()}
    token = jwt.encode(claims, None, algorithm="none")
    assert post_raw(client, "/vonage/event", body, {"HTTP_AUTHORIZATION": f"Bearer {token}"}).status_code == 401


def test_empty_secret_refuses_every_webhook(client, settings):
    body = json.dumps(EVENT).encode()
    headers = signed_headers(body)
    settings.VONAGE_SIGNATURE_SECRET = ""
    assert post_raw(client, "/vonage/event", body, headers).status_code == 401


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b""])
def test_signed_but_malformed_payload_is_400(client, body):
    response = post_raw(client, "/vonage/event", body, signed_headers(body))
    assert response.status_code == 400


def test_refusals_on_an_ncco_url_are_200_with_the_safe_ncco(client):
    # Vonage never plays the body of a non-2xx answer: a caller hears the safe NCCO only with a 200.
    forged = client.get("/vonage/answer/tok123", {"from": "4915110000001"}, **signed_headers(None, secret=OTHER_SECRET))
    malformed = post_raw(client, "/vonage/answer/tok123", b"{", signed_headers(b"{"))

    for response in (forged, malformed):
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert response.json() == SAFE_NCCO


def test_malformed_webhook_raised_by_the_view_is_200_with_the_safe_ncco(vonage_client):
    response = vonage_client.get_webhook("/vonage/answer/tok123", {"uuid": "leg-1"})
    assert response.status_code == 200
    assert response.json() == SAFE_NCCO


def test_refusals_without_safe_ncco_have_no_ncco(client):
    body = json.dumps(EVENT).encode()
    response = post_raw(client, "/vonage/event", body, signed_headers(body, secret=OTHER_SECRET))
    assert response.status_code == 401 and response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("url", ["/vonage/event", "/vonage/answer/tok123"])
def test_refusal_is_logged_once_with_reason_not_token(client, caplog, url):
    caplog.set_level(logging.INFO)
    body = json.dumps(EVENT).encode()
    headers = signed_headers(body, secret=OTHER_SECRET)
    post_raw(client, url, body, headers)

    lines = [record.getMessage() for record in caplog.records if url in record.getMessage()]
    status = 401 if url == "/vonage/event" else 200
    assert lines == [f"webhook refused path={url} status={status}" + (" answer=safe_ncco" if status == 200 else "")
                     + " reason=bad signature"]
    assert headers["HTTP_AUTHORIZATION"].split()[1] not in caplog.text


def test_verify_signature_returns_the_claims():
    body = json.dumps(EVENT).encode()
    request = RequestFactory().post("/any", data=body, content_type="application/json", **signed_headers(body))
    assert verify_signature(request)["payload_hash"]

    request = RequestFactory().post("/any", data=body, content_type="application/json")
    with pytest.raises(SignatureError):
        verify_signature(request)


def test_lowercase_bearer_scheme_is_accepted(client):
    body = json.dumps(EVENT).encode()
    token = signed_headers(body)["HTTP_AUTHORIZATION"].split()[1]
    assert post_raw(client, "/vonage/event", body, {"HTTP_AUTHORIZATION": f"bearer {token}"}).status_code == 200


# --- a signed token proves one request -------------------------------------------------------------------------


def test_a_token_is_single_use(client):
    body = json.dumps(EVENT).encode()
    headers = signed_headers(body)
    assert post_raw(client, "/vonage/event", body, headers).status_code == 200
    assert post_raw(client, "/vonage/event", body, headers).status_code == 401
    assert WebhookToken.objects.count() == 1


def test_a_get_token_cannot_be_replayed_with_other_query_parameters(client):
    # A GET carries no body, so no payload_hash binds the token to the query: only its single use stops a
    # token seen in a log being sent again with a caller number of the attacker's choosing.
    headers = signed_headers(None)
    first = client.get("/vonage/answer/tok123", {"from": "4915110000001", "uuid": "leg-1"}, **headers)
    replay = client.get("/vonage/answer/tok123", {"from": "4915166666666", "uuid": "leg-2"}, **headers)

    assert first.json() == [{"action": "talk", "text": "Hello 4915110000001 via tok123"}]
    assert replay.status_code == 200 and replay.json() == SAFE_NCCO


def test_a_token_of_another_application_is_refused(client):
    body = json.dumps(EVENT).encode()
    foreign = signed_headers(body, extra_claims={"application_id": "another-application-on-the-same-account"})
    unnamed = signed_headers(body, extra_claims={"application_id": None})
    assert post_raw(client, "/vonage/event", body, foreign).status_code == 401
    assert post_raw(client, "/vonage/event", body, unnamed).status_code == 401
    assert post_raw(client, "/vonage/event", body, signed_headers(body)).status_code == 200


def test_a_token_without_jti_is_refused(client):
    body = json.dumps(EVENT).encode()
    assert post_raw(client, "/vonage/event", body, signed_headers(body, extra_claims={"jti": None})).status_code == 401


def test_payload_hash_of_the_compact_json_matches_a_reformatted_body(client):
    compact = json.dumps(EVENT | {"to": "Zoë"}, separators=(",", ":"), ensure_ascii=False).encode()
    pretty = json.dumps(EVENT | {"to": "Zoë"}, indent=2).encode()  # the same JSON, as a proxy may re-format it
    response = post_raw(client, "/vonage/event", pretty, signed_headers(compact))
    assert response.status_code == 200
    assert response.json()["payload"]["to"] == "Zoë"


def test_the_sweeper_forgets_tokens_too_old_to_replay(client, settings):
    body = json.dumps(EVENT).encode()
    headers = signed_headers(body)
    assert post_raw(client, "/vonage/event", body, headers).status_code == 200
    token = WebhookToken.objects.get()
    # Kept until the token is too old to pass the age check (with the clock skew allowed).
    assert token.expires_at.timestamp() >= time.time() + settings.VONAGE_SIGNATURE_MAX_AGE
    assert forget_expired_tokens(token.expires_at) == 0
    assert sweep(now=token.expires_at + dt.timedelta(seconds=1))["webhook_tokens"] == 1
    assert not WebhookToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_token_sent_to_two_processes_at_once_is_accepted_once():
    # Two web processes, two database connections: the unique jti decides, whoever comes first.
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers on one connection in tests; the race needs PostgreSQL")
    body = json.dumps(EVENT).encode()
    headers = signed_headers(body)
    barrier = threading.Barrier(4)
    statuses = []

    def send():
        try:
            barrier.wait()
            statuses.append(post_raw(VonageWebhookClient(), "/vonage/event", body, headers).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 401, 401, 401]


def test_payload_hash_of_the_compact_json_matches_a_body_with_spaces_after_separators(client):
    # Vonage hashes the compact JSON it serialised; the body may arrive as `{"a": 1, "b": 2}` all the same.
    spaced = json.dumps(EVENT).encode()  # ", " and ": "
    compact = json.dumps(EVENT, separators=(",", ":")).encode()
    assert b", " in spaced and spaced != compact
    response = post_raw(client, "/vonage/event", spaced, signed_headers(compact))
    assert response.status_code == 200 and response.json()["payload"] == EVENT
    # A hash of anything else is still refused.
    other = json.dumps(EVENT | {"status": "completed"}, separators=(",", ":")).encode()
    assert post_raw(client, "/vonage/event", spaced, signed_headers(other)).status_code == 401


def test_a_post_token_cannot_be_replayed_with_another_query_string_or_body(client):
    body = json.dumps(EVENT).encode()
    headers = signed_headers(body)
    assert post_raw(client, "/vonage/event", body, headers).status_code == 200
    assert post_raw(client, "/vonage/event?status=completed", body, headers).status_code == 401
    other = json.dumps(EVENT | {"status": "completed"}).encode()
    assert post_raw(client, "/vonage/event", other, headers).status_code == 401
    assert WebhookToken.objects.count() == 1


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # HS512 wants a longer key: this token is refused anyway
def test_a_token_signed_with_another_algorithm_is_refused(client):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    body = json.dumps(EVENT).encode()
    claims = jwt.decode(signed_headers(body)["HTTP_AUTHORIZATION"].split()[1], options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for token in (jwt.encode(claims, key, algorithm="RS256"), jwt.encode(claims, None, algorithm="none"),
                  jwt.encode(claims, "tests-only-vonage-signature-secret-0123456789", algorithm="HS512")):
        assert post_raw(client, "/vonage/event", body, {"HTTP_AUTHORIZATION": f"Bearer {token}"}).status_code == 401
    assert not WebhookToken.objects.exists()
