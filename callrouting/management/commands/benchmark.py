"""manage.py benchmark: the product as in production (gunicorn -w 4, qcluster, PostgreSQL) under simulated calls.

Prints the figures and writes benchmark.json and benchmark.png (matplotlib, from the `bench` extra) into --out.
See callrouting/calls.py for what each phase measures.
"""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from callrouting.benchmark import calls

DEFAULT_OUT = Path(calls.BASE_DIR) / "tests" / "benchmarks" / "results"


class Command(BaseCommand):
    help = "Benchmark webhooks, query counts and dialling delays against a throwaway PostgreSQL database."

    def add_arguments(self, parser):
        parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres",
                            help="any database on the PostgreSQL server to use; a throwaway one is created beside it")
        parser.add_argument("--levels", default="1,10,50,200", help="calls in progress at once, per latency level")
        parser.add_argument("--arrival-rate", type=float, default=2.5,
                            help="new calls per second while a level builds up (one Vonage account dials 3/s at most)")
        parser.add_argument("--burst", type=int, default=200, help="calls arriving at the same moment (0: skip)")
        parser.add_argument("--min-calls", type=int, default=10, help="calls per latency level at least")
        parser.add_argument("--dial-calls", type=int, default=12)
        parser.add_argument("--fanout-repeats", type=int, default=2)
        parser.add_argument("--flow-level", type=int, default=50,
                            help="calls in progress at once in the flow phase (half of them to the floor webhook)")
        parser.add_argument("--flow-calls", type=int, default=120, help="calls in the flow phase")
        parser.add_argument("--speed", type=float, default=0.05, help="real seconds per simulated second")
        parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
        parser.add_argument("--warmup-calls", type=int, default=None,
                            help="calls before measuring (default: 6 per gunicorn worker)")
        parser.add_argument("--redis-url", default="",
                            help="run the django-q2 worker on this Redis (redis://...) instead of the ORM broker")
        parser.add_argument("--out", default=str(DEFAULT_OUT), help="directory for benchmark.json and benchmark.png")
        parser.add_argument("--no-chart", action="store_true", help="skip the PNG (no matplotlib needed)")

    def handle(self, *args, **options):
        if not options["database_url"].startswith(("postgres://", "postgresql://")):
            raise CommandError("--database-url must be a postgres:// URL")
        if options["redis_url"]:
            if not options["redis_url"].startswith(("redis://", "rediss://")):
                raise CommandError("--redis-url must be a redis:// URL")
            import redis

            try:
                redis.Redis.from_url(options["redis_url"], socket_connect_timeout=2).ping()
            except redis.RedisError as exc:
                raise CommandError(f"no Redis answers at --redis-url ({exc}); leave it out for the ORM broker") from None
        try:
            levels = tuple(int(level) for level in options["levels"].split(","))
        except ValueError:
            raise CommandError("--levels: comma-separated numbers") from None
        if any(not 1 <= level <= 500 for level in levels) or not 1 <= options["min_calls"] <= 500:
            raise CommandError("levels and --min-calls must be between 1 and 500")
        if not 1 <= options["flow_level"] <= 500 or not 2 <= options["flow_calls"] <= 1000:
            raise CommandError("--flow-level must be between 1 and 500, --flow-calls between 2 and 1000")
        if not 0 <= options["burst"] <= 500:
            raise CommandError("--burst must be between 0 and 500")
        if not 0.1 <= options["arrival_rate"] <= 100:
            raise CommandError("--arrival-rate must be between 0.1 and 100 calls per second")
        workers = max(1, min(options["workers"], 16))
        config = calls.Config(
            levels=levels, arrival_rate=options["arrival_rate"], burst=options["burst"], min_calls=options["min_calls"],
            dial_calls=max(1, min(options["dial_calls"], 60)),
            fanout_repeats=max(1, min(options["fanout_repeats"], 5)), speed=max(0.0, options["speed"]),
            flow_level=options["flow_level"], flow_calls=options["flow_calls"],
            workers=workers,
            warmup_calls=6 * workers if options["warmup_calls"] is None else max(1, min(options["warmup_calls"], 200)),
            database_url=options["database_url"],
            redis_url=options["redis_url"],
        )
        report = calls.run_benchmark(config, log=lambda line: self.stderr.write(line))
        for line in calls.format_report(report):
            self.stdout.write(line)
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmark.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
        self.stdout.write(f"wrote {out / 'benchmark.json'}")
        if not options["no_chart"]:
            calls.write_chart(report, out / "benchmark.png")
            self.stdout.write(f"wrote {out / 'benchmark.png'}")
