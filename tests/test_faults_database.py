"""The database unreachable while Vonage calls the answer webhook.

Vonage tries the answer URL twice, then the fallback URL twice, then drops the call (VONAGE.md). With the
database down the product cannot route, but the caller must hear something, and the call must not vanish:
once the database is back, someone has to learn that a caller tried to reach them.

The outage is simulated with connection.execute_wrapper: every SQL statement raises OperationalError, as
when the server is gone. The tests run outside the test transaction (transaction=True) so the failed
statements cannot poison a surrounding atomic block: the request's own atomic blocks roll back as in production.
"""
import json
import uuid as uuid_lib
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from callrouting import spool
from callrouting.calls import outage
from callrouting.models import Call
from incidents.models import Incident
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory, inline_tasks, policy_of  # noqa: F401
from tests.fake_vonage import VonageWebhookClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def number(acme, alice, bob):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820")
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    RoutingOptionFactory(routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob))
    return number


@pytest.fixture
def vonage():
    """Signed webhooks; a crashing view gives its 500 response instead of raising into the test."""
    return VonageWebhookClient(raise_request_exception=False)


@contextmanager
def database_down():
    statements = []

    def refuse(execute, sql, params, many, context):
        statements.append(sql)
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(refuse):
        yield statements


def answer_params(number, uuid):
    return {"to": number.phone_number[1:], "from": "4917612345678", "uuid": uuid, "conversation_uuid": "CON-1"}


def fallback_payload(number, uuid):
    return {
        **answer_params(number, uuid),
        "reason": "read_timeout",
        "original_request": {"url": "https://callrouting.test/vonage/answer", "type": "answer"},
    }


def is_spoken_ncco(response):
    if not response.get("Content-Type", "").startswith("application/json"):
        return False
    ncco = response.json()
    return isinstance(ncco, list) and bool(ncco) and ncco[0]["action"] == "talk" and ncco[0]["text"].strip() != ""


def test_caller_hears_a_message_while_the_database_is_down(number, vonage):
    uuid = str(uuid_lib.uuid4())
    with database_down() as statements:
        answer = vonage.get_webhook("/vonage/answer", answer_params(number, uuid))
        if answer.status_code == 200:
            assert is_spoken_ncco(answer)
        else:
            # Vonage goes on to the fallback URL (the database still down): it must speak.
            assert answer.status_code >= 500
            fallback = vonage.post_webhook("/vonage/fallback", fallback_payload(number, uuid))
            assert fallback.status_code == 200 and is_spoken_ncco(fallback), fallback.content[:200]
        assert statements, "the outage was not simulated: no SQL ran"
    assert not Call.objects.filter(vonage_uuid=uuid).exists()  # nothing half-written


def test_answer_with_the_database_down_is_a_safe_ncco_not_an_html_500(number, vonage):
    """Not Django's HTML 500 (neither speakable nor one of the statuses that send Vonage to the fallback URL):
    the product answers 200 with a spoken apology at once (see views.answer_when_database_down for why not 503)."""
    with database_down():
        answer = vonage.get_webhook("/vonage/answer", answer_params(number, str(uuid_lib.uuid4())))
    assert answer.status_code in (200, 503)
    assert is_spoken_ncco(answer), answer.content[:200]


def test_a_call_answered_during_the_outage_is_recorded_once_the_database_returns(number, vonage, inline_tasks):
    uuid = str(uuid_lib.uuid4())
    with database_down():
        answer = vonage.get_webhook("/vonage/answer", answer_params(number, uuid))
        if answer.status_code != 200:
            vonage.post_webhook("/vonage/fallback", fallback_payload(number, uuid))
    # The database is back; the caller's leg ends (Vonage's completed event) and the periodic sweepers run.
    # The spooled calls are replayed by the callrouting sweeper (callrouting.tasks.sweep, every minute): the
    # incidents sweeper cannot do it, incidents must not import callrouting.
    from callrouting.tasks import sweep as sweep_calls
    from incidents.sweeper import sweep

    assert vonage.post_webhook("/vonage/event", {"status": "completed", "uuid": uuid}).status_code == 204
    sweep_calls()
    sweep()
    assert Call.objects.filter(vonage_uuid=uuid).exists(), "the call left no trace"
    assert Incident.objects.filter(alert_source=number.alert_source).exists(), "nobody learns about the missed call"
    call = Call.objects.get(vonage_uuid=uuid)
    assert (call.state, call.outcome, call.caller) == (Call.State.ENDED, Call.Outcome.NO_AGENT, "+4917612345678")
    incident = call.incident
    assert incident.summary == "Missed call from +4917612345678 during a database outage"
    assert incident.escalation_policy == number.options.get(digit=1).escalation_policy
    assert not incident.escalation_suppressed and call.escalated_at is not None
    lines = list(incident.events.values_list("message", flat=True))
    assert any(line.startswith("Call received during a database outage") for line in lines), lines
    assert lines.count("Escalating: missed call during a database outage") == 1
    assert spool.spooled_files() == []  # recorded, so no longer spooled


def test_a_spooled_call_is_recorded_once_however_often_it_is_replayed(number, vonage, inline_tasks):
    """The answer and the fallback both spool the call; two sweeps (or two sweepers) record it once."""
    uuid = str(uuid_lib.uuid4())
    with database_down():
        assert vonage.get_webhook("/vonage/answer", answer_params(number, uuid)).status_code == 200
        assert vonage.post_webhook("/vonage/fallback", fallback_payload(number, uuid)).status_code == 200
    files = spool.spooled_files()
    assert len(files) == 2
    assert spool.replay() == 1
    assert spool.replay() == 0
    # A sweeper that read a file before the other one deleted it records nothing either.
    for path in files:
        payload = json.loads(path.read_text()) if path.exists() else {"payload": answer_params(number, uuid)}
        assert outage.record_outage_call(payload["payload"], timezone.now()) is None
    assert Call.objects.filter(vonage_uuid=uuid).count() == 1
    assert Incident.objects.count() == 1
    assert spool.spooled_files() == []


def test_replay_waits_while_the_database_is_still_down(number, vonage):
    uuid = str(uuid_lib.uuid4())
    with database_down():
        vonage.get_webhook("/vonage/answer", answer_params(number, uuid))
        assert spool.replay() == 0
    assert len(spool.spooled_files()) == 1  # kept for the next run
    assert spool.replay() == 1 and spool.spooled_files() == []


def test_spooled_calls_to_unknown_numbers_and_unreadable_files_are_set_aside(number, vonage, call_spool):
    with database_down():
        vonage.get_webhook("/vonage/answer", {"to": "4930901899", "from": "Unknown", "uuid": "not-ours"})
    (call_spool / "20240101T000000000000-broken.jsonl").write_text("{not json")
    assert spool.replay() == 0
    assert spool.spooled_files() == [] and not Call.objects.exists()
    assert [path.name for path in call_spool.iterdir()] == ["20240101T000000000000-broken.jsonl.bad"]


def test_the_apology_is_in_the_number_language_once_known(number, vonage):
    number.language = "de-DE"
    number.save()
    vonage.get_webhook("/vonage/answer", answer_params(number, str(uuid_lib.uuid4())))  # the process learns it
    with database_down():
        answer = vonage.get_webhook("/vonage/answer", answer_params(number, str(uuid_lib.uuid4())))
    assert answer.status_code == 200 and answer.json()[0]["language"] == "de-DE"


def test_the_fallback_routes_normally_once_the_database_is_back(number, vonage, inline_tasks):
    """Vonage's second fallback attempt can land after the outage: it answers the call like the answer URL."""
    uuid = str(uuid_lib.uuid4())
    with database_down():
        vonage.get_webhook("/vonage/answer", answer_params(number, uuid))
    fallback = vonage.post_webhook("/vonage/fallback", fallback_payload(number, uuid))
    assert fallback.status_code == 200
    assert [a["action"] for a in fallback.json()] == ["talk", "talk", "input"]  # the greeting and the menu
    call = Call.objects.get(vonage_uuid=uuid)
    assert call.state == Call.State.MENU and call.routing_number == number
