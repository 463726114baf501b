"""manage.py run_local: web server and worker run together and stop together."""
import io
import os
import signal
import subprocess
import sys
import threading

import pytest
from django.core.management import CommandError, call_command

from callrouting.management.commands import run_local


def fake_children(monkeypatch, **scripts):
    """Run SCRIPTS (manage.py subcommand -> Python code) instead of the real qcluster/runserver."""
    started, real_popen = [], subprocess.Popen

    def popen(args, **kwargs):
        child = real_popen([sys.executable, "-c", scripts[args[2]]], **kwargs)
        started.append(child)
        return child

    monkeypatch.setattr(run_local.subprocess, "Popen", popen)
    return started


def test_when_one_child_dies_the_other_is_stopped_and_the_command_fails(monkeypatch):
    started = fake_children(monkeypatch, qcluster="import time; time.sleep(60)", runserver="raise SystemExit(3)")

    with pytest.raises(CommandError, match="web exited \\(code 3\\)"):
        call_command("run_local", addr="127.0.0.1:8765")

    # The sleeping worker was stopped (SIGTERM), not waited for until its sleep ended.
    assert [child.returncode for child in started] == [-signal.SIGTERM, 3]


def test_sigterm_stops_both_children(monkeypatch):
    sleeper = "import time; time.sleep(60)"
    started = fake_children(monkeypatch, qcluster=sleeper, runserver=sleeper)
    # Once both children run (the command's signal handler is in place by then), send the command SIGTERM.
    real_fake_popen = run_local.subprocess.Popen

    def popen_then_terminate(args, **kwargs):
        child = real_fake_popen(args, **kwargs)
        if args[2] == "runserver":
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return child

    monkeypatch.setattr(run_local.subprocess, "Popen", popen_then_terminate)
    out, handler_before = io.StringIO(), signal.getsignal(signal.SIGTERM)

    call_command("run_local", addr="127.0.0.1:8765", stdout=out)

    assert "http://127.0.0.1:8765/admin/" in out.getvalue() and "Stopped." in out.getvalue()
    assert [child.returncode for child in started] == [-signal.SIGTERM, -signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the command put its handler away
