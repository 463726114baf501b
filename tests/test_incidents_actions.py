"""Alert actions delivered to a local HTTP server started by the test (webhook, Slack, Teams).

The guarded client only reaches public https URLs; these tests allow http and loopback (the development settings)
and resolve the vendors' host names to the local server."""
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from incidents import actions, services, tasks
from incidents.models import AlertAction, AlertActionDelivery, IncidentEvent
from tests.incidents_factories import AlertActionFactory, AlertSourceFactory, committed, worker  # noqa: F401

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP server: records each POST (path, JSON) and answers with scripted statuses (default 200)."""

    def __init__(self):
        self.received = []
        self.statuses = {}  # path -> list of statuses to answer, in order
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((self.path, json.loads(body)))
                queue = receiver.statuses.get(self.path) or [200]
                status = queue.pop(0) if len(queue) > 1 else queue[0]
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answer {status}".encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path, host="127.0.0.1"):
        return f"http://{host}:{self.server.server_address[1]}{path}"

    def bodies(self, path):
        return [body for p, body in self.received if p == path]


SLACK_HOST, TEAMS_HOST = "hooks.slack.com", "prod-01.westeurope.logic.azure.com"


def resolve(monkeypatch, names):
    """Make the resolver answer NAMES {host name: IP address}; other names resolve as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        return real(names.get(host, host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def receiver(monkeypatch, settings):
    settings.OUTBOUND_ALLOW_HTTP = settings.OUTBOUND_ALLOW_LOOPBACK = True
    resolve(monkeypatch, {SLACK_HOST: "127.0.0.1", TEAMS_HOST: "127.0.0.1"})
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def source(acme):
    return AlertSourceFactory(account=acme, name="Monitoring", escalation_policy=None)


def action(source, receiver, path, host="127.0.0.1", **kwargs):
    return AlertActionFactory(alert_source=source, name=path.strip("/"), url=receiver.url(path, host), **kwargs)


def create(source):
    with committed():
        return services.create_incident(alert_source=source, summary="Database down", details="db1 is gone")


def test_webhook_payload_on_each_trigger(source, receiver, worker, alice):
    action(source, receiver, "/hook")
    incident = create(source)
    with committed():
        services.accept_incident(incident.pk, alice)
        services.resolve_incident(incident.pk, alice)
    worker.run()
    created, accepted, resolved = receiver.bodies("/hook")
    assert [created["event"], accepted["event"], resolved["event"]] == [
        "incident.created", "incident.accepted", "incident.resolved",
    ]
    assert created["incident"] == {
        "id": incident.pk,
        "summary": "Database down",
        "details": "db1 is gone",
        "priority": "high",
        "status": "resolved",  # the incident as it is when the first attempt goes out
        "created_at": incident.created_at.isoformat(),
        "accepted_at": created["incident"]["accepted_at"],
        "resolved_at": created["incident"]["resolved_at"],
        "assigned_to": {"id": alice.pk, "name": "Alice", "email": "alice@example.com"},
        "alert_source": {"id": source.pk, "name": "Monitoring"},
        "account": {"id": source.account_id, "name": "Acme"},
        "url": f"https://callrouting.test/incidents/{incident.pk}",
    }
    assert created["extra"] == {}
    assert AlertActionDelivery.objects.filter(status="delivered", status_code=200).count() == 3
    assert AlertActionDelivery.objects.first().response_excerpt == "answer 200"


def test_triggers_are_selectable_and_disabled_actions_do_not_fire(source, receiver, worker, alice):
    action(source, receiver, "/only-resolved", on_created=False, on_accepted=False)
    action(source, receiver, "/disabled", enabled=False)
    incident = create(source)
    with committed():
        services.accept_incident(incident.pk, alice)
        services.resolve_incident(incident.pk, alice)
    worker.run()
    assert [body["event"] for body in receiver.bodies("/only-resolved")] == ["incident.resolved"]
    assert receiver.bodies("/disabled") == []


def test_payload_extensions_fill_extra(source, receiver, worker):
    def call_details(incident):
        return {"caller": "+4930999", "number": "Support line"}

    def broken(incident):
        raise RuntimeError("bug in another app")

    actions.register_payload_extension(call_details)
    actions.register_payload_extension(call_details)  # twice: no effect
    actions.register_payload_extension(broken)
    try:
        action(source, receiver, "/hook", on_accepted=False, on_resolved=False)
        create(source)
        worker.run()
    finally:
        actions.unregister_payload_extension(call_details)
        actions.unregister_payload_extension(broken)
    (body,) = receiver.bodies("/hook")
    assert body["extra"] == {"caller": "+4930999", "number": "Support line"}


def test_slack_and_teams_messages(source, receiver, worker):
    action(source, receiver, "/slack", kind=AlertAction.Kind.SLACK, host=SLACK_HOST)
    action(source, receiver, "/teams", kind=AlertAction.Kind.TEAMS, host=TEAMS_HOST)
    incident = create(source)
    worker.run()
    (slack,) = receiver.bodies("/slack")
    assert slack["text"] == f"New incident #{incident.pk}: Database down"
    assert [block["type"] for block in slack["blocks"]] == ["section", "section", "section", "actions"]
    assert slack["blocks"][-1]["elements"][0]["url"] == f"https://callrouting.test/incidents/{incident.pk}"
    (teams,) = receiver.bodies("/teams")
    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["body"][0]["text"] == f"New incident #{incident.pk}: Database down"
    assert {"title": "Source", "value": "Monitoring"} in card["body"][1]["facts"]
    assert card["actions"][0]["type"] == "Action.OpenUrl"


def test_5xx_is_retried_with_backoff_then_succeeds(source, receiver, worker):
    receiver.statuses["/flaky"] = [502, 503, 200]
    action(source, receiver, "/flaky", on_accepted=False, on_resolved=False)
    create(source)
    worker.run()
    retry = AlertActionDelivery.objects.get(status="pending")
    assert retry.attempt == 2
    first = AlertActionDelivery.objects.get(attempt=1)
    assert (first.status, first.status_code, first.error) == ("failed", 502, "HTTP 502")
    assert retry.due_at - first.finished_at == pytest.approx(timedelta(seconds=10), abs=timedelta(seconds=1))

    for _ in range(3):
        with committed():
            tasks.sweep(now=AlertActionDelivery.objects.order_by("-attempt").first().due_at)
        worker.run()
    attempts = list(AlertActionDelivery.objects.order_by("attempt").values_list("attempt", "status", "status_code"))
    assert attempts == [(1, "failed", 502), (2, "failed", 503), (3, "delivered", 200)]
    assert len(receiver.bodies("/flaky")) == 3
    # The retries sent the payload of the first attempt.
    assert receiver.bodies("/flaky")[0] == receiver.bodies("/flaky")[2]


def test_retries_are_bounded(source, receiver, worker):
    receiver.statuses["/down"] = [500]
    action(source, receiver, "/down", on_accepted=False, on_resolved=False)
    incident = create(source)
    worker.run()
    for _ in range(6):
        pending = AlertActionDelivery.objects.filter(status="pending").first()
        if pending:
            with committed():
                tasks.sweep(now=pending.due_at)
            worker.run()
    assert len(receiver.bodies("/down")) == actions.MAX_ATTEMPTS == 4
    assert incident.events.get(kind=IncidentEvent.Kind.ACTION).message == (
        "Alert action down failed (incident created, attempt 4): HTTP 500"
    )


def test_4xx_is_not_retried_and_does_not_block_other_actions(source, receiver, worker):
    receiver.statuses["/gone"] = [404]
    action(source, receiver, "/gone", on_accepted=False, on_resolved=False)
    action(source, receiver, "/fine", on_accepted=False, on_resolved=False)
    unreachable = AlertActionFactory(alert_source=source, name="nobody home", url="http://127.0.0.1:9/hook")
    create(source)
    worker.run()
    assert len(receiver.bodies("/gone")) == 1 and len(receiver.bodies("/fine")) == 1
    gone = AlertActionDelivery.objects.get(action__name="gone")
    assert (gone.status, gone.status_code) == ("failed", 404)
    assert not AlertActionDelivery.objects.filter(action__name="gone", attempt=2).exists()
    assert AlertActionDelivery.objects.get(action__name="fine").status == "delivered"
    # A connection error is retried.
    assert AlertActionDelivery.objects.filter(action=unreachable, attempt=2, status="pending").exists()


def test_duplicate_delivery_task_sends_once(source, receiver, worker):
    action(source, receiver, "/hook", on_accepted=False, on_resolved=False)
    create(source)
    worker.queue.append(worker.queue[-1])
    worker.run()
    assert len(receiver.bodies("/hook")) == 1
