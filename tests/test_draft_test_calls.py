"""A test call to the draft through the answer webhook: the Test call page's snapshot of the draft runs instead
of the published version, for that number only, and only on the local phone network (flows/draft_calls.py).

Acme's number publishes "Published hello."; its draft says "Draft hello."."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from callrouting.calls import webhooks
from callrouting.flows import actions, draft_calls
from callrouting.models import Call
from tests.callrouting_factories import RoutingNumberFactory

pytestmark = pytest.mark.django_db


def hello(text):
    return {"schema": 1, "language": "en-GB", "start": "bye",
            "nodes": {"bye": {"kind": "hangup", "name": "Goodbye", "text": text}}}


@pytest.fixture
def number(acme):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", name="Acme support")
    flow = actions.flow_of(number)
    actions.publish(flow, data=hello("Published hello."))
    flow.refresh_from_db()
    actions.save_draft(flow, hello("Draft hello."), flow.draft_revision)
    return number


def answer(uuid, caller):
    ncco = webhooks.handle_answer({"to": "4930901820", "from": caller, "uuid": uuid})
    return [action.get("text") for action in ncco if action["action"] == "talk"], Call.objects.get(vonage_uuid=uuid)


def test_the_draft_snapshot_answers_its_own_caller_id_on_the_local_network(settings, number, alice):
    settings.EMULATOR_URL = "https://127.0.0.1:9/"
    snapshot = actions.snapshot_for_test_call(actions.flow_of(number), alice)
    caller = draft_calls.caller_id(snapshot).lstrip("+")  # Vonage sends numbers without the "+"
    said, call = answer("draft-call", caller)
    assert said == ["Draft hello."] and call.flow_version_id == snapshot.pk
    said, call = answer("real-call", "4917612345678")
    assert said == ["Published hello."] and call.flow_version_id == actions.flow_of(number).published_id
    # A caller id naming a version of another number's flow gets the published flow of the number called.
    other = RoutingNumberFactory(account=number.account, phone_number="+4930901821")
    foreign = actions.flow_of(other)
    actions.save_draft(foreign, hello("Other draft."), foreign.draft_revision)
    elsewhere = draft_calls.caller_id(actions.snapshot_for_test_call(foreign, alice)).lstrip("+")
    assert answer("foreign-call", elsewhere)[0] == ["Published hello."]


def test_without_the_local_network_the_caller_id_means_nothing(settings, number, alice):
    settings.EMULATOR_URL = ""
    snapshot = actions.snapshot_for_test_call(actions.flow_of(number), alice)
    said, _ = answer("spoofed", draft_calls.caller_id(snapshot).lstrip("+"))
    assert said == ["Published hello."]


def test_an_ordinary_call_makes_no_query_for_it(settings, number):
    settings.EMULATOR_URL = "https://127.0.0.1:9/"
    with CaptureQueriesContext(connection) as captured:
        draft_calls.version_for(number, "4917612345678")
    assert len(captured) == 0
