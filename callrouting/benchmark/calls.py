"""The benchmark behind `manage.py benchmark`: the product as in production, driven through the local phone network.

A throwaway PostgreSQL database (created and dropped here), gunicorn with several workers, the django-q2 worker
and the phone network (callrouting/emulator, in this process) that reaches them over HTTP like Vonage does.
Webhook latency is measured at the phone network (Vonage's point of view: from sending the request to reading the
response); create-call requests are timed by their arrival at the emulated REST API. Query counts run in-process
with Django's test client against the same database, before the servers start.

`run_benchmark(config)` returns the report (a dict, saved as JSON); `write_chart` draws it (matplotlib, optional).
Everything is bounded: call counts, phase timeouts, and all traffic goes to 127.0.0.1.
"""
import datetime
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


from ..emulator.rest import Credentials
from ..emulator.engine import validate_steps
from ..emulator.script import Agent, Caller, EmulatorClient
from ..emulator.server import PhoneNetwork
from ..emulator.signing import sign_webhook
from ..processes import free_port, phone_network_env, start_child, stop_process_groups, terminate_raises, wait_until_serving

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SIGNATURE_SECRET = "bench-signature-secret-0123456789-abcdefgh"
FROM_NUMBER = "+4930901800"
VONAGE_CALL_RATE = 3  # call creations per second per account

# Numbers of the benchmark account.
LATENCY_NUMBER = "+4930200000"
DIAL_NUMBERS = [f"+49302001{index:03d}" for index in range(6)]
FANOUT_NUMBER = "+4930200200"
FLOW_NUMBER = "+4930200600"  # the three-level flow of the flow rows
FLOOR_NUMBER = "+4930200700"  # linked to the floor webhook instead of the answer URL
FLOOR_PATH = "/vonage/benchmark-floor"
AGENT_PHONES = [f"+491512000{index:04d}" for index in range(100)]

TARGETS = {
    "webhook_p99_ms_at_200": 25.0,
    "choice_to_dial_p95_ms": 300.0,
    "decline_to_dial_p95_ms": 300.0,
    "flow_to_floor_ratio": 2.0,
}


# --- statistics -----------------------------------------------------------------------------------------------


def summarize(values_ms):
    """{"n", "mean", "p50", "p95", "p99", "max"} of VALUES_MS (milliseconds; nearest-rank percentiles), rounded."""
    values = sorted(float(v) for v in values_ms)
    if not values:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}

    def rank(p):
        return values[max(0, math.ceil(p / 100 * len(values)) - 1)]

    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 2),
        "p50": round(rank(50), 2),
        "p95": round(rank(95), 2),
        "p99": round(rank(99), 2),
        "max": round(values[-1], 2),
    }


def webhook_kind(url):
    """answer | input | event | agent_event | agent_input | fallback | other, from a webhook URL's path."""
    path = urlsplit(url).path
    if path.endswith("/vonage/answer"):
        return "answer"
    if path.endswith("/vonage/event"):
        return "event"
    if path.endswith("/vonage/fallback"):
        return "fallback"
    if path.endswith(FLOOR_PATH):
        return "floor"
    if "/vonage/call/" in path and path.endswith("/input"):
        return "input"
    if "/vonage/leg/" in path:
        return "agent_input" if path.endswith("/input") else "agent_event"
    return "other"


@dataclass
class WebhookRecord:
    started: float
    ms: float
    kind: str
    status: int  # None: the request failed (timeout, reset)
    uuid: str
    number: str  # the routing number the leg belongs to (digits)
    digits: str  # dtmf digits sent, if any
    phase: str


@dataclass
class Recorder:
    """Every webhook the phone network sends, tagged with the running phase (thread-safe)."""

    network: object
    phase: str = ""
    records: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, started, seconds, method, url, payload, status):
        uuid = payload.get("uuid") or payload.get("call_uuid") or ""
        leg = self.network.leg(uuid)
        number = ""
        if leg is not None:
            number = leg.to if leg.direction == "inbound" else "".join(ch for ch in leg.from_ if ch.isdigit())
        dtmf = payload.get("dtmf") if isinstance(payload.get("dtmf"), dict) else {}
        record = WebhookRecord(started, seconds * 1000, webhook_kind(url), status, uuid, number,
                               str(dtmf.get("digits") or ""), self.phase)
        with self.lock:
            self.records.append(record)

    def of(self, phase):
        with self.lock:
            return [record for record in self.records if record.phase == phase]


def latency_by_kind(records):
    kinds = sorted({record.kind for record in records})
    return {kind: summarize([r.ms for r in records if r.kind == kind and r.status is not None]) for kind in kinds}


def webhook_errors(records):
    """Webhooks that failed: no response, a non-2xx status, or any use of the fallback URL."""
    return sum(1 for r in records if r.status is None or not 200 <= r.status < 300 or r.kind == "fallback")


def delays_to_next_dial(triggers, dials):
    """For each trigger (time, number), milliseconds until the first create-call (time, number, status) of the
    same number at or after it; triggers with no such dial are left out."""
    delays = []
    for at, number in triggers:
        later = [d_at for d_at, d_number, _status in dials if d_number == number and d_at >= at]
        if later:
            delays.append((min(later) - at) * 1000)
    return delays


def evaluate_targets(report):
    """Each target: {"target", "value", "met"} from REPORT."""
    results = {}
    level = report["webhook_latency"].get("200", {})
    # The level counts only if 200 calls really were in progress together (older reports have no peak).
    full = level.get("peak_in_progress", 200) >= 200
    for kind in ("answer", "input"):
        p99 = (level.get("by_kind", {}).get(kind) or {}).get("p99")
        results[f"{kind}_webhook_p99_ms_at_200_concurrent"] = {
            "target": f"<= {TARGETS['webhook_p99_ms_at_200']:g} ms with 200 calls in progress", "value": p99,
            "met": full and p99 is not None and p99 <= TARGETS["webhook_p99_ms_at_200"]}
    counts = report["query_counts"]
    constant = all(len(set(v.values())) == 1 for v in counts.values())
    results["queries_constant_in_options_agents_layers"] = {
        "target": "same count for every size", "value": counts, "met": constant}
    for key, target in (("choice_to_first_dial", "choice_to_dial_p95_ms"), ("decline_to_next_dial", "decline_to_dial_p95_ms")):
        p95 = report["dialling"][key]["p95"]
        results[f"{key}_p95_ms"] = {"target": f"<= {TARGETS[target]:g} ms", "value": p95,
                                    "met": p95 is not None and p95 <= TARGETS[target]}
    if "flow" in report:  # older reports have no flow rows
        ratios = report["flow"]["ratio_to_floor"]
        values = [ratio for kind in ratios.values() for ratio in kind.values()]
        results["flow_answer_and_menu_within_2x_of_floor"] = {
            "target": f"p50 and p99 <= {TARGETS['flow_to_floor_ratio']:g} x the floor's", "value": ratios,
            "met": bool(values) and all(v is not None and v <= TARGETS["flow_to_floor_ratio"] for v in values)}
    fan = report["fanout"]
    # Older reports have no worst_* (no other call creations were counted then).
    last, bound = fan.get("worst_last_dial_ms", fan["last_dial_ms"]), fan.get("worst_bound_ms", fan["bound_ms"])
    results["simultaneous_fanout_limited_by_3_calls_per_s"] = {
        "target": f"last of {fan['agents']} dials within {bound:g} ms (3 calls/s, other call creations counted) "
                  "+ 500 ms, no 429",
        "value": last,
        "met": last is not None and last <= bound + 500 and fan["rate_limited"] == 0}
    return results


# --- the stack ------------------------------------------------------------------------------------------------


class ThrowawayPostgres:
    """A fresh database on the server of ADMIN_URL (a postgres:// URL of any database there)."""

    def __init__(self, server_url):
        parts = urlsplit(server_url)
        self.name = f"callrouting_bench_{secrets.token_hex(4)}"
        self.admin_url = urlunsplit(parts._replace(path="/postgres"))
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        self.parts = urlsplit(self.url)
        self._admin(f'CREATE DATABASE "{self.name}"')

    def _admin(self, sql):
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql)

    def use_here(self):
        """Point this process's Django connection at the database."""
        from django.conf import settings
        from django.db import connections

        connections.close_all()
        values = {"ENGINE": "django.db.backends.postgresql", "NAME": self.name, "HOST": self.parts.hostname,
                  "PORT": str(self.parts.port or 5432), "USER": self.parts.username or "postgres",
                  "PASSWORD": self.parts.password or "", "OPTIONS": dict(settings.POSTGRES_OPTIONS)}
        settings.DATABASES["default"].update(values)
        # The connection object was built for the configured engine (SQLite, say): build a new one.
        connections.settings["default"].update(values)
        del connections["default"]

    def drop(self):
        from django.db import connections

        connections.close_all()
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Stack:
    """gunicorn (WORKERS processes) + qcluster as children on the throwaway database; the phone network here."""

    def __init__(self, directory, database, *, workers=4, q_workers=2, redis_url=""):
        self.directory = Path(directory)
        self.database = database
        self.redis_url = redis_url  # the django-q2 broker: Redis when set, else the database (ORM broker)
        self.workers, self.q_workers = workers, q_workers
        self.web_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.token = secrets.token_urlsafe(16)
        self.credentials = Credentials.generate(api_key="benchkey", api_secret="bench-api-secret")
        self.phone = PhoneNetwork(webhook_base=self.base_url, credentials=self.credentials,
                                  signature_secret=SIGNATURE_SECRET, control_token=self.token, speed=0.05)
        self.phone.rest.max_requests = 100_000
        self.ca_file = str(self.phone.write_ca_bundle(self.directory / "emulator-ca.pem"))
        self.client = EmulatorClient(self.phone.base_url, self.token, verify=self.ca_file, timeout=30)
        self.recorder = Recorder(self.phone.network)
        self.phone.network.on_webhook = self.recorder
        self.children = []
        self.log_path = self.directory / "stack.log"
        self.access_log = self.directory / "access.log"  # gunicorn's: microseconds, status and path per request
        self.log = open(self.log_path, "ab")

    def env(self):
        env = phone_network_env(
            self.phone, self.credentials, signature_secret=SIGNATURE_SECRET, from_number=FROM_NUMBER,
            ca_file=self.ca_file,
            DEBUG="false",
            # Production settings, but gunicorn speaks plain http on a private port: no https redirect.
            INSECURE_PLAIN_HTTP="true",
            SECRET_KEY="bench-secret-key-" + "x" * 40,
            DATABASE_URL=self.database.url,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            MEDIA_ROOT=str(self.directory / "media"),
            CALL_SPOOL_DIR=str(self.directory / "spool"),
            PUBLIC_BASE_URL=self.base_url,
            Q_WORKERS=str(self.q_workers),
            LOG_LEVEL="WARNING",
            BENCHMARK_FLOOR_WEBHOOK="true",
        )
        env.pop("REDIS_URL", None)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def _redis_queue(self):
        """(client, key) of the Redis list the django-q2 cluster takes its tasks from."""
        import redis
        from django.conf import settings

        return redis.Redis.from_url(self.redis_url), f"django_q:{settings.Q_CLUSTER['name']}:q"

    def queued_tasks(self):
        """Tasks waiting in the broker."""
        if self.redis_url:
            client, key = self._redis_queue()
            return client.llen(key)
        from django_q.models import OrmQ

        return OrmQ.objects.count()

    def start(self):
        if self.redis_url:  # nothing a crashed earlier run left in the queue
            client, key = self._redis_queue()
            client.delete(key)
        self.phone.start()
        commands = [
            [sys.executable, "-m", "gunicorn", "callrouting.wsgi", "-w", str(self.workers),
             "-b", f"127.0.0.1:{self.web_port}", "--timeout", "30",
             "--access-logfile", str(self.access_log), "--access-logformat", "%(D)s %(s)s %(U)s"],
            [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"],
        ]
        for command in commands:
            self.children.append(start_child(command, env=self.env(), stdout=self.log, stderr=subprocess.STDOUT,
                                             cwd=BASE_DIR))
        if not wait_until_serving(self.base_url, self.children):
            raise RuntimeError(f"the stack did not start; see {self.log_path}")
        time.sleep(1.0)  # the qcluster's workers come up after its parent
        return self

    def stop(self):
        stop_process_groups(self.children, timeout=10)
        self.phone.stop()
        self.log.close()

    def wait_for_quiet_dialling(self, *, quiet, timeout):
        """Wait until no call was created for QUIET seconds (at most TIMEOUT seconds); returns the seconds waited."""
        started = time.time()
        while time.time() - started < timeout:
            last = max((at for at, _number, _status in self.dials(time.time() - quiet)), default=None)
            if last is None:
                break
            time.sleep(max(0.1, last + quiet - time.time()))
        return round(time.time() - started, 1)

    def dials(self, since):
        """(received_at, from number digits, status) of create-call requests since SINCE (epoch s)."""
        result = []
        for request in self.phone.rest.requests:
            if request.method == "POST" and request.path == "/v1/calls" and request.received_at >= since:
                body = request.json if isinstance(request.json, dict) else {}
                number = str((body.get("from") or {}).get("number") or "")
                result.append((request.received_at, number, request.status))
        return result

    def settle(self, timeout=20):
        """Between phases: hang up whatever still runs on the phone network and wait for the task queue to drain,
        so one phase's backlog does not load the next. Returns the seconds it took."""
        started = time.monotonic()
        self.phone.network.reset()
        while time.monotonic() - started < timeout and self.queued_tasks():
            time.sleep(0.2)
        time.sleep(1.1)  # also a fresh window for Vonage's 3 calls/s limit
        return round(time.monotonic() - started, 1)

    def place_calls(self, calls, *, concurrency, rate=None, timeout):
        """Place CALLS ([dict(to, caller, agent_sequence, default_agent)]) with at most CONCURRENCY of them in
        progress (a call starts when an earlier one has ended) and, with RATE, at most RATE new calls per second;
        then wait until every leg they led to has ended. Returns (uuids, seconds, timed_out).

        Calls are placed through the engine directly from one thread, and waits block on the network's change
        notifications instead of polling, so the load generator takes as little CPU from the product as it can.
        """
        network = self.phone.network
        started, wall_started = time.monotonic(), time.time()
        deadline = started + timeout
        uuids = []

        def in_progress():
            return sum(1 for uuid in uuids if not getattr(network.leg(uuid), "ended", True))

        for index, call in enumerate(calls):
            if rate:
                pause = started + index / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            version = network.version
            while in_progress() >= concurrency and time.monotonic() < deadline:
                version = network.wait_for_change(version, 0.5)
            if time.monotonic() >= deadline:
                break
            leg = network.place_inbound_call(
                from_="+4915550000100", to=call["to"], steps=validate_steps(call["caller"].to_steps()),
                agent_sequence=[validate_steps(agent.steps) for agent in call.get("agent_sequence", ())],
                default_agent=validate_steps(call["default_agent"].steps) if call.get("default_agent") else None,
                answer_url=call.get("answer_url"))
            uuids.append(leg["uuid"])
        # Let the agent legs of these calls end too (their final events are part of the load); legs left over
        # from earlier phases do not count.
        since = datetime.datetime.fromtimestamp(wall_started, tz=datetime.timezone.utc)
        version = network.version
        while time.monotonic() < deadline and any(
                not leg.ended and leg.created_at >= since for leg in list(network.legs.values())):
            version = network.wait_for_change(version, 0.5)
        timed_out = time.monotonic() >= deadline
        return uuids, time.monotonic() - started, timed_out

    def access_log_size(self):
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def server_times(self, since_size):
        """{kind: summary} of the time gunicorn took per request (from reading the request to sending the
        response: the product's own time, without the network and the phone network's scheduling), for the
        requests logged after the access log had SINCE_SIZE bytes."""
        times = {}
        with open(self.access_log, "rb") as log_file:
            log_file.seek(since_size)
            for line in log_file.read().decode(errors="replace").splitlines():
                parts = line.split(" ", 2)
                if len(parts) == 3 and parts[0].isdigit():
                    times.setdefault(webhook_kind(parts[2]), []).append(int(parts[0]) / 1000)
        return {kind: summarize(values) for kind, values in sorted(times.items()) if kind != "other"}

    def peak_in_progress(self, uuids):
        """The most of these inbound calls that were in progress at the same moment."""
        changes = []
        for uuid in uuids:
            leg = self.phone.network.leg(uuid)
            if leg is not None and leg.ended_at is not None:
                changes += [(leg.created_at, 1), (leg.ended_at, -1)]
        peak = current = 0
        for _at, change in sorted(changes, key=lambda item: (item[0], item[1])):
            current += change
            peak = max(peak, current)
        return peak

    def cpu_seconds(self):
        """CPU seconds used so far by the web server (gunicorn and its workers), the django-q2 cluster, this
        process (the phone network and the load generator) and every PostgreSQL process on the machine.
        Read from /proc; empty where there is none."""
        table = _process_table()
        if not table:
            return {}
        web, worker = self.children[0].pid, self.children[1].pid
        return {
            **_machine_cpu(),
            "web": _tree_cpu(table, web),
            "worker": _tree_cpu(table, worker),
            "phone_network_and_load": table.get(os.getpid(), ("", 0, 0.0))[2],
            "postgres": round(sum(cpu for name, _ppid, cpu in table.values() if name.startswith("postgres")), 2),
        }


def _machine_cpu():
    """The whole machine's CPU seconds from /proc/stat: busy (user, system, interrupts), waiting for I/O, and
    stolen by the hypervisor for other guests (a high figure means the benchmark ran on a crowded host)."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, iowait, irq, softirq, steal = fields
    return {"machine_busy": round((user + nice + system + irq + softirq) / ticks, 2),
            "machine_iowait": round(iowait / ticks, 2), "machine_steal": round(steal / ticks, 2)}


def _process_table():
    """{pid: (name, parent pid, CPU seconds)} from /proc (Linux)."""
    table = {}
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*/stat") if Path("/proc").is_dir() else ():
        try:
            text = entry.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        table[int(entry.parent.name)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return table


def _tree_cpu(table, root):
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][2]
            stack.extend(child for child, (_name, parent, _cpu) in table.items() if parent == pid)
    return round(total, 2)


# --- data -----------------------------------------------------------------------------------------------------


def create_data():
    """The benchmark account: agents, policies and routing numbers; returns the query-count fixtures."""
    import datetime as dt

    from django.utils import timezone

    from callrouting.models import RoutingNumber, RoutingOption
    from escalation.models import (
        Account,
        ContactMethod,
        EscalationPolicy,
        EscalationRule,
        LayerMember,
        OnCallSchedule,
        RotationLayer,
        RuleSchedule,
        RuleUser,
        User,
    )

    account = Account.objects.create(slug="bench", name="Benchmark Company")
    users = []
    for index, phone in enumerate(AGENT_PHONES):
        user = User.objects.create(username=f"bench-agent{index}", account=account, first_name=f"Agent{index}",
                                   last_name="Bench")
        ContactMethod.objects.create(user=user, kind=ContactMethod.Kind.PHONE, value=phone, position=0)
        users.append(user)

    def policy_of(name, people):
        policy = EscalationPolicy.objects.create(account=account, name=name)
        rule = EscalationRule.objects.create(policy=policy, position=0, escalation_timeout_minutes=30)
        RuleUser.objects.bulk_create(RuleUser(rule=rule, user=user, position=i) for i, user in enumerate(people))
        return policy

    def layered_policy(layers):
        policy = EscalationPolicy.objects.create(account=account, name=f"{layers} layers")
        rule = EscalationRule.objects.create(policy=policy, position=0, escalation_timeout_minutes=30)
        schedule = OnCallSchedule.objects.create(account=account, name=f"{layers} layers")
        start = timezone.now().date() - dt.timedelta(days=14)
        for level in range(1, layers + 1):
            layer = RotationLayer.objects.create(schedule=schedule, level=level, start_date=start,
                                                 handoff_time=dt.time(9, 0), shift_length=1, shift_unit="weeks")
            LayerMember.objects.bulk_create(LayerMember(layer=layer, user=users[(level + i) % len(users)], position=i)
                                            for i in range(2))
        RuleSchedule.objects.create(rule=rule, schedule=schedule, position=0)
        return policy

    def number_of(phone, options, *, simultaneous=False):
        number = RoutingNumber(account=account, phone_number=phone, name=f"Bench {phone}", language="en-US",
                               greeting="Welcome.", ringing_timeout=30, voicemail_enabled=False)
        number.save()
        for position, (digit, policy) in enumerate(options):
            RoutingOption.objects.create(routing_number=number, position=position, digit=digit, label=f"Option {digit}",
                                         escalation_policy=policy, simultaneous=simultaneous)
        return number

    one = policy_of("one agent", users[:1])
    three = policy_of("three agents", users[1:4])
    nine = policy_of("nine agents", users[10:19])
    # Two options at least everywhere: a number with one option routes at once, without the menu (no input).
    number_of(LATENCY_NUMBER, [(1, one), (2, one)])
    for phone in DIAL_NUMBERS:
        number_of(phone, [(1, three), (2, one)])
    number_of(FANOUT_NUMBER, [(1, nine), (2, one)], simultaneous=True)
    number_of(FLOOR_NUMBER, [(1, one), (2, one)])
    publish_three_level_flow(number_of(FLOW_NUMBER, [(1, one), (2, one)]), one)
    fixtures = {"options": {}, "agents": {}, "layers": {}}
    for count in (2, 9):
        fixtures["options"][count] = number_of(f"+49302003{count:02d}", [(d, one) for d in range(1, count + 1)])
    for count in (1, 10, 100):
        fixtures["agents"][count] = number_of(f"+49302004{count:03d}",
                                              [(1, policy_of(f"{count} agents", users[:count])), (2, one)])
        fixtures["layers"][count] = number_of(f"+49302005{count:03d}", [(1, layered_policy(count)), (2, one)])
    return fixtures


# --- phases ---------------------------------------------------------------------------------------------------


def measure_query_counts(fixtures, base_url):
    """Queries of the answer webhook, the input webhook (choice 1) and the dial preparation task
    (prepare_agent_legs + claim_next_legs), for each fixture size. In-process, Django test client, signed.
    Options: 2 vs 9 (one option skips the menu, so it has no input webhook)."""
    import json
    import uuid as uuid_lib

    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext
    from django_q.models import OrmQ

    from callrouting.calls import routing
    from callrouting.models import Call

    client = Client()
    counts = {"answer_by_options": {}, "input_by_options": {}, "input_by_agents": {}, "dial_tasks_by_agents": {},
              "input_by_layers": {}, "dial_tasks_by_layers": {}}
    timings = {"answer": [], "input": []}
    with override_settings(VONAGE_SIGNATURE_SECRET=SIGNATURE_SECRET, VONAGE_API_KEY="benchkey",
                           VONAGE_APPLICATION_ID="bench", PUBLIC_BASE_URL=base_url, ALLOWED_HOSTS=["*"]):
        for dimension, sizes in fixtures.items():
            for size, number in sizes.items():
                call_uuid = str(uuid_lib.uuid4())
                query = {"to": number.phone_number.lstrip("+"), "from": "4915550000100", "uuid": call_uuid,
                         "conversation_uuid": f"CON-{call_uuid}", "endpoint_type": "phone"}
                auth = sign_webhook(b"", secret=SIGNATURE_SECRET, api_key="benchkey", application_id="bench")
                clock = time.perf_counter()
                with CaptureQueriesContext(connection) as answer_queries:
                    response = client.get("/vonage/answer", query, HTTP_AUTHORIZATION=auth)
                timings["answer"].append((time.perf_counter() - clock) * 1000)
                assert response.status_code == 200, response.content[:300]
                ncco = response.json()
                input_url = next(action["eventUrl"][0] for action in ncco if action.get("action") == "input")
                body = json.dumps({"uuid": call_uuid, "conversation_uuid": f"CON-{call_uuid}",
                                   "dtmf": {"digits": "1", "timed_out": False}, "speech": {}}).encode()
                auth = sign_webhook(body, secret=SIGNATURE_SECRET, api_key="benchkey", application_id="bench")
                clock = time.perf_counter()
                with CaptureQueriesContext(connection) as input_queries:
                    response = client.post(urlsplit(input_url).path, body, content_type="application/json",
                                           HTTP_AUTHORIZATION=auth)
                timings["input"].append((time.perf_counter() - clock) * 1000)
                assert response.status_code == 200, response.content[:300]
                call = Call.objects.get(vonage_uuid=call_uuid)
                with CaptureQueriesContext(connection) as task_queries:
                    routing.prepare_agent_legs(call.pk)
                    routing.claim_next_legs(call.pk)
                if dimension == "options":
                    counts["answer_by_options"][str(size)] = len(answer_queries)
                    counts["input_by_options"][str(size)] = len(input_queries)
                else:
                    counts[f"input_by_{dimension}"][str(size)] = len(input_queries)
                    counts[f"dial_tasks_by_{dimension}"][str(size)] = len(task_queries)
    OrmQ.objects.all().delete()  # the tasks these webhooks enqueued must not dial once the worker starts
    return counts, {kind: summarize(values) for kind, values in timings.items()}


def measure_jwt(stack, repeats=8):
    """Milliseconds per create-call request from this process, with the PEM re-parsed per JWT (the SDK's
    default) and with the parsed key (incidents.telephony now)."""
    from incidents.telephony import Telephony

    os.environ["REQUESTS_CA_BUNDLE"] = stack.ca_file
    results = {}
    for label, reuse in (("pem_reparsed_per_request", False), ("parsed_key_reused", True)):
        telephony = Telephony(application_id=stack.credentials.application_id,
                              private_key=stack.credentials.private_key_pem, api_host=stack.phone.host)
        if not reuse:
            telephony._use_parsed_key = lambda auth: None
        auth = telephony._voice_client().http_client.auth
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            auth.generate_application_jwt()
            timings.append((time.perf_counter() - started) * 1000)
        results[f"jwt_only_{label}"] = summarize(timings)
    for label, reuse in (("pem_reparsed_per_request", False), ("parsed_key_reused", True)):
        telephony = Telephony(application_id=stack.credentials.application_id,
                              private_key=stack.credentials.private_key_pem, api_host=stack.phone.host,
                              rest_host=stack.phone.host, timeout=5)
        if not reuse:
            telephony._use_parsed_key = lambda auth: None
        timings = []
        for index in range(repeats + 1):
            started = time.perf_counter()
            telephony.create_call(to="+4915559990001", from_=FROM_NUMBER, event_url=stack.base_url + "/vonage/event",
                                  ncco=[{"action": "talk", "text": "benchmark"}], ringing_timer=1)
            if index:  # the first request also builds the client and opens the connection
                timings.append((time.perf_counter() - started) * 1000)
        results[label] = summarize(timings)
    return results


HOLD_MARGIN = 2.0  # real seconds every call of a level stays connected after the level's last call started


def latency_phase(stack, concurrency, calls, timeout, *, rate, speed, burst=False):
    """Webhook latency with CONCURRENCY calls in progress at once.

    The calls arrive RATE per second (each is routed to an agent who accepts) and stay connected until the
    level's last call has arrived, so that CONCURRENCY of them are in progress together; the peak is measured
    from the phone network's legs. With BURST, they all arrive at the same moment instead: a stress figure
    beyond what one Vonage account can route (3 new agent calls per second), with no target.
    """
    phase = f"{'burst' if burst else 'latency'}-{concurrency}"
    stack.recorder.phase = phase
    started = time.time()
    cpu_before, log_size = stack.cpu_seconds(), stack.access_log_size()
    overlap = 0.0 if burst else (concurrency - 1) / rate
    hold = (overlap + HOLD_MARGIN) / speed if speed else 0
    caller = Caller(press="1", after=0.2, hang_up_after=hold, hang_up_on_hold=5 / speed if speed else None)
    script = [{"to": LATENCY_NUMBER, "caller": caller, "default_agent": Agent.accept(after=0.5)} for _ in range(calls)]
    uuids, seconds, timed_out = stack.place_calls(script, concurrency=concurrency, rate=None if burst else rate,
                                                  timeout=timeout)
    records = stack.recorder.of(phase)
    connected = sum(1 for uuid in uuids
                    if any(entry["kind"] == "connected" for entry in stack.phone.network.leg(uuid).snapshot()["transcript"]))
    dials = stack.dials(started)
    cpu_after = stack.cpu_seconds()
    arrivals = sorted(leg.created_at for leg in map(stack.phone.network.leg, uuids) if leg is not None)
    span = (arrivals[-1] - arrivals[0]).total_seconds() if len(arrivals) > 1 else 0
    return {
        "concurrency": concurrency,
        "arrival": "burst" if burst else f"{rate:g} calls/s",
        "calls": len(uuids),
        "connected": connected,
        "peak_in_progress": stack.peak_in_progress(uuids),
        "seconds": round(seconds, 2),
        "calls_per_second": round(len(uuids) / seconds, 2) if seconds else None,
        "arrived_per_second": round((len(arrivals) - 1) / span, 2) if span else None,
        "webhooks": len(records),
        "webhook_errors": webhook_errors(records),
        "rate_limited_dials": sum(1 for _at, _number, status in dials if status == 429),
        "timed_out": timed_out,
        "cpu_seconds": {key: round(cpu_after[key] - cpu_before[key], 2) for key in cpu_after},
        "by_kind": latency_by_kind(records),
        "server_ms_by_kind": stack.server_times(log_size),
    }


def flow_menu_levels():
    """How many menus a caller of FLOW_NUMBER passes before agents are called: three on call flows; the number's
    settings alone (before calls ran on flows) have one."""
    from callrouting.models import Call

    return 3 if any(field.name == "flow_version" for field in Call._meta.get_fields()) else 1


def three_level_flow(policy):
    """A flow document: a greeting, then three menus deep (key 1 goes one level down, key 2 to the route), each
    menu with three branches; the last level routes to POLICY's agents, else voicemail."""
    nodes = {"greeting": {"kind": "message", "name": "Greeting", "text": "Welcome to the benchmark.", "next": "menu1"}}
    for level in (1, 2, 3):
        down = f"menu{level + 1}" if level < 3 else "route"
        nodes[f"menu{level}"] = {
            "kind": "menu", "name": f"Level {level}", "prompt": {"text": f"Level {level}.", "audio": None},
            "branches": [{"key": "1", "keyword": f"down {level}", "next": down},
                         {"key": "2", "keyword": f"agents {level}", "next": "route"},
                         {"key": "3", "keyword": f"message {level}", "next": "vm"}]}
    nodes["route"] = {"kind": "route", "name": "Agents", "targets": [{"type": "policy", "id": policy.pk}],
                      "style": "sequential", "ring_timeout": 30, "repeat": 1, "no_answer": "vm"}
    nodes["vm"] = {"kind": "voicemail", "name": "Voicemail", "greeting": {"text": "Leave a message.", "audio": None},
                   "max_length": 120, "transcription": False}
    return {"schema": 1, "language": "en-US", "start": "greeting", "nodes": nodes}


def publish_three_level_flow(number, policy):
    """Publish three_level_flow as NUMBER's call flow (where numbers run on call flows)."""
    if flow_menu_levels() == 3:
        from callrouting.flows import actions

        actions.publish(actions.flow_of(number), data=three_level_flow(policy))


def _signed(client, method, path, data):
    """(response, queries) of a webhook request signed like Vonage's, in-process; DATA: query (GET) or JSON body."""
    import json

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = json.dumps(data).encode() if method == "POST" else b""
    auth = sign_webhook(body, secret=SIGNATURE_SECRET, api_key="benchkey", application_id="bench")
    with CaptureQueriesContext(connection) as queries:
        if method == "POST":
            response = client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=auth)
        else:
            response = client.get(path, data, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200, response.content[:300]
    return response, len(queries)


def measure_flow_queries(base_url, levels):
    """Queries of the answer webhook and of each menu's input webhook of one call through FLOW_NUMBER (key 1 at
    each of LEVELS menus), and of the floor webhook. In-process, Django test client, signed."""
    import uuid as uuid_lib

    from django.test import Client, override_settings
    from django_q.models import OrmQ

    client = Client()
    call_uuid = str(uuid_lib.uuid4())
    ids = {"uuid": call_uuid, "conversation_uuid": f"CON-{call_uuid}"}
    with override_settings(VONAGE_SIGNATURE_SECRET=SIGNATURE_SECRET, VONAGE_API_KEY="benchkey",
                           VONAGE_APPLICATION_ID="bench", PUBLIC_BASE_URL=base_url, ALLOWED_HOSTS=["*"],
                           BENCHMARK_FLOOR_WEBHOOK=True):
        query = {"to": FLOW_NUMBER.lstrip("+"), "from": "4915550000100", "endpoint_type": "phone", **ids}
        response, answer = _signed(client, "GET", "/vonage/answer", query)
        menus = []
        for _level in range(levels):
            url = next(action["eventUrl"][0] for action in response.json() if action.get("action") == "input")
            response, count = _signed(client, "POST", urlsplit(url).path,
                                      {**ids, "dtmf": {"digits": "1", "timed_out": False}, "speech": {}})
            menus.append(count)
        floor_query = {"to": FLOOR_NUMBER.lstrip("+"), "from": "4915550000100", **ids}
        _response, floor = _signed(client, "GET", FLOOR_PATH, floor_query)
    OrmQ.objects.all().delete()  # the tasks these webhooks enqueued must not dial once the worker starts
    return {"answer": answer, "menu_input": menus, "floor": floor}


def flow_phase(stack, concurrency, calls, timeout, *, levels, rate, speed):
    """The answer and menu-input webhooks of FLOW_NUMBER (the caller presses 1 at each of LEVELS menus, an agent
    accepts) beside the floor webhook (FLOOR_NUMBER's calls, linked to FLOOR_PATH: one indexed query and a fixed
    NCCO), both under the same load: CALLS calls alternating between the two, CONCURRENCY in progress at once,
    arriving RATE per second. The flow's rows are reported as ratios to the floor's."""
    phase = f"flow-{concurrency}"
    stack.recorder.phase = phase
    overlap = (concurrency - 1) / rate
    hold = (overlap + HOLD_MARGIN) / speed if speed else 0
    presses = [{"on": "input", "do": "dtmf", "digits": "1", "after": 0.2} for _ in range(levels)]
    flow_call = {"to": FLOW_NUMBER, "caller": Caller(steps=presses, hang_up_after=hold,
                                                     hang_up_on_hold=5 / speed if speed else None),
                 "default_agent": Agent.accept(after=0.5)}
    floor_call = {"to": FLOOR_NUMBER, "caller": Caller(press="1", after=0.2),
                  "answer_url": stack.base_url + FLOOR_PATH}
    script = [flow_call if index % 2 == 0 else floor_call for index in range(calls)]
    log_size = stack.access_log_size()
    uuids, seconds, timed_out = stack.place_calls(script, concurrency=concurrency, rate=rate, timeout=timeout)
    # gunicorn's own time per request: in this phase only FLOW_NUMBER's calls use the answer and input URLs.
    server = stack.server_times(log_size)
    server_rows = {"answer": server.get("answer"), "menu_input": server.get("input"), "floor": server.get("floor")}
    records = [r for r in stack.recorder.of(phase) if r.status is not None]
    flow_digits, floor_digits = FLOW_NUMBER.lstrip("+"), FLOOR_NUMBER.lstrip("+")
    rows = {
        "answer": summarize([r.ms for r in records if r.kind == "answer" and r.number == flow_digits]),
        "menu_input": summarize([r.ms for r in records if r.kind == "input" and r.number == flow_digits]),
        "floor": summarize([r.ms for r in records if r.kind == "floor" and r.number == floor_digits]),
    }
    # Each call's menu inputs in the order sent: the n-th is the answer to the n-th menu level (the last one routes).
    by_call = {}
    for record in sorted((r for r in records if r.kind == "input" and r.number == flow_digits), key=lambda r: r.started):
        by_call.setdefault(record.uuid, []).append(record.ms)
    by_level = {str(level): summarize([inputs[level - 1] for inputs in by_call.values() if len(inputs) >= level])
                for level in range(1, levels + 1)}
    return {"concurrency": concurrency, "calls": len(uuids), "menu_levels": levels, "seconds": round(seconds, 2),
            "timed_out": timed_out, "peak_in_progress": stack.peak_in_progress(uuids),
            "webhook_errors": webhook_errors(stack.recorder.of(phase)), "rows": rows, "menu_input_by_level": by_level,
            "ratio_to_floor": ratios_to_floor(rows), "server_ms": server_rows,
            "server_ratio_to_floor": ratios_to_floor(server_rows)}


def ratios_to_floor(rows):
    """{kind: {"p50", "p99"}} of the answer and menu-input rows of ROWS divided by the floor row's."""
    floor = rows.get("floor") or {}

    def ratio(kind, p):
        value = (rows.get(kind) or {}).get(p)
        return round(value / floor[p], 2) if value and floor.get(p) else None

    return {kind: {p: ratio(kind, p) for p in ("p50", "p99")} for kind in ("answer", "menu_input")}


def warm_up(stack, calls):
    """A few calls before measuring, so that every web worker has served each webhook once (imports, URL
    resolver, prepared statements): a server in production is warm."""
    stack.recorder.phase = "warm-up"
    script = [{"to": LATENCY_NUMBER, "caller": Caller(press="1", after=0.2, hang_up_after=1),
               "default_agent": Agent.accept(after=0.5)} for _ in range(calls)]
    stack.place_calls(script, concurrency=max(1, calls // 2), timeout=60)


def dialling_phase(stack, calls, timeout):
    """Sequential ringing on DIAL_NUMBERS: the first agent declines, the second accepts. Calls start 0.8 s apart
    so Vonage's 3 calls/s limit does not add to the delays measured."""
    phase = "dialling"
    stack.recorder.phase = phase
    started = time.time()
    script = []
    for index in range(calls):
        script.append({"to": DIAL_NUMBERS[index % len(DIAL_NUMBERS)], "caller": Caller(press="1", after=0.2, hang_up_after=1),
                       "agent_sequence": [Agent.decline(after=0.5), Agent.accept(after=0.5)]})

    def staggered(call, index):
        time.sleep(index * 0.8)
        return stack.place_calls([call], concurrency=1, timeout=timeout)

    with ThreadPoolExecutor(max_workers=len(DIAL_NUMBERS)) as pool:
        list(pool.map(staggered, script, range(len(script))))
    records = stack.recorder.of(phase)
    dials = [(at, number, status) for at, number, status in stack.dials(started) if status == 201]
    choices = [(r.started, r.number) for r in records if r.kind == "input" and r.digits == "1"]
    declines = [(r.started, r.number) for r in records if r.kind == "agent_input" and r.digits == "2"]
    result = {
        "calls": calls,
        "choice_to_first_dial": summarize(delays_to_next_dial(choices, dials)),
        "decline_to_next_dial": summarize(delays_to_next_dial(declines, dials)),
        "rate_limited_dials": sum(1 for _a, _n, status in stack.dials(started) if status == 429),
        "webhook_errors": webhook_errors(records),
    }
    return result


def fanout_bound_ms(creations):
    """How long after the first of CREATIONS call creations the last can go out at exactly 3 per second."""
    return (math.ceil(creations / VONAGE_CALL_RATE) - 1) * 1000.0


def fanout_phase(stack, agents=9, repeats=2, timeout=40):
    """Simultaneous ringing to AGENTS agents with Vonage's 3 calls/s limit on. The agents answer 20 simulated
    seconds into ringing, after the last call was placed, so that the call is taken: an abandoned call's incident
    would escalate, and its notification calls would take call slots from the next repeat."""
    phase = "fanout"
    stack.recorder.phase = phase
    stack.phone.rest.call_rate = VONAGE_CALL_RATE
    spans, rate_limited, dial_times = [], 0, []
    try:
        for _ in range(repeats):
            # A fresh rate-limit window: no call creation for 2.5 s (a late notification call of an earlier
            # phase's incident shares the deployment's slots and would count against this fan-out).
            stack.wait_for_quiet_dialling(quiet=2.5, timeout=60)
            started = time.time()
            caller = Caller(press="1", after=0.2, hang_up_on_hold=40, hang_up_after=1)
            stack.place_calls([{"to": FANOUT_NUMBER, "caller": caller, "default_agent": Agent.accept(after=20)}],
                              concurrency=1, timeout=timeout)
            records = [r for r in stack.recorder.of(phase) if r.started >= started]
            choice = min((r.started for r in records if r.kind == "input" and r.digits == "1"), default=None)
            dials = [dial for dial in stack.dials(started) if dial[1] == FANOUT_NUMBER.lstrip("+")]
            rate_limited += sum(1 for _a, _n, status in dials if status == 429)
            placed = sorted(at for at, number, status in dials if status == 201)
            if choice is not None:
                dial_times.append([round((at - choice) * 1000) for at in placed])
            if choice is not None and len(placed) >= agents:
                # Other call creations of the deployment (a notification call, say) in the same seconds share
                # Vonage's limit: the bound counts them too.
                others = sum(1 for at, number, status in stack.dials(choice) if status == 201
                             and number != FANOUT_NUMBER.lstrip("+") and at <= placed[agents - 1])
                spans.append(((placed[0] - choice) * 1000, (placed[agents - 1] - choice) * 1000, others))
    finally:
        stack.phone.rest.call_rate = None
    bound_ms = fanout_bound_ms(agents)
    worst = max(spans, key=lambda span: span[1] - fanout_bound_ms(agents + span[2])) if spans else None
    return {
        "agents": agents,
        "repeats": repeats,
        "complete_fanouts": len(spans),
        "first_dial_ms": round(statistics.fmean(s[0] for s in spans), 1) if spans else None,
        "last_dial_ms": round(max(s[1] for s in spans), 1) if spans else None,
        "bound_ms": bound_ms,
        # The repeat that came closest to (or went furthest past) its bound, other call creations counted.
        "worst_last_dial_ms": round(worst[1], 1) if worst else None,
        "worst_bound_ms": fanout_bound_ms(agents + worst[2]) if worst else None,
        "rate_limited": rate_limited,
        "spans_ms": [[round(first), round(last), others] for first, last, others in spans],
        "dial_times_ms": dial_times,
    }


# --- the run --------------------------------------------------------------------------------------------------


@dataclass
class Config:
    levels: tuple = (1, 10, 50, 200)  # calls in progress at once
    arrival_rate: float = 2.5  # new calls per second while a level builds up (see README: Benchmark)
    burst: int = 200  # calls arriving at the same moment, a stress figure (0: skip)
    min_calls: int = 10  # calls per latency level at least (concurrency 1 runs this many one after another)
    warmup_calls: int = 24  # 6 per web worker: each has served every webhook a few times (prepared statements)
    dial_calls: int = 12
    fanout_repeats: int = 2
    jwt_repeats: int = 8
    flow_level: int = 50  # calls in progress at once in the flow phase (flow and floor calls alternating)
    flow_calls: int = 120
    speed: float = 0.05  # simulated seconds -> real seconds
    level_timeout: float = 240.0
    workers: int = 4
    q_workers: int = 2
    database_url: str = "postgres://postgres@127.0.0.1:5432/postgres"
    redis_url: str = ""  # the django-q2 broker; empty: the ORM broker on the same PostgreSQL database


def run_benchmark(config, log=print):
    """Run every phase; returns the report dict. SIGTERM stops the stack and drops the database like Ctrl-C."""
    with terminate_raises():
        return _run_benchmark(config, log)


def _run_benchmark(config, log):
    from django.core.management import call_command

    report = {"config": {key: getattr(config, key) for key in config.__dataclass_fields__ if key not in ("database_url", "redis_url")}}
    report["config"]["broker"] = "redis" if config.redis_url else "orm"
    # Other work on the machine skews every figure: the load average before and after says how much there was.
    report["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                         "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    started = time.monotonic()
    database = ThrowawayPostgres(config.database_url)
    directory = Path(tempfile.mkdtemp(prefix="callrouting-bench-"))
    stack = None
    try:
        database.use_here()
        log(f"database {database.name}: migrating")
        call_command("migrate", interactive=False, verbosity=0)
        fixtures = create_data()
        stack = Stack(directory, database, workers=config.workers, q_workers=config.q_workers,
                      redis_url=config.redis_url)
        log("query counts (in-process, Django test client)")
        report["query_counts"], report["in_process_webhook_ms"] = measure_query_counts(fixtures, stack.base_url)
        levels = flow_menu_levels()
        flow_queries = measure_flow_queries(stack.base_url, levels)
        log(f"starting gunicorn -w {config.workers}, qcluster, phone network")
        stack.start()
        stack.phone.network.speed = config.speed
        report["vonage_request_ms"] = measure_jwt(stack, config.jwt_repeats)
        log(f"warm-up: {config.warmup_calls} calls")
        warm_up(stack, config.warmup_calls)
        stack.settle()
        report["webhook_latency"] = {}
        for level in config.levels:
            calls = max(level, config.min_calls)
            log(f"latency: {calls} calls, {level} in progress at once, arriving {config.arrival_rate:g}/s")
            report["webhook_latency"][str(level)] = latency_phase(
                stack, level, calls, config.level_timeout, rate=config.arrival_rate, speed=config.speed)
            report["webhook_latency"][str(level)]["settle_seconds"] = stack.settle()
        log(f"flow: {config.flow_calls} calls, {config.flow_level} in progress, half of them to the floor webhook")
        report["flow"] = flow_phase(stack, config.flow_level, config.flow_calls, config.level_timeout, levels=levels,
                                    rate=config.arrival_rate, speed=config.speed)
        report["flow"]["queries"] = flow_queries
        report["flow"]["settle_seconds"] = stack.settle()
        log(f"dialling: {config.dial_calls} calls, first agent declines")
        stack.phone.network.speed = max(config.speed, 0.2)
        report["dialling"] = dialling_phase(stack, config.dial_calls, config.level_timeout)
        stack.settle()
        log("fan-out: simultaneous ringing to 9 agents at 3 calls/s")
        report["fanout"] = fanout_phase(stack, repeats=config.fanout_repeats)
        if config.burst:
            # Last: the callers it leaves on hold hang up, their incidents escalate, and the notification calls
            # that follow take Vonage's call slots (shared by the whole deployment) for a minute or more.
            stack.settle()
            stack.phone.network.speed = config.speed
            log(f"burst: {config.burst} calls at the same moment")
            report["burst"] = latency_phase(stack, config.burst, config.burst, config.level_timeout,
                                            rate=config.arrival_rate, speed=config.speed, burst=True)
        phases = list(report["webhook_latency"].values()) + ([report["burst"]] if "burst" in report else [])
        clean = [v for v in phases if v["webhook_errors"] == 0 and v["connected"] == v["calls"] and not v["timed_out"]]
        # The fastest arrival that every call of a level (10 calls at least) got through without an error.
        report["sustained_calls_per_second"] = max(
            (v["arrived_per_second"] for v in clean if v["calls"] >= 10 and v["arrived_per_second"]), default=0.0)
        report["targets"] = evaluate_targets(report)
    finally:
        if stack is not None:
            stack.stop()
        database.drop()
    report["seconds"] = round(time.monotonic() - started, 1)
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


def format_report(report):
    """The figures as text lines."""
    lines = []
    phases = [(f"{level} in progress", report["webhook_latency"][level])
              for level in sorted(report["webhook_latency"], key=int)]
    if "burst" in report:
        phases.append((f"burst of {report['burst']['concurrency']}", report["burst"]))
    for label, data in phases:
        lines.append(f"{label} ({data.get('arrival', '')}): {data['calls']} calls, {data['connected']} connected, "
                     f"peak {data.get('peak_in_progress')} in progress, {data['webhooks']} webhooks in {data['seconds']} s, "
                     f"{data['webhook_errors']} errors, {data['rate_limited_dials']} dials answered 429")
        for kind, s in data["by_kind"].items():
            lines.append(f"  {kind:12} n={s['n']:<5} p50={s['p50']} p95={s['p95']} p99={s['p99']} max={s['max']} ms")
        for kind, s in data.get("server_ms_by_kind", {}).items():
            lines.append(f"  server {kind:12} p50={s['p50']} p95={s['p95']} p99={s['p99']} max={s['max']} ms")
        if data.get("cpu_seconds"):
            lines.append("  CPU seconds: " + ", ".join(f"{k} {v}" for k, v in data["cpu_seconds"].items()))
    if "flow" in report:
        lines.extend(format_flow_rows(report["flow"]))
    lines.append("queries per webhook / task:")
    for key, values in report["query_counts"].items():
        lines.append(f"  {key:22} " + ", ".join(f"{size}: {count}" for size, count in values.items()))
    for key in ("choice_to_first_dial", "decline_to_next_dial"):
        s = report["dialling"][key]
        lines.append(f"{key}: n={s['n']} p50={s['p50']} p95={s['p95']} p99={s['p99']} max={s['max']} ms")
    fan = report["fanout"]
    lines.append(f"fan-out to {fan['agents']} agents: first dial {fan['first_dial_ms']} ms, last dial {fan['last_dial_ms']} ms "
                 f"after the choice (bound at 3 calls/s: {fan['bound_ms']:g} ms), 429s: {fan['rate_limited']}; "
                 f"per repeat [first, last, other call creations]: {fan.get('spans_ms')}")
    for kind, s in report["in_process_webhook_ms"].items():
        lines.append(f"in-process {kind} webhook (test client, no HTTP): p50={s['p50']} p95={s['p95']} max={s['max']} ms")
    for label, s in report["vonage_request_ms"].items():
        lines.append(f"Vonage request cost ({label}): p50={s['p50']} p95={s['p95']} ms")
    lines.append(f"sustained calls/s with no errors: {report['sustained_calls_per_second']}")
    for name, target in report["targets"].items():
        value = target["value"] if not isinstance(target["value"], dict) else (
            "see the flow rows" if name.startswith("flow_") else "see query counts")
        lines.append(f"target {name}: {'MET' if target['met'] else 'NOT MET'} ({value}; {target['target']})")
    lines.append(f"benchmark took {report['seconds']} s on {report['machine']['cpus']} CPUs; load average before "
                 f"{report['machine']['load_average_before']}, after {report['machine']['load_average_after']}")
    return lines


def format_flow_rows(flow):
    """The flow rows as a table: each webhook's p50/p99, its ratio to the floor's, its queries."""
    queries = flow["queries"]
    lines = [f"flow ({flow['menu_levels']} menu levels) beside the floor, {flow['concurrency']} calls in progress, "
             f"{flow['calls']} calls (peak {flow['peak_in_progress']}), {flow['webhook_errors']} errors; "
             "at the phone network, and gunicorn's own time (server):",
             f"  {'webhook':19} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'p50/floor':>10} {'p99/floor':>10}  queries"]
    counts = {"answer": queries["answer"], "menu_input": "/".join(map(str, queries["menu_input"])) + " (by level)",
              "floor": queries["floor"]}
    tables = [("", flow["rows"], flow["ratio_to_floor"])]
    if flow.get("server_ms"):
        tables.append(("server ", flow["server_ms"], flow["server_ratio_to_floor"]))
    for label, rows, ratios in tables:
        for kind in ("answer", "menu_input", "floor"):
            row = rows.get(kind) or {"n": 0, "p50": None, "p99": None}
            ratio = ratios.get(kind) or {"p50": 1.0 if kind == "floor" else None, "p99": 1.0 if kind == "floor" else None}
            lines.append(f"  {label + kind:19} {row['n']:>5} {row['p50']!s:>8} {row['p99']!s:>8} {ratio['p50']!s:>10} "
                         f"{ratio['p99']!s:>10}  {counts[kind]}")
            if kind == "menu_input" and not label:
                lines.extend(_level_rows(flow))
    return lines


def _level_rows(flow):
    """The menu-input rows of each level (the last one routes the call), with their ratios to the floor."""
    floor, lines = flow["rows"]["floor"], []
    for level, row in sorted(flow.get("menu_input_by_level", {}).items(), key=lambda item: int(item[0])):
        ratio = {p: round(row[p] / floor[p], 2) if row[p] and floor[p] else None for p in ("p50", "p99")}
        queries = flow["queries"]["menu_input"][int(level) - 1]
        lines.append(f"  {'  level ' + level:19} {row['n']:>5} {row['p50']!s:>8} {row['p99']!s:>8} {ratio['p50']!s:>10} "
                     f"{ratio['p99']!s:>10}  {queries}")
    return lines


def write_chart(report, path):
    """A PNG: webhook p50/p95/p99 per kind against concurrency, and the dialling delays."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(report["webhook_latency"], key=int)  # the JSON keys are sorted as text
    phases = [report["webhook_latency"][level] for level in levels]
    names = [f"{level}\n{phase['webhook_errors']} errors" for level, phase in zip(levels, phases)]
    if "burst" in report:
        phases.append(report["burst"])
        names.append(f"burst {report['burst']['concurrency']}\n{report['burst']['webhook_errors']} errors")
    kinds = ["answer", "input", "event", "agent_event", "agent_input"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [2, 1]})
    for kind in kinds:
        p99 = [phase["by_kind"].get(kind, {}).get("p99") for phase in phases]
        p50 = [phase["by_kind"].get(kind, {}).get("p50") for phase in phases]
        line, = left.plot(range(len(phases)), p99, marker="o", label=f"{kind} p99")
        left.plot(range(len(phases)), p50, marker=".", linestyle=":", color=line.get_color(), label=f"{kind} p50")
    left.axhline(TARGETS["webhook_p99_ms_at_200"], color="red", linestyle="--", linewidth=1, label="25 ms target")
    left.set_yscale("log")
    left.set_xticks(range(len(phases)), names)
    left.set_xlabel(f"calls in progress, arriving {report['config'].get('arrival_rate', '?')}/s (webhooks that failed or fell back)")
    left.set_ylabel("webhook latency at the phone network (ms)")
    left.set_title(f"Webhook latency, gunicorn -w {report['config']['workers']}, PostgreSQL, "
                   f"{report['machine']['cpus']} CPUs")
    left.legend(fontsize=7, ncol=2)
    names = ["choice -> 1st dial", "decline -> next dial"]
    keys = ["choice_to_first_dial", "decline_to_next_dial"]
    p50 = [report["dialling"][k]["p50"] or 0 for k in keys]
    p95 = [report["dialling"][k]["p95"] or 0 for k in keys]
    x = range(len(names))
    right.bar([i - 0.2 for i in x], p50, width=0.4, label="p50")
    right.bar([i + 0.2 for i in x], p95, width=0.4, label="p95")
    right.axhline(TARGETS["choice_to_dial_p95_ms"], color="red", linestyle="--", linewidth=1, label="300 ms target")
    right.set_xticks(list(x), names, fontsize=8)
    right.set_ylabel("ms")
    right.set_title(f"Dialling delays; fan-out to 9: {report['fanout']['last_dial_ms']} ms", fontsize=9)
    right.legend(fontsize=7, loc="lower center")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
