"""The pages work under their Content-Security-Policy, in headless Chromium against a live server: every main
page of an account user, the API documentation (Swagger UI, Redoc) and the support-staff admin load without a
single CSP violation (securitypolicyviolation events and the console's CSP errors both count), and what their
scripts do still happens (the schedule timeline places its bars, Swagger UI and Redoc render the schema). Nothing
those pages load comes from outside this installation, not even the API documentation's scripts and fonts (a
request the policy allowed would not be a violation).

Personas: alice (Acme owner) walks the settings pages and makes an API token; sam (support staff) the admin.
"""
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser import Watched, browser, log_in  # noqa: F401 (fixtures)
from tests.settings_world import world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_the_violation_detector_sees_an_inline_style(live_server, browser, acme, alice):  # noqa: F811
    """The check below could not fail if violations went unseen: an inline style attribute is reported."""
    watched = Watched(browser)
    watched.visit(f"{live_server.url}/accounts/login/")
    watched.page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
    watched.page.wait_for_function("window.__cspViolations.length > 0")
    assert any("style-src" in text for text in watched.collect("injected"))
    watched.context.close()


def test_account_pages_and_api_docs_load_without_csp_violations(live_server, browser, acme, alice, bob):  # noqa: F811
    w = world(acme, alice, bob)
    watched = Watched(browser)
    requested = []
    watched.page.on("request", lambda request: requested.append(request.url))
    base = live_server.url
    watched.visit(f"{base}/accounts/login/", "login")
    log_in(watched.page, live_server, "alice")
    watched.collect("after login")
    pages = [
        ("/", "h1"),
        ("/numbers/", "h1"),
        (f"/numbers/{w.number.pk}/flow/", ".flow-tree .node"),
        (f"/numbers/{w.number.pk}/flow/versions/", "table.versions"),
        (f"/numbers/{w.number.pk}/flow/dry-run/?inputs=1,nobody", "#result"),
        ("/incidents/", "h1"),
        (f"/incidents/{w.incident.pk}/", "#incident-status"),
        ("/calls/", "h1"),
        (f"/calls/{w.call.pk}/", "h1"),
        ("/policies/", "h1"),
        (f"/policies/{w.policy.pk}/", "h1"),
        (f"/policies/{w.policy.pk}/rules/{w.rule.pk}/", "h1"),
        ("/schedules/", "h1"),
        (f"/schedules/{w.schedule.pk}/layers/{w.layer.pk}/", "h1"),
        ("/test-call/", "h1"),
        ("/api/", "body"),
        ("/api/numbers/", "body"),
    ]
    for path, ready in pages:
        watched.visit(base + path, ready=ready)

    # The number page's preview script still runs (it follows the typing).
    watched.visit(f"{base}/numbers/{w.number.pk}/", ready="#preview")
    watched.page.fill("#id_general-greeting", "Hello from the CSP test.")
    expect(watched.page.locator("#preview")).to_contain_text("Hello from the CSP test.")
    watched.collect("number preview")

    # The timeline's bars are SVG placed by their x and width attributes (no style attributes in the markup).
    watched.visit(f"{base}/schedules/{w.schedule.pk}/", ready=".tl-bar")
    widths = watched.page.eval_on_selector_all(".tl-bar", "bars => bars.map(b => b.getAttribute('width'))")
    assert widths and all(width.endswith("%") for width in widths)
    track = watched.page.locator(".tl-track").first.bounding_box()
    bar = watched.page.locator(".tl-bar").first.bounding_box()
    assert 0 < bar["width"] <= track["width"] + 1

    # Creating a token: the value is shown once on the page.
    watched.visit(f"{base}/settings/api-tokens/", ready="h1")
    watched.page.fill("#id_name", "Browser check")
    watched.page.click("text=Create the token")
    expect(watched.page.locator("#new-token")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    watched.collect("token created")

    # Swagger UI and Redoc render the schema from this installation.
    watched.visit(f"{base}/api/docs/", "swagger", ready=".swagger-ui .info .title")
    expect(watched.page.locator(".swagger-ui .opblock").first).to_be_visible()
    watched.collect("swagger rendered")
    # Redoc's bundle is served with our own icon in place of Redocly's CDN logo: not even a blocked request.
    watched.visit(f"{base}/api/redoc/", "redoc", ready="h1:has-text('callrouting API')")
    expect(watched.page.locator("text=/api/tokens/").first).to_be_attached()
    expect(watched.page.locator("text=API docs by Redocly")).to_be_attached()
    watched.page.wait_for_load_state("networkidle")
    watched.collect("redoc rendered")

    assert watched.violations == [], "\n".join(watched.violations)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    outside = [url for url in requested if not (url.startswith(origin + "/") or url.startswith(("data:", "blob:")))]
    assert outside == []
    assert any("/api/redoc/redoc.standalone.js" in url for url in requested)
    watched.context.close()


def test_the_api_tokens_page_fits_a_phone(live_server, browser, acme, alice, bob):  # noqa: F811
    world(acme, alice, bob)
    watched = Watched(browser, width=390)
    log_in(watched.page, live_server, "alice", next_path="/settings/api-tokens/")
    expect(watched.page.locator("#api-tokens")).to_contain_text("Acme deploy script")
    assert watched.page.evaluate("document.documentElement.scrollWidth") <= 390
    assert watched.collect("tokens at 390 px") == []
    watched.context.close()


def test_admin_pages_load_without_csp_violations(live_server, browser, acme, alice, bob, sam):  # noqa: F811
    w = world(acme, alice, bob)
    watched = Watched(browser)
    base = live_server.url
    watched.visit(f"{base}/admin/login/", "admin login")
    log_in(watched.page, live_server, "sam", next_path="/admin/")
    watched.collect("after admin login")
    for path in (
        "/admin/",
        "/admin/callrouting/routingnumber/",
        f"/admin/callrouting/routingnumber/{w.number.pk}/change/",
        "/admin/callrouting/call/",
        "/admin/escalation/user/",
        f"/admin/escalation/user/{alice.pk}/change/",
        f"/admin/escalation/oncallschedule/{w.schedule.pk}/change/",
        "/admin/escalation/apitoken/",
        "/admin/axes/accessattempt/",
    ):
        watched.visit(base + path, ready="#content")
    assert watched.violations == [], "\n".join(watched.violations)
    watched.context.close()
