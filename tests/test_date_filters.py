"""The From/To date filters of the incident list and the call log: local days of the account's time zone, read as
a half-open range of instants (created_at >= the first day's start, < the start of the day after the last), so
the (account, time descending, id descending) index serves them instead of converting every row's time to a date.

Personas: alice owns Acme, whose clock is Europe/Berlin; the rows sit on either side of a Berlin midnight that is
not a UTC midnight, and of the spring-forward day (23 hours long).
"""
import datetime as dt
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from callrouting.models import Call
from callrouting.web.forms import CallFilterForm, IncidentFilterForm, within_days
from incidents.models import Incident
from tests.settings_world import world

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def berlin(*args):
    return dt.datetime(*args, tzinfo=BERLIN)


# Local times of the rows, by name: late on 10 November, just after its midnight, and around 29 March 2026, when
# Berlin's clocks jump from 02:00 to 03:00.
TIMES = {
    "late": berlin(2026, 11, 10, 23, 30),  # 22:30 UTC on the 10th
    "after_midnight": berlin(2026, 11, 11, 0, 30),  # 23:30 UTC, still the 10th in UTC
    "spring_last_minute": berlin(2026, 3, 29, 23, 59),
    "spring_next_day": berlin(2026, 3, 30, 0, 0),
}


@pytest.fixture
def rows(settings, tmp_path, acme, alice, bob):
    settings.MEDIA_ROOT = tmp_path
    acme.timezone = "Europe/Berlin"
    acme.save()
    w = world(acme, alice, bob)
    incidents, calls = {}, {}
    for name, at in TIMES.items():
        incident = Incident.objects.create(account=acme, alert_source=w.alert_source, summary=name)
        Incident.objects.filter(pk=incident.pk).update(created_at=at)
        call = Call.objects.create(account=acme, routing_number=w.number, vonage_uuid=f"uuid-{name}", caller="+4917600000000")
        Call.objects.filter(pk=call.pk).update(started_at=at)
        incidents[name], calls[name] = incident.pk, call.pk
    return incidents, calls


def listed(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200
    return {row.pk for row in response.context["page"]}


@pytest.mark.parametrize("url, which", [("/incidents/", 0), ("/calls/", 1)])
def test_a_day_is_the_accounts_local_day(client, alice, rows, url, which):
    client.force_login(alice)
    ids = rows[which]
    assert listed(client, url, date_from="2026-11-10", date_to="2026-11-10") == {ids["late"]}
    assert listed(client, url, date_from="2026-11-11", date_to="2026-11-11") == {ids["after_midnight"]}
    # The 23-hour day ends at its last minute, not an hour later.
    assert listed(client, url, date_from="2026-03-29", date_to="2026-03-29") == {ids["spring_last_minute"]}
    assert listed(client, url, date_from="2026-03-30", date_to="2026-11-10") == {ids["spring_next_day"], ids["late"]}


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"])
def test_the_ends_of_the_calendar_are_no_error(client, alice, acme, rows, zone):
    acme.timezone = zone
    acme.save()
    client.force_login(alice)
    for url, which in (("/incidents/", 0), ("/calls/", 1)):
        every = set(rows[which].values())
        assert listed(client, url, date_from="0001-01-01", date_to="9999-12-31") >= every
        assert listed(client, url, date_to="0001-01-01") == set()
        assert listed(client, url, date_from="9999-12-31") == set()


def lookups(queryset):
    """[(field, lookup)] of QUERYSET's WHERE clause."""
    return sorted((child.lhs.target.name, child.lookup_name) for child in queryset.query.where.children)


def test_the_filters_are_half_open_ranges_of_the_time_itself(acme, rows):
    data = {"date_from": "2026-11-01", "date_to": "2026-11-30"}
    incidents = IncidentFilterForm(data, account=acme).filter(Incident.objects.all())
    calls = CallFilterForm(data, account=acme).filter(Call.objects.all())
    assert lookups(incidents) == [("created_at", "gte"), ("created_at", "lt")]
    assert lookups(calls) == [("started_at", "gte"), ("started_at", "lt")]
    with timezone.override(BERLIN):
        bounded = within_days(Incident.objects.all(), "created_at", dt.date(2026, 11, 10), dt.date(2026, 11, 10))
        start, end = (child.rhs for child in bounded.query.where.children)
    assert (start, end) == (berlin(2026, 11, 10), berlin(2026, 11, 11))
    sql = str(incidents.query).lower()
    assert "::date" not in sql and "cast_date" not in sql and "at time zone" not in sql


@pytest.mark.parametrize("url", ["/incidents/", "/calls/"])
def test_a_filtered_list_makes_the_queries_of_the_whole_list(client, alice, rows, url):
    client.force_login(alice)
    client.get(url)
    with CaptureQueriesContext(connection) as whole:
        client.get(url)
    with CaptureQueriesContext(connection) as filtered:
        client.get(url, {"date_from": "2026-03-01", "date_to": "2026-11-30"})
    assert len(filtered) == len(whole)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
@pytest.mark.parametrize("model, field, index", [
    (Incident, "created_at", "incident_account_newest_idx"), (Call, "started_at", "call_account_newest_idx"),
])
def test_postgresql_serves_the_range_from_the_accounts_index(acme, rows, model, field, index):
    """The range is a condition of the scan of the account's index, not a filter applied to every row of the
    account. The tables here are tiny and their statistics whatever earlier tests left, so the planner is told
    to avoid what it would pick for a handful of rows (a sequential scan, a bitmap scan or a sort of another
    index's rows): what remains is the index in the list's order, which a __date lookup would use too, but with
    the dates as a Filter."""
    with connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
    queryset = within_days(model.objects.filter(account=acme), field, dt.date(2026, 3, 1), dt.date(2026, 11, 30))
    plan = queryset.order_by(f"-{field}", "-id")[:50].explain()
    conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert index in plan, plan
    assert any(f"{field} >=" in line and f"{field} <" in line for line in conditions), plan
