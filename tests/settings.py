"""Settings for the test suite: the product's settings with fixed, test-only secrets.

Everything else (DATABASE_URL for PostgreSQL in CI, for example) still comes from the environment.
"""
import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("VONAGE_SIGNATURE_SECRET", "tests-only-vonage-signature-secret-0123456789")
os.environ.setdefault("PUBLIC_BASE_URL", "https://callrouting.test")
os.environ.setdefault("SECURE_COOKIES", "false")

from callrouting.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
