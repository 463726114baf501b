"""The Vonage REST API, emulated: routes, application-JWT and API-key checks, request recording, scripted faults.

Layers:
- `RestAPI`: takes an `ApiRequest`, checks auth, routes by method and path, keeps state (calls, files) and records
  every request. No sockets: it can be driven directly. With a `network` (callrouting.emulator.engine.Network)
  attached, created calls ring simulated phones and modify/talk requests act on live legs; without one it only
  records (the unit-test fake, tests/fake_vonage.py).
- `Script`: scripted faults (fail_next / hang_next / answer_late_next), consulted before routing.
- `HttpsServer`: a real HTTPS server (TLS from a trustme CA) that feeds requests to a dispatch function.
"""
import base64
import json
import re
import socket
import ssl
import threading
import time
import uuid as uuid_lib
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .validation import create_call_problems, ncco_problems

ERROR_TYPE_BASE = "https://developer.nexmo.com/api-errors"


# --- credentials ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What the emulator accepts: an application (id + key pair) and an API key/secret."""

    application_id: str
    private_key_pem: str  # PKCS#8, as the Vonage dashboard hands it out
    public_key_pem: str
    api_key: str
    api_secret: str

    @classmethod
    def generate(cls, *, application_id=None, api_key="testkey1", api_secret="test-api-secret-1"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        return cls(
            application_id=application_id or str(uuid_lib.uuid4()),
            private_key_pem=private_pem,
            public_key_pem=public_pem,
            api_key=api_key,
            api_secret=api_secret,
        )


# --- requests and responses ----------------------------------------------------------------------------------


@dataclass
class ApiRequest:
    """One request the API received, as recorded (`api.requests`)."""

    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes
    json: object = None  # parsed JSON body, if any
    form: dict = None  # parsed form body, if any
    jwt_claims: dict = None  # decoded claims of a valid application JWT
    jwt_header: dict = None
    auth_error: str = None  # why authentication failed, if it did
    fault: str = None  # "fail", "hang" or "late" when a scripted fault hit this request
    status: int = None  # status of the response, once sent
    region: str = None  # the region whose host received it (a PhoneNetwork with two regions); None: the only one
    received_at: float = field(default_factory=time.time)

    @property
    def data(self):
        """The parsed body: JSON, form fields or query parameters."""
        if self.json is not None:
            return self.json
        if self.form is not None:
            return self.form
        return self.query


@dataclass
class ApiResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)

    @classmethod
    def json(cls, status, data, **kwargs):
        return cls(status, json.dumps(data).encode(), **kwargs)

    @classmethod
    def error(cls, status, detail, **extra):
        title = HTTPStatus(status).phrase
        slug = title.lower().replace(" ", "-")
        return cls.json(status, {"type": f"{ERROR_TYPE_BASE}#{slug}", "title": title, "detail": detail, **extra})


# --- scripted faults -----------------------------------------------------------------------------------------


@dataclass
class Fault:
    method: str
    path_re: re.Pattern
    times: int
    status: int = None
    body: object = None
    seconds: float = None
    late: bool = False  # with SECONDS: the request is carried out at once and only its answer is delayed

    def matches(self, request):
        return self.method in ("*", request.method) and self.path_re.search(request.path) is not None


class Script:
    """Faults scheduled by a test: the next matching requests fail or hang."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []

    def fail_next(self, method, path_regex, status, times=1, body=None):
        self._add(Fault(method.upper(), re.compile(path_regex), times, status=status, body=body))

    def hang_next(self, method, path_regex, seconds, times=1):
        self._add(Fault(method.upper(), re.compile(path_regex), times, seconds=seconds))

    def answer_late_next(self, method, path_regex, seconds, times=1):
        """The next TIMES matching requests take effect at once (a call is placed, its events go out) but are
        answered only after SECONDS, as when Vonage placed a call whose create-call request timed out."""
        self._add(Fault(method.upper(), re.compile(path_regex), times, seconds=seconds, late=True))

    def take(self, request):
        """The first fault matching REQUEST (using up one of its times), or None."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def reset(self):
        with self._lock:
            self._faults.clear()

    def _add(self, fault):
        with self._lock:
            self._faults.append(fault)


# --- the REST layer ------------------------------------------------------------------------------------------

CALL_PATH = r"/v1/calls/(?P<uuid>[A-Za-z0-9_-]+)"
MODIFY_ACTIONS = {"hangup", "mute", "unmute", "earmuff", "unearmuff", "transfer"}


def route(method, pattern, auth):
    """Mark a RestAPI method as the handler of METHOD on paths fully matching PATTERN."""

    def decorator(func):
        func.route = (method, re.compile(pattern), auth)
        return func

    return decorator


class RestAPI:
    """Vonage's Voice, SMS, number-update and media REST endpoints, in memory. `handle(request)` is the whole interface.

    NETWORK, when given, is the phone network that executes calls; CALL_RATE (per second, like Vonage's limit
    of 3 call creations per second) answers 429 above it when set. CLOCK (seconds, monotonic) times that limit's
    one-second window: a test passes a clock it moves itself, so the limit does not depend on how fast it runs.
    """

    def __init__(self, credentials, script=None, *, base_url="", network=None, call_rate=None,
                 clock=time.monotonic):
        self.credentials = credentials
        self.script = script or Script()
        self.base_url = base_url  # https://host:port, for recording URLs
        self.network = network
        self.call_rate = call_rate
        self.clock = clock
        self._call_times = deque()
        self._lock = threading.RLock()
        self._generation = 0  # bumped by reset()
        self._requests = []
        self.max_requests = None  # keep only the last N requests (a long-running emulator); None keeps all
        self.calls = {}  # uuid -> call record
        self.recordings = {}  # file id -> bytes
        self.file_types = {}  # file id -> content type (default audio/mpeg)
        self.numbers = {}  # msisdn -> fields of its last accepted POST /number/update
        self._routes = [
            (method, pattern, auth, getattr(self, name))
            for name in dir(type(self))
            if hasattr(getattr(type(self), name), "route")
            for method, pattern, auth in [getattr(type(self), name).route]
        ]

    # state and recording

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def reset(self):
        with self._lock:
            self._generation += 1
            self._requests.clear()
            self.calls.clear()
            self.recordings.clear()
            self.file_types.clear()
            self.numbers.clear()
            self._call_times.clear()
        self.script.reset()

    def add_recording(self, content, *, file_id=None, content_type="audio/mpeg"):
        """Serve CONTENT (bytes) at /v1/files/<id> (application JWT required); returns its URL."""
        file_id = file_id or str(uuid_lib.uuid4())
        with self._lock:
            self.recordings[file_id] = bytes(content)
            self.file_types[file_id] = content_type
        return f"{self.base_url}/v1/files/{file_id}"

    # the request pipeline: record, scripted fault, route, authenticate, handle

    def handle(self, request):
        with self._lock:
            self._requests.append(request)
            if self.max_requests and len(self._requests) > self.max_requests:
                del self._requests[: len(self._requests) - self.max_requests]
            generation = self._generation
        self._decode_auth(request)
        response = self._respond(request, generation)
        request.status = response.status
        return response

    def _respond(self, request, generation):
        fault = self.script.take(request)
        if fault is not None and fault.late:
            request.fault = "late"
            response = self._route(request)
            request.status = response.status  # done already; only the answer is late
            time.sleep(fault.seconds)
            return response
        if fault is not None and fault.seconds is not None:
            request.fault = "hang"
            time.sleep(fault.seconds)
            with self._lock:
                if generation != self._generation:
                    # The test that hung this request is over: do not touch the next test's state.
                    return ApiResponse.error(503, "The emulator was reset while this request hung")
        elif fault is not None:
            request.fault = "fail"
            return self._fault_response(fault)
        return self._route(request)

    def _route(self, request):
        for method, pattern, auth, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                break
        else:
            return ApiResponse.error(404, f"No route for {request.method} {request.path}")
        if auth == "jwt" and request.jwt_claims is None:
            return ApiResponse.error(401, request.auth_error or "Invalid token")
        if auth == "api_key" and request.auth_error:
            return ApiResponse.error(401, request.auth_error)
        return handler(request, **match.groupdict())

    def _fault_response(self, fault):
        if fault.body is None:
            return ApiResponse.error(fault.status, "Scripted failure of the emulated Vonage API")
        if isinstance(fault.body, (bytes, str)):
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return ApiResponse(fault.status, body)
        return ApiResponse.json(fault.status, fault.body)

    def _decode_auth(self, request):
        """Set jwt_claims (valid application JWT) or auth_error on REQUEST; checks API key/secret too."""
        authorization = request.headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value:
            try:
                request.jwt_header = jwt.get_unverified_header(value)
                claims = jwt.decode(
                    value,
                    self.credentials.public_key_pem,
                    algorithms=["RS256"],
                    options={"require": ["iat", "exp", "jti", "application_id"]},
                )
            except jwt.InvalidTokenError as exc:
                request.auth_error = f"Invalid token: {exc}"
                return
            if claims["application_id"] != self.credentials.application_id:
                request.auth_error = "Invalid token: unknown application_id"
                return
            request.jwt_claims = claims
            return
        key = secret = None
        if scheme.lower() == "basic":
            try:
                key, _, secret = base64.b64decode(value).decode().partition(":")
            except ValueError:
                pass
        else:
            fields = request.form or request.query or (request.json if isinstance(request.json, dict) else {})
            key, secret = fields.get("api_key"), fields.get("api_secret")
        if key != self.credentials.api_key or secret != self.credentials.api_secret:
            request.auth_error = "Bad Credentials" if key or secret else "Missing credentials"

    # Voice API

    @route("POST", r"/v1/calls", auth="jwt")
    def create_call(self, request):
        body = request.json if isinstance(request.json, dict) else {}
        problems = create_call_problems(body)
        if not problems and not body["to"]:
            problems.append({"name": "to", "reason": "must be a non-empty list"})
        if problems:
            return ApiResponse.error(400, "Invalid request", invalid_parameters=problems)
        if self.call_rate and not self._take_call_slot():
            return ApiResponse.error(429, "Rate limit hit: at most %d call creations per second" % self.call_rate)
        if self.network is not None:
            try:
                call = self.network.place_outbound_call(body, **self._region(request))
            except ValueError as exc:
                return ApiResponse.error(400, "Invalid request", invalid_parameters=[{"name": "to", "reason": str(exc)}])
            with self._lock:
                self.calls[call["uuid"]] = {**call, "request": body}
            return ApiResponse.json(201, call)
        call = {
            "uuid": str(uuid_lib.uuid4()),
            "status": "started",
            "direction": "outbound",
            "conversation_uuid": f"CON-{uuid_lib.uuid4()}",
        }
        with self._lock:
            self.calls[call["uuid"]] = {**call, "request": body}
        return ApiResponse.json(201, call)

    @staticmethod
    def _region(request):
        return {"region": request.region} if request.region else {}

    def _take_call_slot(self):
        now = self.clock()
        with self._lock:
            while self._call_times and self._call_times[0] <= now - 1.0:
                self._call_times.popleft()
            if len(self._call_times) >= self.call_rate:
                return False
            self._call_times.append(now)
            return True

    @route("GET", CALL_PATH, auth="jwt")
    def get_call(self, request, uuid):
        if self.network is not None:
            leg = self.network.call_info(uuid)
            return ApiResponse.json(200, leg) if leg else ApiResponse.error(404, f"Call {uuid} not found")
        with self._lock:
            call = self.calls.get(uuid)
        if call is None:
            return ApiResponse.error(404, f"Call {uuid} not found")
        return ApiResponse.json(200, {key: value for key, value in call.items() if key != "request"})

    @route("PUT", CALL_PATH, auth="jwt")
    def modify_call(self, request, uuid):
        # Any uuid is accepted: inbound legs reach the fake only as uuids in webhook payloads.
        body = request.json if isinstance(request.json, dict) else {}
        action = body.get("action")
        if action not in MODIFY_ACTIONS:
            return ApiResponse.error(400, f"Unknown action {action!r}")
        if action == "transfer":
            destination = body.get("destination")
            if not isinstance(destination, dict) or not ("ncco" in destination or "url" in destination):
                return ApiResponse.error(400, "transfer needs destination.ncco or destination.url")
            problems = ncco_problems(destination["ncco"], name="destination.ncco") if "ncco" in destination else []
            if problems:
                return ApiResponse.error(400, "Invalid NCCO", invalid_parameters=problems)
        if self.network is not None:
            error = self.network.modify_call(uuid, body, **self._region(request))
            if error:
                return ApiResponse.error(*error)
            return ApiResponse(204)
        with self._lock:
            if uuid in self.calls and action == "hangup":
                self.calls[uuid]["status"] = "completed"
        return ApiResponse(204)

    @route("PUT", CALL_PATH + r"/(?P<media>talk|stream|dtmf)", auth="jwt")
    def start_media(self, request, uuid, media):
        messages = {"talk": "Talk started", "stream": "Stream started", "dtmf": "DTMF sent"}
        if self.network is not None:
            body = request.json if isinstance(request.json, dict) else {}
            error = self.network.play_into_call(uuid, media, body, **self._region(request))
            if error:
                return ApiResponse.error(*error)
        return ApiResponse.json(200, {"message": messages[media], "uuid": uuid})

    @route("DELETE", CALL_PATH + r"/(?P<media>talk|stream)", auth="jwt")
    def stop_media(self, request, uuid, media):
        return ApiResponse.json(200, {"message": f"{media.capitalize()} stopped", "uuid": uuid})

    @route("GET", r"/v1/files/(?P<file_id>[A-Za-z0-9_-]+)", auth="jwt")
    def get_file(self, request, file_id):
        with self._lock:
            content = self.recordings.get(file_id)
            content_type = self.file_types.get(file_id, "audio/mpeg")
        if content is None:
            return ApiResponse.error(404, f"File {file_id} not found")
        return ApiResponse(200, content, content_type=content_type)

    # SMS API

    @route("POST", r"/sms/json", auth="api_key")
    def send_sms(self, request):
        fields = request.data if isinstance(request.data, dict) else {}
        missing = [name for name in ("to", "from", "text") if not fields.get(name)]
        if missing:
            return ApiResponse.json(
                200,
                {"message-count": "1", "messages": [{"status": "2", "error-text": f"Missing {', '.join(missing)}"}]},
            )
        return ApiResponse.json(
            200,
            {
                "message-count": "1",
                "messages": [
                    {
                        "to": fields["to"],
                        "message-id": uuid_lib.uuid4().hex,
                        "status": "0",
                        "remaining-balance": "10.00000000",
                        "message-price": "0.07000000",
                        "network": "26201",
                    }
                ],
            },
        )


    # Numbers API (on the REST host)

    @route("POST", r"/number/update", auth="api_key")
    def update_number(self, request):
        # The SDK authenticates with HTTP Basic; api_key/api_secret as form fields work too (checked before).
        # Any msisdn is accepted: the emulator cannot know which numbers the account owns.
        fields = {
            key: value
            for key, value in (request.data if isinstance(request.data, dict) else {}).items()
            if key not in ("api_key", "api_secret")
        }
        missing = [name for name in ("country", "msisdn") if not fields.get(name)]
        if missing:
            # 420 "method failed" with the status in the body, as the Numbers API answers (unconfirmed for this case).
            return ApiResponse.json(
                420, {"error-code": "420", "error-code-label": f"Missing parameter: {', '.join(missing)}"}
            )
        with self._lock:
            self.numbers[fields["msisdn"]] = fields
        return ApiResponse.json(200, {"error-code": "200", "error-code-label": "success"})


# --- the HTTPS server ----------------------------------------------------------------------------------------


def parse_request(method, target, headers, body):
    """An ApiRequest from raw HTTP parts (body parsed as JSON or form by its content type)."""
    parts = urlsplit(target)
    request = ApiRequest(
        method=method,
        path=parts.path,
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers={name.lower(): value for name, value in headers.items()},
        body=body,
    )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and content_type == "application/json":
        try:
            request.json = json.loads(body)
        except ValueError:
            pass
    elif body and content_type == "application/x-www-form-urlencoded":
        request.form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API (the SDK pools connections)
    timeout = 30  # idle keep-alive connections end instead of pinning a thread forever
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's delayed ACK (~40 ms
    # on Linux), which Vonage's API does not add to every request.
    disable_nagle_algorithm = True

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = parse_request(self.command, self.path, dict(self.headers.items()), body)
        response = self.server.dispatch(request)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:
            # The client gave up (a scripted hang outlived its timeout).
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format, *args):
        pass


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, dispatch, ssl_context):
        super().__init__(address, _Handler)
        self.dispatch = dispatch
        self.ssl_context = ssl_context
        self._connections = set()
        self._connections_lock = threading.Lock()

    def drop_connections(self):
        """Close every open client connection, as a server restart or a load balancer would."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def finish_request(self, request, client_address):
        # TLS handshake in the worker thread, so a slow client cannot block accept().
        request.settimeout(_Handler.timeout)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self._connections_lock:
            self._connections.add(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            with self._connections_lock:
                self._connections.discard(tls)
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # connection resets and TLS errors from clients that gave up are expected


class HttpsServer:
    """DISPATCH (ApiRequest -> ApiResponse) served over HTTPS with a certificate from a trustme CA.

    CA: a trustme.CA to issue the certificate from (a new one by default); PORT 0 picks a free port.
    """

    def __init__(self, dispatch, *, ca=None, host="127.0.0.1", port=0, name="vonage-emulator"):
        self.ca = ca or trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost", "::1")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        self._server = _TLSServer((host, port), dispatch, context)
        self.host = f"{host}:{self._server.server_address[1]}"
        self.port = self._server.server_address[1]
        self.base_url = f"https://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def serve_forever(self):
        """Serve in the calling thread until stop() (or KeyboardInterrupt)."""
        self._server.serve_forever()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def drop_connections(self):
        self._server.drop_connections()

    def write_ca_bundle(self, path):
        """Write the CA certificate (PEM) that clients must trust to PATH and return PATH."""
        self.ca.cert_pem.write_to_path(str(path))
        return path
