"""Fuzzing the REST API from its own OpenAPI schema (drf-spectacular) with schemathesis, in process through the
WSGI application, as Acme's owner (alice) with an API token, on a complete account (tests/settings_world.py).

Every operation: no 5xx (schemathesis' not_a_server_error), and a rejected request (4xx) changes nothing: the row
counts of the main models are the same before and after it. Half of the generated cases get the id of a real
row of the account in their path, so they reach the serializers and actions and not only the 404.
"""
import itertools

import pytest
import schemathesis
from django.apps import apps
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from callrouting import configuration
from callrouting.wsgi import application
from tests.settings_world import world

pytestmark = pytest.mark.slow

# Fuzzing only (max_examples per operation): the coverage phase alone sends hundreds of cases per operation.
schema = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True),
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}),
)

# URL prefix -> attribute of the world holding a row of that kind.
ROW_FOR_PATH = {
    "/api/alert-actions/": "action",
    "/api/alert-sources/": "alert_source",
    "/api/audio/": "number_audio",
    "/api/calendars/": "calendar",
    "/api/calls/": "call",
    "/api/contact-methods/": "contact_method",
    "/api/escalation-policies/": "policy",
    "/api/flow-versions/": "flow_version",
    "/api/flows/": "flow",
    "/api/escalation-rules/": "rule",
    "/api/holidays/": "holiday",
    "/api/incidents/": "incident",
    "/api/layer-restrictions/": "restriction",
    "/api/notification-rules/": "notification_rule",
    "/api/numbers/": "number",
    "/api/rotation-layers/": "layer",
    "/api/routing-options/": "option",
    "/api/schedule-overrides/": "override",
    "/api/schedules/": "schedule",
    "/api/support-hours-ranges/": "support_range",
    "/api/tokens/": "api_token",
    "/api/users/": "admin",
}
COUNTED_APPS = ("escalation", "incidents", "callrouting")


def row_counts():
    """{model label: rows in its table} for every model of COUNTED_APPS, in one query: a COUNT per model, twice per
    generated case, was most of the time of this file."""
    models = [model for label in COUNTED_APPS for model in apps.get_app_config(label).get_models()]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {quote(m._meta.db_table)})" for m in models))
        counts = cursor.fetchone()
    return {model._meta.label: count for model, count in zip(models, counts, strict=True)}


@pytest.fixture
def api_world(alice, bob, acme):
    rows = world(acme, alice, bob)
    # Not the world's token: the fuzzer may revoke that one (DELETE /api/tokens/<id>/).
    _, rows.token = configuration.create_api_token(alice, "schemathesis")
    # As Django's test client does: the real WSGI handler closes the connection at each request's end (autocommit
    # differs inside the test's transaction), which on PostgreSQL would lose the test transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield rows
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_every_operation_is_in_the_fuzzed_schema():
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 80
    assert all(any(op.path.startswith(prefix) for prefix in ROW_FOR_PATH) for op in operations)


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_operation(case, api_world):
    state = test_api_operation.__dict__.setdefault("turn", itertools.count())
    if case.path_parameters and "id" in case.path_parameters and next(state) % 2 == 0:
        prefix = next(p for p in ROW_FOR_PATH if case.path.startswith(p))
        case.path_parameters["id"] = getattr(api_world, ROW_FOR_PATH[prefix]).pk

    before = row_counts()
    response = case.call(app=application, headers={"Authorization": f"Token {api_world.token}"})
    case.validate_response(response, checks=[not_a_server_error])
    if 400 <= response.status_code < 500:
        after = row_counts()
        changed = {label: (before[label], after[label]) for label in before if before[label] != after[label]}
        assert not changed, f"{case.method} {case.formatted_path} -> {response.status_code} changed rows: {changed}"


@pytest.mark.parametrize("path, name", [("/api/incidents/", "created_after"), ("/api/calls/", "started_after")])
def test_a_far_off_utc_offset_in_a_date_filter_is_answered(api_world, path, name):
    """Found by the schemathesis run: PostgreSQL refuses UTC offsets beyond 15:59, which ISO 8601 allows."""
    from django.test import Client

    client = Client(raise_request_exception=False)
    headers = {"HTTP_AUTHORIZATION": f"Token {api_world.token}"}
    response = client.get(path, {name: "0771-09-12T04:17:27-20:47"}, **headers)
    assert response.status_code == 200, response.content[:300]
    assert len(response.json()["results"]) >= 1  # everything in the world was created after the year 771
    response = client.get(path, {name: "0001-01-01T00:00:00+05:00"}, **headers)
    assert response.status_code == 400 and name in response.json()
