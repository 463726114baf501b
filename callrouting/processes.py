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
