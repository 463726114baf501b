"""manage.py run_local: the web server and the django-q2 worker together, for local use.

Both run as child processes. Ctrl-C or SIGTERM stops both; when either one exits on its own the other is
stopped too and the command exits non-zero.

Without Vonage credentials (VONAGE_APPLICATION_ID empty) the local phone network (manage.py phone_network) runs
first, as a third child, and the web server and worker are pointed at it: calls then work without a Vonage
account (Test call page, manage.py simulate_call). Its credentials are generated once under --state-dir.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from callrouting.emulator.server import LocalSetup
from callrouting.processes import free_port, start_child

STOP_TIMEOUT = 15  # seconds a child gets to stop before it is killed
EMULATOR_START_TIMEOUT = 20
LOCAL_FROM_NUMBER = "+4930901800"  # caller id of notification calls in the local phone network


class Command(BaseCommand):
    help = "Run the web server (runserver) and the task worker (qcluster) until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port of the web server")
        parser.add_argument("--state-dir", default=str(settings.BASE_DIR / ".local"),
                            help="where the local phone network keeps its generated credentials")
        parser.add_argument("--emulator-speed", type=float, default=float(os.environ.get("EMULATOR_SPEED", "1")),
                            help="simulated time factor of the local phone network (1: real time)")

    def handle(self, *args, addr, state_dir=None, emulator_speed=1.0, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        stop_requested = []
        previous_handlers = {
            signum: signal.signal(signum, lambda signum, frame: stop_requested.append(signum))
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        children = {}
        env = None
        try:
            if not settings.VONAGE_APPLICATION_ID:
                env = self._start_phone_network(children, manage, addr, state_dir or settings.BASE_DIR / ".local",
                                                emulator_speed, stop_requested)
            # Own sessions: the terminal's Ctrl-C reaches only this process, which then stops both children (and
            # they end with it if it is killed outright: callrouting.processes.start_child).
            children["worker"] = start_child([*manage, "qcluster"], env=env)
            children["web"] = start_child([*manage, "runserver", "--noreload", addr], env=env)
            if _wait_until_listening(addr, children, stop_requested):
                url = f"http://{addr}/"
                self.stdout.write(self.style.SUCCESS(f"callrouting on {url} (admin: {url}admin/). Ctrl-C stops both."))
                if env is not None:
                    self.stdout.write(f"No Vonage credentials: calls go to the local phone network. Try {url}test-call/")
                self.stdout.flush()
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

    def _start_phone_network(self, children, manage, addr, state_dir, speed, stop_requested):
        """Start the local phone network and return the environment that points the product at it."""
        setup = LocalSetup.load_or_create(os.path.join(state_dir, "phone-network"))
        port = free_port()
        host, _, web_port = addr.rpartition(":")
        web_host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
        base = f"http://{web_host}:{web_port}"
        emulator_url = f"https://127.0.0.1:{port}"
        children["phone network"] = start_child(
            [*manage, "phone_network", "--state-dir", str(setup.directory), "--addr", f"127.0.0.1:{port}",
             "--webhook-base", base, "--speed", str(speed)],
        )
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT
        while True:
            try:
                requests.get(f"{emulator_url}/_emulator/health", verify=str(setup.ca_cert_path), timeout=1)
                break
            except requests.RequestException:
                if (children["phone network"].poll() is not None or stop_requested
                        or time.monotonic() > deadline):
                    raise CommandError("The local phone network did not start.") from None
                time.sleep(0.2)
        env = dict(os.environ)
        env.update(
            VONAGE_API_HOST=f"127.0.0.1:{port}",
            VONAGE_REST_HOST=f"127.0.0.1:{port}",
            VONAGE_APPLICATION_ID=setup.application_id,
            VONAGE_PRIVATE_KEY=str(setup.private_key_path),
            VONAGE_API_KEY=setup.api_key,
            VONAGE_API_SECRET=setup.api_secret,
            VONAGE_SIGNATURE_SECRET=setup.signature_secret,
            VONAGE_FROM_NUMBER=settings.VONAGE_FROM_NUMBER or LOCAL_FROM_NUMBER,
            REQUESTS_CA_BUNDLE=str(setup.client_ca_bundle()),
            PUBLIC_BASE_URL=base,
            EMULATOR_URL=emulator_url,
            EMULATOR_TOKEN=setup.control_token,
            NO_PROXY=",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])),
        )
        # For manage.py simulate_call in another terminal.
        running = setup.directory / "running.json"
        running.write_text(json.dumps({"url": emulator_url, "ca": str(setup.ca_cert_path)}))
        self.stdout.write(f"Local phone network on {emulator_url} (speed {speed:g}).")
        return env


def _connect_host(addr):
    """(host, port) to reach the server bound to ADDR ("0.0.0.0:8000" is reached on 127.0.0.1)."""
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    return ("127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host), int(port)


def _wait_until_listening(addr, children, stop_requested):
    """Wait until the web server accepts connections on ADDR; False if a child exits or a stop is asked first.

    runserver prints its own banner before it binds, and migrations or a slow disk can take a while: the
    "callrouting on ..." line must not send anyone to a page that does not answer yet."""
    target = _connect_host(addr)
    while not stop_requested and all(child.poll() is None for child in children.values()):
        try:
            with socket.create_connection(target, timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


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
    for child in children:
        child.stop_watching()  # its watchdog SIGKILLs any worker that outlived the child
