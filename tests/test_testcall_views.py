"""The Test call page: who may use it, account scoping of calls and legs, and the proxy to the phone network.

alice owns Acme (account admin), bob is a responder at Acme, charlie administers Globex. The phone network's
control API is replaced by a recording stand-in.
"""
import re

import pytest

from callrouting import testcall
from callrouting.models import PlacedTestCall
from tests.callrouting_factories import RoutingNumberFactory
from tests.factories import UserFactory

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
        if action == "hangup" and uuid in self.legs:
            self.legs[uuid]["state"] = "ended"
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


def test_a_placed_call_can_be_watched_and_played_by_its_accounts_admins_only(client, alice, charlie, acme_number,
                                                                             emulator):
    response = login(client, alice).post("/test-call/call/", {"number": acme_number.pk})
    uuid = response.json()["call"]
    assert emulator.calls == [("+4930111222", testcall.DEFAULT_CALLER_ID)]

    state = client.get("/test-call/state/", {"call": uuid}).json()
    assert [leg["role"] for leg in state["legs"]] == ["caller"] and state["call_log"] is None
    assert client.post(f"/test-call/legs/{uuid}/dtmf/", {"call": uuid, "digits": "1"}).status_code == 200
    assert emulator.actions == [(uuid, "dtmf", {"digits": "1"})]

    # Another admin of Acme, in another browser, can: a closed tab leaves nothing out of reach.
    dora = UserFactory(account=alice.account, username="dora", role="admin")
    colleague = login(type(client)(), dora)
    assert colleague.get("/test-call/state/", {"call": uuid}).status_code == 200
    # Charlie (another account) cannot see or act on Alice's call.
    other = login(type(client)(), charlie)
    assert other.get("/test-call/state/", {"call": uuid}).status_code == 404
    assert other.post(f"/test-call/legs/{uuid}/hangup/", {"call": uuid}).status_code == 404
    # Nor can Alice reach a leg that is not part of her call.
    assert client.post("/test-call/legs/leg-99/hangup/", {"call": uuid}).status_code == 404
    assert len(emulator.actions) == 1
    assert other.get("/test-call/calls/").json() == {"calls": []}


def test_bad_keys_are_refused_before_reaching_the_phone_network(client, alice, acme_number, emulator):
    uuid = login(client, alice).post("/test-call/call/", {"number": acme_number.pk}).json()["call"]
    assert client.post(f"/test-call/legs/{uuid}/dtmf/", {"call": uuid, "digits": "1; drop"}).status_code == 400
    assert emulator.actions == []


def test_the_accounts_live_test_calls_are_listed_until_they_end(client, alice, charlie, acme_number, emulator):
    uuid = login(client, alice).post("/test-call/call/", {"number": acme_number.pk}).json()["call"]
    placed = PlacedTestCall.objects.get(vonage_uuid=uuid)
    assert placed.account == alice.account and placed.placed_by == alice and placed.routing_number == acme_number

    calls = client.get("/test-call/calls/").json()["calls"]
    assert [(call["call"], call["state"], call["placed_by"]) for call in calls] == [(uuid, "answered", "Alice")]
    assert acme_number.phone_number in calls[0]["number"]
    assert login(type(client)(), charlie).get("/test-call/calls/").json() == {"calls": []}

    emulator.legs[uuid]["state"] = "ended"
    assert client.get("/test-call/calls/").json() == {"calls": []}


def test_hang_up_ends_every_live_leg_of_a_test_call_of_the_account_only(client, alice, charlie, acme_number, emulator):
    uuid = login(client, alice).post("/test-call/call/", {"number": acme_number.pk}).json()["call"]
    assert login(type(client)(), charlie).post(f"/test-call/calls/{uuid}/hangup/").status_code == 404
    assert emulator.actions == []

    response = client.post(f"/test-call/calls/{uuid}/hangup/")

    assert response.status_code == 200 and response.json()["legs"] == 1
    assert emulator.actions == [(uuid, "hangup", {})]
    assert client.get("/test-call/calls/").json() == {"calls": []}
    # Nothing left to hang up: no further action reaches the phone network.
    assert client.post(f"/test-call/calls/{uuid}/hangup/").json()["legs"] == 0
    assert len(emulator.actions) == 1


def test_responders_see_no_test_calls(client, alice, bob, acme_number, emulator):
    uuid = login(client, alice).post("/test-call/call/", {"number": acme_number.pk}).json()["call"]
    responder = login(type(client)(), bob)
    assert responder.get("/test-call/calls/").status_code == 403
    assert responder.post(f"/test-call/calls/{uuid}/hangup/").status_code == 403


def test_the_page_has_no_inline_script_or_style_and_shows_no_call_before_one_is_placed(client, alice, acme_number,
                                                                                       emulator):
    html = login(client, alice).get("/test-call/").content.decode()

    assert "style=" not in html and "<style" not in html
    assert all(" src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert re.search(r'<div class="tc-phones" id="phones" hidden>', html)
    assert re.search(r'<section class="card tc-live" id="live-calls"[^>]* hidden>', html)


# --- Calling the draft ------------------------------------------------------------------------------------------


def test_a_test_call_to_the_draft_runs_a_snapshot_of_it(client, settings, alice, acme, acme_number, emulator):
    """The draft becomes a test-call version (not published, not listed) and the call comes from the caller id
    that names it; the answer webhook's lookup finds it only for this number and only on the local network."""
    from callrouting.flows import actions, draft_calls
    from callrouting.flows.models import FlowVersion

    flow = actions.flow_of(acme_number)
    published = flow.published_id
    document = {"schema": 1, "language": "en-GB", "start": "bye",
                "nodes": {"bye": {"kind": "hangup", "name": "Goodbye", "text": "Draft says goodbye."}}}
    actions.save_draft(flow, {**document, "start": "nowhere"}, flow.draft_revision)
    login(client, alice)
    refused = client.post("/test-call/call/", {"number": acme_number.pk, "flow": "draft"})
    assert refused.status_code == 400 and "fix it in the flow editor" in refused.json()["error"]
    assert emulator.calls == []
    flow.refresh_from_db()
    actions.save_draft(flow, document, flow.draft_revision)
    response = client.post("/test-call/call/", {"number": acme_number.pk, "flow": "draft"})
    assert response.status_code == 201
    version = FlowVersion.objects.get(flow=flow, test_call=True)
    assert version.document["nodes"]["bye"]["text"] == "Draft says goodbye."
    caller = response.json()["caller"]
    assert emulator.calls == [("+4930111222", caller)] and caller == draft_calls.caller_id(version)
    flow.refresh_from_db()
    assert flow.published_id == published  # nothing was published
    assert not client.get(f"/numbers/{acme_number.pk}/flow/versions/").content.decode().count("Draft says")
    settings.EMULATOR_URL = "https://127.0.0.1:9/"
    assert draft_calls.version_for(acme_number, caller.lstrip("+")) == version.pk
    other = RoutingNumberFactory(account=acme, phone_number="+4930111333")
    assert draft_calls.version_for(other, caller) is None
    assert draft_calls.version_for(acme_number, "+4915112345678") is None
    settings.EMULATOR_URL = ""
    assert draft_calls.version_for(acme_number, caller) is None
    # A published call still comes from the page's own caller id.
    client.post("/test-call/call/", {"number": acme_number.pk})
    assert emulator.calls[-1][1] == testcall.DEFAULT_CALLER_ID
