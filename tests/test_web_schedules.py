"""The schedule page's timeline: one, two or four weeks paged backwards and forwards, "now" marked, a click on a
shift prefilling an override; rotations in words ("every week"); 24-hour time inputs.

alice owns Acme (admin), bob is a responder there; both take turns in the daily layer of acme_world's schedule.
"""
import datetime as dt
import re
import zoneinfo
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import LayerFactory, ScheduleFactory
from tests.test_web_pages import acme_world, as_alice, media  # noqa: F401 (fixtures: the settings pages' world)

pytestmark = pytest.mark.django_db


def schedule_page(client, schedule, **query):
    response = client.get(reverse("web:schedule", args=[schedule.pk]), query)
    assert response.status_code == 200
    return response


def today_in(schedule):
    return timezone.localdate(timezone.now(), schedule.tz)


@pytest.mark.parametrize("weeks, days", [("1", 7), ("2", 14), ("4", 28), ("3", 14), ("x", 14), (None, 14)])
def test_the_timeline_shows_one_two_or_four_weeks(as_alice, acme_world, weeks, days):
    query = {"weeks": weeks} if weeks else {}
    page = schedule_page(as_alice, acme_world.schedule, **query)
    assert len(page.context["days"]) == days
    assert page.context["days"][0].date == today_in(acme_world.schedule)
    current = [weeks for weeks, url, current in page.context["views"] if current]
    assert current == [days // 7]


def test_the_timeline_pages_backwards_and_forwards(as_alice, acme_world):
    schedule = acme_world.schedule
    today = today_in(schedule)
    page = schedule_page(as_alice, schedule, weeks=1)

    later = parse_qs(urlsplit(page.context["later_url"]).query)
    earlier = parse_qs(urlsplit(page.context["earlier_url"]).query)
    assert later == {"start": [(today + dt.timedelta(days=7)).isoformat()], "weeks": ["1"]}
    assert earlier == {"start": [(today - dt.timedelta(days=7)).isoformat()], "weeks": ["1"]}

    next_week = as_alice.get(page.context["later_url"])
    assert [day.date for day in next_week.context["days"]] == [today + dt.timedelta(days=7 + i) for i in range(7)]
    # Someone is on call every day of the daily rotation, next week too.
    assert all(day.bars for day in next_week.context["days"])
    # Another view keeps the start; "Today" comes back.
    four = parse_qs(urlsplit(dict((w, u) for w, u, c in next_week.context["views"])[4]).query)
    assert four == {"start": [(today + dt.timedelta(days=7)).isoformat()], "weeks": ["4"]}
    assert not next_week.context["showing_today"] and b">Today</a>" in next_week.content
    assert parse_qs(urlsplit(next_week.context["today_url"]).query)["start"] == [today.isoformat()]


def test_now_is_marked_on_todays_row_only(as_alice, acme_world):
    page = schedule_page(as_alice, acme_world.schedule)
    marks = [day.now for day in page.context["days"]]
    assert marks[0] is not None and 0 <= marks[0] <= 100 and marks[1:] == [None] * 13
    assert page.content.count(b'class="tl-now"') == 1

    next_page = as_alice.get(page.context["later_url"])
    assert all(day.now is None for day in next_page.context["days"]) and b"tl-now" not in next_page.content


def test_a_start_that_is_junk_or_far_away_is_today_or_clamped(as_alice, acme_world):
    today = today_in(acme_world.schedule)
    assert schedule_page(as_alice, acme_world.schedule, start="junk").context["days"][0].date == today
    far = schedule_page(as_alice, acme_world.schedule, start="9999-12-31").context["days"][0].date
    assert today + dt.timedelta(days=365 * 5) <= far < today + dt.timedelta(days=366 * 6)


def test_a_click_on_a_shift_opens_the_override_form_prefilled_with_that_shift(as_alice, acme_world, alice, bob):
    page = schedule_page(as_alice, acme_world.schedule)
    bar = next(bar for day in page.context["days"][3:] for bar in day.bars if not bar.is_override)
    assert bar.override_url.endswith("#add-override")
    assert bar.override_url.replace("&", "&amp;").encode() in page.content

    prefilled = as_alice.get(bar.override_url)

    assert prefilled.status_code == 200
    form = prefilled.context["override_form"]
    assert form.initial["start"] == bar.shift_start and form.initial["end"] == bar.shift_end
    assert prefilled.context["covering"] == bar.user
    html = prefilled.content.decode()
    assert f"Handing over {bar.user}" in html
    assert re.search(r'name="override-start_1" value="\d\d:\d\d"', html)
    assert re.search(r'name="override-start_0" value="\d{4}-\d\d-\d\d"', html)


def test_bad_prefill_parameters_prefill_nothing(as_alice, acme_world):
    page = schedule_page(as_alice, acme_world.schedule, **{"override-start": "yesterday", "override-end": "2030-01-01",
                                                            "covering": "abc"})
    assert page.context["override_form"].initial == {} and page.context["covering"] is None


def test_responders_see_the_timeline_without_override_links(client, acme_world, bob):
    client.force_login(bob)
    page = schedule_page(client, acme_world.schedule)
    assert any(day.bars for day in page.context["days"])
    assert not any(getattr(bar, "override_url", "") for day in page.context["days"] for bar in day.bars)
    assert b"#add-override" not in page.content


@pytest.mark.parametrize("length, unit, words", [
    (1, "weeks", "every week"), (2, "weeks", "every 2 weeks"), (1, "days", "every day"), (3, "days", "every 3 days"),
    (1, "hours", "every hour"), (8, "hours", "every 8 hours"),
])
def test_rotations_read_as_words(acme, length, unit, words):
    layer = LayerFactory(schedule=ScheduleFactory(account=acme), shift_length=length, shift_unit=unit)
    assert layer.rotation_display() == f"{words} from 2026-01-05 09:00"


def test_time_inputs_are_24_hour_and_the_page_has_no_inline_style(as_alice, acme_world):
    html = schedule_page(as_alice, acme_world.schedule).content.decode()
    assert 'type="time"' not in html and "datetime-local" not in html
    assert re.search(r'<input type="text" name="override-start_1"[^>]*pattern="\(\[01\]\[0-9\]\|2\[0-3\]\):\[0-5\]\[0-9\]"', html)
    assert "style=" not in html and "<style" not in html
    layer_html = as_alice.get(reverse("web:layer", args=[acme_world.schedule.pk, acme_world.layer.pk])).content.decode()
    assert 'type="time"' not in layer_html and 'name="handoff_time" value="09:00"' in layer_html


def test_an_override_is_saved_from_24_hour_times(as_alice, acme_world, alice):
    url = reverse("web:override-new", args=[acme_world.schedule.pk])
    response = as_alice.post(url, {"override-user": alice.pk, "override-start_0": "2031-03-04",
                                   "override-start_1": "21:30", "override-end_0": "2031-03-05",
                                   "override-end_1": "07:15"})
    assert response.status_code == 302
    override = acme_world.schedule.overrides.get(start__year=2031)
    # The form's times are in the account's zone.
    local = timezone.localtime(override.start, zoneinfo.ZoneInfo(acme_world.schedule.account.timezone))
    assert (local.hour, local.minute) == (21, 30)
    bad = as_alice.post(url, {"override-user": alice.pk, "override-start_0": "2031-03-04",
                              "override-start_1": "9:30 PM", "override-end_0": "2031-03-05", "override-end_1": "07:15"})
    assert bad.status_code == 400 and "Enter a valid time" in bad.content.decode()
