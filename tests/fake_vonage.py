"""The local fake of the Vonage HTTP API (Voice REST, SMS, Numbers, recordings) for tests, plus webhook signing like Vonage.

The REST layer lives in the emulator (callrouting/emulator/rest.py), so there is one implementation; here it runs
without a phone network (created calls are only recorded):
- `FakeVonageAPI`: the REST layer (`RestAPI`). Takes an `ApiRequest`, checks auth, routes by method and path, keeps
  state (calls, recordings) and records every request. No sockets: it can be driven directly.
- `Script`: per-test scripted faults (fail_next / hang_next / answer_late_next), consulted by the API before routing.
- `FakeVonageServer`: a real HTTPS server (TLS from a trustme CA) on 127.0.0.1 that feeds the API.
- `FakeVonage`: what tests get (fixture `vonage_api`): the server, the API and the helpers.

`signed_headers()` signs a webhook request the way Vonage does (HS256 JWT with payload_hash);
`VonageWebhookClient` (fixture `vonage_client`) is a Django test client that sends such webhooks and, like
Vonage, refuses an NCCO it could not run: a 2xx answer that is a JSON array must pass the emulator's checks
(callrouting/emulator/validation.py), or the test fails.
"""
import json
import re

from django.conf import settings
from django.test import Client

from callrouting.emulator.rest import (  # noqa: F401 (re-exported for tests)
    ApiRequest,
    ApiResponse,
    Credentials,
    Fault,
    HttpsServer,
    Script,
    parse_request,
)
from callrouting.emulator.rest import RestAPI as FakeVonageAPI
from callrouting.emulator.signing import sign_webhook
from callrouting.emulator.validation import ncco_problems


class FakeVonageServer(HttpsServer):
    """FakeVonageAPI served over HTTPS on 127.0.0.1 with a certificate from a trustme CA."""

    def __init__(self, api):
        super().__init__(api.handle, name="fake-vonage")
        self.api = api
        api.base_url = self.base_url


# --- what tests use ------------------------------------------------------------------------------------------


class FakeVonage:
    """The fake Vonage API as tests see it (fixture `vonage_api`)."""

    def __init__(self, credentials=None):
        self.credentials = credentials or Credentials.generate()
        self.script = Script()
        self.api = FakeVonageAPI(self.credentials, self.script)
        self.server = FakeVonageServer(self.api)
        self.host = self.server.host
        self.base_url = self.server.base_url

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop()

    def settings(self):
        """The VONAGE_* settings that point the product at this fake."""
        return {
            "VONAGE_API_HOST": self.host,
            "VONAGE_REST_HOST": self.host,
            "VONAGE_APPLICATION_ID": self.credentials.application_id,
            "VONAGE_PRIVATE_KEY": self.credentials.private_key_pem,
            "VONAGE_API_KEY": self.credentials.api_key,
            "VONAGE_API_SECRET": self.credentials.api_secret,
            "VONAGE_FROM_NUMBER": "+4930123456789",
        }

    # recorded traffic

    @property
    def requests(self):
        """Every request received since the last reset, in order (ApiRequest objects)."""
        return self.api.requests

    def requests_matching(self, method, path_regex):
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.search(r.path)]

    def calls_created(self):
        """JSON bodies of the calls the fake created (POST /v1/calls answered 201)."""
        return [r.json for r in self.requests_matching("POST", r"^/v1/calls$") if r.status == 201]

    def modifications(self, uuid=None):
        """JSON bodies of accepted PUT /v1/calls/{uuid} requests (hangup, transfer, ...), for one call or all."""
        pattern = rf"^/v1/calls/{re.escape(uuid)}$" if uuid else r"^/v1/calls/[^/]+$"
        return [r.json for r in self.requests_matching("PUT", pattern) if r.status == 204]

    def sms_sent(self):
        """Fields (to, from, text, ...) of the SMS the fake accepted."""
        return [
            {key: value for key, value in r.data.items() if key not in ("api_key", "api_secret")}
            for r in self.requests_matching("POST", r"^/sms/json$")
            if r.status == 200 and not r.auth_error
        ]

    def numbers_updated(self):
        """Fields (country, msisdn, app_id, ...) of the accepted POST /number/update requests, in order."""
        return [
            {key: value for key, value in r.data.items() if key not in ("api_key", "api_secret")}
            for r in self.requests_matching("POST", r"^/number/update$")
            if r.status == 200
        ]

    # scripting

    def fail_next(self, method, path_regex, status, times=1, body=None):
        """The next TIMES requests matching METHOD ("*" for any) and PATH_REGEX get STATUS (and BODY)."""
        self.script.fail_next(method, path_regex, status, times=times, body=body)

    def hang_next(self, method, path_regex, seconds, times=1):
        """The next TIMES matching requests are answered (normally) only after SECONDS."""
        self.script.hang_next(method, path_regex, seconds, times=times)

    def answer_late_next(self, method, path_regex, seconds, times=1):
        """The next TIMES matching requests take effect at once (a created call is recorded) but are answered
        only after SECONDS: a create-call that times out although the call was placed."""
        self.script.answer_late_next(method, path_regex, seconds, times=times)

    def drop_connections(self):
        """Close all open keep-alive connections (clients must reconnect)."""
        self.server.drop_connections()

    def add_recording(self, content):
        """Serve CONTENT (bytes) as a recording; returns its recording_url."""
        return self.api.add_recording(content)

    def reset(self):
        self.api.reset()


# --- webhook signing, as Vonage does it ----------------------------------------------------------------------


def signed_headers(body, *, secret=None, iat=None, extra_claims=None):
    """Django test-client headers signing a webhook whose raw body is BODY (None or b"" for GET).

    Claims like Vonage's: iat (now unless given), jti, iss, api_key and payload_hash (SHA-256 of BODY).
    EXTRA_CLAIMS override them; a None value removes a claim (e.g. {"iat": None}). SECRET defaults to
    settings.VONAGE_SIGNATURE_SECRET.
    """
    authorization = sign_webhook(
        body,
        secret=settings.VONAGE_SIGNATURE_SECRET if secret is None else secret,
        api_key=getattr(settings, "VONAGE_API_KEY", "") or "testkey1",
        application_id=getattr(settings, "VONAGE_APPLICATION_ID", ""),
        iat=iat,
        extra_claims=extra_claims,
    )
    return {"HTTP_AUTHORIZATION": authorization}


class VonageWebhookClient(Client):
    """A Django test client that sends webhooks signed like Vonage's (fixture `vonage_client`)."""

    def post_webhook(self, path, payload, **extra):
        """POST PAYLOAD as a JSON body, signed (with payload_hash)."""
        body = json.dumps(payload).encode()
        response = self.post(path, data=body, content_type="application/json", **signed_headers(body), **extra)
        return assert_runnable_ncco(response)

    def get_webhook(self, path, params=None, **extra):
        """GET PATH with PARAMS as the query string, signed (no body, so no payload_hash)."""
        return assert_runnable_ncco(self.get(path, data=params or {}, **signed_headers(None), **extra))


def assert_runnable_ncco(response):
    """RESPONSE, after checking that an NCCO in a 2xx answer is one Vonage would run (the only kind it plays)."""
    if 200 <= response.status_code < 300 and response.get("Content-Type", "").startswith("application/json"):
        ncco = json.loads(response.content)
        problems = ncco_problems(ncco) if isinstance(ncco, list) else []
        assert not problems, f"Vonage would refuse this NCCO: {problems}\n{json.dumps(ncco)[:2000]}"
    return response
