"""End to end with the real django-q2 worker (`manage.py qcluster` in a subprocess) and the fake Vonage API.

The worker must see the test's data, so the test commits for real (transactional db). On SQLite the suite's
database lives in memory, out of reach of another process: this test moves the connection to a migrated
SQLite file for its duration. On PostgreSQL the worker simply connects to the test database.
"""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from callrouting.processes import start_child
from incidents import services
from incidents.models import Incident
from tests.e2e_stack import ThrowawayDatabase
from tests.incidents_factories import AlertSourceFactory, make_policy

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_database_url(transactional_db, tmp_path):
    """A DATABASE_URL another process can use to reach the data this test commits."""
    connection = connections["default"]
    settings_dict = connection.settings_dict
    if connection.vendor != "sqlite":
        user = quote(settings_dict.get("USER") or "")
        password = quote(settings_dict.get("PASSWORD") or "")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = settings_dict.get("PORT") or 5432
        yield f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
        return
    # Keep the in-memory test database alive (closing its last connection would drop it) while a file stands in.
    memory_name, memory_connection = settings_dict["NAME"], connection.connection
    path = tmp_path / "worker.sqlite3"
    connection.connection = None
    settings_dict["NAME"] = str(path)
    # A copy of the suite's migrated template (tests/e2e_stack.py), brought up to date by migrate (a no-op then).
    ThrowawayDatabase.copy_sqlite_template(path)
    try:
        call_command("migrate", verbosity=0)
        yield f"sqlite:///{path}"
    finally:
        connection.close()
        settings_dict["NAME"] = memory_name
        connection.connection = memory_connection


@pytest.fixture
def qcluster(worker_database_url, fake_vonage, tmp_path):
    """Start `manage.py qcluster` against the test database and the fake Vonage API; stop it afterwards."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": worker_database_url,
        "Q_WORKERS": "1",
        **fake_vonage.settings(),
    }
    log = open(tmp_path / "qcluster.log", "wb")
    # Its own session, and it dies with the test run if that is killed outright.
    process = start_child(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the cluster stops its own worker processes
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()
        print((tmp_path / "qcluster.log").read_text(errors="replace")[-5000:])


def wait_for(condition, timeout=60, what="condition"):
    """Poll CONDITION until it returns something true. The bound is a number of polls (TIMEOUT seconds' worth on an
    idle machine), so a busy machine's slower polls stretch it instead of failing."""
    for _ in range(int(timeout / 0.2)):
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what} after {int(timeout / 0.2)} polls")


def called(vonage_api):
    return ["+" + call["to"][0]["number"] for call in vonage_api.calls_created()]


def test_escalation_runs_on_the_real_worker(qcluster, vonage_api, acme, alice, bob, carol):
    """A three-rule policy (1, 2 and 3 minutes) escalates on the real worker in order, each rule waiting its own
    timeout, and stops when bob accepts: carol (rule 3) is never called."""
    assert Schedule.objects.filter(func="incidents.tasks.sweep", minutes=1).exists()
    policy = make_policy(acme, [([alice], 1), ([bob], 2), ([carol], 3)])
    source = AlertSourceFactory(account=acme, escalation_policy=policy)

    started = timezone.now()
    incident = services.create_incident(alert_source=source, summary="Database down")
    wait_for(lambda: called(vonage_api) == [alice.primary_phone()], what="the call to alice")
    wait_for(lambda: incident.notifications.filter(status="sent").exists(), what="the notification marked sent")
    # Rule 1 ran at once and rule 2 is due one minute (rule 1's timeout) later.
    assert_due_after(incident, started, minutes=1)

    # Time passes: rule 1's timeout is over. The sweeper (enqueued here rather than waiting for the scheduler)
    # runs rule 2 on the worker, twice, and bob is called once.
    Incident.objects.filter(pk=incident.pk).update(escalation_due_at=timezone.now() - timedelta(seconds=1))
    rule_2_at = timezone.now()
    async_task("incidents.tasks.sweep")
    async_task("incidents.tasks.sweep")
    wait_for(lambda: called(vonage_api) == [alice.primary_phone(), bob.primary_phone()], what="the call to bob")
    wait_for(lambda: Incident.objects.get(pk=incident.pk).escalation_step == 2, what="rule 3 scheduled")
    # Rule 3 is due two minutes (rule 2's timeout) after rule 2 ran.
    assert_due_after(incident, rule_2_at, minutes=2)

    services.accept_incident(incident.pk, bob, via="phone")
    Incident.objects.filter(pk=incident.pk).update(escalation_due_at=timezone.now() - timedelta(seconds=1))
    async_task("incidents.tasks.sweep")
    wait_for(lambda: qcluster.poll() is None and _sweeps_done() >= 3, what="the last sweep")
    assert called(vonage_api) == [alice.primary_phone(), bob.primary_phone()]
    assert list(incident.notifications.order_by("id").values_list("user__username", "status")) == [
        ("alice", "sent"), ("bob", "sent"),
    ]


def assert_due_after(incident, since, *, minutes):
    due = Incident.objects.get(pk=incident.pk).escalation_due_at
    assert due is not None
    waited = (due - since).total_seconds()
    # The step ran on the worker a moment after SINCE; allow for that moment, not for a wrong timeout.
    assert minutes * 60 <= waited <= minutes * 60 + 20, f"next rule due {waited:.1f} s after the step, not {minutes} min"


def _sweeps_done():
    from django_q.models import Success

    return Success.objects.filter(func="incidents.tasks.sweep").count()


def test_the_workers_own_log_lines_reach_its_output(qcluster, tmp_path):
    """django-q2's INFO lines (the cluster starting, each task processed) and its task failures are written to
    the worker's output by the product's logging configuration."""
    from django_q.models import Failure, Success

    async_task("math.sqrt", 4)
    async_task("math.sqrt", -1)  # ValueError: a task failure
    wait_for(lambda: Success.objects.filter(func="math.sqrt").exists() and Failure.objects.filter(func="math.sqrt").exists(),
             what="both tasks done")
    qcluster.send_signal(signal.SIGTERM)
    qcluster.wait(timeout=30)
    output = (tmp_path / "qcluster.log").read_text(errors="replace")
    assert " INFO django-q Q Cluster " in output and " starting." in output
    assert " INFO django-q Processed 'math.sqrt' " in output
    assert " ERROR django-q Failed 'math.sqrt' " in output and "math domain error" in output
