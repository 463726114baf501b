"""A test call to a draft, in headless Chromium against the stack as `make run` starts it (run_local: web server,
worker and the local phone network, the demo loaded).

The demo number's Billing rings both agents at once. The demo owner changes Billing in the draft so that only
the second agent is rung, does not publish, opens the Test call page from the editor (number and "Draft" chosen),
calls, presses 2: only that agent's phone rings. A call to the published flow still rings both. (The stack and the
browser are the session's local_run and browser_thread: tests/conftest.py.)
"""
import re

import pytest

from tests.browser import log_in

pytestmark = pytest.mark.slow


def test_a_test_call_to_the_draft_rings_the_agent_the_draft_names(browser_thread, local_run):
    browser_thread.run(edit_the_draft_and_call_it, local_run.url)


def edit_the_draft_and_call_it(page, local_run):
    from playwright.sync_api import expect

    log_in(page, local_run, "demo", "demo-password", next_path="/numbers/")
    href = page.locator("a", has_text="Demo Company support").first.get_attribute("href")
    number_pk = re.search(r"/numbers/(\d+)/", href).group(1)
    page.goto(f"{local_run}/numbers/{number_pk}/flow/")
    billing = page.locator("article.kind-route", has=page.locator(".node-name", has_text=re.compile("^Billing$"))).first
    node_id = billing.get_attribute("data-node")
    called_now = billing.locator(".calling li")
    expect(called_now).to_have_count(2)
    chosen = called_now.nth(1).inner_text().rsplit(" ", 1)[0]  # "<name> <phone>"

    billing.locator("details.configure > summary").click()
    billing.locator(f'[name="n-{node_id}-target_remove_0"]').check()
    billing.locator(f'[name="n-{node_id}-style"]').select_option("sequential")
    billing.locator(f'[name="n-{node_id}-add_user"]').fill(chosen)
    with page.expect_navigation():
        billing.locator("form.node-form button[type=submit]").click()
    billing = page.locator(f"#node-{node_id}")
    expect(billing.locator(".calling li")).to_have_count(1)
    expect(billing.locator(".calling li")).to_contain_text(chosen)

    # From the editor to the Test call page, with the number and the draft chosen.
    page.click(".flow-nav >> text=Test call")
    expect(page.locator("h1")).to_have_text("Test call")
    expect(page.locator("#flow")).to_have_value("draft")
    expect(page.locator("#number")).to_have_value(number_pk)
    page.click("#call-button")
    expect(page.locator("#caller-from")).to_contain_text("+999")
    expect(page.locator("#caller-prompt")).to_contain_text("Billing")
    page.click("#keypad button[data-key='2']")
    cards = page.locator(".agent-card")
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("data-name", chosen)
    expect(cards.first).to_have_attribute("data-state", "ringing")
    page.click("#caller-hangup")
    expect(page.locator("#caller-state")).to_have_text("Ended")

    # The published flow is unchanged: a call to it rings both agents.
    page.goto(f"{local_run}/test-call/?number={number_pk}")
    expect(page.locator("#flow")).to_have_value("published")
    page.click("#call-button")
    expect(page.locator("#caller-prompt")).to_contain_text("Billing")
    page.click("#keypad button[data-key='2']")
    expect(page.locator(".agent-card")).to_have_count(2)
    page.click("#caller-hangup")
    expect(page.locator("#caller-state")).to_have_text("Ended")
    assert page.evaluate("window.__cspViolations") == []
