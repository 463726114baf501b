"""manage.py benchmark cannot rot: its statistics on synthetic data, and (slow) the whole command at a tiny size
against a throwaway PostgreSQL database (skipped when no PostgreSQL server answers on BENCH_DATABASE_URL)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callrouting.benchmark import calls

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def test_summarize_uses_nearest_rank_percentiles():
    summary = calls.summarize(range(1, 101))
    assert summary == {"n": 100, "mean": 50.5, "p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert calls.summarize([])["p99"] is None


def test_webhook_kinds_from_urls():
    kinds = {url: calls.webhook_kind("http://127.0.0.1:8000" + url) for url in (
        "/vonage/answer?to=1", "/vonage/event", "/vonage/call/tok/input", "/vonage/leg/tok/event",
        "/vonage/leg/tok/input", "/vonage/fallback", "/vonage/call/tok/recording")}
    assert list(kinds.values()) == ["answer", "event", "input", "agent_event", "agent_input", "fallback", "other"]


def test_delay_to_the_next_dial_of_the_same_number():
    triggers = [(10.0, "111"), (20.0, "222"), (30.0, "333")]
    dials = [(9.0, "111", 201), (10.25, "111", 201), (10.5, "111", 201), (20.1, "222", 201)]
    assert [round(d) for d in calls.delays_to_next_dial(triggers, dials)] == [250, 100]


def _synthetic_report(p99, counts, fan_last):
    latency = {"200": {"by_kind": {"answer": {"p99": p99}, "input": {"p99": p99}}}}
    dialling = {"choice_to_first_dial": {"p95": 120.0}, "decline_to_next_dial": {"p95": 400.0}}
    fanout = {"agents": 9, "bound_ms": 2000.0, "last_dial_ms": fan_last, "rate_limited": 0}
    return {"webhook_latency": latency, "query_counts": counts, "dialling": dialling, "fanout": fanout}


def test_targets_met_and_not_met():
    targets = calls.evaluate_targets(_synthetic_report(20.0, {"input_by_agents": {"1": 5, "100": 5}}, 2100.0))
    assert targets["answer_webhook_p99_ms_at_200_concurrent"]["met"]
    assert targets["queries_constant_in_options_agents_layers"]["met"]
    assert targets["choice_to_first_dial_p95_ms"]["met"]
    assert not targets["decline_to_next_dial_p95_ms"]["met"]
    assert targets["simultaneous_fanout_limited_by_3_calls_per_s"]["met"]
    targets = calls.evaluate_targets(_synthetic_report(30.0, {"input_by_agents": {"1": 5, "100": 6}}, None))
    assert not targets["input_webhook_p99_ms_at_200_concurrent"]["met"]
    assert not targets["queries_constant_in_options_agents_layers"]["met"]
    assert not targets["simultaneous_fanout_limited_by_3_calls_per_s"]["met"]


def test_fanout_bound_counts_other_call_creations_in_the_window():
    assert calls.fanout_bound_ms(9) == 2000.0 and calls.fanout_bound_ms(10) == 3000.0
    report = _synthetic_report(20.0, {"input_by_agents": {"1": 5}}, 3368.0)
    report["fanout"].update(worst_last_dial_ms=3368.0, worst_bound_ms=3000.0)  # a notification call shared it
    assert calls.evaluate_targets(report)["simultaneous_fanout_limited_by_3_calls_per_s"]["met"]
    report["fanout"].update(worst_bound_ms=2000.0)  # nothing else was dialled: 3.4 s is too slow
    assert not calls.evaluate_targets(report)["simultaneous_fanout_limited_by_3_calls_per_s"]["met"]


@pytest.mark.django_db
def test_the_floor_webhook_is_off_unless_the_benchmark_turns_it_on(vonage_client, settings):
    assert not settings.BENCHMARK_FLOOR_WEBHOOK  # the default: production has no floor
    assert vonage_client.get_webhook("/vonage/benchmark-floor", {"to": "4930200300"}).status_code == 404


@pytest.mark.django_db
def test_the_floor_webhook_makes_one_query_and_answers_a_fixed_ncco(vonage_client, settings,
                                                                    django_assert_num_queries):
    settings.BENCHMARK_FLOOR_WEBHOOK = True
    # Its own indexed query, and the signature check's INSERT of the token id that every webhook makes.
    with django_assert_num_queries(2):
        greeting = vonage_client.get_webhook("/vonage/benchmark-floor", {"to": "4930200300", "uuid": "u-1"}).json()
    assert [action["action"] for action in greeting] == ["talk", "input"]
    assert greeting[1]["eventUrl"] == [settings.PUBLIC_BASE_URL + "/vonage/benchmark-floor"]
    with django_assert_num_queries(2):
        goodbye = vonage_client.post_webhook("/vonage/benchmark-floor", {"uuid": "u-1", "dtmf": {"digits": "1"}}).json()
    assert goodbye == [{"action": "talk", "text": "Goodbye.", "language": "en-US"}]


def product_env(**settings):
    """The environment of a manage.py subprocess: this one's without pytest's and the test settings' variables, the
    product's settings with DEBUG on, and SETTINGS."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update(DJANGO_SETTINGS_MODULE="callrouting.settings", DEBUG="true", **settings)
    return env


def _postgres_answers():
    try:
        import psycopg

        with psycopg.connect(DATABASE_URL, connect_timeout=2):
            return True
    except Exception:
        return False


@pytest.mark.slow
def test_the_benchmark_command_at_a_tiny_size(tmp_path):
    if not _postgres_answers():
        pytest.skip(f"no PostgreSQL at {DATABASE_URL}")
    env = product_env()
    # Every phase at a tiny size, the burst too (its default of 200 calls is the real benchmark's), with one web
    # worker and two warm-up calls: two levels, the second with calls at once. The timeout only stops a hang: the
    # run's length depends on what else the machine does, so nothing asserts on it.
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "benchmark", "--database-url", DATABASE_URL, "--levels", "1,2",
         "--min-calls", "1", "--dial-calls", "1", "--fanout-repeats", "1", "--burst", "2", "--workers", "1",
         "--warmup-calls", "2", "--flow-level", "2", "--flow-calls", "4",
         "--no-chart", "--out", str(tmp_path)],
        env=env, cwd=BASE_DIR, check=True, timeout=1800, capture_output=True,
    )
    report = json.loads((tmp_path / "benchmark.json").read_text())

    def numeric(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for level in ("1", "2"):
        data = report["webhook_latency"][level]
        assert data["connected"] == data["calls"] == int(level)
        for kind in ("answer", "input", "event", "agent_event", "agent_input"):
            assert all(numeric(data["by_kind"][kind][key]) for key in ("p50", "p95", "p99"))
    assert all(numeric(count) for counts in report["query_counts"].values() for count in counts.values())
    for key in ("choice_to_first_dial", "decline_to_next_dial"):
        assert numeric(report["dialling"][key]["p95"])
    assert numeric(report["fanout"]["last_dial_ms"])
    assert report["burst"]["calls"] == 2 and numeric(report["burst"]["by_kind"]["answer"]["p99"])
    assert numeric(report["sustained_calls_per_second"])
    # The flow rows and their floor, measured in the same phase; ratios and queries per webhook (not timings).
    flow = report["flow"]
    assert flow["calls"] == 4 and flow["menu_levels"] == 3
    for kind in ("answer", "menu_input", "floor"):
        assert flow["rows"][kind]["n"] >= 2 and numeric(flow["rows"][kind]["p99"])
        assert numeric(flow["server_ms"][kind]["p99"])  # gunicorn's own time for the same requests
    for kind in ("answer", "menu_input"):
        for ratios in (flow["ratio_to_floor"], flow["server_ratio_to_floor"]):
            assert numeric(ratios[kind]["p50"]) and numeric(ratios[kind]["p99"])
    assert numeric(flow["queries"]["answer"]) and numeric(flow["queries"]["floor"])
    assert len(flow["queries"]["menu_input"]) == flow["menu_levels"] == len(flow["menu_input_by_level"])
    assert all(row["n"] == 2 for row in flow["menu_input_by_level"].values())
    for summary in report["vonage_request_ms"].values():
        assert numeric(summary["p50"])
    assert set(report["targets"]) == {
        "answer_webhook_p99_ms_at_200_concurrent", "input_webhook_p99_ms_at_200_concurrent",
        "queries_constant_in_options_agents_layers", "choice_to_first_dial_p95_ms", "decline_to_next_dial_p95_ms",
        "simultaneous_fanout_limited_by_3_calls_per_s", "flow_answer_and_menu_within_2x_of_floor"}


@pytest.mark.slow
def test_the_page_benchmark_command_at_a_tiny_size():
    """manage.py bench_pages builds the account in a throwaway database, measures every page and endpoint (all
    answering 200, 302 or 405; the seeded calls have no voicemail recording to play) and drops the database."""
    if not _postgres_answers():
        pytest.skip(f"no PostgreSQL at {DATABASE_URL}")
    env = product_env()
    done = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "bench_pages", "--database-url", DATABASE_URL, "--people", "6",
         "--schedules", "2", "--policies", "2", "--numbers", "2", "--options", "2", "--incidents", "60", "--calls", "60"],
        env=env, cwd=BASE_DIR, check=True, timeout=1800, capture_output=True, text=True,
    )
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| `/") and "voicemail.mp3" not in line]
    assert len(rows) > 90
    assert {row[2].strip() for row in rows} <= {"200", "302", "405"}, [row for row in rows if row[2].strip() not in ("200", "302", "405")]
    assert any("/incidents/?before=" in row[1] for row in rows)
    assert all(row[3].strip().isdigit() for row in rows)
