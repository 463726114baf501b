"""The people flow in headless Chromium against the stack as `make run` starts it (tests/e2e_stack.LocalRun): the
demo owner adds and invites a responder; the responder, on a phone-sized screen, opens the set-password link,
sets a password, adds a phone number and sends a test call, which rings that number on the local phone network.
(The stack and the browser are the session's local_run and browser_thread: tests/conftest.py.)
"""
import time

import pytest

from tests.browser import log_in

pytestmark = pytest.mark.slow

PHONE = "+49 151 5550 1234"
E164 = "+4915155501234"
PASSWORD = "a long password for rita 7"


def test_invite_set_password_add_a_phone_and_ring_it(browser_thread, local_run):
    browser_thread.run(people_flow, local_run)
    # The test call rang the new number on the local phone network (the product placed it through the Vonage API).
    network = local_run.phone_network()
    legs = []
    for _ in range(50):  # the call is placed before the page answers; allow the network a moment to list it
        legs = [leg for leg in network.state(wait=0)["legs"] if leg["to"].lstrip("+") == E164.lstrip("+")]
        if legs:
            break
        time.sleep(0.1)
    (leg,) = legs
    assert leg["direction"] == "outbound" and leg["from"].lstrip("+") == "4930901800"
    assert leg["status"] in ("started", "ringing"), leg


def people_flow(page, local_run):
    from playwright.sync_api import expect

    base = local_run.url
    log_in(page, base, "demo", "demo-password", next_path="/people/")
    expect(page.locator("nav.mainnav")).to_contain_text("People")

    form = page.locator("#add-person")
    form.locator("#id_first_name").fill("Rita")
    form.locator("#id_last_name").fill("Responder")
    form.locator("#id_email").fill("rita@example.com")
    form.locator("#id_role").select_option("responder")
    form.locator("button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("Rita Responder")
    page.click("#invite-button")
    link = page.locator("#invitation-url").inner_text().strip()
    assert link.startswith(base + "/accounts/invitation/"), link

    # Rita, on her phone, with no session of her own.
    phone = page.context.browser.new_context(viewport={"width": 390, "height": 844})
    phone.set_default_timeout(20000)
    rita = phone.new_page()
    try:
        rita.goto(link)
        expect(rita.locator("h1")).to_have_text("Set your password")
        assert rita.evaluate("document.documentElement.scrollWidth") <= 390
        rita.fill("#id_new_password1", PASSWORD)
        rita.fill("#id_new_password2", PASSWORD)
        rita.click("button[type=submit]")
        rita.wait_for_url("**/me/")
        expect(rita.locator("h1")).to_have_text("My contact methods")
        expect(rita.locator("nav.mainnav")).to_contain_text("My contact methods")
        expect(rita.locator("nav.mainnav")).not_to_contain_text("People")

        add = rita.locator("#add-contact")
        add.locator("select[name=kind]").select_option("phone")
        add.locator("input[name=value]").fill("0151 12")
        add.locator("button[type=submit]").click()
        expect(rita.locator("#add-contact .errorlist")).to_contain_text("for example +49 30 1234567")
        add = rita.locator("#add-contact")
        add.locator("input[name=value]").fill(PHONE)
        add.locator("input[name=label]").fill("mobile")
        add.locator("button[type=submit]").click()
        row = rita.locator(".contact-row", has_text=E164)
        expect(row).to_be_visible()
        assert rita.evaluate("document.documentElement.scrollWidth") <= 390

        row.locator("button.test-call").click()
        expect(rita.locator(".msg.success")).to_contain_text(f"Sent a test call to {E164}")
        rita.locator(".contact-row", has_text=E164).locator("button.test-sms").click()
        expect(rita.locator(".msg.success")).to_contain_text(f"Sent a test SMS to {E164}")
    finally:
        phone.close()

    # The owner's People list and Rita's page on a phone-sized screen: no sideways scrolling of the page.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/people/")
    expect(page.locator(".people-table")).to_contain_text(E164)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator(".people-table a", has_text="Rita Responder").click()
    expect(page.locator("#contact-methods")).to_contain_text(E164)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
