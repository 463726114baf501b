"""Helpers for the phone network's tests: a tiny webhook target (the "application") and waiting."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import jwt

SECRET = "emulator-tests-signature-secret-0123456789"


class Hit:
    def __init__(self, method, path, query, headers, body):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body
        self.json = json.loads(body) if body else None

    @property
    def data(self):
        return self.json if self.json is not None else self.query

    def claims(self, secret=SECRET):
        token = self.headers.get("authorization", "").removeprefix("Bearer ")
        return jwt.decode(token, secret, algorithms=["HS256"])


class WebhookTarget:
    """An HTTP server standing in for the product. ROUTES: path -> callable(hit) -> NCCO list, None (204), an
    int status or (status, NCCO list). Every request is kept in `hits`."""

    def __init__(self):
        self.routes = {}
        self.hits = []
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                hit = Hit(self.command, parts.path, dict(parse_qsl(parts.query)),
                          {k.lower(): v for k, v in self.headers.items()}, body)
                with target.lock:
                    target.hits.append(hit)
                handler = target.routes.get(parts.path)
                result = handler(hit) if handler else None
                if isinstance(result, int):
                    status, payload = result, b""
                elif isinstance(result, tuple):
                    status, payload = result[0], json.dumps(result[1]).encode()
                elif result is None:
                    status, payload = 204, b""
                else:
                    status, payload = 200, json.dumps(result).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path):
        return self.base_url + path

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def hits_to(self, path):
        with self.lock:
            return [hit for hit in self.hits if hit.path == path]

    def statusless(self, path="/vonage/event"):
        """Events without a status (transfer and error events), in arrival order."""
        return [hit.json for hit in self.hits_to(path) if hit.json and "status" not in hit.json]

    def events(self, uuid=None, path="/vonage/event"):
        """Status events (payloads) for the leg UUID (or all), in arrival order."""
        return [
            hit.json for hit in self.hits_to(path)
            if hit.json and "status" in hit.json and (uuid is None or uuid in (hit.json.get("uuid"), hit.json.get("call_uuid")))
        ]

    def statuses(self, uuid, path="/vonage/event"):
        return [event["status"] for event in self.events(uuid, path)]


def wait_until(predicate, timeout=15.0, interval=0.01, message="condition"):
    """Poll PREDICATE until it returns something true, and return that. The bound is a number of polls (TIMEOUT
    seconds' worth on an idle machine), so a busy machine's slower polls stretch it instead of failing."""
    for _ in range(int(timeout / interval) + 1):
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {message} after {int(timeout / interval) + 1} polls")
