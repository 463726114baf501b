"""Local processes of the stacks run beside the product (run_local, the benchmark, end-to-end tests).

Every child is started by start_child(): in its own session (a terminal's Ctrl-C reaches only the parent, which
stops its children in order), and bound to the parent's life with Linux's PR_SET_PDEATHSIG, so that a parent
killed outright (SIGKILL, the OOM killer) takes its gunicorn and qcluster along instead of leaving them running.
SIGTERM to the parent raises SystemExit inside terminate_raises(), so its finally blocks stop everything in order.
"""
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import threading
import time

import requests

PR_SET_PDEATHSIG = 1  # linux/prctl.h
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if os.name == "posix" else None


def _die_with_parent(parent_pid):
    """A preexec_fn (it runs in the child between fork and exec): SIGTERM this child when the thread that forked
    it dies. Only async-signal-safe work here: one prctl call and a getppid check."""

    def preexec():
        if _libc is None or _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return  # not Linux: the parent's finally blocks and signal handlers still stop the child
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def start_child(command, **kwargs):
    """subprocess.Popen(COMMAND, **KWARGS) in a session of its own that ends when this process dies, however.

    PR_SET_PDEATHSIG fires when the forking *thread* ends, so children must be started from the main thread (the
    one that lives as long as the process)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("start_child: start children from the main thread (PR_SET_PDEATHSIG follows the thread)")
    return subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent(os.getpid()), **kwargs)


@contextlib.contextmanager
def terminate_raises():
    """Inside the block SIGTERM raises SystemExit(143) (as Ctrl-C raises KeyboardInterrupt), so the caller's finally
    blocks stop the children it started. A no-op outside the main thread (signal handlers live there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_groups(children, timeout):
    """SIGTERM the process group of every child still running (each started with start_new_session=True), wait up
    to TIMEOUT seconds for each, then SIGKILL the groups that are left."""
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def phone_network_env(phone, credentials, *, signature_secret, from_number, ca_file, **settings):
    """The environment of product processes that talk to the in-process phone network PHONE as their Vonage:
    this process's environment without VONAGE_*, EMULATOR_* and PYTEST* variables, then the network's host,
    the application CREDENTIALS, the signature secret, the CA file of its TLS certificate, and SETTINGS."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VONAGE_", "PYTEST", "EMULATOR_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="callrouting.settings",
        VONAGE_API_HOST=phone.host,
        VONAGE_REST_HOST=phone.host,
        VONAGE_APPLICATION_ID=credentials.application_id,
        VONAGE_PRIVATE_KEY=credentials.private_key_pem,
        VONAGE_API_KEY=credentials.api_key,
        VONAGE_API_SECRET=credentials.api_secret,
        VONAGE_SIGNATURE_SECRET=signature_secret,
        VONAGE_FROM_NUMBER=from_number,
        REQUESTS_CA_BUNDLE=ca_file,
        NO_PROXY="127.0.0.1,localhost",
        **settings,
    )
    return env


def wait_until_serving(base_url, children, *, attempts=300, pause=0.2):
    """Poll BASE_URL/healthz until the web server answers: 200, or 503 while the worker has not written its first
    heartbeat yet (its minute sweeper runs soon after it starts). Returns False when a child exited first or after
    ATTEMPTS polls (bounded work, not a deadline that a busy machine misses)."""
    for _ in range(attempts):
        try:
            if requests.get(base_url + "/healthz", timeout=2).status_code in (200, 503):
                return True
        except requests.RequestException:
            pass
        if any(child.poll() is not None for child in children):
            return False
        time.sleep(pause)
    return False
