"""Isolation of the REST API, generated over the router's registry (not hand-picked).

Personas: charlie is an admin of Globex (so permissions never stop him, only scoping can). For every registered
endpoint he gets 404 for Acme's object with every method the endpoint has, and for every detail action
(accept, resolve, voicemail, on-call, shifts); lists show none of Acme's rows.
"""
import pytest
from django.db import models
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from callrouting import configuration
from callrouting.api.urls import router
from incidents.models import Incident
from tests.factories import UserFactory
from tests.settings_world import world


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def worlds(acme, alice, bob, globex, charlie):
    dave = UserFactory(account=globex, username="dave", first_name="Dave", phone="+4915110000008")
    return world(acme, alice, bob), world(globex, charlie, dave)


@pytest.fixture
def charlie_api(charlie):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {configuration.create_api_token(charlie, 'isolation test')[1]}")
    return client


def rows_by_model(w):
    """Acme's row of each model an endpoint serves: every row of the world (a new row there is covered at once),
    the first one named for a model when there are several (the admin, not the responder)."""
    rows = {}
    for row in vars(w).values():
        if isinstance(row, models.Model):
            rows.setdefault(type(row), row)
    return rows


def endpoints():
    found = [(prefix, viewset, basename) for prefix, viewset, basename in router.registry]
    assert found, "the router has no endpoints: the generator found nothing"
    return found


def test_every_endpoint_has_a_row_to_try(worlds):
    acme_world, _ = worlds
    rows = rows_by_model(acme_world)
    missing = [prefix for prefix, viewset, _ in endpoints() if viewset.queryset.model not in rows]
    assert not missing, f"add a row for {missing} to tests/settings_world.py"


def test_another_accounts_objects_are_404_everywhere(charlie_api, worlds):
    acme_world, globex_world = worlds
    rows = rows_by_model(acme_world)
    tried = set()
    for prefix, viewset, basename in endpoints():
        row = rows[viewset.queryset.model]
        detail = reverse(f"api:{basename}-detail", args=[row.pk])
        methods = {"get"} | {m for m, a in (("put", "update"), ("patch", "partial_update"), ("delete", "destroy")) if hasattr(viewset, a)}
        for method in sorted(methods):
            response = getattr(charlie_api, method)(detail, {}, format="json")
            assert response.status_code == 404, (method, detail, response.status_code)
            tried.add(prefix)
        for extra in viewset.get_extra_actions():
            if not extra.detail:
                continue
            try:
                url = reverse(f"api:{basename}-{extra.url_name}", args=[row.pk])
            except NoReverseMatch:  # pragma: no cover - every detail action is routed
                raise AssertionError(f"{basename}.{extra.url_name} is not routed") from None
            for method in extra.mapping:
                response = getattr(charlie_api, method)(url, {}, format="json")
                assert response.status_code == 404, (method, url, response.status_code)
        listed = charlie_api.get(reverse(f"api:{basename}-list")).json()
        ids = {item["id"] for item in listed["results"] if "id" in item}
        assert ids and row.pk not in ids, (prefix, ids)
        assert "Acme" not in str(listed), prefix
    assert tried == {prefix for prefix, _, _ in endpoints()}
    assert Incident.objects.get(pk=acme_world.incident.pk).status == Incident.Status.PENDING
    assert acme_world.number.options.count() == 2


def test_related_ids_of_another_account_are_field_errors(charlie_api, worlds):
    """Creating rows that point at Acme's objects: a 400 naming the field, never a 500 or a row."""
    acme_world, globex_world = worlds
    w, g = acme_world, globex_world
    cases = [
        ("/api/routing-options/", {"routing_number": w.number.pk, "digit": 5, "label": "X", "escalation_policy": g.policy.pk}, "routing_number"),
        ("/api/routing-options/", {"routing_number": g.number.pk, "digit": 5, "label": "X", "escalation_policy": w.policy.pk}, "escalation_policy"),
        ("/api/escalation-rules/", {"policy": w.policy.pk, "users": [g.admin.pk]}, "policy"),
        ("/api/escalation-rules/", {"policy": g.policy.pk, "users": [w.admin.pk]}, "users"),
        ("/api/escalation-rules/", {"policy": g.policy.pk, "schedules": [w.schedule.pk]}, "schedules"),
        ("/api/rotation-layers/", {"schedule": g.schedule.pk, "level": 7, "start_date": "2026-01-05", "handoff_time": "09:00", "members": [w.admin.pk]}, "members"),
        ("/api/rotation-layers/", {"schedule": w.schedule.pk, "level": 7, "start_date": "2026-01-05", "handoff_time": "09:00", "members": [g.admin.pk]}, "schedule"),
        ("/api/layer-restrictions/", {"layer": w.layer.pk, "start_time": "09:00", "end_time": "10:00"}, "layer"),
        ("/api/schedule-overrides/", {"schedule": w.schedule.pk, "user": g.admin.pk, "start": "2031-01-01T00:00Z", "end": "2031-01-02T00:00Z"}, "schedule"),
        ("/api/schedule-overrides/", {"schedule": g.schedule.pk, "user": w.admin.pk, "start": "2031-01-01T00:00Z", "end": "2031-01-02T00:00Z"}, "user"),
        ("/api/contact-methods/", {"user": w.admin.pk, "kind": "email", "value": "x@example.com"}, "user"),
        ("/api/alert-actions/", {"alert_source": w.alert_source.pk, "name": "X", "url": "https://example.com"}, "alert_source"),
    ]
    for url, body, field in cases:
        response = charlie_api.post(url, body, format="json")
        assert response.status_code == 400, (url, body, response.status_code)
        assert field in response.json(), (url, response.json())
    # Filtering by Acme's ids is the same 400 as for an id that does not exist.
    for url, params in (("/api/incidents/", {"alert_source": w.alert_source.pk}), ("/api/calls/", {"routing_number": w.number.pk})):
        assert charlie_api.get(url, params).status_code == 400
