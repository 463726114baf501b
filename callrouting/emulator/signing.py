"""Webhook signing as Vonage does it: "Authorization: Bearer <JWT>", HS256 with the account's signature secret.

Claims: iat, jti, iss, api_key, application_id and payload_hash (SHA-256 hex of the body, when there is one).
"""
import hashlib
import time
import uuid

import jwt


def sign_webhook(body, *, secret, api_key, application_id, iat=None, extra_claims=None):
    """The Authorization header value for a webhook whose raw body is BODY (None or b"" for a GET).

    EXTRA_CLAIMS override the claims; a None value removes one (e.g. {"iat": None}).
    """
    claims = {
        "iat": int(time.time()) if iat is None else iat,
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "api_key": api_key,
        "application_id": application_id,
    }
    if body:
        claims["payload_hash"] = hashlib.sha256(body).hexdigest()
    for name, value in (extra_claims or {}).items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")
