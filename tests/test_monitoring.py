"""/healthz and /metrics: what an operator's monitor sees.

/healthz needs no login and names no secret; it answers 503 when the database, the task broker or the worker's
heartbeat (written by the minute sweeper) fails. /metrics is off without METRICS_TOKEN and refuses a wrong one;
its database gauges take the same number of queries however many rows there are. Redis, where used, is database 11.
"""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.conf import Conf
from django_q.signing import SignedPackage
from prometheus_client.parser import text_string_to_metric_families

from callrouting import monitoring
from callrouting.models import AgentLeg, Call
from incidents import tasks
from incidents.models import AlertActionDelivery, Notification, WorkerHeartbeat
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory, phone, inline_tasks, policy_of  # noqa: F401
from tests.incidents_factories import AlertActionFactory, IncidentFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"
REDIS_TEST_URL = "redis://127.0.0.1:6379/11"


def health(client):
    response = client.get("/healthz")
    return response.status_code, response.json()


# --- /healthz -----------------------------------------------------------------------------------------------------


def test_healthz_reports_each_part_without_login_or_secrets(client, settings):
    WorkerHeartbeat.beat("sweeper")
    status, body = health(client)
    assert status == 200
    assert body == {"Database(alias='default')": "OK", "TaskBroker": "OK", "WorkerHeartbeat": "OK"}
    response = client.get("/healthz")
    assert settings.SECRET_KEY not in response.content.decode()
    assert "no-cache" in response["Cache-Control"]


def test_the_sweeper_writes_the_heartbeat_and_an_old_one_answers_503(client):
    status, body = health(client)
    assert status == 503 and body["WorkerHeartbeat"] == "Unavailable: the worker has not run the sweeper yet"
    tasks.sweep()  # the minute sweeper, as the worker runs it
    assert health(client)[0] == 200
    WorkerHeartbeat.objects.update(at=timezone.now() - dt.timedelta(minutes=2, seconds=50))
    assert health(client)[0] == 200
    WorkerHeartbeat.objects.update(at=timezone.now() - dt.timedelta(minutes=3, seconds=10))
    status, body = health(client)
    assert status == 503 and body["WorkerHeartbeat"].startswith("Unavailable: the worker's last heartbeat is 19")
    assert body["Database(alias='default')"] == "OK"


@pytest.fixture
def redis_broker(monkeypatch):
    """The django-q2 broker switched to Redis at URL (database 11), as a production set-up would have it."""

    def use(url):
        monkeypatch.setattr(Conf, "ORM", None)
        monkeypatch.setattr(Conf, "REDIS", url)
        monkeypatch.setattr(tasks, "_brokers", {})
        return tasks.broker()

    return use


def test_a_broker_that_does_not_answer_is_503_without_naming_it(client, redis_broker):
    WorkerHeartbeat.beat("sweeper")
    redis_broker("redis://:hunter2-password@127.0.0.1:1/11")  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["TaskBroker"] == "Unavailable: the task broker does not answer (ConnectionError)"
    assert "hunter2" not in response.content.decode() and ":1/" not in response.content.decode()


def _redis_answers():
    import redis

    try:
        return redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.mark.skipif(not _redis_answers(), reason=f"no Redis at {REDIS_TEST_URL}")
def test_a_redis_broker_is_checked_and_its_oldest_task_measured(client, redis_broker):
    WorkerHeartbeat.beat("sweeper")
    queue = redis_broker(REDIS_TEST_URL)
    queue.connection.delete(queue.list_key)
    try:
        assert health(client) == (200, {"Database(alias='default')": "OK", "TaskBroker": "OK", "WorkerHeartbeat": "OK"})
        assert monitoring._oldest_queued_task_age(timezone.now()) == 0.0
        queued_at = timezone.now() - dt.timedelta(seconds=95)
        queue.enqueue(SignedPackage.dumps({"id": "a", "func": "x", "started": queued_at}))
        queue.enqueue(SignedPackage.dumps({"id": "b", "func": "x", "started": timezone.now()}))
        assert 95 <= monitoring._oldest_queued_task_age(timezone.now()) < 95 + 60
    finally:
        queue.connection.delete(queue.list_key)


# --- /metrics -----------------------------------------------------------------------------------------------------


def scrape(client, token=TOKEN):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_are_off_without_a_token_and_refuse_a_wrong_one(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def _rows(acme, n):
    """N calls in progress with one leg each, N notifications and N deliveries."""
    number = RoutingNumberFactory(account=acme)
    incident = IncidentFactory(alert_source=number.alert_source, account=acme)
    action = AlertActionFactory(alert_source=number.alert_source)
    now = timezone.now()
    for i in range(n):
        call = Call.objects.create(account=acme, routing_number=number, vonage_uuid=f"c-{n}-{i}",
                                   called_number=number.phone_number, state=Call.State.ROUTING)
        AgentLeg.objects.create(call=call, position=0, phone_number="+491", status=AgentLeg.Status.DECLINED)
        Notification.objects.create(incident=incident, channel="sms", contact="+491", due_at=now - dt.timedelta(seconds=30))
        AlertActionDelivery.objects.create(action=action, incident=incident, trigger="created", due_at=now,
                                           status=AlertActionDelivery.Status.FAILED)


def test_gauges_are_read_at_scrape_time_in_a_fixed_number_of_queries(client, settings, acme):
    settings.METRICS_TOKEN = TOKEN
    counts = []
    for n in (1, 20):
        _rows(acme, n)
        with CaptureQueriesContext(connection) as queries:
            samples = scrape(client)
        counts.append(len(queries))
    assert counts[0] == counts[1] == 7  # one per family; the database broker's queue is one of them
    assert value(samples, "callrouting_calls_in_progress", state="routing") == 21
    assert value(samples, "callrouting_calls_in_progress", state="connected") == 0
    assert value(samples, "callrouting_agent_legs", status="declined") == 21
    assert value(samples, "callrouting_agent_legs", status="accepted") == 0
    assert value(samples, "callrouting_notifications", status="pending") == 21
    assert value(samples, "callrouting_alert_action_deliveries", status="failed") == 21
    assert value(samples, "callrouting_oldest_due_notification_age_seconds") >= 30
    assert value(samples, "callrouting_worker_heartbeat_age_seconds") == -1
    WorkerHeartbeat.beat("sweeper", timezone.now() - dt.timedelta(seconds=70))
    assert 70 <= value(scrape(client), "callrouting_worker_heartbeat_age_seconds") < 70 + 60


def test_oldest_queued_task_age_with_the_database_broker(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert value(scrape(client), "callrouting_oldest_queued_task_age_seconds") == 0
    queued_at = timezone.now() - dt.timedelta(seconds=42)
    tasks.broker().enqueue(SignedPackage.dumps({"id": "a", "func": "x", "started": queued_at}))
    assert 42 <= value(scrape(client), "callrouting_oldest_queued_task_age_seconds") < 42 + 60


def test_webhook_latency_histograms_per_kind(client, settings, phone, acme, alice):
    settings.METRICS_TOKEN = TOKEN
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820")
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice))
    RoutingOptionFactory(routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, alice))
    before = scrape(client)

    def count(samples, kind):
        return samples.get(("callrouting_webhook_duration_seconds_count", (("kind", kind),)), 0)

    response, _ = phone.dial(number.phone_number)
    phone.press(response.json(), "1")
    after = scrape(client)
    assert count(after, "answer") == count(before, "answer") + 1
    assert count(after, "call_input") == count(before, "call_input") + 1
    assert count(after, "leg_event") == count(before, "leg_event")
    bucket = ("callrouting_webhook_duration_seconds_bucket", (("kind", "answer"), ("le", "+Inf")))
    assert after[bucket] == count(after, "answer")
