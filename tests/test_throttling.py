"""Guessing is throttled, written as the attacker would try it: passwords at the product login and the Django admin
(django-axes), and the REST API (DRF throttles) for anonymous clients, signed-in users and invalid tokens.

The suite runs with throttle rates far above what it sends (tests/settings.py); these tests set real, low rates.
Personas: bob (Acme responder) is the account being guessed at; alice (Acme owner) and carol use the API;
sam (support staff) logs in to the admin.
"""
import pytest
from django.core.cache import cache
from django.core.management import call_command

from callrouting import configuration
from tests.browser import PASSWORD

ATTACKER = "203.0.113.7"
OFFICE = "198.51.100.20"


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def low_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anonymous": "3/min", "user": "5/min", "failed_token": "3/min"},
    }


def client_class(client):
    """A new client of the same kind: another browser, without CLIENT's cookies."""
    return type(client)()


def log_in(client, username, password, address=ATTACKER, path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


# --- Logins ---------------------------------------------------------------------------------------------------


def test_the_correct_password_after_a_dozen_failures_does_not_log_in(client, bob, settings):
    assert settings.AXES_FAILURE_LIMIT < 12
    for attempt in range(12):
        response = log_in(client, "bob", f"guess-{attempt}")
        assert response.status_code in (200, 429)
    locked = log_in(client, "bob", PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert "Too many failed logins" in locked.content.decode()
    assert f"locked for {settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in locked.content.decode()

    # The lockout is of this username from this address: bob at the office still logs in.
    office = client_class(client)
    assert log_in(office, "bob", PASSWORD, address=OFFICE).status_code == 302

    # The documented unlock.
    call_command("axes_reset_username", "bob")
    assert log_in(client, "bob", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(bob.pk)


def test_the_lockout_starts_at_the_failure_limit(client, bob, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for attempt in range(2):
        assert log_in(client, "bob", f"guess-{attempt}").status_code == 200
    assert log_in(client, "bob", "guess-3").status_code == 429
    assert log_in(client, "bob", PASSWORD).status_code == 429


def test_the_admin_login_locks_out_too(client, sam, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "sam", f"guess-{attempt}", path="/admin/login/")
    locked = log_in(client, "sam", PASSWORD, path="/admin/login/")
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Failures at the admin count for the product login as well.
    assert log_in(client, "sam", PASSWORD).status_code == 429
    call_command("axes_reset_ip", ATTACKER)
    assert log_in(client, "sam", PASSWORD, path="/admin/login/").status_code == 302


def test_a_forged_forwarded_for_header_does_not_escape_the_lockout(client, bob, settings):
    """With no trusted proxy (TRUSTED_PROXY_COUNT=0) the address is REMOTE_ADDR, whatever X-Forwarded-For says."""
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "bob", "password": f"guess-{attempt}"}, REMOTE_ADDR=ATTACKER,
                    HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}")
    response = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}, REMOTE_ADDR=ATTACKER,
                           HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert response.status_code == 429


# --- REST API -------------------------------------------------------------------------------------------------


def api_client(client, token=None, address=ATTACKER, **headers):
    fresh = client_class(client)
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Token {token}"
    return lambda path: fresh.get(path, REMOTE_ADDR=address, **headers)


def assert_throttled(response):
    assert response.status_code == 429, response.status_code
    assert int(response["Retry-After"]) > 0


def test_anonymous_requests_are_throttled_per_address(client, low_rates, acme):
    get = api_client(client)
    for _ in range(3):
        assert get("/api/schema/").status_code == 200
    assert_throttled(get("/api/schema/"))
    assert api_client(client, address=OFFICE)("/api/schema/").status_code == 200


def test_signed_in_users_are_throttled_per_user(client, low_rates, alice, carol):
    _, alices = configuration.create_api_token(alice, "script")
    _, carols = configuration.create_api_token(carol, "script")
    get = api_client(client, alices)
    for _ in range(5):
        assert get("/api/numbers/").status_code == 200
    assert_throttled(get("/api/numbers/"))
    # Per user, not per address: alice from the office is still throttled, carol from the same address is not.
    assert_throttled(api_client(client, alices, address=OFFICE)("/api/numbers/"))
    assert api_client(client, carols)("/api/numbers/").status_code == 200


def test_invalid_tokens_are_throttled_per_address_and_then_block_every_token(client, low_rates, alice):
    _, valid = configuration.create_api_token(alice, "script")
    for guess in range(3):
        assert api_client(client, f"{guess:064x}")("/api/numbers/").status_code == 401
    # The bucket is full: the next guess gets 429 without being checked, and so would a right one.
    assert_throttled(api_client(client, "f" * 64)("/api/numbers/"))
    assert_throttled(api_client(client, valid)("/api/numbers/"))
    # Another address is not affected, and requests without a token are not counted as failed tokens.
    assert api_client(client, valid, address=OFFICE)("/api/numbers/").status_code == 200
    assert api_client(client)("/api/numbers/").status_code == 401


def test_the_client_address_behind_a_trusted_proxy(client, low_rates, settings, alice):
    """Behind one proxy (TRUSTED_PROXY_COUNT=1) the client is the last X-Forwarded-For entry; what the client
    wrote before it is ignored."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "10.0.0.2"
    for guess in range(3):
        forged = f"192.0.2.{guess}, {ATTACKER}"
        api_client(client, f"{guess:064x}", address=proxy, HTTP_X_FORWARDED_FOR=forged)("/api/numbers/")
    assert_throttled(api_client(client, "0" * 64, address=proxy, HTTP_X_FORWARDED_FOR=ATTACKER)("/api/numbers/"))
    _, valid = configuration.create_api_token(alice, "script")
    assert api_client(client, valid, address=proxy, HTTP_X_FORWARDED_FOR=OFFICE)("/api/numbers/").status_code == 200
