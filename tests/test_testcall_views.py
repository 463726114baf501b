"""The Test call page: who may use it, account scoping of calls and legs, and the proxy to the phone network.

alice owns Acme (account admin), bob is a responder at Acme, charlie administers Globex. The phone network's
control API is replaced by a recording stand-in.
"""
import pytest

from callrouting import testcall
from tests.callrouting_factories import RoutingNumberFactory

pytestmark = pytest.mark.django_db


class FakeEmulator:
    def __init__(self):
        self.calls, self.actions = [], []
        self.legs = {}

    def place_call(self, *, to, from_):
        uuid = f"leg-{len(self.calls) + 1}"
        self.calls.append((to, from_))
        self.legs[uuid] = {"uuid": uuid, "state": "answered", "created_at": 1.0, "direction": "inbound",
                           "from": from_.lstrip("+"), "to": to.lstrip("+"), "transcript": [], "waiting": None}
        return self.legs[uuid]

    def state(self, uuids):
        return {"version": 1, "legs": [dict(self.legs[u]) for u in uuids if u in self.legs]}

    def leg(self, uuid):
        return self.legs[uuid]

    def act(self, uuid, action, **body):
        self.actions.append((uuid, action, body))
        return {"status": "answered"}


@pytest.fixture
def emulator(monkeypatch):
    fake = FakeEmulator()
    monkeypatch.setattr(testcall, "emulator_client", lambda: fake)
    return fake


@pytest.fixture
def acme_number(acme):
    return RoutingNumberFactory(account=acme, phone_number="+4930111222")


def login(client, user):
    client.force_login(user)
    return client


def test_the_page_lists_the_accounts_numbers_for_an_admin(client, alice, acme_number, emulator):
    response = login(client, alice).get("/test-call/")
    assert response.status_code == 200
    assert acme_number.phone_number in response.content.decode()


def test_responders_may_not_place_test_calls(client, bob, acme_number, emulator):
    assert login(client, bob).get("/test-call/").status_code == 403
    assert client.post("/test-call/call/", {"number": acme_number.pk}).status_code == 403
    assert emulator.calls == []


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/test-call/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_without_the_phone_network_the_page_says_so(client, alice, acme_number, monkeypatch):
    monkeypatch.setattr(testcall, "emulator_client", lambda: None)
    response = login(client, alice).get("/test-call/")
    assert "needs the local phone network" in response.content.decode()
    assert client.post("/test-call/call/", {"number": acme_number.pk}).status_code == 503


def test_an_admin_calls_only_numbers_of_their_account(client, alice, charlie, globex, emulator):
    globex_number = RoutingNumberFactory(account=globex, phone_number="+4930999000")
    assert login(client, alice).post("/test-call/call/", {"number": globex_number.pk}).status_code == 404
    assert emulator.calls == []


def test_a_placed_call_can_be_watched_and_played_by_its_session_only(client, alice, charlie, acme_number, emulator):
    response = login(client, alice).post("/test-call/call/", {"number": acme_number.pk})
    uuid = response.json()["call"]
    assert emulator.calls == [("+4930111222", testcall.DEFAULT_CALLER_ID)]

    state = client.get("/test-call/state/", {"call": uuid}).json()
    assert [leg["role"] for leg in state["legs"]] == ["caller"] and state["call_log"] is None
    assert client.post(f"/test-call/legs/{uuid}/dtmf/", {"call": uuid, "digits": "1"}).status_code == 200
    assert emulator.actions == [(uuid, "dtmf", {"digits": "1"})]

    # Charlie (another account, another session) cannot see or act on Alice's call.
    other = login(type(client)(), charlie)
    assert other.get("/test-call/state/", {"call": uuid}).status_code == 404
    assert other.post(f"/test-call/legs/{uuid}/hangup/", {"call": uuid}).status_code == 404
    # Nor can Alice reach a leg that is not part of her call.
    assert client.post("/test-call/legs/leg-99/hangup/", {"call": uuid}).status_code == 404
    assert len(emulator.actions) == 1


def test_bad_keys_are_refused_before_reaching_the_phone_network(client, alice, acme_number, emulator):
    uuid = login(client, alice).post("/test-call/call/", {"number": acme_number.pk}).json()["call"]
    assert client.post(f"/test-call/legs/{uuid}/dtmf/", {"call": uuid, "digits": "1; drop"}).status_code == 400
    assert emulator.actions == []
