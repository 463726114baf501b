"""Local processes of the stacks run beside the product (run_local, the benchmark, end-to-end tests).

Every child is started by start_child() in a session (and so a process group) of its own: a terminal's Ctrl-C
reaches only the parent, which stops its children in order (SIGTERM raises SystemExit inside terminate_raises(), so
the parent's finally blocks run). A parent killed outright (SIGKILL, the OOM killer) runs no finally block, and
PR_SET_PDEATHSIG alone does not clean up after it: it signals the child only, not the child's own processes, and
gunicorn and qcluster treat that SIGTERM as a graceful stop that waits for requests and tasks under way (up to
their timeouts, a minute or more) while their workers get no signal at all. So each child also gets a watchdog:
a tiny process of its own that holds the read end of a pipe whose write end only the parent holds. When the
parent dies, however, the pipe closes and the watchdog SIGKILLs the child's whole process group, workers and
grandchildren included (they stay in the group even when their own parent has died).
"""
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import requests

PR_SET_PDEATHSIG = 1  # linux/prctl.h
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if os.name == "posix" else None


def _die_with_parent(parent_pid):
    """A preexec_fn (it runs in the child between fork and exec): SIGTERM this child when the thread that forked
    it dies, a second line of defence behind the watchdog. Only async-signal-safe work here: one prctl call and a
    getppid check."""

    def preexec():
        if _libc is None or _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return  # not Linux: the parent's finally blocks and signal handlers still stop the child
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


# The watchdog (python -I -S: no site-packages, no environment, starts in milliseconds). It reads its stdin until
# the parent closes the pipe, by exiting or by Child.stop_watching(), then SIGKILLs what is left of the group. The
# group's id is the leader's pid: when the leader has been reaped and its pid reused by an unrelated process
# (told apart by its start time), that group is not ours and is left alone.
_WATCHDOG = """
import os, signal, sys
group, started = int(sys.argv[1]), sys.argv[2]
while os.read(0, 512):
    pass
try:
    with open(f"/proc/{group}/stat") as stat:
        ours = stat.read().rsplit(")", 1)[1].split()[19] == started
except OSError:
    ours = True  # the leader is gone; members left in its group are ours (the group id is not free while they run)
if ours:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""


def _start_time(pid):
    """The start time of PID (clock ticks since boot, /proc/PID/stat field 22), as text."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[19]


class Child(subprocess.Popen):
    """A child started by start_child(), with a watchdog that SIGKILLs its process group when this process dies."""

    _watchdog_fd = None

    def _watch(self):
        if not os.path.isdir("/proc") or self.poll() is not None:
            return  # not Linux (PR_SET_PDEATHSIG is all there is), or the child has exited already
        read_end, self._watchdog_fd = os.pipe()  # both close-on-exec: no other child inherits the write end
        try:
            subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHDOG, str(self.pid), _start_time(self.pid)],
                             stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)  # out of the terminal's reach: Ctrl-C is for the parent
        except OSError:  # the child exited before its start time could be read: nothing to watch
            os.close(self._watchdog_fd)
            self._watchdog_fd = None
        finally:
            os.close(read_end)

    def stop_watching(self):
        """The caller has stopped the child: the watchdog SIGKILLs whatever is left of its group and exits."""
        if self._watchdog_fd is not None:
            os.close(self._watchdog_fd)
            self._watchdog_fd = None


def start_child(command, **kwargs):
    """subprocess.Popen(COMMAND, **KWARGS) in a session of its own whose processes all end when this process dies,
    however: a Child.

    PR_SET_PDEATHSIG fires when the forking *thread* ends, so children must be started from the main thread (the
    one that lives as long as the process)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("start_child: start children from the main thread (PR_SET_PDEATHSIG follows the thread)")
    child = Child(command, start_new_session=True, preexec_fn=_die_with_parent(os.getpid()), **kwargs)
    child._watch()
    return child


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
    """SIGTERM every child still running (each started by start_child), wait up to TIMEOUT seconds for each, then
    SIGKILL the groups that are left; then the watchdogs SIGKILL whatever is left in a group whose leader has
    exited (a worker that outlived its master).

    The SIGTERM goes to the child alone, not to its group: gunicorn and qcluster stop their own workers. A qcluster
    whose workers, pusher and monitor get the SIGTERM too (as a whole-group signal, or systemd's default
    KillMode=control-group, sends it) logs "stopping" and then waits for processes that are already gone, until
    it is SIGKILLed."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        finally:
            if isinstance(child, Child):
                child.stop_watching()


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
