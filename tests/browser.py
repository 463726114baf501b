"""Shared helpers of the browser tests: Debian's Chromium driven by Playwright's sync API, headless.

Use the fixtures by importing them into a test module (`from tests.browser import browser, page  # noqa: F401`)
together with pytest-django's `live_server`. The browser is Debian's /usr/bin/chromium (installed by
`make browser`); Playwright's own browser download (`playwright install`) is never used.
"""
import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSWORD = "correct horse battery staple"  # tests/factories.py UserFactory's password



def launch(playwright):
    """A headless Chromium (Debian's), or a skip when it is not installed."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"{CHROMIUM} is not installed (make browser installs Debian's chromium)")
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
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def log_in(page, live_server, username, password=PASSWORD, next_path="/"):
    """Log in through the login form and wait for NEXT_PATH. LIVE_SERVER: pytest-django's, or a base URL."""
    base_url = getattr(live_server, "url", live_server)
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}*")
