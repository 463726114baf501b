"""Settings for the test suite: the product's settings with fixed, test-only secrets.

Everything else (DATABASE_URL for PostgreSQL in CI, for example) still comes from the environment.
"""
import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("VONAGE_SIGNATURE_SECRET", "tests-only-vonage-signature-secret-0123456789")
os.environ.setdefault("PUBLIC_BASE_URL", "https://callrouting.test")
os.environ.setdefault("SECURE_COOKIES", "false")
# The test client and the live server speak plain http; tests/test_production_settings.py checks the https set-up.
os.environ.setdefault("INSECURE_PLAIN_HTTP", "true")
# Throttles far above what any test sends; tests/test_throttling.py sets low rates and checks them.
for _scope in ("ANONYMOUS", "USER", "FAILED_TOKEN"):
    os.environ.setdefault(f"API_THROTTLE_{_scope}", "100000/min")

from callrouting.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
