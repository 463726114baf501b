"""Shared fixtures. Settings come from the environment; tests get a fixed, non-default secret."""
import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("VONAGE_SIGNATURE_SECRET", "tests-only-signature-secret")
os.environ.setdefault("PUBLIC_BASE_URL", "https://callrouting.test")
os.environ.setdefault("SECURE_COOKIES", "false")
