"""manage.py run_local: web server and worker run together and stop together."""
import io
import os
import signal
import socket
import sys
import threading

import pytest
from django.core.management import CommandError, call_command

from callrouting.management.commands import run_local
from callrouting.processes import free_port, start_child


def fake_children(monkeypatch, **scripts):
    """Run SCRIPTS (manage.py subcommand -> Python code) instead of the real qcluster/runserver, started as the
    command starts its children (start_child: own session, watchdog)."""
    started = []

    def fake_start_child(args, **kwargs):
        child = start_child([sys.executable, "-c", scripts[args[2]]], **kwargs)
        started.append(child)
        return child

    monkeypatch.setattr(run_local, "start_child", fake_start_child)
    return started


def test_when_one_child_dies_the_other_is_stopped_and_the_command_fails(monkeypatch):
    started = fake_children(monkeypatch, qcluster="import time; time.sleep(60)", runserver="raise SystemExit(3)")

    with pytest.raises(CommandError, match="web exited \\(code 3\\)"):
        call_command("run_local", addr="127.0.0.1:8765")

    # The sleeping worker was stopped (SIGTERM), not waited for until its sleep ended.
    assert [child.returncode for child in started] == [-signal.SIGTERM, 3]


def listener(port, *, after=0.0):
    """A fake runserver: binds PORT only AFTER seconds, then waits."""
    return (f"import socket, time; time.sleep({after}); s = socket.socket(); "
            f"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', {port})); s.listen(); "
            "time.sleep(60)")


class ProbingOutput(io.StringIO):
    """Records, for every line written, whether PORT accepted a connection at that moment; SIGTERMs the command
    once the address line is out (a user pressing Ctrl-C after reading it)."""

    def __init__(self, port):
        super().__init__()
        self.port, self.lines = port, []

    def write(self, text):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            listening = True
        except OSError:
            listening = False
        self.lines.append((text, listening))
        if "callrouting on" in text:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().write(text)


def test_the_address_line_is_printed_once_the_server_accepts_connections(monkeypatch):
    port = free_port()
    # The server binds late, as runserver does after its checks: the line must wait for it.
    started = fake_children(monkeypatch, qcluster="import time; time.sleep(60)", runserver=listener(port, after=1.5))
    out = ProbingOutput(port)

    call_command("run_local", addr=f"127.0.0.1:{port}", stdout=out)

    assert [listening for text, listening in out.lines if "callrouting on" in text] == [True]
    assert "Stopped." in out.getvalue()
    assert [child.returncode for child in started] == [-signal.SIGTERM, -signal.SIGTERM]


def test_no_address_line_when_the_server_dies_before_listening(monkeypatch):
    fake_children(monkeypatch, qcluster="import time; time.sleep(60)", runserver="raise SystemExit(1)")
    out = io.StringIO()

    with pytest.raises(CommandError, match="web exited"):
        call_command("run_local", addr=f"127.0.0.1:{free_port()}", stdout=out)

    assert "callrouting on" not in out.getvalue()


def test_sigterm_stops_both_children(monkeypatch):
    port = free_port()
    started = fake_children(monkeypatch, qcluster="import time; time.sleep(60)", runserver=listener(port))
    out, handler_before = ProbingOutput(port), signal.getsignal(signal.SIGTERM)

    call_command("run_local", addr=f"127.0.0.1:{port}", stdout=out)

    assert f"http://127.0.0.1:{port}/admin/" in out.getvalue() and "Stopped." in out.getvalue()
    assert [child.returncode for child in started] == [-signal.SIGTERM, -signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the command put its handler away
