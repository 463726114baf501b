"""The Test call page in headless Chromium against the stack as `make run` starts it: run_local (web server,
worker and the local phone network, no Vonage credentials) on a throwaway database with the demo loaded (the
session's local_run and browser_thread: tests/conftest.py).

Log in as the demo owner, call the demo number, choose Billing (both agents ring at once), decline as the first
agent while the announcement plays, accept as the second, hang up: the incident is resolved and its timeline on
the page shows each step.
Accept during the agent's announcement connects at once; a call left by a closed tab is resumed and hung up
from the list of the account's calls in progress.

The network runs in real time, as `make run` plays prompts: the agents' phones must go on ringing while the page is
clicked. An announcement the page answers while it plays is held (the control API's hold_talk: it goes on until the
key), so a click slowed down by a busy machine still lands in it.
"""
import os
import tempfile

import pytest

from tests.browser import log_in

pytestmark = pytest.mark.slow

# A picture of the page mid-call, for a person to look at after the run.
SCREENSHOT = os.path.join(tempfile.gettempdir(), "callrouting-test-call.png")


def test_a_test_call_from_the_browser_ends_with_a_resolved_incident(browser_thread, local_run):
    browser_thread.run(call_answer_and_hang_up, local_run)


def log_in_and_open(page, base):
    from playwright.sync_api import expect

    log_in(page, base, "demo", "demo-password", next_path="/test-call/")
    expect(page.locator("h1")).to_have_text("Test call")


def call_and_choose_billing(page):
    """Call the demo number and choose Billing: both agents ring. Returns the two agent cards and the call uuid."""
    from playwright.sync_api import expect

    page.select_option("#number", label="Demo Company support (+4930901820)")
    page.click("#call-button")
    expect(page.locator("#caller-prompt")).to_contain_text("Press 2 or say Billing for Billing")
    page.click("#keypad button[data-key='2']")
    cards = page.locator(".agent-card")
    expect(cards).to_have_count(2)
    return cards.nth(0), cards.nth(1), page.locator("#phones").get_attribute("data-call")


def agent_transcript(page, base, call, name):
    """The transcript of agent NAME's leg, as the phone network holds it (through the page's own state URL)."""
    legs = page.request.get(f"{base}/test-call/state/?call={call}").json()["legs"]
    return next(leg for leg in legs if leg["role"] == "agent" and leg["name"] == name)["transcript"]


def answer_and_hold_the_announcement(card, local_run):
    """Answer on CARD's phone; its announcement goes on until a key (see the module's docstring)."""
    from playwright.sync_api import expect

    local_run.phone_network().act(card.get_attribute("data-uuid"), "hold_talk")
    card.locator("[data-action=answer]").click()
    expect(card).to_have_attribute("data-announcing", "true")
    expect(card.locator(".announcement")).to_contain_text("Accept or Decline now")


def assert_cut_short_by_the_key(transcript):
    """The key was taken while the held announcement played, and stopped it (barge-in): were barge-in broken, the
    announcement would still be playing, or the key would have waited for the input after it."""
    kinds = [entry["kind"] for entry in transcript]
    talk = next(entry for entry in transcript if entry["kind"] == "talk")
    stopped = next(entry for entry in transcript if entry["kind"] == "barge_in")
    assert talk["held"] and stopped["text"] == "talk stopped by the caller"
    assert kinds.index("talk") < kinds.index("dtmf") < kinds.index("barge_in") < kinds.index("input")


def call_answer_and_hang_up(page, local_run):
    from playwright.sync_api import expect

    base = local_run.url
    log_in_and_open(page, base)
    # Nothing is dialled yet: no phones, no call log.
    expect(page.locator("#phones")).to_be_hidden()
    expect(page.locator("#records")).to_be_hidden()
    expect(page.locator("#live-calls")).to_be_hidden()

    cards = page.locator(".agent-card")
    first, second, call = call_and_choose_billing(page)
    first_name, second_name = first.get_attribute("data-name"), second.get_attribute("data-name")
    expect(first).to_have_attribute("data-state", "ringing")
    # The first agent answers and declines while the announcement plays: the key is taken at once.
    answer_and_hold_the_announcement(first, local_run)
    first.locator("[data-action=decline]").click()
    expect(first).to_have_attribute("data-state", "ended")
    assert_cut_short_by_the_key(agent_transcript(page, base, call, first_name))
    expect(second).to_have_attribute("data-state", "ringing")
    second.locator("[data-action=accept]").click()

    expect(page.locator("#caller-state")).to_have_text("Connected")
    expect(second).to_have_attribute("data-state", "connected")
    expect(page.locator("#incident-status")).to_have_attribute("data-status", "accepted")
    page.screenshot(path=SCREENSHOT, full_page=True)
    # Accept on the ringing phone pressed 1 as the announcement began: it was cut off, not played out.
    transcript = agent_transcript(page, base, call, second_name)
    stopped = [entry for entry in transcript if entry["kind"] == "barge_in"]
    assert stopped and stopped[0]["played"] == 0.0
    assert cards.count() == 2

    page.click("#caller-hangup")
    expect(page.locator("#caller-state")).to_have_text("Ended")
    expect(page.locator("#incident-status")).to_have_attribute("data-status", "resolved")
    expect(page.locator("#call-state")).to_contain_text("Answered by an agent")
    timeline = page.locator("#timeline")
    for step in [
        "chose 2 “Billing” (digit). Calling agents all at once.",
        f"Calling {first_name}",
        f"Calling {second_name}",
        f"{first_name}: declined",
        f"{second_name} accepted the call and is connected to the caller.",
        "Call ended: answered by an agent.",
        "Resolved",
    ]:
        expect(timeline).to_contain_text(step)
    # All of it ran under the page's Content-Security-Policy without a violation.
    assert page.evaluate("window.__cspViolations") == []


def test_accept_during_the_announcement_connects_without_waiting_for_its_end(browser_thread, local_run):
    browser_thread.run(accept_during_the_announcement_then_resume_from_another_tab, local_run)


def accept_during_the_announcement_then_resume_from_another_tab(page, local_run):
    from playwright.sync_api import expect

    base = local_run.url
    log_in_and_open(page, base)
    first, second, call = call_and_choose_billing(page)
    name = first.get_attribute("data-name")
    expect(first).to_have_attribute("data-state", "ringing")

    answer_and_hold_the_announcement(first, local_run)
    first.locator("[data-action=accept]").click()

    expect(first).to_have_attribute("data-state", "connected")
    expect(page.locator("#caller-state")).to_have_text("Connected")
    expect(first.locator(".announcement")).to_be_hidden()
    # The key cut the announcement short (it would otherwise never have ended), and the agent was connected after.
    transcript = agent_transcript(page, base, call, name)
    assert_cut_short_by_the_key(transcript)
    kinds = [entry["kind"] for entry in transcript]
    assert kinds.index("barge_in") < kinds.index("connected")

    # The tab is closed with the call up; another tab (on a phone-sized screen) lists it, resumes it and hangs
    # it up.
    other = page.context.new_page()
    page.close()
    other.set_viewport_size({"width": 390, "height": 844})
    other.goto(base + "/test-call/")
    row = other.locator(f"#live-calls tr[data-call='{call}']")
    expect(row).to_be_visible()
    expect(other.locator("#phones")).to_be_hidden()
    row.locator("[data-live=resume]").click()
    expect(other.locator("#phones")).to_be_visible()
    expect(other.locator("#caller-state")).to_have_text("Connected")
    expect(other.locator(f".agent-card[data-name='{name}']")).to_have_attribute("data-state", "connected")
    width, viewport = other.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport, f"the page is {width} px wide on a {viewport} px screen"
    row.locator("[data-live=hangup]").click()
    expect(other.locator("#caller-state")).to_have_text("Ended")
    expect(other.locator("#live-calls")).to_be_hidden(timeout=30000)
