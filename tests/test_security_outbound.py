"""No server-side request forgery: every URL an account types is sent through incidents/outbound.py, which reaches
public https addresses only, connects to the address it checked, never follows a redirect and never shows a
target's answer to the account. Written as exploits: a real listener on 127.0.0.1 must receive nothing.

Acme's admin Alice types the URLs (page and API); the worker delivers the alert actions."""
import os
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import trustme
from django.urls import reverse
from rest_framework.test import APIClient

from incidents import outbound, services
from incidents.models import AlertAction, AlertActionDelivery, IncidentEvent
from tests.incidents_factories import AlertActionFactory, AlertSourceFactory, committed, worker  # noqa: F401
from tests.settings_world import world
from tests.test_incidents_actions import resolve

pytestmark = pytest.mark.django_db


class Listener:
    """A server on 127.0.0.1 (plain HTTP, or TLS with CERT): records every request (path, Host header, SNI) and
    answers ANSWERS[path] = (status, headers, body), default 200."""

    def __init__(self, cert=None):
        self.requests, self.answers, self.server_names = [], {}, []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                listener.requests.append((self.path, self.headers.get("Host")))
                status, headers, body = listener.answers.get(self.path, (200, {}, b"ok"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        # shutdown() returns once serve_forever next looks at its flag: every 50 ms, not the default half second.
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def source(acme):
    return AlertSourceFactory(account=acme, name="Monitoring", escalation_policy=None)


def deliver_one(source, url, kind=AlertAction.Kind.WEBHOOK):
    """Save an action with URL as an older row or a changed DNS record would leave it, and deliver one incident."""
    action = AlertActionFactory(alert_source=source, url=url, kind=kind, on_accepted=False, on_resolved=False)
    with committed():
        incident = services.create_incident(alert_source=source, summary="Database down")
    return action, incident


HOSTILE_URLS = [
    "https://127.0.0.1:{port}/hook",
    "https://localhost:{port}/hook",
    "https://rebound.example.test:{port}/hook",  # resolves to 127.0.0.1 below
    "https://[::ffff:127.0.0.1]:{port}/hook",
    "https://2130706433:{port}/hook",  # 127.0.0.1 in decimal
    "https://0177.0.0.1:{port}/hook",  # 127.0.0.1 in octal
    "https://0x7f.1:{port}/hook",
    "https://[::1]:{port}/hook",
    "https://169.254.169.254:{port}/latest/meta-data/",
    "https://10.0.0.1:{port}/hook",
    "https://0.0.0.0:{port}/hook",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_an_alert_action_pointing_inside_reaches_nothing(url, source, listener, worker, monkeypatch):
    resolve(monkeypatch, {"rebound.example.test": "127.0.0.1"})
    action, incident = deliver_one(source, url.format(port=listener.port))
    worker.run()
    assert listener.requests == []
    delivery = AlertActionDelivery.objects.get(action=action)
    assert (delivery.status, delivery.error, delivery.attempt) == ("failed", "refused: not a public address", 1)
    assert not AlertActionDelivery.objects.filter(action=action, attempt=2).exists()  # refusals are not retried
    assert incident.events.get(kind=IncidentEvent.Kind.ACTION).message.endswith(": refused: not a public address")


@pytest.mark.parametrize("url", [u.replace("https", "http") for u in HOSTILE_URLS])
def test_plain_http_allowed_for_development_still_reaches_nothing_inside(url, settings, listener, monkeypatch):
    settings.OUTBOUND_ALLOW_HTTP = True
    resolve(monkeypatch, {"rebound.example.test": "127.0.0.1"})
    with pytest.raises(outbound.Refused, match="^refused: not a public address$"):
        outbound.post_json(url.format(port=listener.port), {"x": 1}, timeout=5)
    assert listener.requests == []


def test_the_listener_is_reachable_when_loopback_is_allowed(settings, listener):
    """The control for the two tests above: the same request reaches the listener once loopback is allowed."""
    settings.OUTBOUND_ALLOW_HTTP = settings.OUTBOUND_ALLOW_LOOPBACK = True
    answer = outbound.post_json(f"http://localhost:{listener.port}/hook", {"x": 1}, timeout=5)
    assert answer.status_code == 200 and listener.requests == [("/hook", f"localhost:{listener.port}")]


def test_http_is_refused_unless_allowed(listener):
    with pytest.raises(outbound.Refused, match="Use an https:// URL"):
        outbound.post_json(f"http://hooks.example.invalid:{listener.port}/", {}, timeout=5)


def test_a_redirect_to_loopback_is_not_followed(settings):
    settings.OUTBOUND_ALLOW_HTTP = settings.OUTBOUND_ALLOW_LOOPBACK = True
    inside, outside = Listener(), Listener()
    try:
        outside.answers["/hook"] = (302, {"Location": f"http://127.0.0.1:{inside.port}/admin"}, b"")
        answer = outbound.post_json(f"http://localhost:{outside.port}/hook", {"x": 1}, timeout=5)
        assert answer.status_code == 302
        assert inside.requests == [] and len(outside.requests) == 1
    finally:
        inside.close()
        outside.close()


def test_the_connection_goes_to_the_address_that_was_checked(settings, listener, monkeypatch):
    """A name answering a permitted address first and an inside one afterwards (DNS rebinding) is resolved once:
    the request goes to the first answer."""
    settings.OUTBOUND_ALLOW_HTTP = settings.OUTBOUND_ALLOW_LOOPBACK = True
    answers, real = ["127.0.0.1", "10.0.0.1"], socket.getaddrinfo
    lookups = []

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.example.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        return real(answers[min(len(lookups), 2) - 1], port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    answer = outbound.post_json(f"http://rebind.example.test:{listener.port}/hook", {}, timeout=5)
    assert answer.status_code == 200 and lookups == ["rebind.example.test"]
    assert listener.requests == [("/hook", f"rebind.example.test:{listener.port}")]


def test_tls_is_verified_against_the_url_host_name_while_connecting_to_the_checked_address(settings, monkeypatch, tmp_path):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setattr(outbound, "CA_BUNDLE", str(bundle))
    resolve(monkeypatch, {"hooks.slack.com": "127.0.0.1", "other.example.test": "127.0.0.1"})
    server = Listener(cert=ca.issue_cert("hooks.slack.com"))
    try:
        answer = outbound.post_json(f"https://hooks.slack.com:{server.port}/services/T/B/x", {"text": "hi"}, timeout=5, kind="slack")
        assert answer.status_code == 200
        assert server.server_names == ["hooks.slack.com"]
        assert server.requests == [("/services/T/B/x", f"hooks.slack.com:{server.port}")]
        # The same server under a name its certificate does not carry: refused by TLS, nothing sent.
        with pytest.raises(outbound.requests.exceptions.SSLError):
            outbound.post_json(f"https://other.example.test:{server.port}/hook", {}, timeout=5)
        assert len(server.requests) == 1
    finally:
        server.close()


def test_account_users_never_see_a_targets_answer(source, settings, listener, worker, alice, client):
    settings.OUTBOUND_ALLOW_HTTP = settings.OUTBOUND_ALLOW_LOOPBACK = True
    listener.answers["/hook"] = (500, {"Content-Type": "text/plain"}, b"internal secret page " * 100_000)
    action, incident = deliver_one(source, f"http://localhost:{listener.port}/hook")
    worker.run()
    delivery = AlertActionDelivery.objects.get(action=action, attempt=1)
    assert delivery.status_code == 500 and delivery.error == "HTTP 500"
    # At most RESPONSE_BYTES are read of a two-megabyte answer (kept for support staff in the admin only).
    assert len(delivery.response_excerpt) <= outbound.RESPONSE_BYTES
    assert not any("secret" in event.message for event in IncidentEvent.objects.all())


@pytest.mark.parametrize(
    "address, public",
    [
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
        ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
        ("240.0.0.1", False), ("255.255.255.255", False), ("192.0.2.1", False), ("198.18.0.1", False),
        ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
        ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::1", False), ("fec0::1", False), ("2001:db8::1", False), ("::127.0.0.1", False),
        ("8.8.8.8", True), ("1.1.1.1", True), ("2606:4700:4700::1111", True), ("::ffff:8.8.8.8", True),
    ],
)
def test_public_addresses(address, public):
    assert outbound.is_public(address) is public


# --- Saving a URL: a field error on the page and in the API ------------------------------------------------------

REFUSED_ON_SAVE = [
    ("webhook", "https://localhost/hook", "not public (127.0.0.1)"),
    ("webhook", "https://127.0.0.1:8000/hook", "not public (127.0.0.1)"),
    ("webhook", "https://[::ffff:127.0.0.1]/hook", "not public (127.0.0.1)"),
    ("webhook", "https://rebound.example.test/hook", "not public (127.0.0.1)"),
    ("webhook", "https://169.254.169.254/latest/meta-data/", "not public (169.254.169.254)"),
    ("webhook", "https://[fe80::1]/hook", "not public (fe80::1)"),
    ("webhook", "http://hooks.example.invalid/hook", "Use an https:// URL."),
    ("slack", "https://example.com/services/x", "A Slack incoming webhook URL starts with https://hooks.slack.com"),
    ("teams", "https://evil.webhook.office.com.example.test/x", "A Microsoft Teams webhook URL starts with"),
]


@pytest.fixture
def acme_world(acme, alice, bob):
    return world(acme, alice, bob)


@pytest.mark.parametrize("kind, url, message", REFUSED_ON_SAVE)
def test_a_refused_url_is_a_field_error_in_the_api(kind, url, message, alice, acme_world, monkeypatch):
    resolve(monkeypatch, {"rebound.example.test": "127.0.0.1"})
    api = APIClient()
    api.force_authenticate(user=alice)
    body = {"alert_source": acme_world.alert_source.pk, "name": "Hook", "kind": kind, "url": url}
    response = api.post("/api/alert-actions/", body, format="json")
    assert response.status_code == 400
    assert any(message in error for error in response.json()["url"]), response.json()
    assert not AlertAction.objects.filter(name="Hook").exists()


@pytest.mark.parametrize("kind, url, message", REFUSED_ON_SAVE)
def test_a_refused_url_is_a_field_error_on_the_page(kind, url, message, alice, acme_world, client, monkeypatch):
    resolve(monkeypatch, {"rebound.example.test": "127.0.0.1"})
    client.force_login(alice)
    w = acme_world
    data = {"actions-TOTAL_FORMS": 1, "actions-INITIAL_FORMS": 0, "actions-0-alert_source": w.alert_source.pk,
            "actions-0-name": "Hook", "actions-0-kind": kind, "actions-0-url": url, "actions-0-enabled": "on"}
    response = client.post(reverse("web:number-actions", args=[w.number.pk]), data)
    assert response.status_code == 400
    form = next(s for s in response.context["sections"] if s["section"].slug == "actions")["formset"].forms[0]
    assert any(message in error for error in form.errors["url"]), form.errors
    assert not AlertAction.objects.filter(name="Hook").exists()


@pytest.mark.parametrize(
    "kind, url",
    [
        ("slack", "https://hooks.slack.com/services/T000/B000/XXXX"),
        ("teams", "https://acme.webhook.office.com/webhookb2/abc/IncomingWebhook/def/ghi"),
        ("teams", "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x"),
        ("teams", "https://default1234.56.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc"),
    ],
)
def test_vendor_webhook_urls_are_accepted(kind, url, alice, acme_world, monkeypatch):
    # Saving looks the host up: a public address, without asking the machine's resolver (which may wait for
    # seconds when there is no network).
    resolve(monkeypatch, {urlsplit(url).hostname: "8.8.8.8"})
    api = APIClient()
    api.force_authenticate(user=alice)
    body = {"alert_source": acme_world.alert_source.pk, "name": "Vendor", "kind": kind, "url": url}
    assert api.post("/api/alert-actions/", body, format="json").status_code == 201


def test_the_pinned_address_is_checked_again_whatever_the_library_let_through(settings, listener, monkeypatch):
    """A second check on the address the connection goes to: were requests-hardened's own filter to let a
    loopback address through, the guard still refuses it and nothing is sent."""
    import requests_hardened.ip_filter_adapter

    settings.OUTBOUND_ALLOW_HTTP = True
    monkeypatch.setattr(requests_hardened.ip_filter_adapter, "filter_host", lambda host, port, **kwargs: "127.0.0.1")
    with pytest.raises(outbound.Refused, match="^refused: not a public address$"):
        outbound.post_json(f"http://hooks.example.invalid:{listener.port}/hook", {}, timeout=5)
    assert listener.requests == []


def test_the_loopback_allowance_refuses_to_start_in_production():
    env = {**os.environ, "DEBUG": "false", "OUTBOUND_ALLOW_LOOPBACK": "true", "SECRET_KEY": "production-like-secret-" + "abcdefghij" * 4}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    started = subprocess.run([sys.executable, "-c", "import callrouting.settings"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert started.returncode != 0
    assert "OUTBOUND_ALLOW_LOOPBACK is for local development only" in started.stderr
