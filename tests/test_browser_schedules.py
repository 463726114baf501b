"""The schedule page in headless Chromium at phone width (390×844): nothing wider than the screen, hour labels
that do not overlap, the timeline paged and switched between views, and a click on a shift that hands it over
through a prefilled override.

alice owns Acme and takes turns with bob in the daily layer of the settings world's schedule.
"""
import os
import re
import zoneinfo

import pytest
from playwright.sync_api import expect

from escalation.models import ScheduleOverride
from tests.browser import browser, log_in  # noqa: F401 (fixture)
from tests.test_web_pages import media  # noqa: F401 (fixture: recordings of the world go to a temporary folder)
from tests.settings_world import world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def phone(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def screenshot(page, name):
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def no_wider_than_the_screen(page):
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport, f"the page is {width} px wide on a {viewport} px screen"


def visible_boxes(locator):
    return [box for box in (locator.nth(i).bounding_box() for i in range(locator.count())) if box]


def test_the_schedule_timeline_at_phone_width(live_server, phone, acme, alice, bob):
    w = world(acme, alice, bob)
    page = phone
    log_in(page, live_server, "alice", next_path=f"/schedules/{w.schedule.pk}/")
    screenshot(page, "schedule-390")
    no_wider_than_the_screen(page)

    # Hour labels: fewer at this width, side by side without overlapping.
    labels = visible_boxes(page.locator(".tl-hours span"))
    assert 3 <= len(labels) <= 5
    assert all(left["x"] + left["width"] <= right["x"] for left, right in zip(labels, labels[1:]))
    # Day names fit their column: none runs into the track beside it.
    for row in range(page.locator(".tl-row").count()):
        day = page.locator(".tl-row").nth(row).locator(".tl-day")
        assert day.evaluate("element => element.scrollWidth <= element.clientWidth"), day.inner_text()
    # Now is marked on today's row, within its track.
    now_line, track = page.locator(".tl-row.today line.tl-now"), page.locator(".tl-row.today .tl-track")
    expect(now_line).to_have_count(1)
    line, box = now_line.bounding_box(), track.bounding_box()
    assert box["x"] <= line["x"] <= box["x"] + box["width"]

    rows = page.locator(".tl-row")
    expect(rows).to_have_count(14)
    first_day = rows.first.locator(".tl-day").inner_text()
    page.click("text=Later →")
    expect(page.locator(".tl-row.today")).to_have_count(0)
    expect(rows.first.locator(".tl-day")).not_to_have_text(first_day)
    page.click(".tl-views >> text=4 weeks")
    expect(rows).to_have_count(28)
    no_wider_than_the_screen(page)
    page.click("text=Today")
    expect(page.locator(".tl-row.today")).to_have_count(1)
    page.click(".tl-views >> text=1 week")
    expect(rows).to_have_count(7)

    # A click on bob's next shift opens the override form prefilled with that shift; carol is not in the
    # rotation, so alice takes it herself.
    shift = page.locator(f".tl-row:not(.today) a.tl-link:has(svg[data-user='{bob.pk}'])").first
    shift.click()
    expect(page).to_have_url(re.compile(r"#add-override$"))
    expect(page.locator("#add-override .notice")).to_contain_text("Handing over")
    start_date, start_time = page.input_value("#id_override-start_0"), page.input_value("#id_override-start_1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", start_date) and re.fullmatch(r"\d\d:\d\d", start_time)
    no_wider_than_the_screen(page)
    screenshot(page, "schedule-390-override")
    page.fill("#id_override-user", alice.username)
    page.click("text=Add override")
    expect(page.locator(".msg.success")).to_contain_text("Override added")
    override = ScheduleOverride.objects.filter(schedule=w.schedule, user=alice).get()
    # The form's times are in the account's zone.
    assert override.start.astimezone(zoneinfo.ZoneInfo(acme.timezone)).strftime("%Y-%m-%d %H:%M") == (
        f"{start_date} {start_time}")
