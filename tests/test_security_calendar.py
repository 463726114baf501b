"""An iCalendar import does bounded work whatever the file says (callrouting/hours.py): rules finer than daily, rules
that never happen, rules reaching too far back, too many occurrences and too many holidays are refused with a
clear error, on the settings page (field error) and in the API (400), before the work they would cause is done."""
import datetime as dt

import dateutil.rrule
import pytest
import recurring_ical_events
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from callrouting import hours
from callrouting.models import Holiday
from tests.callrouting_factories import RoutingNumberFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 27)
# 150 bytes that kept a web worker busy for 27 s: an impossible date (30 February) searched for every second.
HOSTILE = (
    b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:19000101T000000\r\n"
    b"RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def calendar(*events):
    body = "".join(
        f"BEGIN:VEVENT\r\nUID:{n}\r\n{event}\r\nEND:VEVENT\r\n" for n, event in enumerate(events, 1)
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n".encode()


@pytest.fixture
def work(monkeypatch):
    """Counts the work of the recurrence engines: expansions started, and the steps of dateutil (it rebuilds its
    tables for each month or year it examines)."""
    counts = {"expansions": 0, "steps": 0}
    of, rebuild = recurring_ical_events.of, dateutil.rrule._iterinfo.rebuild

    def counting_of(*args, **kwargs):
        counts["expansions"] += 1
        return of(*args, **kwargs)

    def counting_rebuild(self, year, month):
        counts["steps"] += 1
        return rebuild(self, year, month)

    monkeypatch.setattr(recurring_ical_events, "of", counting_of)
    monkeypatch.setattr(dateutil.rrule._iterinfo, "rebuild", counting_rebuild)
    return counts


@pytest.fixture
def number(acme):
    return RoutingNumberFactory(account=acme)


@pytest.fixture
def alice_api(alice):
    client = APIClient()
    client.force_authenticate(user=alice)
    return client


def refusal(content, today=TODAY):
    with pytest.raises(hours.CalendarError) as refused:
        hours.holidays_from_ical(content, today=today)
    return str(refused.value)


def test_the_hostile_file_is_refused_before_any_expansion(work):
    assert len(HOSTILE) <= 150
    assert "repeats secondly; holidays repeat at most daily" in refusal(HOSTILE)
    assert work == {"expansions": 0, "steps": 0}


def test_the_hostile_file_is_a_400_in_the_api_and_a_field_error_on_the_page(alice_api, alice, client, number, work):
    response = alice_api.post(
        f"/api/numbers/{number.pk}/import-ical/", {"file": SimpleUploadedFile("h.ics", HOSTILE)}, format="multipart"
    )
    assert response.status_code == 400
    assert "holidays repeat at most daily" in response.json()["file"][0]
    client.force_login(alice)
    page = client.post(
        reverse("web:number-holidays", args=[number.pk]),
        {"holidays-TOTAL_FORMS": "0", "holidays-INITIAL_FORMS": "0", "ical-calendar": SimpleUploadedFile("h.ics", HOSTILE)},
    )
    assert page.status_code == 400
    form = next(s for s in page.context["sections"] if s["section"].slug == "holidays")["import_form"]
    assert "holidays repeat at most daily" in form.errors["calendar"][0]
    assert work == {"expansions": 0, "steps": 0}
    assert not Holiday.objects.exists()


@pytest.mark.parametrize("freq", ["HOURLY", "MINUTELY", "SECONDLY"])
def test_rules_finer_than_daily_are_refused(freq, work):
    message = refusal(calendar(f"DTSTART;VALUE=DATE:20270101\r\nRRULE:FREQ={freq}\r\nSUMMARY:Busy"))
    assert f"event 1 (“Busy”): it repeats {freq.lower()}" in message
    assert work["steps"] == 0


def test_a_yearly_rule_that_never_happens_is_refused_after_a_bounded_search(work):
    message = refusal(calendar("DTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"))
    assert "never happens" in message
    # dateutil alone would examine every year up to 9999 (about 8,000); the search covers two 400-year cycles.
    assert 0 < work["steps"] <= 2 * hours.CALENDAR_CYCLE_YEARS + 1
    assert work["expansions"] == 0


def test_daily_and_weekly_rules_may_only_narrow_weekdays_and_months(work):
    message = refusal(calendar("DTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"))
    assert "daily repetition uses BYMONTHDAY" in message
    assert work["steps"] == 0


def test_rules_reaching_too_far_back_are_refused_before_expansion(work):
    message = refusal(calendar("DTSTART;VALUE=DATE:17000101\r\nRRULE:FREQ=DAILY;BYDAY=SA,SU"))
    assert "reach too far back or repeat too often" in message
    assert work == {"expansions": 0, "steps": 0}


def test_a_rule_that_ended_long_ago_costs_only_its_own_years(work):
    entries = hours.holidays_from_ical(
        calendar("DTSTART;VALUE=DATE:17000101\r\nRRULE:FREQ=DAILY;UNTIL=17991231\r\nSUMMARY:Old", "DTSTART;VALUE=DATE:20261225"),
        today=TODAY,
    )
    assert [day for day, _ in entries] == [dt.date(2026, 12, 25)]


def test_expansion_stops_at_the_budget_of_occurrences(work):
    daily = [f"DTSTART;VALUE=DATE:20261201\r\nRRULE:FREQ=DAILY\r\nSUMMARY:Day {n}" for n in range(5)]
    message = refusal(calendar(*daily))
    assert f"more than {hours.MAX_OCCURRENCES} times" in message
    # Five daily rules over the window (three years ahead): the engine examines those months, not further.
    first, last = hours.import_window(TODAY)
    months = (last.year - first.year) * 12 + last.month - first.month + 2
    assert work["expansions"] == 1
    assert 0 < work["steps"] <= 5 * months


def test_expansion_stops_at_the_years_ahead(work):
    entries = hours.holidays_from_ical(
        calendar("DTSTART;VALUE=DATE:20001225\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:Christmas"), today=TODAY
    )
    assert [day for day, _ in entries] == [dt.date(year, 12, 25) for year in range(2025, 2029)]  # a year back to three years ahead


def test_too_many_repeating_events_are_refused(work):
    yearly = [f"DTSTART;VALUE=DATE:2027{n % 12 + 1:02d}01\r\nRRULE:FREQ=YEARLY" for n in range(hours.MAX_RECURRING_EVENTS + 1)]
    assert f"more than {hours.MAX_RECURRING_EVENTS} repeating events" in refusal(calendar(*yearly))
    assert work["expansions"] == 0


def test_exdate_and_rdate_are_applied():
    entries = hours.holidays_from_ical(
        calendar(
            "DTSTART;VALUE=DATE:20261221\r\nRRULE:FREQ=DAILY;COUNT=5\r\nEXDATE;VALUE=DATE:20261223\r\n"
            "RDATE;VALUE=DATE:20261231\r\nSUMMARY:Closed"
        ),
        today=TODAY,
    )
    assert [day.day for day, _ in entries] == [21, 22, 24, 25, 31]


def test_holidays_per_calendar_are_capped(alice_api, number, monkeypatch):
    monkeypatch.setattr(Holiday, "MAX_PER_CALENDAR", 3)
    Holiday.objects.create(calendar=number.own_calendar(), date=dt.date(2030, 1, 1), name="Existing")
    three = calendar(*(f"DTSTART;VALUE=DATE:2030020{day}\r\nSUMMARY:Day {day}" for day in (1, 2, 3)))
    url = f"/api/numbers/{number.pk}/import-ical/"
    response = alice_api.post(url, {"file": SimpleUploadedFile("h.ics", three)}, format="multipart")
    assert response.status_code == 400
    assert "would have 4 holidays (at most 3)" in response.json()["file"][0]
    assert Holiday.objects.count() == 1
    replaced = alice_api.post(url, {"file": SimpleUploadedFile("h.ics", three), "replace": True}, format="multipart")
    assert replaced.status_code == 200 and Holiday.objects.count() == 3
    # One more, one at a time: refused too.
    one = alice_api.post("/api/holidays/", {"calendar": number.support_calendar_id, "date": "2030-03-01"}, format="json")
    assert one.status_code == 400 and "at most 3 holidays" in str(one.json())
    assert Holiday.objects.count() == 3
