"""The Test call page in headless Chromium against the stack as `make run` starts it: run_local (web server,
worker and the local phone network, no Vonage credentials) on a throwaway database with the demo loaded.

Log in as the demo owner, call the demo number, choose Billing (both agents ring at once), decline as the first
agent while the announcement plays, accept as the second, hang up: the incident is resolved and its timeline on
the page shows each step.
Accept during the agent's announcement connects at once; a call left by a closed tab is resumed and hung up
from the list of the account's calls in progress.
"""
import os
import shutil
import tempfile
import threading

import pytest

from tests.browser import RECORD_VIOLATIONS, log_in
from tests.e2e_stack import LocalRun

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# A picture of the page mid-call, for a person to look at after the run.
SCREENSHOT = os.path.join(tempfile.gettempdir(), "callrouting-test-call.png")
SPEED = "1"  # the network's time factor: real time, as `make run` plays prompts


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """`make run` in a temporary place (tests/e2e_stack.LocalRun); yields the base URL."""
    with LocalRun(tmp_path_factory.mktemp("make-run"), speed=SPEED) as run:
        yield run.url


def in_browser(scenario, *args):
    """Run SCENARIO(page, *args) in headless Chromium, in a thread of its own: Playwright's sync API refuses to
    run where an asyncio loop is running, and an earlier test in the session may have left one in this thread."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make browser)")
    from playwright.sync_api import expect, sync_playwright

    # expect() waits 5 s by default, whatever the context's timeout: too short for a busy machine placing a call.
    expect.set_options(timeout=20000)
    failures = []

    def run():
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                          "--disable-extensions", "--mute-audio", "--autoplay-policy=no-user-gesture-required"],
                )
                try:
                    context = browser.new_context(viewport={"width": 1280, "height": 1000})
                    context.set_default_timeout(20000)
                    context.add_init_script(RECORD_VIOLATIONS)
                    scenario(context.new_page(), *args)
                finally:
                    browser.close()
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run, name="browser")
    thread.start()
    thread.join(timeout=240)
    assert not thread.is_alive(), "the browser scenario did not finish"
    if failures:
        raise failures[0]


def test_a_test_call_from_the_browser_ends_with_a_resolved_incident(local_run):
    in_browser(call_answer_and_hang_up, local_run)


def log_in_and_open(page, local_run):
    from playwright.sync_api import expect

    log_in(page, local_run, "demo", "demo-password", next_path="/test-call/")
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


def agent_transcript(page, local_run, call, name):
    """The transcript of agent NAME's leg, as the phone network holds it (through the page's own state URL)."""
    legs = page.request.get(f"{local_run}/test-call/state/?call={call}").json()["legs"]
    return next(leg for leg in legs if leg["role"] == "agent" and leg["name"] == name)["transcript"]


def call_answer_and_hang_up(page, local_run):
    from playwright.sync_api import expect

    log_in_and_open(page, local_run)
    # Nothing is dialled yet: no phones, no call log.
    expect(page.locator("#phones")).to_be_hidden()
    expect(page.locator("#records")).to_be_hidden()
    expect(page.locator("#live-calls")).to_be_hidden()

    cards = page.locator(".agent-card")
    first, second, call = call_and_choose_billing(page)
    first_name, second_name = first.get_attribute("data-name"), second.get_attribute("data-name")
    expect(first).to_have_attribute("data-state", "ringing")
    # The first agent answers and declines while the announcement plays: the key is taken at once.
    first.locator("[data-action=answer]").click()
    expect(first).to_have_attribute("data-announcing", "true")
    expect(first.locator(".announcement")).to_contain_text("Accept or Decline now")
    first.locator("[data-action=decline]").click()
    expect(first).to_have_attribute("data-state", "ended")
    declined = agent_transcript(page, local_run, call, first_name)
    talk = next(entry for entry in declined if entry["kind"] == "talk")
    stopped = next(entry for entry in declined if entry["kind"] == "barge_in")
    assert stopped["played"] < talk["seconds"]
    expect(second).to_have_attribute("data-state", "ringing")
    second.locator("[data-action=accept]").click()

    expect(page.locator("#caller-state")).to_have_text("Connected")
    expect(second).to_have_attribute("data-state", "connected")
    expect(page.locator("#incident-status")).to_have_attribute("data-status", "accepted")
    page.screenshot(path=SCREENSHOT, full_page=True)
    # Accept on the ringing phone pressed 1 as the announcement began: it was cut off, not played out.
    transcript = agent_transcript(page, local_run, call, second_name)
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


def test_accept_during_the_announcement_connects_without_waiting_for_its_end(local_run):
    in_browser(accept_during_the_announcement_then_resume_from_another_tab, local_run)


def accept_during_the_announcement_then_resume_from_another_tab(page, local_run):
    from playwright.sync_api import expect

    log_in_and_open(page, local_run)
    first, second, call = call_and_choose_billing(page)
    name = first.get_attribute("data-name")
    expect(first).to_have_attribute("data-state", "ringing")

    first.locator("[data-action=answer]").click()
    expect(first).to_have_attribute("data-announcing", "true")
    expect(first.locator(".announcement")).to_contain_text("Accept or Decline now")
    first.locator("[data-action=accept]").click()

    expect(first).to_have_attribute("data-state", "connected")
    expect(page.locator("#caller-state")).to_have_text("Connected")
    expect(first.locator(".announcement")).to_be_hidden()
    # Measured in the phone network's own simulated time: the key cut the announcement short.
    transcript = agent_transcript(page, local_run, call, name)
    talk = next(entry for entry in transcript if entry["kind"] == "talk")
    stopped = next(entry for entry in transcript if entry["kind"] == "barge_in")
    assert stopped["played"] < talk["seconds"]
    kinds = [entry["kind"] for entry in transcript]
    assert kinds.index("talk") < kinds.index("dtmf") < kinds.index("barge_in") < kinds.index("connected")

    # The tab is closed with the call up; another tab (on a phone-sized screen) lists it, resumes it and hangs
    # it up.
    other = page.context.new_page()
    page.close()
    other.set_viewport_size({"width": 390, "height": 844})
    other.goto(local_run + "/test-call/")
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
