"""The whole product running for real, for end-to-end tests: web server and django-q2 worker as subprocesses on a
throwaway database, and the phone network (in this process) that they reach over HTTPS like Vonage.

The database is a temporary SQLite file, or, when DATABASE_URL points at PostgreSQL, a throwaway database on
that server (created here and dropped afterwards). `Stack.query()` reads it with plain SQL.
"""
import atexit
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


from callrouting.emulator.rest import Credentials
from callrouting.emulator.script import EmulatorClient
from callrouting.emulator.server import LocalSetup, PhoneNetwork
from callrouting.processes import free_port, phone_network_env, start_child, stop_process_groups, wait_until_serving

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(BASE_DIR / "manage.py")]
SIGNATURE_SECRET = "e2e-signature-secret-0123456789-abcdefghij"
FROM_NUMBER = "+4930901800"

# Deterministic people and numbers for the call-flow tests (E2E account; the demo account is loaded too).
E2E_NUMBER = "+4930111000"
# The same menu with Vonage's longest ringing timer (120 s): for fan-outs whose other phones must still ring when
# the product hangs them up, however busy the machine (at speed 0.05, 6 s of real time rather than 1.5 s).
E2E_LONG_RING_NUMBER = "+4930111002"
AGENTS = ["+4915100000001", "+4915100000002", "+4915100000003"]
E2E_SETUP = f"""
from escalation.models import Account, ContactMethod, EscalationPolicy, EscalationRule, RuleUser, User
from callrouting.models import RoutingNumber, RoutingOption

account, _ = Account.objects.get_or_create(slug="e2e", defaults={{"name": "E2E Company"}})
owner, _ = User.objects.get_or_create(username="e2e-owner", defaults={{"account": account, "role": "owner"}})
owner.set_password("e2e-password")
owner.save()
agents = []
for index, phone in enumerate({AGENTS!r}, start=1):
    user, _ = User.objects.get_or_create(username=f"e2e-agent{{index}}", defaults={{
        "account": account, "first_name": f"Agent{{index}}", "last_name": "E2E"}})
    ContactMethod.objects.get_or_create(user=user, kind=ContactMethod.Kind.PHONE, value=phone, defaults={{"position": 0}})
    agents.append(user)
policy, _ = EscalationPolicy.objects.get_or_create(account=account, name="E2E agents")
rule, _ = EscalationRule.objects.get_or_create(policy=policy, position=0, defaults={{"escalation_timeout_minutes": 30}})
for position, user in enumerate(agents):
    RuleUser.objects.get_or_create(rule=rule, user=user, defaults={{"position": position}})
for phone_number, ringing_timeout in (("{E2E_NUMBER}", 30), ("{E2E_LONG_RING_NUMBER}", 120)):
    number = RoutingNumber(account=account, phone_number=phone_number, name="E2E support", language="en-US",
                           greeting="Welcome to E2E.", ringing_timeout=ringing_timeout, voicemail_enabled=True,
                           voicemail_greeting="Leave a message.", voicemail_transcription=True)
    number.save()
    RoutingOption.objects.create(routing_number=number, position=0, digit=1, label="Outage", escalation_policy=policy)
    RoutingOption.objects.create(routing_number=number, position=1, digit=2, label="Billing",
                                 escalation_policy=policy, simultaneous=True)
"""


def _admin(admin_url, sql):
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql)


def _database_beside(configured, suffix):
    """(name, admin URL, URL) of a database named after CONFIGURED's (a postgres:// URL) with SUFFIX, on its server."""
    parts = urlsplit(configured)
    name = f"{parts.path.lstrip('/') or 'callrouting'}_e2e_{suffix}"
    return name, urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{name}"))


def _scratch_directory(prefix, fallback):
    """A new directory on tmpfs when there is one (migrations commit, and fsync, once per migration)."""
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix=prefix, dir=shm if shm.is_dir() else fallback))


class MigratedTemplate:
    """One migrated, empty database per test process, copied for every stack it starts: migrating from scratch
    takes seconds (more on PostgreSQL), a copy a fraction of one. The stacks still run `migrate` after the copy, so
    the template only saves time; it is removed when the process exits."""

    _url = None
    name = None  # on PostgreSQL

    @classmethod
    def url(cls, configured):
        if cls._url is None:
            if configured:
                name, admin_url, url = _database_beside(configured, f"template_{secrets.token_hex(4)}")
                _admin(admin_url, f'CREATE DATABASE "{name}"')
                atexit.register(_admin, admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cls.name = name
            else:
                directory = _scratch_directory("callrouting-e2e-template-", tempfile.gettempdir())
                atexit.register(shutil.rmtree, directory, ignore_errors=True)
                url = f"sqlite:///{directory / 'template.sqlite3'}"
            env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
            env.update(DJANGO_SETTINGS_MODULE="callrouting.settings", DEBUG="true", DATABASE_URL=url,
                       SECRET_KEY="e2e-template-secret-key-" + "x" * 30)
            subprocess.run([*MANAGE, "migrate", "--noinput", "-v", "0"], env=env, check=True, timeout=600,
                           capture_output=True, cwd=BASE_DIR)
            cls._url = url
        return cls._url


class ThrowawayDatabase:
    """A temporary SQLite file, or a fresh PostgreSQL database beside DATABASE_URL's, each a copy of this test
    process's migrated template."""

    def __init__(self, directory):
        configured = os.environ.get("DATABASE_URL", "")
        self.postgres = configured.startswith(("postgres://", "postgresql://"))
        if self.postgres:
            MigratedTemplate.url(configured)
            self.name, self.admin_url, self.url = _database_beside(configured, secrets.token_hex(4))
            self._admin(f'CREATE DATABASE "{self.name}" TEMPLATE "{MigratedTemplate.name}"')
        else:
            self.path = _scratch_directory("callrouting-e2e-", directory) / "e2e.sqlite3"
            self.url = f"sqlite:///{self.path}"
            self.copy_sqlite_template(self.path)

    @staticmethod
    def copy_sqlite_template(path):
        """Write a copy of this test process's migrated SQLite template to PATH."""
        source = sqlite3.connect(MigratedTemplate.url("").removeprefix("sqlite:///"))
        target = sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()

    def _admin(self, sql):
        _admin(self.admin_url, sql)

    def query(self, sql, params=()):
        """Rows of SQL (placeholders written %s)."""
        if self.postgres:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as connection:
                return connection.execute(sql, params).fetchall()
        connection = sqlite3.connect(self.path, timeout=20)
        try:
            return connection.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            connection.close()

    def drop(self):
        if self.postgres:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        elif self.path.parent.name.startswith("callrouting-e2e-"):
            shutil.rmtree(self.path.parent, ignore_errors=True)


class Stack:
    """migrate + load_demo + the E2E data, then runserver and qcluster as children; the phone network here (with
    SECOND_REGION a second data centre on a second host: see PhoneNetwork)."""

    def __init__(self, directory, *, speed=0.05, second_region=False):
        self.directory = Path(directory)
        self.database = ThrowawayDatabase(self.directory)
        self.web_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.token = secrets.token_urlsafe(16)
        self.credentials = Credentials.generate(api_key="e2ekey", api_secret="e2e-api-secret")
        self.phone = PhoneNetwork(webhook_base=self.base_url, credentials=self.credentials,
                                  signature_secret=SIGNATURE_SECRET, control_token=self.token, speed=speed,
                                  second_region=second_region)
        self.ca_file = str(self.phone.write_ca_bundle(self.directory / "emulator-ca.pem"))
        self.client = EmulatorClient(self.phone.base_url, self.token, verify=self.ca_file)
        self.children = []
        self.log = open(self.directory / "stack.log", "ab")

    def env(self):
        return phone_network_env(
            self.phone, self.credentials, signature_secret=SIGNATURE_SECRET, from_number=FROM_NUMBER,
            ca_file=self.ca_file,
            DEBUG="true",
            SECRET_KEY="e2e-secret-key-" + "x" * 40,
            DATABASE_URL=self.database.url,
            MEDIA_ROOT=str(self.directory / "media"),
            PUBLIC_BASE_URL=self.base_url,
            EMULATOR_URL=self.phone.base_url,
            EMULATOR_TOKEN=self.token,
            Q_WORKERS="2",
            LOG_LEVEL="INFO",
        )

    def manage(self, *args, timeout=120):
        subprocess.run([*MANAGE, *args], env=self.env(), check=True, timeout=timeout, stdout=self.log,
                       stderr=subprocess.STDOUT, cwd=BASE_DIR)

    def start(self):
        self.phone.start()
        # One process: migrate, the demo account, the E2E account.
        self.manage("shell", "-c", "from django.core.management import call_command\n"
                    "call_command('migrate', interactive=False, verbosity=0)\ncall_command('load_demo')\n" + E2E_SETUP)
        for args in (["qcluster"], ["runserver", "--noreload", f"127.0.0.1:{self.web_port}"]):
            self.children.append(start_child([*MANAGE, *args], env=self.env(), stdout=self.log,
                                             stderr=subprocess.STDOUT, cwd=BASE_DIR))
        if not wait_until_serving(self.base_url, self.children):
            self.stop()
            raise RuntimeError(f"the stack did not start; see {self.directory / 'stack.log'}")
        return self

    def stop(self):
        stop_process_groups(self.children, timeout=5)
        self.phone.stop()
        self.log.close()
        self.database.drop()

    def query(self, sql, params=()):
        return self.database.query(sql, params)

    def wait_until(self, predicate, what, *, polls=1000):
        """Poll PREDICATE (every 0.02 s, at most POLLS times) until it returns something true; return that."""
        for _ in range(polls):
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"gave up waiting for {what} after {polls} polls")

    def wait_for(self, sql, params=(), *, expect, timeout=15):
        """Poll SQL until its rows satisfy EXPECT (a callable); returns the rows.

        TIMEOUT is what the polls add up to on an idle machine: the bound is a number of polls, each a query and a
        0.1 s pause, so a busy machine (slower polls) gets more time rather than a failure."""
        for _ in range(int(timeout / 0.1) + 1):
            rows = self.query(sql, params)
            if expect(rows):
                return rows
            time.sleep(0.1)
        raise AssertionError(f"still not there after {int(timeout / 0.1) + 1} polls: {sql} {params} -> {rows}")


class LocalRun:
    """`make run` in DIRECTORY: migrate + load_demo (the demo number without support hours, so its menu answers
    whatever the time of day), then run_local (web server, worker and the local phone network, no Vonage
    credentials) on a throwaway database. Use as a context manager; `url` is the web server's base URL and
    `phone_network()` a control client of the local phone network it started."""

    def __init__(self, directory, *, speed="1"):
        self.directory = Path(directory)
        self.speed = speed
        self.url = None
        self.process = None

    def __enter__(self):
        self.database = ThrowawayDatabase(self.directory)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("VONAGE_", "PYTEST", "EMULATOR_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="callrouting.settings",
            DEBUG="true",
            SECRET_KEY="browser-test-secret-key-" + "x" * 30,
            DATABASE_URL=self.database.url,
            MEDIA_ROOT=str(self.directory / "media"),
            VONAGE_APPLICATION_ID="",  # no credentials: the local phone network runs (even if .env has some)
            EMULATOR_SPEED=self.speed,
            NO_PROXY="127.0.0.1,localhost",
        )
        self.log = open(self.directory / "run.log", "ab")
        setup = (
            "from django.core.management import call_command\n"
            "call_command('migrate', interactive=False, verbosity=0)\n"
            "call_command('load_demo')\n"
            "from callrouting.demo import load_demo_routing\n"
            "from escalation.models import Account\n"
            "load_demo_routing(Account.objects.get(slug='demo'), support_hours=False)\n"
        )
        subprocess.run([*MANAGE, "shell", "-c", setup], env=env, check=True, timeout=180, stdout=self.log,
                       stderr=subprocess.STDOUT, cwd=BASE_DIR)
        port = free_port()
        self.process = start_child(
            [*MANAGE, "run_local", "--addr", f"127.0.0.1:{port}", "--state-dir", str(self.directory / "local")],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=BASE_DIR,
        )
        self.url = f"http://127.0.0.1:{port}"
        if not wait_until_serving(self.url, [self.process]):
            self.__exit__(None, None, None)
            raise RuntimeError(f"run_local did not start: see {self.directory / 'run.log'}")
        return self

    def phone_network(self):
        """A control client of the phone network run_local started (its address is in running.json)."""
        setup = LocalSetup.load_or_create(self.directory / "local" / "phone-network")
        running = json.loads((setup.directory / "running.json").read_text())
        return EmulatorClient(running["url"], setup.control_token, verify=running["ca"], timeout=5)

    def __exit__(self, *exc_info):
        if self.process is not None:
            stop_process_groups([self.process], timeout=20)
        self.log.close()
        self.database.drop()
