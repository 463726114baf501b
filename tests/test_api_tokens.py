"""REST API tokens (django-rest-knox): named, several per user, stored as digests, shown once, revocable one by one,
on the API tokens page and through /api/tokens/.

Personas: alice (Acme owner) makes tokens for her scripts; bob (Acme responder) has his own and sees none of hers;
sam (support staff) sees in the admin that tokens exist, never their values. Other accounts' tokens are covered by
the generated isolation tests (test_api_isolation.py, test_web_isolation.py).
"""
import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from knox.crypto import hash_token
from rest_framework.test import APIClient

from callrouting import configuration
from escalation.models import ApiToken


def api(value):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {value}")
    return client


def database_text():
    """Every row of every table of the database, as text."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dump.append(f"{table}: {cursor.fetchall()!r}")
    return "\n".join(dump)


def test_a_tokens_value_is_nowhere_in_the_database(client, alice):
    client.force_login(alice)
    page = client.post(reverse("web:api-tokens"), {"name": "Grafana", "expires_in": "90"})
    from_page = page.context["created"]["value"]
    from_api = api(from_page).post("/api/tokens/", {"name": "Deploy script"}, format="json").json()["token"]

    dump = database_text()
    assert "Grafana" in dump and "Deploy script" in dump  # the dump does see the tokens' rows
    for value in (from_page, from_api):
        assert len(value) == 64
        assert value not in dump
        # Only the first 15 characters (knox's lookup key) are stored beside the digest: the rest is secret.
        assert value[15:] not in dump and value[-20:] not in dump
        assert api(value).get("/api/numbers/").status_code == 200


def test_the_page_shows_a_new_token_once_and_revokes_one_by_one(client, alice, bob):
    client.force_login(alice)
    assert b"You have no API tokens." in client.get(reverse("web:api-tokens")).content

    first = client.post(reverse("web:api-tokens"), {"name": "  Grafana   dashboard ", "expires_in": ""})
    value = first.context["created"]["value"]
    assert first.status_code == 200 and value.encode() in first.content
    assert "no-store" in first["Cache-Control"]
    second = client.post(reverse("web:api-tokens"), {"name": "Nightly export", "expires_in": "30"})
    other = second.context["created"]["value"]

    listing = client.get(reverse("web:api-tokens"))
    html = listing.content.decode()
    assert "Grafana dashboard" in html and "Nightly export" in html
    assert value not in html and other not in html  # shown once, never again
    tokens = {t.name: t for t in listing.context["tokens"]}
    assert tokens["Grafana dashboard"].expiry is None
    assert dt.timedelta(days=29) < tokens["Nightly export"].expiry - timezone.now() <= dt.timedelta(days=30)

    bad = client.post(reverse("web:api-tokens"), {"name": "", "expires_in": "7"})
    assert bad.status_code == 400 and set(bad.context["form"].errors) == {"name", "expires_in"}
    assert ApiToken.objects.filter(user=alice).count() == 2

    # Revoking one token leaves the other working.
    revoke = reverse("web:api-token-revoke", args=[tokens["Grafana dashboard"].pk])
    assert "Grafana dashboard" in client.get(revoke).content.decode()
    assert client.post(revoke).status_code == 302
    assert api(value).get("/api/numbers/").status_code == 401
    assert api(other).get("/api/numbers/").status_code == 200

    # bob, of the same account, can neither see nor revoke alice's tokens.
    client.force_login(bob)
    assert "Nightly export" not in client.get(reverse("web:api-tokens")).content.decode()
    bobs_view = reverse("web:api-token-revoke", args=[tokens["Nightly export"].pk])
    assert client.get(bobs_view).status_code == 404 and client.post(bobs_view).status_code == 404
    assert api(other).get("/api/numbers/").status_code == 200


def test_tokens_through_the_api(alice, bob):
    _, value = configuration.create_api_token(alice, "bootstrap")
    alice_api = api(value)
    in_a_week = (timezone.now() + dt.timedelta(days=7)).isoformat()
    created = alice_api.post("/api/tokens/", {"name": "CI", "expiry": in_a_week}, format="json")
    assert created.status_code == 201, created.json()
    assert created["Cache-Control"] == "no-store"
    body = created.json()
    assert set(body) == {"id", "name", "created", "last_used", "expiry", "token"} and body["last_used"] is None

    listed = alice_api.get("/api/tokens/").json()
    assert [t["name"] for t in listed["results"]] == ["CI", "bootstrap"]
    assert all("token" not in t for t in listed["results"])
    assert "token" not in alice_api.get(f"/api/tokens/{body['id']}/").json()
    # The token used for these requests has its last use recorded; the new one has none yet.
    assert {t["name"]: t["last_used"] is not None for t in listed["results"]} == {"CI": False, "bootstrap": True}

    past = alice_api.post("/api/tokens/", {"name": "Old", "expiry": "2020-01-01T00:00Z"}, format="json")
    assert past.status_code == 400 and list(past.json()) == ["expiry"]
    nameless = alice_api.post("/api/tokens/", {"name": ""}, format="json")
    assert nameless.status_code == 400 and list(nameless.json()) == ["name"]
    assert alice_api.patch(f"/api/tokens/{body['id']}/", {"name": "X"}, format="json").status_code == 405

    # bob (same account) sees only his own tokens, and alice's is a 404 for him.
    _, bobs = configuration.create_api_token(bob, "bob's")
    assert [t["name"] for t in api(bobs).get("/api/tokens/").json()["results"]] == ["bob's"]
    assert api(bobs).delete(f"/api/tokens/{body['id']}/").status_code == 404

    assert api(body["token"]).get("/api/incidents/").status_code == 200
    assert alice_api.delete(f"/api/tokens/{body['id']}/").status_code == 204
    assert api(body["token"]).get("/api/incidents/").status_code == 401
    assert alice_api.get("/api/incidents/").status_code == 200


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token caf\xe9", "Token " + "0" * 64, "Bearer x"])
def test_malformed_and_wrong_tokens_are_401(header, alice):
    response = APIClient().get("/api/numbers/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_last_use_is_written_at_most_once_a_minute(alice):
    token, value = configuration.create_api_token(alice, "poller")
    client = api(value)
    client.get("/api/tokens/")
    token.refresh_from_db()
    first_use = token.last_used
    assert first_use is not None
    client.get("/api/tokens/")
    token.refresh_from_db()
    assert token.last_used == first_use
    ApiToken.objects.filter(pk=token.pk).update(last_used=first_use - dt.timedelta(minutes=2))
    client.get("/api/tokens/")
    token.refresh_from_db()
    assert token.last_used > first_use


def test_an_expired_token_stops_working(alice):
    token, value = configuration.create_api_token(alice, "short-lived", timezone.now() + dt.timedelta(hours=1))
    assert api(value).get("/api/numbers/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    assert api(value).get("/api/numbers/").status_code == 401


def test_support_staff_see_tokens_in_the_admin_but_not_their_values(client, sam, alice):
    token, value = configuration.create_api_token(alice, "Grafana")
    client.force_login(sam)
    listing = client.get("/admin/escalation/apitoken/").content.decode()
    detail = client.get(f"/admin/escalation/apitoken/{token.pk}/change/").content.decode()
    assert "Grafana" in listing and "Grafana" in detail
    for html in (listing, detail):
        assert value not in html and value[:15] not in html and token.digest not in html
    assert client.get("/admin/escalation/apitoken/add/").status_code == 403
    client.post(f"/admin/escalation/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert api(value).get("/api/numbers/").status_code == 401


def test_plain_text_tokens_of_drf_authtoken_are_moved_to_digests(alice):
    """The data migration (escalation 0002): an old `Authorization: Token <key>` keeps working, stored as a
    digest, and the plain-text key is deleted."""
    migration = importlib.import_module("escalation.migrations.0002_api_tokens")
    key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    created = timezone.now() - dt.timedelta(days=400)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp with time zone, "
                       "user_id bigint)" if connection.vendor == "postgresql" else
                       "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created datetime, user_id bigint)")
        cursor.execute("INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
                       [key, created, alice.pk])

    migration.hash_plain_text_tokens(apps, type("SchemaEditor", (), {"connection": connection})())

    token = ApiToken.objects.get(user=alice)
    assert token.name == migration.MIGRATED_NAME and token.digest == hash_token(key)
    assert abs(token.created - created) < dt.timedelta(seconds=1)
    assert key not in database_text()
    assert api(key).get("/api/numbers/").status_code == 200
