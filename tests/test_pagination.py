"""Incidents and calls page by position (keyset / cursor), in the pages and the API: every row exactly once, newest
first, with ties on the time broken by id, filters kept, and the last page costing the queries of the first."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from callrouting.benchmark.large_account import Size, seed_large_account
from incidents.models import Incident

SIZE = Size(people=6, schedules=2, policies=2, numbers=2, options=2, incidents=130, calls=120)


@pytest.fixture
def seeded(db):
    seeded = seed_large_account("Paging", SIZE, number_prefix="4004")
    # Ten incidents created in the same microsecond: the id decides their order.
    same = timezone.now() - dt.timedelta(days=3)
    Incident.objects.filter(pk__in=seeded.account.incidents.order_by("pk").values("pk")[40:50]).update(created_at=same)
    return seeded


def newest_first(queryset, time_field):
    return list(queryset.order_by(f"-{time_field}", "-id").values_list("pk", flat=True))


def walk_pages(client, url, params=None):
    """Follow the Older links from the first page; answers the ids in page order and the query counts."""
    seen, counts, pages = [], [], []
    query = dict(params or {})
    while True:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url, query)
        assert response.status_code == 200
        counts.append(len(captured))
        page = response.context["page"]
        pages.append(page)
        seen.extend(row.pk for row in page)
        if not page.has_older:
            return seen, counts, pages
        assert f"before={page.older_than}" in response.content.decode()
        query = {**(params or {}), "before": page.older_than}


@pytest.mark.parametrize("url, rows, time_field", [("/incidents/", "incidents", "created_at"), ("/calls/", "calls", "started_at")])
def test_the_pages_list_every_row_once_newest_first(client, seeded, url, rows, time_field):
    client.force_login(seeded.owner)
    seen, counts, pages = walk_pages(client, url)
    assert seen == newest_first(getattr(seeded.account, rows), time_field)
    assert len(pages) == 3 and not pages[0].has_newer and pages[1].has_newer
    # The last page costs what the second does (one query more than the first: where the position is).
    assert counts[-1] == counts[1] == counts[0] + 1, counts
    # Newer from the last page is the page before it.
    back = client.get(url, {"after": pages[-1].newer_than}).context["page"]
    assert [row.pk for row in back] == [row.pk for row in pages[-2]]


def test_the_incident_pages_keep_the_filters(client, seeded):
    client.force_login(seeded.owner)
    seen, _, _ = walk_pages(client, "/incidents/", {"status": "resolved"})
    assert seen == newest_first(seeded.account.incidents.filter(status="resolved"), "created_at")
    first = client.get("/incidents/", {"status": "resolved"}).content.decode()
    assert "status=resolved&amp;before=" in first


def test_a_position_of_another_account_or_garbage_is_the_first_page(client, seeded, globex):
    client.force_login(seeded.owner)
    first = [row.pk for row in client.get("/incidents/").context["page"]]
    for value in ("abc", "999999", ""):
        assert [row.pk for row in client.get("/incidents/", {"before": value}).context["page"]] == first


@pytest.mark.parametrize("url, rows, time_field", [("/api/incidents/", "incidents", "created_at"), ("/api/calls/", "calls", "started_at")])
def test_the_api_pages_by_cursor(client, seeded, url, rows, time_field):
    client.force_login(seeded.owner)
    seen, counts, next_url = [], [], url + "?page_size=40"
    while next_url:
        with CaptureQueriesContext(connection) as captured:
            body = client.get(next_url).json()
        counts.append(len(captured))
        assert "cursor=" in (next_url if len(counts) > 1 else "cursor=")
        seen.extend(row["id"] for row in body["results"])
        next_url = body["next"]
    assert seen == newest_first(getattr(seeded.account, rows), time_field)
    assert len(counts) > 2 and len(set(counts)) == 1, counts
