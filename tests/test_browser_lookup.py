"""The searchable person input in headless Chromium at phone width (390×844), keyboard only: type part of a
name, pick the suggestion with the arrow keys and Enter, save; the suggestions fit the screen and the page keeps
to the Content-Security-Policy (the script is a static file).

alice owns Acme; carol is a responder of Acme who is not yet in the layer's rotation.
"""
import pytest
from playwright.sync_api import expect

from escalation.models import LayerMember
from tests.browser import Watched, browser, log_in  # noqa: F401 (fixture)
from tests.settings_world import world
from tests.test_browser_schedules import no_wider_than_the_screen
from tests.test_web_pages import media  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_person_is_chosen_with_the_keyboard_at_phone_width(live_server, browser, acme, alice, bob, carol):  # noqa: F811
    w = world(acme, alice, bob)
    watched = Watched(browser, width=390)
    page = watched.page
    log_in(page, live_server, "alice", next_path=f"/schedules/{w.schedule.pk}/layers/{w.layer.pk}/")
    field = page.locator("input[name='members-2-user']")
    field.focus()
    page.keyboard.type(carol.first_name[:3])
    # The suggestions of the typed text (not those shown on focus): Carol alone.
    expect(page.locator("[role=option]")).to_have_count(1)
    option = page.locator("[role=option]", has_text=carol.first_name)
    no_wider_than_the_screen(page)
    box = option.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.keyboard.press("ArrowDown")
    assert field.get_attribute("aria-activedescendant")
    # The suggestions answered again after the arrow key, as the last keystroke's search may be (typing faster than
    # its 150 ms pause): the chosen option stays chosen, and Enter picks it rather than submitting the form.
    page.evaluate("document.querySelector('[role=option]').dataset.stale = '1'")
    field.dispatch_event("input")
    expect(page.locator("[role=option]:not([data-stale])")).to_have_count(1)
    assert field.get_attribute("aria-activedescendant")
    page.keyboard.press("Enter")
    assert carol.username in field.input_value()
    page.locator("input[name='members-2-position']").fill("2")
    page.get_by_role("button", name="Save layer").click()
    page.wait_for_load_state()
    assert LayerMember.objects.filter(layer=w.layer, user=carol).exists()
    watched.collect("layer editor")
    assert not watched.violations, watched.violations
    watched.context.close()
