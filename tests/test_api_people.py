"""REST API of people: adding and inviting (owners and admins), roles, deactivation, and contact methods and
notification rules that responders edit for themselves only, with test calls and SMS through the fake Vonage API.

Personas: alice owns Acme, bob and carol are Acme responders. Isolation between accounts is generated in
test_api_isolation.py (it covers these endpoints and their actions).
"""
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from callrouting import configuration
from escalation import people
from escalation.models import ContactMethod, NotificationRule, User
from tests.test_api_resources import api_as

pytestmark = pytest.mark.django_db


def test_an_admin_adds_invites_changes_the_role_and_deactivates(acme, alice, bob, settings):
    settings.PUBLIC_BASE_URL = "https://callrouting.test"
    api = api_as(alice)
    made = api.post("/api/users/", {"first_name": "Dana", "email": "dana@example.com", "role": "responder"}, format="json")
    assert made.status_code == 201, made.json()
    dana = User.objects.get(pk=made.json()["id"])
    assert dana.account == acme and not dana.has_usable_password() and made.json()["is_active"]
    twice = api.post("/api/users/", {"first_name": "D", "email": "DANA@example.com"}, format="json")
    assert twice.status_code == 400 and "email" in twice.json()
    invited = api.post(f"/api/users/{dana.pk}/invite/").json()
    assert invited["url"].startswith("https://callrouting.test/accounts/invitation/") and invited["emailed"] is False
    assert api.post(f"/api/users/{dana.pk}/role/", {"role": "admin"}, format="json").json()["role"] == "admin"
    assert api.post(f"/api/users/{dana.pk}/role/", {"role": "chief"}, format="json").status_code == 400
    assert api.post(f"/api/users/{dana.pk}/deactivate/").json()["is_active"] is False
    assert [u["username"] for u in api.get("/api/users/", {"is_active": "false"}).json()["results"]] == ["dana@example.com"]
    assert api.post(f"/api/users/{dana.pk}/invite/").status_code == 400
    assert api.post(f"/api/users/{dana.pk}/reactivate/").json()["is_active"] is True
    # Not oneself.
    assert api.post(f"/api/users/{alice.pk}/deactivate/").status_code == 403
    assert api.post(f"/api/users/{alice.pk}/role/", {"role": "responder"}, format="json").status_code == 403
    assert User.objects.get(pk=alice.pk).is_active and User.objects.get(pk=alice.pk).role == "owner"


def test_a_responder_edits_only_their_own_contact_methods_and_rules(alice, bob):
    api = api_as(bob)
    alice_phone = alice.contact_methods.get()
    assert api.post("/api/users/", {"first_name": "Eve", "email": "eve@example.com"}, format="json").status_code == 403
    assert api.post(f"/api/users/{bob.pk}/role/", {"role": "owner"}, format="json").status_code == 403
    assert api.post(f"/api/users/{alice.pk}/deactivate/").status_code == 403
    others = api.post("/api/contact-methods/", {"user": alice.pk, "kind": "email", "value": "a@example.com"}, format="json")
    assert others.status_code == 400 and list(others.json()) == ["user"]
    assert api.patch(f"/api/contact-methods/{alice_phone.pk}/", {"value": "+4915199999999"}, format="json").status_code == 403
    assert api.delete(f"/api/contact-methods/{alice_phone.pk}/").status_code == 403
    assert api.post(f"/api/contact-methods/{alice_phone.pk}/test-call/").status_code == 403
    rule = alice.notification_rules.get()
    assert api.delete(f"/api/notification-rules/{rule.pk}/").status_code == 403
    assert ContactMethod.objects.filter(pk=alice_phone.pk, value="+4915110000001").exists()
    assert NotificationRule.objects.filter(pk=rule.pk).exists()

    mine = api.post("/api/contact-methods/", {"user": bob.pk, "kind": "phone", "value": "+49 151 2345 6789"}, format="json")
    assert mine.status_code == 201 and mine.json()["value"] == "+4915123456789"
    moved = api.patch(f"/api/contact-methods/{mine.json()['id']}/", {"user": alice.pk}, format="json")
    assert moved.status_code == 400 and list(moved.json()) == ["user"]
    bad = api.post("/api/contact-methods/", {"user": bob.pk, "kind": "phone", "value": "12345"}, format="json")
    assert bad.status_code == 400 and "for example +49 30 1234567" in bad.json()["value"][0]
    sms = api.post("/api/notification-rules/",
                   {"user": bob.pk, "channel": "sms", "contact_method": mine.json()["id"], "delay_minutes": 3}, format="json")
    assert sms.status_code == 201, sms.json()
    foreign = api.post("/api/notification-rules/",
                       {"user": bob.pk, "channel": "voice", "contact_method": alice_phone.pk}, format="json")
    assert foreign.status_code == 400 and "contact_method" in foreign.json()


def test_test_call_and_sms_through_the_api(alice, bob, vonage_api):
    api = api_as(bob)
    phone = bob.contact_methods.get()
    placed = api.post(f"/api/contact-methods/{phone.pk}/test-call/")
    assert placed.status_code == 202 and placed.json()["provider_id"]
    assert [c["to"][0]["number"] for c in vonage_api.calls_created()] == ["4915110000002"]
    assert api.post(f"/api/contact-methods/{phone.pk}/test-call/").status_code == 429
    assert api.post(f"/api/contact-methods/{phone.pk}/test-sms/").status_code == 202
    assert [s["to"] for s in vonage_api.sms_sent()] == ["4915110000002"]
    email = ContactMethod.objects.create(user=bob, kind="email", value="bob@example.com")
    refused = api.post(f"/api/contact-methods/{email.pk}/test-call/")
    assert refused.status_code == 400 and "phone numbers only" in refused.json()["detail"]
    assert len(vonage_api.calls_created()) == 1


def test_deactivation_ends_the_persons_sessions_and_api_tokens(client, alice, bob):
    _, value = configuration.create_api_token(bob, "bob's script")
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {value}")
    client.force_login(bob)
    assert token_client.get("/api/incidents/").status_code == 200
    assert client.get(reverse("web:me")).status_code == 200
    people.set_active(bob, False, changed_by=alice)
    assert token_client.get("/api/incidents/").status_code == 401
    assert client.get(reverse("web:me")).status_code == 302  # to the login page: the session is no longer his
