"""Local processes of the stacks run beside the product (run_local, the benchmark, end-to-end tests)."""
import os
import signal
import socket
import subprocess


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
