"""The telephony client: the only module in the product that imports the Vonage SDK.

Everything else calls `get_telephony()` and catches `TelephonyError`. `error.permanent` says whether trying the
same request again can succeed (429, 5xx, timeouts and connection errors are temporary; a bad credential, an
unknown call or an invalid request is permanent).

SDK quirks this module works around:
- The SDK's pydantic NCCO models silently drop fields they do not model (record.transcription, input.mode, ...),
  so NCCOs go out as raw JSON through the SDK's own HTTP client, which still adds the application JWT and maps
  HTTP errors to exceptions.
- Numbers are sent as digits without "+".
- HttpClientOptions.timeout only takes whole seconds; VONAGE_TIMEOUT is rounded up. Requests are not retried
  inside the SDK (max_retries=0): callers decide, since a timed-out call creation may still have placed the call.
- The SDK's HttpClient keeps one mutable header dict per client: it leaks "Content-Type: application/json" from a
  Voice request into the next form-encoded SMS request and is shared between threads. Each thread therefore gets
  its own clients, and SMS uses a client of its own.
- client.http_client.download_file_stream has no timeout and client.voice.download_recording refuses other hosts,
  so recordings are fetched with requests, authenticated with the SDK's application JWT, after checking the host.
- vonage_jwt keeps the private key as PEM text and PyJWT parses it again for every JWT it signs: about 60 ms of
  RSA key checks per API request (most of a create-call's time). The voice client's JwtClient is therefore
  handed the parsed key object (PyJWT signs with a cryptography key as given), parsed once per Telephony and
  shared by every thread (cryptography keys are immutable and thread-safe). Each request still gets a fresh JWT.
- The Numbers API (linking a number to the application) is on the REST host and authenticates with HTTP Basic
  (API key/secret), which the shared header dict would then carry into other requests: it gets a client of its
  own too. Its success is a body {"error-code": "200"}; the SDK indexes that key without checking it is there.
"""
import logging
import math
import re
import threading
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from pydantic import ValidationError
from vonage import Auth, HttpClientOptions, Vonage, VonageError
from vonage_http_client.errors import (
    AuthenticationError,
    ForbiddenError,
    HttpRequestError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from vonage_numbers import UpdateNumberParams
from vonage_numbers.errors import NumbersError
from vonage_sms import SmsMessage
from vonage_sms.errors import PartialFailureError, SmsError

log = logging.getLogger(__name__)


# Call and leg uuids go into URL paths: accept nothing that could change the path.
UUID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
PHONE_RE = re.compile(r"^\+?[1-9][0-9]{1,14}$")
# SMS API status codes worth trying again: 1 throttled, 5 internal error.
SMS_TEMPORARY_STATUSES = {"1", "5"}
# Hosts (besides the configured API host) that may receive the application JWT: recordings, call regions.
VONAGE_HOST_SUFFIXES = (".nexmo.com", ".vonage.com")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_RECORDING_BYTES = 256 * 1024 * 1024


class TelephonyError(Exception):
    """A request to the phone network failed. `permanent` is True when repeating it cannot help."""

    def __init__(self, message, *, permanent=False, status=None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status = status

    def __str__(self):
        return self.message


class NotConfigured(TelephonyError):
    """Vonage credentials are missing or unusable (VONAGE_APPLICATION_ID / VONAGE_PRIVATE_KEY / API key)."""

    def __init__(self, message, *, status=None):
        super().__init__(message, permanent=True, status=status)


def _digits(number, field):
    """NUMBER (E.164, "+" optional) as the digits-only string the SDK and API expect."""
    value = str(number or "").strip()
    if not PHONE_RE.match(value):
        raise TelephonyError(f"{field} is not an E.164 phone number: {value!r}", permanent=True)
    return value.lstrip("+")


def _country(msisdn):
    """The ISO 3166-1 alpha-2 country of the number MSISDN (digits) that the Numbers API wants with it."""
    try:
        parsed = phonenumbers.parse(f"+{msisdn}")
    except phonenumbers.NumberParseException:
        parsed = None
    region = phonenumbers.region_code_for_number(parsed) if parsed else None
    if not region and parsed:
        # Numbers phonenumbers does not know yet (new ranges): the main country of the calling code.
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    if not region or not re.fullmatch(r"[A-Z]{2}", region):
        raise TelephonyError(f"no country for the phone number +{msisdn}", permanent=True)
    return region


def _sms_sender(sender):
    """An SMS sender: an E.164 number without "+", or an alphanumeric sender id as given."""
    value = str(sender or "").strip()
    if PHONE_RE.match(value):
        return value.lstrip("+")
    if not value:
        raise TelephonyError("SMS sender (from_) is empty", permanent=True)
    return value


def _check_uuid(uuid):
    if not isinstance(uuid, str) or not UUID_RE.match(uuid):
        raise TelephonyError(f"not a Vonage call uuid: {uuid!r}", permanent=True)
    return uuid


def _ncco_list(ncco):
    if not isinstance(ncco, (list, tuple)) or not all(isinstance(action, dict) for action in ncco):
        raise ValueError("an NCCO is a list of action dicts")
    return list(ncco)


def _bare_host(value):
    """HOST or HOST:PORT, tolerating a pasted scheme or trailing slash ("https://api.nexmo.com/")."""
    value = str(value or "").strip()
    for prefix in ("https://", "http://"):
        if value.lower().startswith(prefix):
            value = value[len(prefix):]
    return value.rstrip("/")


def _load_private_key(value):
    """The application's private key as PKCS#8 PEM text (the only form the SDK accepts).

    VALUE is PEM text (literal "\\n" escapes allowed, as env files often carry them) or the path of a PEM file.
    PKCS#1 ("BEGIN RSA PRIVATE KEY") is converted. The key itself never appears in an error message.
    """
    text = value.strip().replace("\\n", "\n")
    if "-----BEGIN" not in text:
        try:
            text = Path(text).expanduser().read_text()
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise NotConfigured(f"VONAGE_PRIVATE_KEY is neither PEM text nor a readable file ({reason})") from None
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, UnicodeError):
        raise NotConfigured("VONAGE_PRIVATE_KEY is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise NotConfigured("VONAGE_PRIVATE_KEY is not an RSA key (Vonage application keys are RSA)")
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _short(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_error(action, status, body=""):
    temporary = status >= 500 or status in (408, 429)
    detail = f": {_short(body)}" if body else ""
    return TelephonyError(f"Vonage {action} failed with HTTP {status}{detail}", permanent=not temporary, status=status)


def _translate(action, exc):
    """The TelephonyError for an exception raised by the SDK or requests during ACTION."""
    if isinstance(exc, TelephonyError):
        return exc
    if isinstance(exc, HttpRequestError):
        status = exc.response.status_code
        body = exc.response.text if exc.response.content else ""
        error = _status_error(action, status, body)
        if isinstance(exc, (RateLimitedError, ServerError)):
            error.permanent = False
        elif isinstance(exc, (AuthenticationError, ForbiddenError, NotFoundError)):
            error.permanent = True
        return error
    if isinstance(exc, requests.Timeout):
        return TelephonyError(f"Vonage {action} timed out: {_short(exc)}", permanent=False)
    if isinstance(exc, requests.RequestException):
        return TelephonyError(f"Vonage {action} could not connect: {_short(exc)}", permanent=False)
    if isinstance(exc, PartialFailureError):
        # Some parts of a multi-part SMS went out: sending it again would repeat them.
        return TelephonyError(f"Vonage {action} partially failed: {_short(exc.response)}", permanent=True)
    if isinstance(exc, NumbersError):
        # "Numbers API operation failed: <error-code> <label>" from a 2xx answer.
        match = re.search(r"failed: (\d+)", str(exc))
        code = int(match.group(1)) if match else 400
        temporary = code >= 500 or code in (408, 429)
        # status stays None: it is the HTTP status elsewhere, and this answer was a 2xx.
        return TelephonyError(f"Vonage {action} failed: {_short(exc)}", permanent=not temporary)
    if isinstance(exc, SmsError):
        match = re.search(r"error code (\w+)", str(exc))
        code = match.group(1) if match else None
        return TelephonyError(f"Vonage {action} failed: {_short(exc)}", permanent=code not in SMS_TEMPORARY_STATUSES)
    if isinstance(exc, (VonageError, ValidationError)):
        return TelephonyError(f"Vonage {action} failed: {_short(exc)}", permanent=True)
    raise exc


def _fail(action, exc, **context):
    """Log the failed ACTION in one line and raise the TelephonyError for EXC."""
    error = _translate(action, exc)
    where = " ".join(f"{key}={value}" for key, value in context.items())
    log.warning(
        "vonage action=%s %s status=%s permanent=%s error=%s",
        action, where, error.status, error.permanent, error.message,
    )
    if error is exc:
        raise error
    raise error from exc


class Telephony:
    """Voice, SMS and number linking through Vonage. Safe to share between threads (each thread gets its own SDK
    clients)."""

    def __init__(
        self,
        *,
        application_id="",
        private_key="",
        api_key="",
        api_secret="",
        api_host="api.nexmo.com",
        rest_host="rest.nexmo.com",
        timeout=5.0,
    ):
        self.application_id = application_id or ""
        self._private_key_setting = private_key or ""
        self._api_key = api_key or ""
        self._api_secret = api_secret or ""
        self.api_host = _bare_host(api_host)
        self.rest_host = _bare_host(rest_host)
        self.timeout = float(timeout)
        self._local = threading.local()

    @classmethod
    def from_settings(cls):
        return cls(
            application_id=settings.VONAGE_APPLICATION_ID,
            private_key=settings.VONAGE_PRIVATE_KEY,
            api_key=settings.VONAGE_API_KEY,
            api_secret=settings.VONAGE_API_SECRET,
            api_host=settings.VONAGE_API_HOST,
            rest_host=settings.VONAGE_REST_HOST,
            timeout=settings.VONAGE_TIMEOUT,
        )

    def __repr__(self):
        return f"<Telephony application_id={self.application_id!r} api_host={self.api_host!r}>"

    # --- Voice API -------------------------------------------------------------------------------------------

    def create_call(
        self,
        *,
        to,
        from_,
        event_url,
        ncco=None,
        answer_url=None,
        ringing_timer=None,
        length_timer=None,
        machine_detection=None,
    ):
        """Place an outbound call to the phone number TO and return the new call's uuid.

        Give exactly one of NCCO (a list of plain-dict actions, sent exactly as given) or ANSWER_URL.
        A temporary error (timeout, 5xx) does not prove that no call was placed: do not retry blindly.
        """
        if (ncco is None) == (answer_url is None):
            raise ValueError("create_call needs exactly one of ncco or answer_url")
        body = {
            "to": [{"type": "phone", "number": _digits(to, "to")}],
            "from": {"type": "phone", "number": _digits(from_, "from_")},
            "event_url": [event_url],
        }
        if ncco is not None:
            body["ncco"] = _ncco_list(ncco)
        else:
            body["answer_url"] = [answer_url]
        if ringing_timer is not None:
            body["ringing_timer"] = int(ringing_timer)
        if length_timer is not None:
            body["length_timer"] = int(length_timer)
        if machine_detection is not None:
            body["machine_detection"] = machine_detection

        def request(client):
            http = client.http_client
            return http.post(http.api_host, "/v1/calls", body, auth_type="jwt")

        response = self._voice_request("create_call", request, to=to)
        uuid = response.get("uuid") if isinstance(response, dict) else None
        if not uuid:
            # The call may exist: permanent, so nobody places it again.
            log.warning("vonage action=create_call to=%s error=no-uuid-in-response", to)
            raise TelephonyError("Vonage create_call returned no call uuid", permanent=True)
        log.info("vonage action=create_call to=%s uuid=%s", to, uuid)
        return uuid

    def hangup(self, uuid, *, host=None):
        """Hang up the call leg UUID, on HOST (the call's region or the host that created it; default: api_host)."""
        self._modify("hangup", uuid, {"action": "hangup"}, host)
        log.info("vonage action=hangup uuid=%s host=%s", uuid, host or self.api_host)

    def transfer_ncco(self, uuid, ncco, *, host=None):
        """Replace what the call leg UUID is doing with NCCO (sent exactly as given), on HOST as for hangup()."""
        body = {"action": "transfer", "destination": {"type": "ncco", "ncco": _ncco_list(ncco)}}
        self._modify("transfer_ncco", uuid, body, host)
        log.info("vonage action=transfer_ncco uuid=%s host=%s actions=%s", uuid, host or self.api_host,
                 ",".join(_action_names(ncco)))

    def region_host(self, region_url):
        """The host to modify a call on, from the region_url of its answer webhook; "" (use api_host) when the URL
        is empty or not acceptable, so that a signed but odd region_url cannot send our credentials elsewhere.

        Acceptable: an https URL without credentials on the configured API host, or, when that host is
        Vonage's, on another Vonage host (default port); when it is not (a test double of the API), on the same
        machine (any port).
        """
        if not region_url:
            return ""
        parts = _https_parts(region_url)
        if parts is None:
            log.warning("vonage region_url refused (not a plain https URL) host=%s", _host_of(region_url))
            return ""
        host, port = parts
        netloc = f"{host}:{port}" if port is not None else host
        configured_host = urlsplit(f"https://{self.api_host}").hostname or ""
        if netloc == self.api_host.lower():
            return netloc
        if configured_host.endswith(VONAGE_HOST_SUFFIXES):
            if port in (None, 443) and host.endswith(VONAGE_HOST_SUFFIXES):
                return netloc
        elif host == configured_host or {host, configured_host} <= LOOPBACK_HOSTS:
            return netloc
        log.warning("vonage region_url refused host=%s api_host=%s", netloc, self.api_host)
        return ""

    def download_recording(self, url):
        """The bytes of the recording at URL (a recording_url from a record webhook)."""
        if not self._recording_url_allowed(url):
            log.warning("vonage action=download_recording refused host=%s", _host_of(url))
            raise TelephonyError(f"refusing to send Vonage credentials to {_host_of(url)!r}", permanent=True)
        client = self._voice_client()
        session = getattr(self._local, "download_session", None)
        if session is None:
            session = self._local.download_session = requests.Session()
        try:
            headers = {
                "Authorization": client.http_client.auth.create_jwt_auth_string().decode(),
                "User-Agent": client.http_client.user_agent,
            }
            # A redirect is not followed: the URL was checked to be Vonage's, where it points need not be.
            with session.get(url, headers=headers, stream=True, timeout=self.timeout, allow_redirects=False) as response:
                if response.status_code >= 300:
                    raise _status_error("download_recording", response.status_code, response.text)
                content = bytearray()
                for chunk in response.iter_content(chunk_size=64 * 1024):
                    content += chunk
                    if len(content) > MAX_RECORDING_BYTES:
                        raise TelephonyError(f"recording larger than {MAX_RECORDING_BYTES} bytes", permanent=True)
        except Exception as exc:
            _fail("download_recording", exc, host=_host_of(url))
        log.info("vonage action=download_recording host=%s bytes=%d", _host_of(url), len(content))
        return bytes(content)

    # --- SMS API ---------------------------------------------------------------------------------------------

    def send_sms(self, *, to, from_, text):
        """Send TEXT to the phone number TO and return the message id (of the first part if split)."""
        recipient, sender = _digits(to, "to"), _sms_sender(from_)
        client = self._sms_client()
        try:
            response = client.sms.send(SmsMessage(to=recipient, from_=sender, text=text))
        except Exception as exc:
            _fail("send_sms", exc, to=to)
        message_id = response.messages[0].message_id if response.messages else None
        log.info("vonage action=send_sms to=%s message_id=%s parts=%s", to, message_id, response.message_count)
        return message_id or ""

    # --- Numbers API -----------------------------------------------------------------------------------------

    def link_number(self, number):
        """Point inbound calls to the Vonage number NUMBER (E.164) at this application. Returns None.

        Linking is idempotent: linking a number that already points here changes nothing.
        """
        msisdn = _digits(number, "number")
        country = _country(msisdn)
        if not self.application_id:
            raise NotConfigured("VONAGE_APPLICATION_ID must be set to link numbers to the application")
        client = self._numbers_client()
        params = UpdateNumberParams(country=country, msisdn=msisdn, app_id=self.application_id)
        try:
            client.numbers.update_number(params)
        except (KeyError, TypeError) as exc:
            # A 2xx answer without "error-code": the SDK cannot tell success from failure.
            error = TelephonyError(f"Vonage link_number got an unexpected answer ({type(exc).__name__})", permanent=True)
            _fail("link_number", error, number=number)
        except Exception as exc:
            _fail("link_number", exc, number=number)
        log.info("vonage action=link_number number=%s country=%s app_id=%s", number, country, self.application_id)

    # --- internals -------------------------------------------------------------------------------------------

    def _voice_request(self, action, request, **context):
        client = self._voice_client()
        try:
            return request(client)
        except Exception as exc:
            _fail(action, exc, **context)

    @cached_property
    def _private_key_pem(self):
        return _load_private_key(self._private_key_setting)

    @cached_property
    def _private_key_object(self):
        return serialization.load_pem_private_key(self._private_key_pem.encode(), password=None)

    def _use_parsed_key(self, auth):
        """Make AUTH sign JWTs with the already parsed private key instead of re-parsing the PEM each time.

        Relies on vonage_jwt's JwtClient._private_key (vonage-jwt 1.1.x); left alone if that changes."""
        jwt_client = getattr(auth, "_jwt_client", None)
        if jwt_client is not None and isinstance(getattr(jwt_client, "_private_key", None), (str, bytes)):
            jwt_client._private_key = self._private_key_object

    def _options(self, **extra):
        return HttpClientOptions(
            api_host=self.api_host,
            rest_host=self.rest_host,
            timeout=max(1, math.ceil(self.timeout)),
            # One HTTP attempt per call: urllib3 would otherwise retry timed-out PUTs (a transfer) three more
            # times, quadrupling the time a task waits. Callers own the retry policy. A pooled connection the
            # server closed is still retried by the SDK itself.
            max_retries=0,
            **extra,
        )

    def _voice_client(self):
        client = getattr(self._local, "voice", None)
        if client is None:
            if not (self.application_id and self._private_key_setting):
                raise NotConfigured("VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY must be set to use the Voice API")
            try:
                auth = Auth(application_id=self.application_id, private_key=self._private_key_pem)
                self._use_parsed_key(auth)
                client = Vonage(auth, self._options())
            except (VonageError, ValidationError) as exc:
                raise NotConfigured(f"Vonage Voice client cannot be built: {type(exc).__name__}") from None
            self._local.voice = client
        return client

    def _sms_client(self):
        client = getattr(self._local, "sms", None)
        if client is None:
            if not (self._api_key and self._api_secret):
                raise NotConfigured("VONAGE_API_KEY and VONAGE_API_SECRET must be set to send SMS")
            try:
                client = Vonage(Auth(api_key=self._api_key, api_secret=self._api_secret), self._options())
            except (VonageError, ValidationError) as exc:
                raise NotConfigured(f"Vonage SMS client cannot be built: {type(exc).__name__}") from None
            self._local.sms = client
        return client

    def _numbers_client(self):
        client = getattr(self._local, "numbers", None)
        if client is None:
            if not (self._api_key and self._api_secret):
                raise NotConfigured("VONAGE_API_KEY and VONAGE_API_SECRET must be set to link numbers")
            try:
                client = Vonage(Auth(api_key=self._api_key, api_secret=self._api_secret), self._options())
            except (VonageError, ValidationError) as exc:
                raise NotConfigured(f"Vonage Numbers client cannot be built: {type(exc).__name__}") from None
            self._local.numbers = client
        return client

    def _modify(self, action, uuid, body, host):
        """PUT BODY to /v1/calls/UUID on HOST (default: api_host)."""
        _check_uuid(uuid)

        def request(client):
            http = client.http_client
            return http.put(host or http.api_host, f"/v1/calls/{uuid}", body, auth_type="jwt")

        self._voice_request(action, request, uuid=uuid)

    def _recording_url_allowed(self, url):
        """True for https URLs on the configured API host or on a Vonage host (default port, no userinfo)."""
        parts = _https_parts(url)
        if parts is None:
            return False
        host, port = parts
        netloc = f"{host}:{port}" if port is not None else host
        if netloc == self.api_host.lower():
            return True
        return port in (None, 443) and host.endswith(VONAGE_HOST_SUFFIXES)


def _https_parts(url):
    """(host in lower case, port or None) of an https URL without user or password; None for anything else."""
    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    return parts.hostname.lower(), port


def _host_of(url):
    try:
        return urlsplit(str(url)).netloc.rpartition("@")[2] or "?"
    except ValueError:
        return "?"


def _action_names(ncco):
    return [str(action.get("action", "?")) if isinstance(action, dict) else "?" for action in ncco]


_telephony = None
_telephony_lock = threading.Lock()


def get_telephony():
    """The Telephony client built from settings (once; `reset_telephony()` rebuilds it on next use).

    Never raises for missing credentials: the client's methods raise NotConfigured instead.
    """
    global _telephony
    with _telephony_lock:
        if _telephony is None:
            _telephony = Telephony.from_settings()
        return _telephony


def reset_telephony():
    """Forget the cached client, so the next get_telephony() reads the settings again."""
    global _telephony
    with _telephony_lock:
        _telephony = None


def is_configured():
    """True when Vonage application credentials are set (calls can be placed)."""
    return bool(settings.VONAGE_APPLICATION_ID and settings.VONAGE_PRIVATE_KEY)


@receiver(setting_changed)
def _reset_on_setting_change(*, setting, **kwargs):
    if setting.startswith("VONAGE_"):
        reset_telephony()
