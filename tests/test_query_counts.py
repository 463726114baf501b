"""No page or API endpoint makes more queries on a bigger account.

The same account shape (callrouting/benchmark/large_account.py, as `manage.py seed_large_account` builds it at a large
customer's size) is seeded at two small sizes, the second about three times the first, into one database. Every
settings page (from the URLconf) and every API list, detail and read-only action is fetched by each account's
owner; the number of queries (counted with CaptureQueriesContext, never timed) must be the same for both.
"""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from callrouting.benchmark.large_account import Size, account_urls, seed_large_account

SMALL = Size(people=6, schedules=3, policies=2, numbers=2, options=2, incidents=6, calls=4)
BIGGER = Size(people=18, schedules=9, policies=6, numbers=6, options=3, incidents=30, calls=20)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def accounts(db):
    return seed_large_account("Small", SMALL, number_prefix="1001"), seed_large_account("Bigger", BIGGER, number_prefix="2002")


def queries_per_url(client, seeded):
    client.force_login(seeded.owner)
    counts = {}
    for name, url in account_urls(seeded):
        client.get(url)  # warm-up: sessions, caches and lazy imports are not what this measures
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code < 500, (name, url, response.status_code)
        counts[name] = (len(captured), response.status_code)
    client.logout()
    return counts


def test_the_fixture_has_every_kind_of_row(accounts):
    small, bigger = accounts
    names = [name for name, _ in account_urls(bigger)]
    assert len(names) == len(set(names))
    assert sum(name.startswith("web:") for name in names) > 40
    assert {"api:incident-list", "api:incident-detail", "api:escalationrule-list", "api:call-detail",
            "api:oncallschedule-shifts", "api:escalationpolicy-on-call"} <= set(names)
    assert bigger.account.incidents.count() == 30 and bigger.account.users.count() == 18
    assert small.account.calls.count() == 4


def test_no_page_or_endpoint_makes_more_queries_on_a_bigger_account(client, accounts):
    small, bigger = accounts
    at_small, at_bigger = queries_per_url(client, small), queries_per_url(client, bigger)
    assert at_small.keys() == at_bigger.keys()
    # Every URL answers the same way for both accounts (a 404 in one would hide its queries).
    assert {n: s for n, (_, s) in at_small.items()} == {n: s for n, (_, s) in at_bigger.items()}
    growing = {name: (at_small[name][0], at_bigger[name][0]) for name in at_small if at_bigger[name][0] > at_small[name][0]}
    assert not growing, f"queries at sizes {SMALL.people}/{BIGGER.people} people: {growing}"
