"""Shared helpers of the browser tests: Debian's Chromium driven by Playwright's sync API, headless.

Use the fixtures by importing them into a test module (`from tests.browser import browser, page  # noqa: F401`)
together with pytest-django's `live_server`. The browser is Debian's /usr/bin/chromium (installed by
`make browser`); Playwright's own browser download (`playwright install`) is never used. `Watched(browser)` is a
page that collects Content-Security-Policy violations, for tests that must fail on any. `BrowserThread` runs
scenarios in one Chromium of its own thread, for the tests against a whole stack (tests/conftest.py's
browser_thread and local_run).
"""
import os
import queue
import shutil
import threading

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSWORD = "correct horse battery staple"  # tests/factories.py UserFactory's password



def skip_without_chromium():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"{CHROMIUM} is not installed (make browser installs Debian's chromium)")


def launch(playwright):
    """A headless Chromium (Debian's), or a skip when it is not installed."""
    skip_without_chromium()
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module. While Playwright's sync API runs, its event loop is the running loop of
    the test's thread, and Django's ORM (fixtures, assertions) refuses to run there unless allowed: allowed for
    this module only, and Playwright is stopped after it, so other tests keep Django's async-safety check."""
    from playwright.sync_api import sync_playwright

    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = launch(playwright)
            yield chromium
            chromium.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def page(browser):
    """A page of its own context; the test fails if any page it showed broke the Content-Security-Policy."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    violations = []
    page.on("console", lambda message: violations.append(message.text) if is_csp_message(message.text) else None)
    yield page
    context.close()
    assert not violations, "\n".join(violations)


def is_csp_message(text):
    """Chromium reports every Content-Security-Policy violation on the console with one of these phrases."""
    return "Content Security Policy" in text or "Content-Security-Policy" in text


def log_in(page, live_server, username, password=PASSWORD, next_path="/"):
    """Log in through the login form and wait for NEXT_PATH. LIVE_SERVER: pytest-django's, or a base URL."""
    base_url = getattr(live_server, "url", live_server)
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}*")


RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " blocked " + (event.blockedURI || "inline") + " at "
                              + event.sourceFile + ":" + event.lineNumber);
});
"""


class Watched:
    """A page in a browser context of its own whose Content-Security-Policy violations are collected, page by
    page: securitypolicyviolation events (recorded by an init script) and the console's CSP errors."""

    def __init__(self, browser, width=1280):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.set_default_timeout(15_000)
        self.context.add_init_script(RECORD_VIOLATIONS)
        self.page = self.context.new_page()
        self.console = []
        self.page.on("console", self._console)
        self.violations = []

    def _console(self, message):
        if is_csp_message(message.text):
            self.console.append(message.text)

    def collect(self, label):
        """The violations of the page now shown (and console errors since the last call), labelled."""
        found = self.page.evaluate("window.__cspViolations || []") + self.console
        self.console = []
        self.violations += [f"{label}: {text}" for text in found]
        return found

    def visit(self, url, label=None, ready=None):
        """Open URL, wait for the selector READY to be visible, and collect the violations."""
        from playwright.sync_api import expect

        self.page.goto(url)
        self.page.wait_for_load_state("load")
        if ready:
            expect(self.page.locator(ready).first).to_be_visible(timeout=30_000)
        return self.collect(label or url)


class BrowserThread:
    """One headless Chromium in a thread of its own, for tests against a stack in other processes: Playwright's sync
    API refuses to run where an asyncio loop is running, and an earlier test in the session may have left one in
    the test's thread. `run(scenario, *args)` calls SCENARIO(page, *args) there, with a page of a fresh browser
    context (CSP violations recorded as in `Watched`), and re-raises what it raised in the caller's thread."""

    ARGS = [*CHROMIUM_ARGS, "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
            "--autoplay-policy=no-user-gesture-required"]

    def __init__(self):
        self.jobs = queue.Queue()
        self.failure = None
        self.thread = threading.Thread(target=self._serve, name="browser", daemon=True)
        self.thread.start()

    def _serve(self):
        from playwright.sync_api import expect, sync_playwright

        try:
            # expect() waits 5 s by default, whatever the context's timeout: too short for a busy machine placing
            # a call.
            expect.set_options(timeout=20000)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=self.ARGS)
                try:
                    while (job := self.jobs.get()) is not None:
                        self._run(browser, *job)
                finally:
                    browser.close()
        except BaseException as exc:  # reported to every scenario still waiting (see run)
            self.failure = exc

    @staticmethod
    def _run(browser, scenario, args, outcome, done):
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        try:
            context.set_default_timeout(20000)
            context.add_init_script(RECORD_VIOLATIONS)
            scenario(context.new_page(), *args)
        except BaseException as exc:  # re-raised in the test's thread
            outcome.append(exc)
        finally:
            context.close()
            done.set()

    def run(self, scenario, *args):
        outcome, done = [], threading.Event()
        self.jobs.put((scenario, args, outcome, done))
        # A scenario's own waits are bounded by its timeouts; this only notices a browser thread that is gone.
        while not done.wait(1):
            if not self.thread.is_alive():
                raise RuntimeError("the browser thread stopped") from self.failure
        if outcome:
            raise outcome[0]

    def stop(self):
        self.jobs.put(None)
        self.thread.join(timeout=60)
