"""REST API: token authentication, create/update/validation of each resource (errors name the field), incidents
accept/resolve through the services, the call log, pagination and filters.

Personas: alice owns Acme (writes), bob is an Acme responder (reads, accepts, resolves), sam is support staff
(no API: he has no account). Isolation between accounts is in test_api_isolation.py.
"""
import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from callrouting import configuration
from callrouting.models import RoutingOption
from escalation.models import EscalationPolicy, ScheduleOverride
from incidents.models import Incident
from tests.settings_world import world


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def acme_world(acme, alice, bob):
    return world(acme, alice, bob)


def api_as(user):
    client = APIClient()
    _, value = configuration.create_api_token(user, "tests")
    client.credentials(HTTP_AUTHORIZATION=f"Token {value}")
    return client


@pytest.fixture
def alice_api(alice):
    return api_as(alice)


@pytest.fixture
def bob_api(bob):
    return api_as(bob)


def test_token_is_required(acme_world):
    assert APIClient().get("/api/numbers/").status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.get("/api/numbers/").status_code == 401


def test_support_staff_have_no_api(sam):
    assert api_as(sam).get("/api/numbers/").status_code == 403


def test_list_is_paginated_and_filtered(alice_api, acme_world):
    page = alice_api.get("/api/routing-options/", {"page_size": 1}).json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]
    only = alice_api.get("/api/routing-options/", {"routing_number": acme_world.number.pk, "escalation_policy": acme_world.policy.pk}).json()
    assert only["count"] == 2
    bad = alice_api.get("/api/routing-options/", {"routing_number": 999999})
    assert bad.status_code == 400 and "routing_number" in bad.json()


# --- Routing numbers and options ------------------------------------------------------------------------------


def test_number_update_and_validation(alice_api, acme_world):
    url = f"/api/numbers/{acme_world.number.pk}/"
    data = alice_api.get(url).json()
    assert data["greeting_preview"].startswith("Welcome to Acme. Press 1 or say Outage")
    changed = alice_api.patch(url, {"greeting": "Hi.", "greeting_only": True, "phone_number": "+4930999"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["greeting_preview"] == "Hi."
    assert changed.json()["phone_number"] == acme_world.number.phone_number  # read-only: support staff change it
    errors = alice_api.patch(url, {"ringing_timeout": 1, "language": "xx-XX", "name": ""}, format="json")
    assert errors.status_code == 400 and set(errors.json()) == {"ringing_timeout", "language", "name"}
    assert alice_api.post("/api/numbers/", {"phone_number": "+4930901999", "name": "X"}).status_code == 405
    assert alice_api.delete(url).status_code == 405


def test_voicemail_settings(alice_api, acme_world):
    url = f"/api/numbers/{acme_world.number.pk}/voicemail/"
    assert alice_api.get(url).json()["voicemail_enabled"] is False
    ok = alice_api.patch(url, {"voicemail_enabled": True, "voicemail_max_length": 30}, format="json")
    assert ok.status_code == 200 and ok.json()["voicemail_max_length"] == 30
    bad = alice_api.put(url, {"voicemail_enabled": True, "voicemail_max_length": 99999}, format="json")
    assert bad.status_code == 400 and list(bad.json()) == ["voicemail_max_length"]


def test_who_would_be_called_now(bob_api, acme_world, alice):
    data = bob_api.get(f"/api/numbers/{acme_world.number.pk}/on-call/").json()
    assert [row["digit"] for row in data] == [1, 2]
    assert data[0]["users"][0] == {"id": alice.pk, "name": "Alice"}


def test_routing_option_create_update_and_errors(alice_api, acme_world, globex):
    w = acme_world
    created = alice_api.post(
        "/api/routing-options/",
        {"routing_number": w.number.pk, "digit": 3, "label": "  Sales   team ", "escalation_policy": w.policy.pk},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["label"] == "Sales team" and created.json()["position"] == 2
    option_url = f"/api/routing-options/{created.json()['id']}/"
    assert alice_api.patch(option_url, {"simultaneous": True}, format="json").json()["simultaneous"] is True
    duplicate = alice_api.patch(option_url, {"digit": 1}, format="json")
    assert duplicate.status_code == 400 and list(duplicate.json()) == ["digit"]
    out_of_range = alice_api.patch(option_url, {"digit": 0}, format="json")
    assert out_of_range.status_code == 400 and list(out_of_range.json()) == ["digit"]
    foreign = EscalationPolicy.objects.create(account=globex, name="Globex")
    leak = alice_api.patch(option_url, {"escalation_policy": foreign.pk}, format="json")
    assert leak.status_code == 400 and list(leak.json()) == ["escalation_policy"]
    assert "does not exist" in leak.json()["escalation_policy"][0]
    assert alice_api.delete(option_url).status_code == 204
    assert not RoutingOption.objects.filter(label="Sales team").exists()


def test_responders_read_but_do_not_write(bob_api, acme_world):
    assert bob_api.get("/api/routing-options/").status_code == 200
    refused = bob_api.patch(f"/api/routing-options/{acme_world.option.pk}/", {"label": "X"}, format="json")
    assert refused.status_code == 403
    assert bob_api.post("/api/escalation-policies/", {"name": "X"}, format="json").status_code == 403


# --- Escalation policies and rules ----------------------------------------------------------------------------


def test_policy_create_update_and_errors(alice_api, acme_world):
    created = alice_api.post("/api/escalation-policies/", {"name": "Nights", "repeat_count": 1}, format="json")
    assert created.status_code == 201
    url = f"/api/escalation-policies/{created.json()['id']}/"
    assert alice_api.patch(url, {"description": "After hours"}, format="json").json()["description"] == "After hours"
    duplicate = alice_api.post("/api/escalation-policies/", {"name": acme_world.policy.name}, format="json")
    assert duplicate.status_code == 400 and list(duplicate.json()) == ["name"]
    too_many = alice_api.patch(url, {"repeat_count": 11}, format="json")
    assert too_many.status_code == 400 and list(too_many.json()) == ["repeat_count"]
    in_use = alice_api.delete(f"/api/escalation-policies/{acme_world.policy.pk}/")
    assert in_use.status_code == 400 and "Still used" in in_use.json()["detail"]
    assert alice_api.delete(url).status_code == 204


def test_rule_create_update_and_errors(alice_api, acme_world, alice, bob, charlie):
    w = acme_world
    url = "/api/escalation-rules/"
    created = alice_api.post(
        url, {"policy": w.policy.pk, "position": 1, "escalation_timeout_minutes": 5, "users": [bob.pk, alice.pk],
              "schedules": [w.schedule.pk]}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["users"] == [bob.pk, alice.pk] and created.json()["schedules"] == [w.schedule.pk]
    rule_url = f"{url}{created.json()['id']}/"
    updated = alice_api.patch(rule_url, {"users": [alice.pk]}, format="json").json()
    assert updated["users"] == [alice.pk] and updated["schedules"] == [w.schedule.pk]
    nobody = alice_api.post(url, {"policy": w.policy.pk, "users": [], "schedules": []}, format="json")
    assert nobody.status_code == 400 and list(nobody.json()) == ["users"]
    foreign_user = alice_api.patch(rule_url, {"users": [charlie.pk]}, format="json")
    assert foreign_user.status_code == 400 and list(foreign_user.json()) == ["users"]
    twice = alice_api.patch(rule_url, {"users": [alice.pk, alice.pk]}, format="json")
    assert twice.status_code == 400 and list(twice.json()) == ["users"]
    timeout = alice_api.patch(rule_url, {"escalation_timeout_minutes": 0}, format="json")
    assert timeout.status_code == 400 and list(timeout.json()) == ["escalation_timeout_minutes"]
    on_call = alice_api.get(f"/api/escalation-policies/{w.policy.pk}/on-call/").json()
    assert on_call[0]["id"] == alice.pk


# --- Schedules, layers, restrictions, overrides ----------------------------------------------------------------


def test_schedule_and_layer_create_update_and_errors(alice_api, acme_world, alice, bob):
    created = alice_api.post("/api/schedules/", {"name": "Weekend", "timezone": "Europe/Berlin"}, format="json")
    assert created.status_code == 201
    schedule = created.json()["id"]
    bad_tz = alice_api.post("/api/schedules/", {"name": "X", "timezone": "Mars/Base"}, format="json")
    assert bad_tz.status_code == 400 and list(bad_tz.json()) == ["timezone"]
    duplicate = alice_api.patch(f"/api/schedules/{schedule}/", {"name": acme_world.schedule.name}, format="json")
    assert duplicate.status_code == 400 and list(duplicate.json()) == ["name"]
    layer = {"schedule": schedule, "level": 1, "shift_length": 1, "shift_unit": "days", "start_date": "2026-01-05",
             "handoff_time": "09:00", "members": [alice.pk, bob.pk]}
    made = alice_api.post("/api/rotation-layers/", layer, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["members"] == [alice.pk, bob.pk]
    layer_url = f"/api/rotation-layers/{made.json()['id']}/"
    assert alice_api.patch(layer_url, {"members": [bob.pk, alice.pk, bob.pk]}, format="json").json()["members"] == [
        bob.pk, alice.pk, bob.pk]
    same_level = alice_api.post("/api/rotation-layers/", layer, format="json")
    assert same_level.status_code == 400 and list(same_level.json()) == ["level"]
    no_members = alice_api.post("/api/rotation-layers/", {**layer, "level": 2, "members": []}, format="json")
    assert no_members.status_code == 400 and list(no_members.json()) == ["members"]
    backwards = alice_api.patch(layer_url, {"end_date": "2025-01-01"}, format="json")
    assert backwards.status_code == 400 and list(backwards.json()) == ["end_date"]
    restriction = alice_api.post("/api/layer-restrictions/", {"layer": made.json()["id"], "weekday": 0,
                                                               "start_time": "09:00", "end_time": "17:00"}, format="json")
    assert restriction.status_code == 201
    always = alice_api.post("/api/layer-restrictions/", {"layer": made.json()["id"], "start_time": "09:00",
                                                          "end_time": "09:00"}, format="json")
    assert always.status_code == 400 and list(always.json()) == ["end_time"]
    shifts = alice_api.get(f"/api/schedules/{schedule}/shifts/", {"days": 8})
    assert shifts.status_code == 200 and shifts.json()
    assert alice_api.get(f"/api/schedules/{schedule}/shifts/", {"days": "lots"}).status_code == 400


def test_override_create_and_errors(alice_api, acme_world, alice, charlie):
    w = acme_world
    start = timezone.now() + dt.timedelta(days=20)
    body = {"schedule": w.schedule.pk, "user": alice.pk, "start": start.isoformat(), "end": (start + dt.timedelta(hours=4)).isoformat()}
    assert alice_api.post("/api/schedule-overrides/", body, format="json").status_code == 201
    overlap = alice_api.post("/api/schedule-overrides/", body, format="json")
    assert overlap.status_code == 400 and list(overlap.json()) == ["start"]
    backwards = alice_api.post("/api/schedule-overrides/", {**body, "end": body["start"], "start": body["end"]}, format="json")
    assert backwards.status_code == 400 and list(backwards.json()) == ["end"]
    foreign = alice_api.post("/api/schedule-overrides/", {**body, "user": charlie.pk}, format="json")
    assert foreign.status_code == 400 and list(foreign.json()) == ["user"]
    assert ScheduleOverride.objects.filter(schedule=w.schedule).count() == 2


# --- People, alert actions ---------------------------------------------------------------------------------------


def test_users_and_contact_methods(alice_api, bob_api, acme_world, alice, bob):
    users = bob_api.get("/api/users/").json()["results"]
    assert {u["username"] for u in users} == {"alice", "bob"}
    # A responder sees their own contact methods, not their colleagues' (test_security_attacks.py).
    contacts = {u["username"]: u["contact_methods"] for u in users}
    assert contacts["bob"][0]["value"].startswith("+49") and contacts["alice"] == []
    # Responders do not add people (owners and admins do, see test_api_people.py).
    assert bob_api.post("/api/users/", {"first_name": "Eve", "email": "eve@example.com"}, format="json").status_code == 403
    made = alice_api.post("/api/contact-methods/", {"user": bob.pk, "kind": "phone", "value": "+49 151 1000 0077"}, format="json")
    assert made.status_code == 201 and made.json()["value"] == "+4915110000077"
    bad = alice_api.post("/api/contact-methods/", {"user": bob.pk, "kind": "phone", "value": "12"}, format="json")
    assert bad.status_code == 400 and list(bad.json()) == ["value"]
    again = alice_api.post("/api/contact-methods/", {"user": bob.pk, "kind": "phone", "value": "+4915110000077"}, format="json")
    assert again.status_code == 400 and list(again.json()) == ["value"]


def test_alert_actions(alice_api, acme_world):
    body = {"alert_source": acme_world.alert_source.pk, "name": "Teams", "kind": "teams",
            "url": "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"}
    made = alice_api.post("/api/alert-actions/", body, format="json")
    assert made.status_code == 201
    bad = alice_api.patch(f"/api/alert-actions/{made.json()['id']}/", {"url": "ftp:/nope", "kind": "pager"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"url", "kind"}
    assert alice_api.get("/api/alert-sources/").json()["results"][0]["name"] == "Acme support"


# --- Incidents and the call log ---------------------------------------------------------------------------------


def test_incidents_list_accept_resolve(bob_api, acme_world, bob):
    w = acme_world
    listed = bob_api.get("/api/incidents/", {"status": "pending", "routing_number": w.number.pk}).json()
    assert [i["id"] for i in listed["results"]] == [w.incident.pk]
    assert listed["results"][0]["routing_number"] == w.number.pk
    assert bob_api.get("/api/incidents/", {"status": "resolved"}).json()["results"] == []
    assert bob_api.get("/api/incidents/", {"status": "bogus"}).status_code == 400
    accepted = bob_api.post(f"/api/incidents/{w.incident.pk}/accept/")
    assert accepted.status_code == 200 and accepted.json()["changed"] is True
    assert accepted.json()["incident"]["status"] == "accepted" and accepted.json()["incident"]["assigned_to"] == bob.pk
    assert bob_api.post(f"/api/incidents/{w.incident.pk}/accept/").json()["changed"] is False
    resolved = bob_api.post(f"/api/incidents/{w.incident.pk}/resolve/").json()
    assert resolved["changed"] is True and resolved["incident"]["status"] == "resolved"
    detail = bob_api.get(f"/api/incidents/{w.incident.pk}/").json()
    assert [e["kind"] for e in detail["events"]][-2:] == ["accepted", "resolved"]
    assert Incident.objects.get(pk=w.incident.pk).resolved_at is not None
    assert bob_api.patch(f"/api/incidents/{w.incident.pk}/", {"status": "pending"}, format="json").status_code == 405


def test_call_log(bob_api, acme_world):
    calls = bob_api.get("/api/calls/", {"outcome": "voicemail"}).json()["results"]
    assert len(calls) == 1
    call = calls[0]
    assert call["legs"][0]["status"] == "no_answer"
    assert call["voicemail"]["transcript"] == "Please call me back."
    assert call["voicemail"]["recording_url"].endswith(f"/calls/{acme_world.call.pk}/voicemail.mp3")
    assert bob_api.get("/api/calls/", {"started_after": "not-a-date"}).status_code == 400
    assert bob_api.delete(f"/api/calls/{acme_world.call.pk}/").status_code == 405


def test_deactivated_people_are_not_added_but_may_stay(alice_api, acme_world, alice, bob):
    """As in the web forms: nobody deactivated is newly put on a rota, a rule or an override; one already there
    stays when the rest of the row is edited."""
    w = acme_world
    layer = {"schedule": w.schedule.pk, "level": 7, "shift_length": 1, "shift_unit": "days",
             "start_date": "2026-01-05", "handoff_time": "09:00", "members": [alice.pk, bob.pk]}
    made = alice_api.post("/api/rotation-layers/", layer, format="json")
    assert made.status_code == 201, made.json()
    rule = alice_api.post("/api/escalation-rules/", {"policy": w.policy.pk, "position": 5, "users": [bob.pk]},
                          format="json")
    assert rule.status_code == 201, rule.json()
    bob.is_active = False
    bob.save(update_fields=["is_active"])

    layer_url = f"/api/rotation-layers/{made.json()['id']}/"
    kept = alice_api.patch(layer_url, {"members": [bob.pk, alice.pk], "name": "Renamed"}, format="json")
    assert kept.status_code == 200, kept.json()
    again = alice_api.post("/api/rotation-layers/", {**layer, "level": 8}, format="json")
    assert again.status_code == 400 and list(again.json()) == ["members"]
    assert "Deactivated" in again.json()["members"][0]

    rule_url = f"/api/escalation-rules/{rule.json()['id']}/"
    assert alice_api.patch(rule_url, {"escalation_timeout_minutes": 9}, format="json").status_code == 200
    new_rule = alice_api.post("/api/escalation-rules/", {"policy": w.policy.pk, "position": 6,
                                                         "users": [alice.pk, bob.pk]}, format="json")
    assert new_rule.status_code == 400 and list(new_rule.json()) == ["users"]

    start = timezone.now() + dt.timedelta(days=40)
    override = {"schedule": w.schedule.pk, "user": bob.pk, "start": start.isoformat(),
                "end": (start + dt.timedelta(hours=2)).isoformat()}
    refused = alice_api.post("/api/schedule-overrides/", override, format="json")
    assert refused.status_code == 400 and list(refused.json()) == ["user"]
    assert not ScheduleOverride.objects.filter(user=bob, start=start).exists()
