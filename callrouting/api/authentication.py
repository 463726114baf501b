"""Token authentication of the REST API: django-rest-knox's hashed tokens (escalation.ApiToken), with the time of
last use recorded and invalid tokens throttled per client address."""
import datetime as dt

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from rest_framework import exceptions

from escalation.models import ApiToken

from .throttling import FailedTokenThrottle

# last_used is written at most once a minute per token: a busy script must not turn every read into a write.
LAST_USED_PRECISION = dt.timedelta(minutes=1)


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <value>`. An address that sent too many invalid tokens gets 429 (Retry-After) for
    every token until its failed_token bucket drains, so guessing is throttled, correct guess or not."""

    def authenticate(self, request):
        throttle = FailedTokenThrottle()
        if self.presents_token(request) and (wait := throttle.blocked_for(request)) is not None:
            raise exceptions.Throttled(wait, detail="Too many requests with an invalid token from this address.")
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise

    def presents_token(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "").split()
        return bool(header) and header[0].lower() == self.authenticate_header(request).lower()

    def authenticate_credentials(self, token):
        # knox decodes the header as UTF-8; a header of other bytes is an invalid token, not a server error.
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)

    def validate_user(self, auth_token):
        user, auth_token = super().validate_user(auth_token)
        now = timezone.now()
        if auth_token.last_used is None or auth_token.last_used < now - LAST_USED_PRECISION:
            # Conditional: of two requests at once, one writes.
            ApiToken.objects.filter(pk=auth_token.pk).filter(
                Q(last_used__isnull=True) | Q(last_used__lt=now - LAST_USED_PRECISION)
            ).update(last_used=now)
        return user, auth_token


class ApiTokenScheme(KnoxTokenScheme):
    """The token in the OpenAPI schema: `Authorization: Token <value>`."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"
