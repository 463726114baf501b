"""Production settings (DEBUG off) fail fast and pass Django's own deployment check; every page sends a
Content-Security-Policy.

The settings are read in a fresh process (manage.py) with the production environment the README and .env.example
document, not with the test settings.
"""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.settings_world import world
from tests.test_web_pages import url_of, web_patterns

ROOT = Path(__file__).resolve().parent.parent


def production_env(tmp_path, **overrides):
    """The documented production environment (README "Production"), nothing inherited from the test run."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "callrouting.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "callrouting.example.com",
        "PUBLIC_BASE_URL": "https://callrouting.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://callrouting.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def manage(env, *args):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_is_silent_with_the_documented_environment(tmp_path):
    behind_proxy = {"BEHIND_TLS_PROXY": "true", "TRUSTED_PROXY_COUNT": "1", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    for extra in ({}, behind_proxy):
        result = manage(production_env(tmp_path, **extra), "check", "--deploy", "--fail-level", "WARNING")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "System check identified no issues (0 silenced)." in result.stdout
        assert "WARNING" not in result.stderr and "?:" not in result.stdout + result.stderr


def test_check_deploy_speaks_up_when_https_is_turned_off(tmp_path):
    """The check above can fail: plain http with DEBUG off (load tests only) is reported."""
    result = manage(production_env(tmp_path, INSECURE_PLAIN_HTTP="true", PUBLIC_BASE_URL="http://10.0.0.5:8000"),
                    "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stdout + result.stderr


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"PUBLIC_BASE_URL": "http://callrouting.example.com"}, "is not an https URL"),
        ({"PUBLIC_BASE_URL": None}, "is not an https URL"),
        ({"SECRET_KEY": "x" * 30 + "abcdefghij"}, "SECRET_KEY is too short"),
        ({"SECRET_KEY": "ab" * 30}, "SECRET_KEY is too short"),
        ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
    ],
)
def test_production_refuses_to_start(tmp_path, overrides, message):
    result = manage(production_env(tmp_path, **overrides), "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_https_settings_in_production(tmp_path):
    script = (
        "import json; from django.conf import settings as s; print(json.dumps({name: getattr(s, name, None) for name in "
        "['SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SECURE_PROXY_SSL_HEADER']}))"
    )
    behind_proxy = manage(production_env(tmp_path, BEHIND_TLS_PROXY="true", TLS_PROXY_HEADER="X-Forwarded-Scheme"),
                          "shell", "--no-imports", "-c", script)
    values = json.loads(behind_proxy.stdout)
    assert values == {
        "SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": 31536000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_SCHEME", "https"],
    }
    # SECURE_COOKIES=false cannot turn secure cookies off in production.
    direct = manage(production_env(tmp_path, SECURE_COOKIES="false"), "shell", "--no-imports", "-c", script)
    direct = json.loads(direct.stdout)
    assert direct["SESSION_COOKIE_SECURE"] and direct["SECURE_PROXY_SSL_HEADER"] is None


def test_plain_http_is_redirected_and_https_gets_hsts(client, settings, alice):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    redirected = client.get("/accounts/login/")
    assert redirected.status_code == 301 and redirected["Location"] == "https://testserver/accounts/login/"
    # A load balancer's probe over http is answered, not redirected (503 here: no worker has beaten yet).
    assert client.get("/healthz").status_code in (200, 503)
    secure = client.get("/accounts/login/", secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_every_page_sends_a_content_security_policy(client, acme, alice, bob, sam, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    w = world(acme, alice, bob)
    pages = ["/accounts/login/", "/api/docs/", "/api/redoc/", "/api/schema/", "/test-call/"]
    client.force_login(alice)
    pages += [url_of(pattern, w.ids) for _, pattern in web_patterns()]
    for page in pages:
        policy = client.get(page)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["script-src"] == "'self'", page
        assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'", page
        if page != "/api/redoc/":
            assert directives["style-src"] == "'self'", page
    client.force_login(sam)
    for page in ("/admin/", reverse("admin:escalation_apitoken_changelist")):
        assert "script-src 'self'" in client.get(page)["Content-Security-Policy"]
