"""manage.py bench_pages: every settings page and API endpoint measured on a large customer's account.

Builds the account (callrouting/benchmark/large_account.py; by default 500 people, 200 schedules, 100 policies, 100 numbers
with 5 options, 50,000 incidents and 20,000 calls) in a throwaway PostgreSQL database on the server of
--database-url, asks every page and endpoint once to warm up and three more times in process (Django's test
client, signed in as the account's owner), and prints one line each: status, queries, the median of the three
server times and the response size. The database is dropped afterwards.
"""
import dataclasses
import os
import statistics
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, setup_test_environment

from callrouting.benchmark.calls import ThrowawayPostgres
from callrouting.benchmark.large_account import Size, account_urls, seed_large_account
from incidents.models import Incident

from ...models import Call


def last_pages(seeded, size):
    """The oldest page of incidents and of the call log, where offset paging was slowest."""
    urls = []
    for name, url, model, time_field in (("web:incidents (last page)", "/incidents/", Incident, "created_at"),
                                         ("web:calls (last page)", "/calls/", Call, "started_at")):
        oldest = model.objects.filter(account=seeded.account).order_by(time_field, "id").values_list("pk", flat=True)
        anchor = list(oldest[:size + 1])
        if len(anchor) > size:
            urls.append((name, f"{url}?before={anchor[size - 1]}"))
    return urls


def measure(client, url, repeats=3):
    """(status, queries, median ms, bytes) of URL after one warm-up request."""
    client.get(url)
    timings = []
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
    return response.status_code, len(captured), statistics.median(timings), len(response.content)


class Command(BaseCommand):
    help = "Measure every page and API endpoint on a large account in a throwaway PostgreSQL database."

    def add_arguments(self, parser):
        parser.add_argument("--database-url", required=True,
                            help="postgres://user@host:port/any: a database is created there for the run and dropped.")
        for field in dataclasses.fields(Size):
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default,
                                help=f"Default {field.default}.")

    def handle(self, *args, database_url, **options):
        if not database_url.startswith(("postgres://", "postgresql://")):
            raise CommandError("--database-url must be a postgres:// URL.")
        size = Size(**{field.name: options[field.name] for field in dataclasses.fields(Size)})
        database = ThrowawayPostgres(database_url)
        try:
            database.use_here()
            call_command("migrate", verbosity=0)
            started = time.monotonic()
            seeded = seed_large_account("Large Customer", size, log=lambda message: self.stdout.write(f"  {message}"))
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            self.stdout.write(f"Built in {time.monotonic() - started:.0f} s: {size}")
            setup_test_environment()
            client = Client()
            client.force_login(seeded.owner)
            rows = []
            for name, url in account_urls(seeded) + last_pages(seeded, 50):
                rows.append((name, url, *measure(client, url)))
            self.stdout.write(format_table(rows))
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            self.stdout.write(f"Load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} CPUs.")
        finally:
            database.drop()


def format_table(rows):
    lines = ["| Page or endpoint | Status | Queries | Median ms | KB |", "|---|---:|---:|---:|---:|"]
    for name, url, status, queries, median_ms, size in rows:
        lines.append(f"| `{url}` ({name}) | {status} | {queries} | {median_ms:.0f} | {size / 1024:.1f} |")
    slow = [row for row in rows if row[4] > 100]
    lines.append("")
    lines.append(f"{len(rows)} pages and endpoints; {len(slow)} over 100 ms; slowest {max(r[4] for r in rows):.0f} ms.")
    return "\n".join(lines)
