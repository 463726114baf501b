"""The phone network as one HTTPS server: the Vonage REST API, the control API and the NCCO engine together.

`PhoneNetwork` is what `manage.py phone_network` runs and what the end-to-end tests start in-process.
`LocalSetup` keeps the credentials of a local run (application id and key pair, signature secret, control token,
CA) in a directory, generated once, so `make run` finds the same ones the next time.
"""
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

from .control import PREFIX, ControlAPI
from .engine import PRIMARY, SECONDARY, Network
from .rest import Credentials, HttpsServer, RestAPI


class PhoneNetwork:
    """The emulator: REST API + control API + NCCO engine behind one HTTPS port.

    WEBHOOK_BASE: the product's base URL (answer URL = <base>/vonage/answer, event, fallback); CREDENTIALS: the
    application (its public key checks the JWT of REST requests); SIGNATURE_SECRET signs webhooks; CONTROL_TOKEN
    guards /_emulator/; SPEED multiplies simulated time (0 in tests); CALL_RATE: call creations per second before
    429 (Vonage: 3; None: unlimited); CLOCK times that limit (see RestAPI); VERIFY: TLS verification of https
    webhooks; ANSWER_METHOD and FALLBACK_METHOD: the application's methods for the answer and fallback URLs
    (Vonage's default: GET).

    SECOND_REGION serves a second data centre on a second HTTPS host (`second_base_url`, same CA): the calls it
    creates, and inbound calls while the network's inbound_region is SECONDARY, live there (region_url in the
    answer webhook names that host), and a modify request for a call sent to the other region's host gets 404.
    """

    def __init__(self, *, webhook_base, credentials, signature_secret, control_token, speed=1.0, ca=None,
                 host="127.0.0.1", port=0, call_rate=None, clock=time.monotonic, verify=True, answer_method="GET",
                 fallback_method="GET", second_region=False):
        base = webhook_base.rstrip("/")
        self.network = Network(
            app={
                "answer_url": f"{base}/vonage/answer",
                "event_url": f"{base}/vonage/event",
                "fallback_url": f"{base}/vonage/fallback",
                "answer_method": answer_method,
                "fallback_method": fallback_method,
            },
            signing={
                "secret": signature_secret,
                "api_key": credentials.api_key,
                "application_id": credentials.application_id,
            },
            speed=speed,
            verify=verify,
        )
        self.rest = RestAPI(credentials, network=self.network, call_rate=call_rate, clock=clock)
        self.rest.max_requests = 5000
        self.network.files = lambda content, content_type: self.rest.add_recording(content, content_type=content_type)
        self.control = ControlAPI(self.network, control_token, script=self.rest.script)
        # With one region every request reaches the data centre that holds the call: no region check.
        self.server = HttpsServer(self._dispatcher(PRIMARY if second_region else None), ca=ca, host=host, port=port)
        self.rest.base_url = self.server.base_url
        self.base_url = self.server.base_url
        self.host = self.server.host
        self.network.region_urls[PRIMARY] = self.base_url
        self.second_server = None
        self.second_base_url = self.second_host = None
        if second_region:
            self.second_server = HttpsServer(self._dispatcher(SECONDARY), ca=self.server.ca, host=host,
                                             name="vonage-emulator-region-2")
            # A host name of its own, as a second data centre has (the certificate names localhost too).
            self.second_host = f"localhost:{self.second_server.port}"
            self.second_base_url = f"https://{self.second_host}"
            self.network.region_urls[SECONDARY] = self.second_base_url
        self.control_token = control_token

    def _dispatcher(self, region):
        def dispatch(request):
            request.region = region
            return self.dispatch(request)

        return dispatch

    def dispatch(self, request):
        if request.path.startswith(PREFIX):
            return self.control.handle(request)
        return self.rest.handle(request)

    def start(self):
        self.server.start()
        if self.second_server is not None:
            self.second_server.start()
        return self

    def serve_forever(self):
        if self.second_server is not None:
            self.second_server.start()
        self.server.serve_forever()

    def stop(self):
        self.server.stop()
        if self.second_server is not None:
            self.second_server.stop()
        self.network.close()

    def write_ca_bundle(self, path):
        return self.server.write_ca_bundle(path)


@dataclass
class LocalSetup:
    """Credentials and files of a local phone network, kept in DIRECTORY (generated on first use)."""

    directory: Path
    application_id: str
    signature_secret: str
    control_token: str
    api_key: str
    api_secret: str

    SETTINGS = "settings.json"

    @classmethod
    def load_or_create(cls, directory):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        settings_file = directory / cls.SETTINGS
        if not settings_file.exists() or not (directory / "private.pem").exists() or not (directory / "ca.pem").exists():
            credentials = Credentials.generate(application_id=str(uuid.uuid4()), api_key="localkey",
                                               api_secret=secrets.token_urlsafe(16))
            _write_private(directory / "private.pem", credentials.private_key_pem)
            (directory / "public.pem").write_text(credentials.public_key_pem)
            ca = trustme.CA()
            (directory / "ca.pem").write_bytes(ca.cert_pem.bytes())
            _write_private(directory / "ca-key.pem", ca.private_key_pem.bytes().decode())
            data = {
                "application_id": credentials.application_id,
                "signature_secret": secrets.token_urlsafe(32),
                "control_token": secrets.token_urlsafe(24),
                "api_key": credentials.api_key,
                "api_secret": credentials.api_secret,
            }
            _write_private(settings_file, json.dumps(data, indent=2))
        data = json.loads(settings_file.read_text())
        return cls(directory=directory, **{key: data[key] for key in (
            "application_id", "signature_secret", "control_token", "api_key", "api_secret")})

    @property
    def private_key_path(self):
        return self.directory / "private.pem"

    @property
    def public_key_path(self):
        return self.directory / "public.pem"

    @property
    def ca_cert_path(self):
        return self.directory / "ca.pem"

    def credentials(self):
        public = self.public_key_path.read_text()
        private = self.private_key_path.read_text()
        return Credentials(self.application_id, private, public, self.api_key, self.api_secret)

    def ca(self):
        return trustme.CA.from_pem((self.directory / "ca.pem").read_bytes(), (self.directory / "ca-key.pem").read_bytes())

    def client_ca_bundle(self):
        """A CA bundle for the product's HTTP clients: the public roots (certifi) plus the emulator's CA, so
        other HTTPS requests (alert actions, Slack) keep working. Returns its path."""
        path = self.directory / "ca-bundle.pem"
        try:
            import certifi

            roots = Path(certifi.where()).read_text()
        except (ImportError, OSError):
            roots = ""
        path.write_text(roots.rstrip("\n") + "\n" + self.ca_cert_path.read_text())
        return path


def _write_private(path, text):
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def public_key_from_private(private_pem):
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
