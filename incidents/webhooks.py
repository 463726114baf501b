"""Signed Vonage webhooks: verification, payload parsing and the decorator every Vonage webhook view uses.

Vonage signs each webhook with a JWT (HS256, the account's signature secret) in "Authorization: Bearer ...".
A token proves one request: we check the signature, that it was issued for our application (`application_id`),
its age (`iat`), that its `jti` was never seen before (WebhookToken, in the database so that every web process
sees it) and that its `payload_hash` matches the body. Without VONAGE_SIGNATURE_SECRET every webhook is refused
(fail closed).

How a refusal is answered follows what Vonage does with the answer. It retries only timeouts, resets, 429, 503
and 504, and never plays the body of any other non-2xx answer: the call goes to the fallback URL, and a refused
fallback drops the caller in silence. So:
- no Authorization header at all (Vonage rarely sends a callback unsigned): 503, and Vonage sends it again;
- a caller- or agent-facing URL that returns an NCCO (answer, menu input, agent input, fallback): 200 with a
  safe spoken NCCO, changing nothing;
- event URLs: 401 for a bad signature, 400 for an unreadable payload.
"""
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import time
from functools import wraps

import jwt
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .metrics import WEBHOOK_SECONDS
from .models import WebhookToken

log = logging.getLogger(__name__)

# How far a token's iat may lie in the future (clock skew between Vonage and us).
MAX_CLOCK_SKEW = 60
# A token id as it can be stored (Vonage's are uuids): printable ASCII, as long as WebhookToken.jti takes.
JTI_RE = re.compile(r"[\x21-\x7e]{1,200}")


class SignatureError(Exception):
    """The request is not a fresh webhook signed by our Vonage account for our application."""


class Unsigned(SignatureError):
    """The request carries no Authorization header at all (Vonage sends it again when answered 503)."""


class MalformedWebhook(Exception):
    """The request is signed but its payload cannot be read."""


def verify_signature(request):
    """The claims of the request's Vonage signature; raises SignatureError unless it is valid, fresh, for our
    application, matches the body and was never used before (the token's jti is remembered from here on)."""
    secret = settings.VONAGE_SIGNATURE_SECRET
    if not secret:
        raise SignatureError("VONAGE_SIGNATURE_SECRET is not set: all webhooks are refused")
    if "Authorization" not in request.headers:
        raise Unsigned("no Authorization header")

    scheme, _, token = request.headers["Authorization"].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise SignatureError("no bearer token")

    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=MAX_CLOCK_SKEW,
            options={"require": ["iat"], "verify_aud": False},
        )
    except jwt.MissingRequiredClaimError:
        raise SignatureError("token has no iat") from None
    except jwt.InvalidSignatureError:
        raise SignatureError("bad signature") from None
    except jwt.ImmatureSignatureError:
        raise SignatureError("token issued in the future") from None
    except jwt.ExpiredSignatureError:
        raise SignatureError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise SignatureError(f"unreadable token ({type(exc).__name__})") from None

    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)):
        raise SignatureError("iat is not a number")
    age = time.time() - iat
    if age > settings.VONAGE_SIGNATURE_MAX_AGE:
        raise SignatureError(f"token is {int(age)} s old")
    if age < -MAX_CLOCK_SKEW:
        raise SignatureError("token issued in the future")

    # A token of another application on the same account (same secret) is not ours to act on.
    application_id = settings.VONAGE_APPLICATION_ID
    if not application_id:
        raise SignatureError("VONAGE_APPLICATION_ID is not set: all webhooks are refused")
    if claims.get("application_id") != application_id:
        raise SignatureError("token is for another application")

    body = request.body
    if body:
        claimed = claims.get("payload_hash")
        if not isinstance(claimed, str):
            raise SignatureError("body present but token has no payload_hash")
        if not _body_matches(claimed.lower(), body):
            raise SignatureError("payload_hash does not match the body")

    jti = claims.get("jti")
    if not isinstance(jti, str) or not JTI_RE.fullmatch(jti):
        raise SignatureError("token has no usable jti")
    if not use_token(jti, iat):
        raise SignatureError("token already used (a replay)")
    return claims


def _body_matches(claimed, body):
    """True when CLAIMED (hex SHA-256) is the hash of BODY as received, or of BODY as Vonage serialised it
    (compact JSON): a proxy on the way may have re-formatted the JSON."""
    if hmac.compare_digest(claimed, hashlib.sha256(body).hexdigest()):
        return True
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    for ascii_only in (False, True):
        compact = json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only).encode("utf-8")
        if hmac.compare_digest(claimed, hashlib.sha256(compact).hexdigest()):
            return True
    return False


def use_token(jti, iat):
    """Remember the token JTI (issued at IAT, epoch seconds) as used; False when it was used before.

    One INSERT ... ON CONFLICT DO NOTHING: the unique jti decides between two processes receiving the same
    token at once, without a savepoint or a failed transaction. The row is kept until the token is too old to
    pass the age check (the sweeper deletes it after that). With the database down the token cannot be
    remembered: it is let through (its signature, application and age were checked), because the views answer
    such a request with an apology and change nothing that a replay could change twice.
    """
    expires_at = dt.datetime.fromtimestamp(iat, dt.timezone.utc) + dt.timedelta(
        seconds=settings.VONAGE_SIGNATURE_MAX_AGE + MAX_CLOCK_SKEW
    )
    table = connection.ops.quote_name(WebhookToken._meta.db_table)
    sql = f"INSERT INTO {table} (jti, expires_at) VALUES (%s, %s) ON CONFLICT (jti) DO NOTHING"
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, [jti, connection.ops.adapt_datetimefield_value(expires_at)])
            return cursor.rowcount == 1
    except DatabaseError as exc:
        log.error("webhook token not remembered (database error %s): accepted without the replay check", type(exc).__name__)
        return True


def forget_expired_tokens(now=None):
    """Delete the remembered tokens too old to pass the age check any more; returns how many."""
    deleted, _ = WebhookToken.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted


def webhook_payload(request):
    """The webhook's fields: the JSON object body of a POST, or the query parameters (last value each) of a GET.

    Raises MalformedWebhook for a body that is not a JSON object, or for any string in it (keys included) the
    database cannot store: see check_storable.
    """
    if request.method in ("GET", "HEAD"):
        payload = {key: value for key, value in request.GET.items()}
    else:
        if not request.body:
            raise MalformedWebhook("empty body")
        try:
            payload = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise MalformedWebhook(f"body is not JSON ({type(exc).__name__})") from None
        if not isinstance(payload, dict):
            raise MalformedWebhook(f"body is JSON {type(payload).__name__}, not an object")
    check_storable(payload)
    return payload


def check_storable(value):
    """Raise MalformedWebhook if any string in VALUE (nested dicts and lists, keys too) holds a NUL character or
    a lone surrogate. JSON allows both as escapes (\\u0000, \\ud800) and a GET query can carry %00, but
    PostgreSQL text cannot hold NUL and a lone surrogate cannot be encoded as UTF-8 at all: saving, or even
    filtering on, such a string fails with a 500. No real Vonage field carries either, so the payload is refused.
    """
    stack = [value]
    while stack:  # iterative: a deeply nested body must not hit the recursion limit
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise MalformedWebhook("a string holds a NUL character")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise MalformedWebhook("a string holds a lone surrogate") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def vonage_webhook(view=None, *, safe_ncco=None, on_error_event=None):
    """Decorate a Vonage webhook view: verify the signature, parse the payload, call view(request, payload, ...).

    With SAFE_NCCO (callable(request) -> NCCO list) the view answers Vonage with an NCCO (answer, input,
    fallback): a bad signature or an unreadable payload (or MalformedWebhook raised by the view) is answered
    200 with that NCCO, so the caller or agent hears it and nothing changes. Without it (event URLs) they get
    401 and 400; an event without a status (a transfer or an error event) is answered 204 instead of calling
    the view, and an error event is passed to ON_ERROR_EVENT(payload, ...) when given (with the view's
    arguments). A request without an Authorization header gets 503 either way. The verified claims are available to the view
    as request.vonage_claims. Works as @vonage_webhook and @vonage_webhook(safe_ncco=...).
    """

    def decorator(view_func):
        latency = WEBHOOK_SECONDS.labels(view_func.__name__)

        @wraps(view_func)
        def wrapper(request, *args, **kwargs):
            with latency.time():
                return answer(request, *args, **kwargs)

        def answer(request, *args, **kwargs):
            try:
                claims = verify_signature(request)
            except Unsigned as exc:
                return _refuse(request, 503, exc, None)
            except SignatureError as exc:
                return _refuse(request, 401, exc, safe_ncco)
            try:
                payload = webhook_payload(request)
            except MalformedWebhook as exc:
                return _refuse(request, 400, exc, safe_ncco)
            request.vonage_claims = claims
            if safe_ncco is None and "status" not in payload:
                kind = statusless_event(request, payload)
                if kind == "error" and on_error_event is not None:
                    on_error_event(payload, *args, **kwargs)
                if kind is not None:
                    return HttpResponse(status=204)
            try:
                return view_func(request, payload, *args, **kwargs)
            except MalformedWebhook as exc:  # the view found the payload unusable (a required field missing)
                return _refuse(request, 400, exc, safe_ncco)

        # What the view answers Vonage with, for the tests that find every webhook in the URLconf.
        wrapper.vonage_webhook = "event" if safe_ncco is None else "ncco"
        return csrf_exempt(wrapper)

    if view is not None:
        return decorator(view)
    return decorator


def statusless_event(request, payload):
    """"transfer" or "error" for the events Vonage sends without a status (logged, and an error event kept), or
    None for any other payload.

    A transfer event is sent on every transfer of a leg. An error event is Vonage's only report that an NCCO we
    returned was invalid, or that a call it accepted (201) could not be placed after all (over its rate): logged
    at ERROR and kept for the support staff's recent failures.
    """
    if "conversation_uuid_to" in payload or "conversation_uuid_from" in payload or payload.get("type") == "transfer":
        log.info(
            "webhook transfer_event path=%s uuid=%s from=%s to=%s", request.path, payload.get("uuid"),
            payload.get("conversation_uuid_from"), payload.get("conversation_uuid_to"),
        )
        return "transfer"
    if "reason" in payload:
        from .services import record_vonage_error

        record_vonage_error(request.path, payload)
        return "error"
    return None


def _refuse(request, status, reason, safe_ncco):
    """The answer to a refused request, logged once with its reason (never the token)."""
    if safe_ncco is not None:
        log.warning("webhook refused path=%s status=200 answer=safe_ncco reason=%s", request.path, reason)
        try:
            return JsonResponse(safe_ncco(request), safe=False)
        except Exception:
            log.exception("webhook safe_ncco failed path=%s", request.path)
    else:
        log.warning("webhook refused path=%s status=%s reason=%s", request.path, status, reason)
    response = HttpResponse(str(reason) if status != 401 else "invalid signature", status=status,
                            content_type="text/plain; charset=utf-8")
    response._has_been_logged = True  # logged above, with the reason: django.request need not log it again
    return response
