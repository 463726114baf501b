"""Signed Vonage webhooks: verification, payload parsing and the decorator every Vonage webhook view uses.

Vonage signs each webhook with a JWT (HS256, the account's signature secret) in "Authorization: Bearer ...";
its `payload_hash` claim is the SHA-256 of the body. We check the signature, the token's age (`iat`, replay
protection) and the body hash. Without VONAGE_SIGNATURE_SECRET every webhook is refused (fail closed).
"""
import hashlib
import hmac
import json
import logging
import time
from functools import wraps

import jwt
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .metrics import WEBHOOK_SECONDS

log = logging.getLogger(__name__)

# How far a token's iat may lie in the future (clock skew between Vonage and us).
MAX_CLOCK_SKEW = 60


class SignatureError(Exception):
    """The request is not a fresh webhook signed by our Vonage account."""


class MalformedWebhook(Exception):
    """The request is signed but its payload cannot be read."""


def verify_signature(request):
    """The claims of the request's Vonage signature; raises SignatureError unless it is valid and fresh."""
    secret = settings.VONAGE_SIGNATURE_SECRET
    if not secret:
        raise SignatureError("VONAGE_SIGNATURE_SECRET is not set: all webhooks are refused")

    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
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

    body = request.body
    if body:
        claimed = claims.get("payload_hash")
        if not isinstance(claimed, str):
            raise SignatureError("body present but token has no payload_hash")
        if not hmac.compare_digest(claimed.lower(), hashlib.sha256(body).hexdigest()):
            raise SignatureError("payload_hash does not match the body")
    return claims


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


def vonage_webhook(view=None, *, safe_ncco=None):
    """Decorate a Vonage webhook view: verify the signature, parse the payload, call view(request, payload, ...).

    A bad signature gets 401; an unreadable payload, or MalformedWebhook raised by the view, 400. With SAFE_NCCO
    (callable(request) -> NCCO list) those refusals carry that NCCO as their JSON body, so a caller never hears
    dead air. The verified claims are
    available to the view as request.vonage_claims. Works as @vonage_webhook and @vonage_webhook(safe_ncco=...).
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
            except SignatureError as exc:
                log.warning("webhook refused path=%s status=401 reason=%s", request.path, exc)
                return _refusal(request, 401, "invalid signature", safe_ncco)
            try:
                payload = webhook_payload(request)
            except MalformedWebhook as exc:
                log.warning("webhook refused path=%s status=400 reason=%s", request.path, exc)
                return _refusal(request, 400, "malformed payload", safe_ncco)
            request.vonage_claims = claims
            try:
                return view_func(request, payload, *args, **kwargs)
            except MalformedWebhook as exc:  # the view found the payload unusable (a required field missing)
                log.warning("webhook refused path=%s status=400 reason=%s", request.path, exc)
                return _refusal(request, 400, "malformed payload", safe_ncco)

        return csrf_exempt(wrapper)

    if view is not None:
        return decorator(view)
    return decorator


def _refusal(request, status, reason, safe_ncco):
    if safe_ncco is not None:
        try:
            return JsonResponse(safe_ncco(request), status=status, safe=False)
        except Exception:
            log.exception("webhook safe_ncco failed path=%s", request.path)
    return HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")
