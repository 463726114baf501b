"""manage.py run_local: the web server and the django-q2 worker together, for local use.

Both run as child processes. Ctrl-C or SIGTERM stops both; when either one exits on its own the other is
stopped too and the command exits non-zero.
"""
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

STOP_TIMEOUT = 15  # seconds a child gets to stop before it is killed


class Command(BaseCommand):
    help = "Run the web server (runserver) and the task worker (qcluster) until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port of the web server")

    def handle(self, *args, addr, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        stop_requested = []
        previous_handlers = {
            signum: signal.signal(signum, lambda signum, frame: stop_requested.append(signum))
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        children = {}
        try:
            # Own sessions: the terminal's Ctrl-C reaches only this process, which then stops both children.
            children["worker"] = subprocess.Popen([*manage, "qcluster"], start_new_session=True)
            children["web"] = subprocess.Popen([*manage, "runserver", "--noreload", addr], start_new_session=True)
            url = f"http://{addr}/"
            self.stdout.write(self.style.SUCCESS(f"callrouting on {url} (admin: {url}admin/). Ctrl-C stops both."))
            while not stop_requested and all(child.poll() is None for child in children.values()):
                time.sleep(0.2)
        finally:
            exited = {name: child.returncode for name, child in children.items() if child.poll() is not None}
            _stop(children.values())
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
        if not stop_requested:
            name, code = next(iter(exited.items()))
            raise CommandError(f"The {name} exited (code {code}); stopped the rest.")
        self.stdout.write("Stopped.")


def _stop(children):
    running = [child for child in children if child.poll() is None]
    for child in running:
        child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in running:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the child's own workers too
            child.wait()
