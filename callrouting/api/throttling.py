"""Throttles of the REST API (rates: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], set from API_THROTTLE_* variables).

Anonymous requests count per client address, signed-in ones per user, and requests presenting an invalid token per
client address (FailedTokenThrottle, used by callrouting.api.authentication): a full bucket answers 429 with
Retry-After. The counters live in Django's cache (Redis when REDIS_URL is set).
"""
from rest_framework import throttling
from rest_framework.settings import api_settings


def client_address(request):
    """The client's address: REMOTE_ADDR, or the address TRUSTED_PROXY_COUNT proxies put into X-Forwarded-For.
    The login lockout (django-axes) and the API throttles count per this address."""
    return throttling.BaseThrottle().get_ident(request)


class CurrentRates:
    """Reads the rate from the settings when the throttle is made (DRF reads them once, at import)."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class AnonymousThrottle(CurrentRates, throttling.AnonRateThrottle):
    scope = "anonymous"


class UserThrottle(CurrentRates, throttling.UserRateThrottle):
    scope = "user"


class FailedTokenThrottle(CurrentRates, throttling.SimpleRateThrottle):
    """Requests with an invalid token, per client address. Unlike the other throttles it is not a view's: the
    authentication asks wait() before checking a token and calls record_failure() when the token is invalid."""

    scope = "failed_token"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request):
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        self.history = [hit for hit in self.cache.get(self.key, []) if hit > self.now - self.duration]

    def blocked_for(self, request):
        """Seconds until the address may present a token again, or None when it may now."""
        if self.rate is None:
            return None
        self._load(request)
        return self.wait() if len(self.history) >= self.num_requests else None

    def record_failure(self, request):
        if self.rate is None:
            return
        self._load(request)
        self.throttle_success()
