"""Every page fits a phone, and the polish every page shares, in headless Chromium against a live server.

The pages checked are not hand-picked: every settings URL of the "web" namespace (numbers, a number's settings, a
policy and its rule, a schedule and its layer, an incident, a call, API tokens, the confirmation pages), filled
with the world's ids, plus every link of the navigation and the user menu. Each is opened at 1280x800 and then
shown at 390x844 (a phone) by resizing the window, the way a narrowed window or a turned tablet shows it; the
document may be no wider than the viewport at either size (tables scroll inside their own box). Pages are opened
wide and then narrowed, not the other way round: the only script that looks at the width when a page loads (the
flow editor's) collapses deep branches on a narrow screen, so a page narrowed after loading shows at least as much
as one loaded narrow.

Personas: alice (Acme owner) sees every page an account has, admin-only ones included; sam (support staff) the
admin.
"""
import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from callrouting.models import Voicemail
from escalation.people import invitation_url
from tests.browser import browser, log_in, page  # noqa: F401 (fixtures)
from tests.settings_world import world
from tests.test_web_pages import url_of, web_patterns

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SIZES = [(1280, 800), (390, 844)]  # wide first: see the module's docstring
OVERFLOW = "document.documentElement.scrollWidth"
NAV_LINKS = "nav.mainnav a, .account a"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def overflow(page, width):
    """How many pixels the page is wider than WIDTH (0 when it fits)."""
    return max(0, page.evaluate(OVERFLOW) - width)


def account_pages(w):
    """Paths of every settings URL (generated from the URLconf), with the world's ids."""
    return [url_of(pattern, w.ids) for _, pattern in web_patterns()]


def test_the_width_check_sees_a_page_wider_than_a_phone(live_server, page, acme, alice, bob):  # noqa: F811
    """The check below could not fail if an overflow went unseen: one wide element is measured, on a page opened
    wide and then narrowed as the check does."""
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server, "alice")
    page.set_viewport_size({"width": 390, "height": 844})
    assert overflow(page, 390) == 0
    page.evaluate("document.querySelector('main').insertAdjacentText('beforeend', 'W'.repeat(200))")
    assert overflow(page, 390) > 100


def test_every_page_fits_a_phone_and_a_laptop(live_server, page, acme, alice, bob):  # noqa: F811
    w = world(acme, alice, bob)
    log_in(page, live_server, "alice")
    nav = page.eval_on_selector_all(NAV_LINKS, "links => links.map(a => a.getAttribute('href'))")
    assert "/numbers/" in nav and reverse("web:api-tokens") in nav
    paths = list(dict.fromkeys(["/", *nav, *account_pages(w)]))
    checked, too_wide = [], []
    for path in paths:
        probe = page.request.get(live_server.url + path)
        if probe.status == 405 or "text/html" not in probe.headers.get("content-type", ""):
            continue  # a POST-only action or a file (the voicemail recording), not a page
        assert probe.status == 200, (path, probe.status)
        page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            if excess := overflow(page, width):
                too_wide.append(f"{path} at {width} px: {excess} px too wide")
            checked.append((width, path))
    assert too_wide == [], "\n".join(too_wide)
    # Pages one level below the navigation were among them: a number's settings, a policy, a schedule, an
    # incident, a call, API tokens.
    for path in (f"/numbers/{w.number.pk}/", f"/policies/{w.policy.pk}/", f"/schedules/{w.schedule.pk}/",
                 f"/incidents/{w.incident.pk}/", f"/calls/{w.call.pk}/", "/settings/api-tokens/", "/test-call/"):
        assert (390, path) in checked, path
    assert len(checked) >= 2 * 25


def test_a_responders_pages_fit_a_phone(live_server, page, acme, alice, bob):  # noqa: F811
    """What a responder opens: the invitation (set-password) page, then every page of their navigation, their own
    contact methods among them."""
    world(acme, alice, bob)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + urlsplit(invitation_url(bob)).path)
    page.wait_for_url("**/set-password/")
    expect(page.locator("h1")).to_have_text("Set your password")
    too_wide = [f"invitation: {excess} px too wide"] if (excess := overflow(page, 390)) else []
    log_in(page, live_server, "bob")
    nav = page.eval_on_selector_all(NAV_LINKS, "links => links.map(a => a.getAttribute('href'))")
    assert reverse("web:me") in nav and reverse("web:people") not in nav
    for path in dict.fromkeys(["/", *nav]):
        page.goto(live_server.url + path)
        if excess := overflow(page, 390):
            too_wide.append(f"{path}: {excess} px too wide")
    assert too_wide == [], "\n".join(too_wide)


def test_the_login_page_and_the_admin_fit_a_phone(live_server, page, acme, alice, bob, sam):  # noqa: F811
    w = world(acme, alice, bob)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    assert overflow(page, 390) == 0
    log_in(page, live_server, "sam", next_path="/admin/")
    too_wide = []
    for path in ("/admin/", "/admin/callrouting/routingnumber/",
                 f"/admin/callrouting/routingnumber/{w.number.pk}/change/", "/admin/escalation/user/",
                 f"/admin/escalation/user/{bob.pk}/change/", "/admin/callrouting/call/",
                 f"/admin/callrouting/call/{w.call.pk}/change/", "/admin/incidents/incident/",
                 f"/admin/incidents/incident/{w.incident.pk}/change/",
                 f"/admin/escalation/oncallschedule/{w.schedule.pk}/change/",
                 f"/admin/escalation/escalationpolicy/{w.policy.pk}/change/"):
        assert page.goto(live_server.url + path).status == 200, path
        if excess := overflow(page, 390):
            too_wide.append(f"{path}: {excess} px too wide")
    assert too_wide == [], "\n".join(too_wide)


def test_the_navigation_shows_where_you_are(live_server, page, acme, alice, bob):  # noqa: F811
    w = world(acme, alice, bob)
    log_in(page, live_server, "alice", next_path=f"/numbers/{w.number.pk}/")
    current = page.locator("[aria-current=page]")
    expect(current).to_have_count(1)
    expect(current).to_have_text("Numbers")
    other = page.locator("nav.mainnav a", has_text="Incidents")
    weight = "element => getComputedStyle(element).fontWeight"
    assert int(current.evaluate(weight)) > int(other.evaluate(weight))

    # API tokens are in the user menu, and marked there when open.
    page.click(".account >> text=API tokens")
    page.wait_for_url(f"{live_server.url}/settings/api-tokens/")
    expect(page.locator("[aria-current=page]")).to_have_text("API tokens")
    page.click("nav.mainnav >> text=Incidents")
    expect(page.locator("[aria-current=page]")).to_have_text("Incidents")
    page.goto(f"{live_server.url}/")
    expect(page.locator("[aria-current=page]")).to_have_count(0)


def test_the_favicon_is_linked_and_served_from_here(live_server, page, acme, alice):  # noqa: F811
    log_in(page, live_server, "alice")
    icons = page.eval_on_selector_all("link[rel=icon]", "links => links.map(l => l.href)")
    assert icons
    for href in [*icons, f"{live_server.url}/favicon.ico"]:
        assert href.startswith(live_server.url), href
        response = page.request.get(href)
        assert response.status == 200, href
        assert response.headers["content-type"].startswith("image/"), href
    assert page.request.get(f"{live_server.url}/favicon.ico").body()[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_the_voicemail_player_shows_its_length(live_server, page, acme, alice, bob):  # noqa: F811
    w = world(acme, alice, bob)
    log_in(page, live_server, "alice", next_path=f"/calls/{w.call.pk}/")
    player = page.locator(".voicemail .player")
    expect(player.locator("audio")).to_have_attribute("preload", "metadata")
    expect(player.locator(".duration")).to_have_text("Length: 7 seconds")
    Voicemail.objects.filter(pk=w.voicemail.pk).update(duration=61)
    page.goto(f"{live_server.url}/incidents/{w.incident.pk}/")
    expect(page.locator(".voicemail .player .duration")).to_have_text("Length: 1 minute 1 second")
    assert re.search(r"\b1 seconds\b", page.content()) is None
