"""The local stacks (benchmark, end-to-end, run_local) leave nothing behind: a parent stopped with SIGTERM stops its
children in order, and a parent killed outright (SIGKILL) takes them along (callrouting.processes.start_child).

Waiting is bounded by polling iterations, never by a deadline that a busy machine misses. Linux only (prctl).
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from callrouting.processes import start_child, stop_process_groups
from tests.e2e_stack import ThrowawayDatabase
from tests.test_benchmark_smoke import DATABASE_URL, _postgres_answers, product_env

BASE_DIR = Path(__file__).resolve().parent.parent
POLLS = 1200  # x 0.05 s between polls: a minute when the machine is idle

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def gone(pid):
    """True when PID no longer runs (a zombie waiting for a reaper counts as gone: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_gone(pids, polls=POLLS):
    for _ in range(polls):
        if all(gone(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def descendants(root):
    """Every process below ROOT, from /proc."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def parent(body):
    """A Python parent process running BODY (which prints one child pid per line, then waits)."""
    code = textwrap.dedent("""
        import subprocess, sys, time
        from callrouting.processes import start_child, stop_process_groups, terminate_raises
        SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
    """) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=BASE_DIR)


def read_pids(process, n):
    return [int(process.stdout.readline()) for _ in range(n)]


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# A child like gunicorn or qcluster: it takes SIGTERM as a graceful stop that waits for its worker, and the worker
# (its child, in its group) gets no signal of its own and would outlive everything. PR_SET_PDEATHSIG reaches the
# child only; the watchdog kills the whole group.
GRACEFUL_MASTER = textwrap.dedent("""
    import signal, subprocess, sys, time
    worker = subprocess.Popen([sys.executable, "-c",
                               "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    signal.signal(signal.SIGTERM, lambda *_: worker.wait())
    print(worker.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("children", [
    "[start_child(SLEEPER), start_child(SLEEPER)]",  # two children, each prints nothing: their pids are read here
    f"[start_child([sys.executable, '-c', {GRACEFUL_MASTER!r}])]",  # a master and its worker (printed by the master)
], ids=["children", "a graceful master and its worker"])
def test_children_and_their_workers_die_with_a_parent_killed_outright(children):
    process = parent(f"""
        children = {children}
        for child in children:
            print(child.pid, flush=True)
        time.sleep(600)
    """)
    pids = read_pids(process, 2)  # in either order
    try:
        assert not any(gone(pid) for pid in pids)
        process.kill()
        process.wait()
        assert wait_gone(pids)
    finally:
        kill_all(pids)


def test_stopping_a_child_stops_the_workers_that_outlive_it():
    """stop_process_groups: a worker left in the group after its master exited is killed too (by the watchdog)."""
    process = parent("""
        master = [sys.executable, "-c",
                  "import subprocess, sys; w = subprocess.Popen([sys.executable, '-c', "
                  "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)']); "
                  "print(w.pid, flush=True)"]
        children = [start_child(master)]
        print(children[0].wait(), flush=True)  # the master exits at once, its worker stays
        stop_process_groups(children, timeout=10)
        print("stopped", flush=True)
        time.sleep(600)
    """)
    try:
        worker = int(process.stdout.readline())
        assert process.stdout.readline().strip() == "0"
        assert process.stdout.readline().strip() == "stopped"
        assert wait_gone([worker])
        assert process.poll() is None  # the parent still runs: its watchdog was told, not woken by its death
    finally:
        process.kill()
        process.wait()
        kill_all([worker])


@pytest.mark.slow
def test_a_stopped_qcluster_stops_its_own_processes_and_exits_cleanly(tmp_path):
    """stop_process_groups signals the qcluster alone, which stops its workers, pusher and monitor and exits 0. A
    SIGTERM to the whole group (its processes dying under it) leaves it "stopping" until it is SIGKILLed."""
    database = ThrowawayDatabase(tmp_path)
    env = product_env(DATABASE_URL=database.url, Q_WORKERS="2", SECRET_KEY="processes-test-secret-key-" + "x" * 30,
                      LOG_LEVEL="INFO")
    log_path = tmp_path / "qcluster.log"
    with open(log_path, "wb") as log:
        cluster = start_child([sys.executable, str(BASE_DIR / "manage.py"), "qcluster"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, cwd=BASE_DIR)
    try:
        for _ in range(POLLS * 2):
            if "running." in log_path.read_text() or cluster.poll() is not None:
                break
            time.sleep(0.05)
        processes = descendants(cluster.pid)
        assert len(processes) >= 4, log_path.read_text()[-2000:]  # two workers, the monitor and the pusher at least
        # The timeout only stops a hang; a clean stop is the cluster's own exit code 0.
        stop_process_groups([cluster], timeout=120)
        assert cluster.returncode == 0, log_path.read_text()[-2000:]
        assert "has stopped." in log_path.read_text()
        assert wait_gone(processes)
    finally:
        kill_all([cluster.pid, *descendants(cluster.pid)])
        database.drop()


def test_without_start_child_a_killed_parent_leaves_its_children_running():
    """The fault start_child fixes: a plain child in its own session outlives a SIGKILLed parent."""
    process = parent("""
        child = subprocess.Popen(SLEEPER, start_new_session=True)
        print(child.pid, flush=True)
        time.sleep(600)
    """)
    (pid,) = read_pids(process, 1)
    try:
        process.kill()
        process.wait()
        for _ in range(20):
            time.sleep(0.05)
            assert not gone(pid)
    finally:
        kill_all([pid])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_parent_stops_its_children_and_their_children(signum):
    process = parent("""
        with terminate_raises():
            grandparent = [sys.executable, "-c",
                           "import subprocess, sys, time; p = subprocess.Popen(['sleep', '600']); "
                           "print(p.pid, flush=True); time.sleep(600)"]
            children = [start_child(grandparent)]
            try:
                print(children[0].pid, flush=True)
                time.sleep(600)
            finally:
                stop_process_groups(children, timeout=10)
                print("stopped", flush=True)
    """)
    pids = read_pids(process, 2)  # the grandchild's pid (printed by the child) and the child's, in either order
    try:
        process.send_signal(signum)
        assert process.stdout.readline().strip() == "stopped"
        assert process.wait() != 0
        assert wait_gone(pids)
    finally:
        kill_all(pids)


def _database_exists(name):
    import psycopg

    with psycopg.connect(DATABASE_URL, connect_timeout=5) as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_sigterm_stops_a_benchmark_run_as_ctrl_c_does():
    """run_benchmark turns SIGTERM into an exception (SystemExit 143, as Ctrl-C raises KeyboardInterrupt), so the
    finally blocks that stop its stack and drop its database run. The stack itself is stopped for real below."""
    code = textwrap.dedent("""
        import time
        import django
        django.setup()
        from callrouting.benchmark import calls

        def phases(config, log):
            try:
                print("running", flush=True)
                time.sleep(600)
            finally:
                print("finally", flush=True)

        calls._run_benchmark = phases
        calls.run_benchmark(calls.Config())
    """)
    env = product_env(SECRET_KEY="processes-test-secret-key-" + "x" * 30)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=BASE_DIR, env=env)
    try:
        assert process.stdout.readline().strip() == "running"
        process.send_signal(signal.SIGTERM)
        assert process.stdout.readline().strip() == "finally"
        assert process.wait() == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_a_stopped_benchmark_leaves_no_gunicorn_or_qcluster(tmp_path, signum):
    """SIGKILL: the children, their workers and the qcluster's processes die with the benchmark (the watchdogs).
    SIGINT (Ctrl-C; SIGTERM takes the same path, see above): it stops them itself and drops its database too."""
    if not _postgres_answers():
        pytest.skip(f"no PostgreSQL at {DATABASE_URL}")
    env = product_env()
    log_path = tmp_path / "benchmark.log"
    log = open(log_path, "w")
    benchmark = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), "benchmark", "--database-url", DATABASE_URL, "--levels", "1",
         "--min-calls", "200", "--burst", "0", "--workers", "1", "--no-chart", "--out", str(tmp_path)],
        env=env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
    )
    started, database = [], None
    try:
        for _ in range(POLLS * 4):  # until gunicorn and the qcluster run (migrations first)
            if "warm-up" in log_path.read_text() or benchmark.poll() is not None:
                break
            time.sleep(0.05)
        started = descendants(benchmark.pid)
        commands = " ".join(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ") for pid in started if not gone(pid))
        assert "gunicorn" in commands and "qcluster" in commands, log_path.read_text()[-2000:]
        database = log_path.read_text().split("database ", 1)[1].split(":", 1)[0]
        benchmark.send_signal(signum)
        benchmark.wait()
        # Stopped by the benchmark, gunicorn and the qcluster stop gracefully on the SIGTERM they get (a request
        # under way finishes first, for at most the benchmark's 10 s): allow them more polls than a bare process.
        assert wait_gone(started, polls=POLLS * 4)
        if signum != signal.SIGKILL:
            assert benchmark.returncode != 0 and not _database_exists(database)
    finally:
        kill_all([benchmark.pid, *started])
        log.close()
        if database and _database_exists(database):  # a killed benchmark cannot drop its database
            _drop_database(database)


def _drop_database(name):
    import psycopg

    with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
