"""Shared fixtures and personas (settings: tests/settings.py)."""
import os
from collections import Counter

import pytest
from django.core.cache import cache

from callrouting.flows import cache as flow_cache
from incidents.telephony import reset_telephony
from tests.factories import AccountFactory, UserFactory
from tests.fake_vonage import FakeVonage, VonageWebhookClient

def pytest_collection_modifyitems(items):
    """Tests that share a node id get their own: schemathesis names every operation's test in
    tests/test_fuzz_api.py `test_api_operation[GET /api/...]` but gives them all the node id
    tests/test_fuzz_api.py::test_api_operation, and pytest-xdist's --dist loadfile (make test) schedules by node id,
    so it would run one of the 108.

    Files with slow tests come first (in their own order otherwise): pytest-xdist hands files out in collection
    order, so the long ones start at once and the short ones fill the gaps at the end, instead of one long file
    starting last and running alone."""
    counts = Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1 and item.name != item.nodeid.rsplit("::", 1)[-1]:
            item._id = item.parent.id.child(item.name)  # how pytest itself names a node under its parent
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # a stable sort: each file's tests keep their order


# Personas. Acme is the account under test; Globex is the other tenant that must never see Acme's data.
#   alice   - owner of Acme (account admin)
#   bob     - responder at Acme
#   carol   - responder at Acme
#   charlie - admin of Globex: sees nothing of Acme
#   sam     - support staff (Django staff, no account), works across accounts in the admin


@pytest.fixture
def acme(db):
    return AccountFactory(name="Acme", slug="acme")


@pytest.fixture
def globex(db):
    return AccountFactory(name="Globex", slug="globex")


@pytest.fixture
def alice(acme):
    return UserFactory(account=acme, username="alice", first_name="Alice", role="owner", phone="+4915110000001")


@pytest.fixture
def bob(acme):
    return UserFactory(account=acme, username="bob", first_name="Bob", phone="+4915110000002")


@pytest.fixture
def carol(acme):
    return UserFactory(account=acme, username="carol", first_name="Carol", phone="+4915110000003")


@pytest.fixture
def charlie(globex):
    return UserFactory(account=globex, username="charlie", first_name="Charlie", role="admin", phone="+4915110000009")


@pytest.fixture
def sam(db):
    return UserFactory(account=None, username="sam", first_name="Sam", is_staff=True, is_superuser=True)


# --- Vonage: every test runs against the local fake API (tests/fake_vonage.py), never the real one. ---


@pytest.fixture(scope="session")
def fake_vonage(tmp_path_factory):
    """The fake Vonage HTTPS API, started once per session; requests in this process trust its CA."""
    fake = FakeVonage().start()
    ca_bundle = fake.server.write_ca_bundle(tmp_path_factory.mktemp("fake-vonage") / "ca.pem")
    saved = {name: os.environ.get(name) for name in ("REQUESTS_CA_BUNDLE", "NO_PROXY", "no_proxy")}
    os.environ["REQUESTS_CA_BUNDLE"] = str(ca_bundle)
    # A proxy from the environment must not see (or break) the traffic to the fake.
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, [saved[name], "127.0.0.1", "localhost"]))
    yield fake
    fake.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def vonage_api(fake_vonage, settings):
    """The fake Vonage API, reset, with the product's VONAGE_* settings pointing at it (autouse: no test
    can reach the real Vonage). Needs no database."""
    fake_vonage.reset()
    for name, value in fake_vonage.settings().items():
        setattr(settings, name, value)
    # At least 32 bytes, or PyJWT warns about a short HMAC key on every signed webhook.
    settings.VONAGE_SIGNATURE_SECRET = "tests-only-vonage-signature-secret-0123456789"
    reset_telephony()
    yield fake_vonage
    reset_telephony()


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache (the People page's test-call throttle lives there) and no loaded flow
    versions (a rolled-back database hands out the same version ids again)."""
    cache.clear()
    flow_cache.clear()


@pytest.fixture(autouse=True)
def call_spool(settings, tmp_path):
    """Each test's own spool directory for calls answered during a database outage (callrouting.spool), so no
    test writes into the checkout or replays another test's calls."""
    settings.CALL_SPOOL_DIR = tmp_path / "call-spool"
    return settings.CALL_SPOOL_DIR


@pytest.fixture
def vonage_client():
    """A Django test client with post_webhook(path, payload) and get_webhook(path, params), signed like Vonage."""
    return VonageWebhookClient()


# --- Browser tests against the stack as `make run` starts it (tests/test_browser_test_call.py and its neighbours) ---


@pytest.fixture(scope="session")
def local_run(tmp_path_factory):
    """`make run` in a temporary place (tests/e2e_stack.LocalRun), started once per test process and shared by the
    browser tests that drive the demo account through it: starting one takes seconds, and none of them changes what
    another looks at (a draft edited but not published; a responder in no policy, whose test call rings a number
    nothing else calls; test calls from the Test call page are hung up)."""
    from tests.e2e_stack import LocalRun

    with LocalRun(tmp_path_factory.mktemp("make-run")) as run:
        yield run


@pytest.fixture(scope="session")
def browser_thread():
    """One headless Chromium per test process for the scenarios against local_run (tests/browser.BrowserThread)."""
    from tests.browser import BrowserThread, skip_without_chromium

    skip_without_chromium()
    thread = BrowserThread()
    yield thread
    thread.stop()
