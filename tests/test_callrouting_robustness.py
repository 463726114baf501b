"""What must hold whatever Vonage sends: signatures, duplicate and reordered events, concurrent accepts,
Vonage API failures, malformed bodies, the fallback URL, and a constant number of queries in the answer and
input webhooks. Same cast as test_callrouting_calls: Acme's "Outage" calls Alice then Bob, "Billing" Bob and
Carol at once."""
import json
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from callrouting.models import AgentLeg, Call, Voicemail
from incidents.models import Incident, IncidentEvent
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)
from tests.factories import LayerFactory, RuleFactory, ScheduleFactory, UserFactory
from tests.fake_vonage import signed_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def number(acme, alice, bob, carol):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820")
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    RoutingOptionFactory(
        routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob, carol), simultaneous=True
    )
    return number


def texts(ncco):
    return [action.get("text") for action in ncco if action["action"] == "talk"]


def route(phone, number, digit):
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), digit)
    return the_call(uuid)


def dialled_numbers(phone):
    return [r["to"][0]["number"] for r in phone.dialled()]


def escalations(incident):
    return incident.events.filter(kind=IncidentEvent.Kind.ESCALATED, message__startswith="Escalating").count()


# --- duplicates and reordering --------------------------------------------------------------------------------


def test_repeated_answer_webhook_is_one_call(phone, number):
    first, uuid = phone.dial(number.phone_number)
    again, _ = phone.dial(number.phone_number, uuid=uuid)
    assert again.json() == first.json() and Call.objects.count() == 1


def test_repeated_menu_input_routes_once(phone, number):
    response, uuid = phone.dial(number.phone_number)
    menu = response.json()
    phone.press(menu, "1")
    again = phone.press(menu, "1")
    assert [a["action"] for a in again.json()] == ["conversation"]
    assert Incident.objects.count() == 1 and dialled_numbers(phone) == ["4915110000001"]


def test_routing_a_call_that_moved_on_leaves_no_incident_behind(phone, number, django_capture_on_commit_callbacks):
    from callrouting.calls import caller

    response, uuid = phone.dial(number.phone_number)
    stale = the_call(uuid)  # read while the caller is still in the menu
    phone.press(response.json(), "1")
    option = number.options.get(digit=1)
    # A second routing of the same call (a webhook that read the call before the first committed) changes nothing.
    with django_capture_on_commit_callbacks(execute=True) as after_commit:
        assert caller.route_call(stale, option, "digit", number=number) is False
    assert after_commit == []  # no dialling task and no "created" log line for the rolled-back incident
    call = the_call(uuid)
    assert Incident.objects.count() == 1 and call.incident_id == Incident.objects.get().pk
    assert call.incident.events.filter(message__startswith="Call from").count() == 1


def test_repeated_leg_event_dials_next_agent_once(phone, number, alice, bob, carol):
    route(phone, number, "1")
    alice_leg = phone.leg(alice)
    phone.leg_event(alice_leg, "busy")
    phone.leg_event(alice_leg, "busy")
    phone.leg_event(alice_leg, "completed")
    assert dialled_numbers(phone) == ["4915110000001", "4915110000002"]


def test_completed_before_answered_dials_next_once(phone, number, alice, bob, vonage_api):
    call = route(phone, number, "1")
    alice_leg = phone.leg(alice)
    phone.leg_event(alice_leg, "completed")
    phone.leg_event(alice_leg, "answered")  # late: ignored, and the stray leg is hung up
    phone.leg_event(alice_leg, "unanswered")
    alice_leg.refresh_from_db()
    assert alice_leg.status == AgentLeg.Status.NO_ANSWER
    assert dialled_numbers(phone) == ["4915110000001", "4915110000002"]
    assert vonage_api.modifications(alice_leg.vonage_uuid) == [{"action": "hangup"}]
    call.refresh_from_db()
    assert call.state == Call.State.ROUTING


def test_repeated_accept_connects_once(phone, number, alice):
    call = route(phone, number, "1")
    leg = phone.leg(alice)
    first = phone.agent_press(leg, "1").json()
    again = phone.agent_press(leg, "1").json()
    assert first == again and first[0]["startOnEnter"] is True
    assert Incident.objects.get().events.filter(kind=IncidentEvent.Kind.ACCEPTED).count() == 1


def test_accept_then_late_decline_changes_nothing(phone, number, alice):
    call = route(phone, number, "1")
    leg = phone.leg(alice)
    phone.agent_press(leg, "1")
    phone.leg_event(leg, "busy")
    leg.refresh_from_db()
    call.refresh_from_db()
    assert leg.status == AgentLeg.Status.ACCEPTED and call.state == Call.State.CONNECTED
    assert len(phone.dialled()) == 1


def test_repeated_caller_hang_up_escalates_once(phone, number, alice):
    call = route(phone, number, "1")
    phone.hang_up(call.vonage_uuid)
    phone.hang_up(call.vonage_uuid)
    phone.hang_up(call.vonage_uuid, status="disconnected")
    assert escalations(Incident.objects.get()) == 1


def test_repeated_record_webhook_downloads_once(phone, number, alice, bob, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    number.voicemail_enabled, number.voicemail_transcription = True, False
    number.save()
    call = route(phone, number, "1")
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    record = vonage_api.modifications(call.vonage_uuid)[0]["destination"]["ncco"][1]
    payload = {"recording_url": vonage_api.add_recording(b"mp3"), "recording_uuid": "r1"}
    phone.post(record["eventUrl"][0], payload)
    phone.post(record["eventUrl"][0], payload)
    assert len(vonage_api.requests_matching("GET", r"^/v1/files/")) == 1
    assert Voicemail.objects.count() == 1 and escalations(Incident.objects.get()) == 1


def test_two_accepts_at_once_connect_exactly_one(phone, number, bob, carol):
    """Sequentially interleaved here; truly concurrent in test_concurrent_accepts_connect_exactly_one."""
    call = route(phone, number, "2")
    bob_leg, carol_leg = phone.leg(bob), phone.leg(carol)
    responses = [phone.agent_press(bob_leg, "1").json(), phone.agent_press(carol_leg, "1").json()]
    assert responses[0][0]["action"] == "conversation"
    assert texts(responses[1]) == ["This call has already been taken by someone else. Goodbye."]
    assert AgentLeg.objects.filter(call=call, status=AgentLeg.Status.ACCEPTED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_accepts_connect_exactly_one(acme, bob, carol, vonage_client, inline_tasks, vonage_api):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers on one connection in tests; the race needs PostgreSQL")
    from callrouting.calls import webhooks

    number = RoutingNumberFactory(account=acme)
    RoutingOptionFactory(routing_number=number, digit=1, label="Billing", escalation_policy=policy_of(acme, bob, carol), simultaneous=True)
    response = vonage_client.get_webhook("/vonage/answer", {"to": number.phone_number[1:], "from": "4917600000000", "uuid": "caller-1"})
    assert response.status_code == 200
    call = Call.objects.get()
    legs = list(call.legs.all())
    assert len(legs) == 2 and all(leg.vonage_uuid for leg in legs)
    barrier = threading.Barrier(len(legs))
    answers = {}

    def press(leg):
        from django.db import connections

        try:
            barrier.wait()
            answers[leg.user_id] = webhooks.handle_leg_input(leg.token, {"dtmf": {"digits": "1"}, "uuid": leg.vonage_uuid})
        finally:
            connections.close_all()

    threads = [threading.Thread(target=press, args=(leg,)) for leg in legs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kinds = sorted(answer[0]["action"] for answer in answers.values())
    assert kinds == ["conversation", "talk"]
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED
    assert AgentLeg.objects.filter(call=call, status=AgentLeg.Status.ACCEPTED).count() == 1
    assert Incident.objects.get().events.filter(kind=IncidentEvent.Kind.ACCEPTED).count() == 1


# --- signatures -----------------------------------------------------------------------------------------------


def test_unsigned_answer_is_503_and_a_forged_one_a_spoken_goodbye(client, number):
    params = {"to": "4930901820", "from": "4917600000000", "uuid": "u-1"}
    # No Authorization header: 503, which Vonage retries (signed); a 401 would never be retried.
    assert client.get("/vonage/answer", params).status_code == 503
    # A bad signature: 200 with the goodbye (Vonage plays no body of a non-2xx answer), and no call.
    forged = client.get("/vonage/answer", params, **signed_headers(None, secret="not-the-secret-not-the-secret-not-the"))
    assert forged.status_code == 200 and forged.json()[0]["action"] == "talk"
    assert not Call.objects.exists()


def test_forged_signatures_change_nothing(phone, number, alice, vonage_client):
    call = route(phone, number, "1")
    leg = phone.leg(alice)
    request = phone.dialled()[0]
    accept_url = request["ncco"][-1]["eventUrl"][0].replace("https://callrouting.test", "")
    body = json.dumps({"dtmf": {"digits": "1", "timed_out": False}, "uuid": leg.vonage_uuid}).encode()
    forged = [
        {},  # no signature at all
        signed_headers(body, secret="not-the-secret-not-the-secret-not-the-secret"),
        signed_headers(b'{"dtmf": {"digits": "2"}}'),  # signed for another body: payload_hash mismatch
        signed_headers(body, iat=1_600_000_000),  # a replayed old signature
    ]
    for headers in forged:
        response = vonage_client.post(accept_url, data=body, content_type="application/json", **headers)
        if headers:  # the agent hears a goodbye rather than silence
            assert response.status_code == 200 and response.json()[0]["action"] == "talk"
        else:
            assert response.status_code == 503
    hangup = json.dumps({"status": "completed", "uuid": call.vonage_uuid}).encode()
    response = vonage_client.post("/vonage/event", data=hangup, content_type="application/json")
    assert response.status_code == 503
    response = vonage_client.post(
        "/vonage/event", data=hangup, content_type="application/json", **signed_headers(hangup, iat=1_600_000_000)
    )
    assert response.status_code == 401
    call.refresh_from_db()
    leg.refresh_from_db()
    assert call.state == Call.State.ROUTING and leg.status == AgentLeg.Status.DIALLING
    assert Incident.objects.get().status == Incident.Status.PENDING


def test_signed_request_with_a_guessed_token_changes_nothing(phone, number, alice):
    call = route(phone, number, "1")
    response = phone.post(f"/vonage/leg/{'x' * 32}/input", {"dtmf": {"digits": "1"}})
    assert response.status_code == 200 and texts(response.json())[0].startswith("Sorry")
    response = phone.post(f"/vonage/call/{'x' * 32}/input", {"dtmf": {"digits": "2"}})
    assert texts(response.json())[0].startswith("Sorry")
    call.refresh_from_db()
    assert call.state == Call.State.ROUTING and call.option.digit == 1


# --- Vonage API failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_create_call_retried_on_temporary_errors(phone, number, alice, vonage_api, inline_tasks, status):
    vonage_api.fail_next("POST", r"^/v1/calls$", status, times=2)
    route(phone, number, "1")
    leg = phone.leg(alice)
    assert leg.attempts == 3 and leg.status == AgentLeg.Status.DIALLING and leg.vonage_uuid
    assert dialled_numbers(phone) == ["4915110000001"]
    assert inline_tasks == [0.5, 1.5]


def test_create_call_failing_for_good_moves_to_next_agent(phone, number, alice, bob, vonage_api):
    vonage_api.fail_next("POST", r"^/v1/calls$", 500, times=3)
    call = route(phone, number, "1")
    alice_leg = phone.leg(alice)
    assert alice_leg.status == AgentLeg.Status.FAILED and alice_leg.attempts == 3
    assert "HTTP 500" in alice_leg.detail
    assert dialled_numbers(phone) == ["4915110000002"]
    assert phone.leg(bob).status == AgentLeg.Status.DIALLING


def test_create_call_permanent_error_is_not_retried(phone, number, alice, bob, vonage_api):
    vonage_api.fail_next("POST", r"^/v1/calls$", 400, times=1)
    route(phone, number, "1")
    assert phone.leg(alice).attempts == 1 and phone.leg(alice).status == AgentLeg.Status.FAILED
    assert dialled_numbers(phone) == ["4915110000002"]


def test_create_call_timeout_is_retried(phone, number, alice, vonage_api, settings):
    settings.VONAGE_TIMEOUT = 1
    vonage_api.hang_next("POST", r"^/v1/calls$", 2.5, times=1)
    route(phone, number, "1")
    leg = phone.leg(alice)
    assert leg.attempts == 2 and leg.status == AgentLeg.Status.DIALLING and leg.vonage_uuid


def test_every_agent_failing_still_reaches_the_caller(phone, number, vonage_api):
    vonage_api.fail_next("POST", r"^/v1/calls$", 429, times=6)
    call = route(phone, number, "1")
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NO_AGENT
    (transfer,) = vonage_api.modifications(call.vonage_uuid)
    assert texts(transfer["destination"]["ncco"])[0].startswith("Sorry, no one is available")


def test_voicemail_transfer_failing_escalates_and_hangs_up(phone, number, alice, bob, vonage_api):
    number.voicemail_enabled = True
    number.save()
    call = route(phone, number, "1")
    vonage_api.fail_next("PUT", r"^/v1/calls/", 500, times=3)
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    assert vonage_api.modifications(call.vonage_uuid) == [{"action": "hangup"}]
    assert escalations(Incident.objects.get()) == 1


# --- malformed bodies and the fallback ------------------------------------------------------------------------


def test_malformed_bodies_get_400_on_event_urls_and_a_spoken_goodbye_on_ncco_urls(phone, number, vonage_client):
    body = b"not json"
    response = vonage_client.post("/vonage/answer", data=body, content_type="application/json", **signed_headers(body))
    assert response.status_code == 200 and response.json()[0]["action"] == "talk"
    response = phone.post("/vonage/answer", {"to": "4930901820"})  # no uuid
    assert response.status_code == 200 and response.json()[0]["action"] == "talk"
    assert not Call.objects.exists()
    assert phone.post("/vonage/event", {"uuid": "x"}).status_code == 400
    call = route(phone, number, "1")
    assert phone.post(f"/vonage/call/{call.token}/recording", {"recording_url": 5}).status_code == 400
    leg = AgentLeg.objects.first()
    assert phone.post(f"/vonage/leg/{leg.token}/event", {"detail": "x"}).status_code == 400
    response = phone.post(f"/vonage/leg/{leg.token}/input", {"dtmf": "nonsense"})
    assert response.status_code == 200 and texts(response.json()) == ["Goodbye."]  # read as "no key"


def test_unknown_events_are_acknowledged(phone, number):
    assert phone.post("/vonage/event", {"status": "completed", "uuid": "nobody"}).status_code == 204
    assert phone.post(f"/vonage/leg/{'y' * 32}/event", {"status": "answered", "uuid": "u"}).status_code == 204


def test_fallback_keeps_a_routed_caller_on_hold(phone, number, alice):
    call = route(phone, number, "1")
    payload = {"reason": "read_timeout", "original_request": {"url": f"https://callrouting.test/vonage/call/{call.token}/input", "type": "event"}}
    response = phone.post("/vonage/fallback", payload)
    sorry, conversation = response.json()
    assert sorry["text"] == "Sorry, we are having technical difficulties. Please hold."
    assert conversation["name"] == call.conversation_name and conversation["startOnEnter"] is False


def test_fallback_routes_a_caller_stuck_in_the_menu(phone, number, alice):
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    payload = {"reason": "connection_reset", "original_request": {"url": f"https://callrouting.test/vonage/call/{call.token}/input"}}
    # A lost answer counts as no answer: the menu again, until its retries are used up and its "no input"
    # branch (the first option) is taken; a failing input URL cannot keep the caller in the menu.
    for _ in range(2):
        response = phone.post("/vonage/fallback", payload)
        assert [a["action"] for a in response.json()][-1] == "input"
        assert response.json()[0]["text"].startswith("Sorry, we are having technical difficulties.")
    response = phone.post("/vonage/fallback", payload)
    assert [a["action"] for a in response.json()][-1] == "conversation"
    call.refresh_from_db()
    assert call.state == Call.State.ROUTING and dialled_numbers(phone) == ["4915110000001"]


def test_fallback_for_unknown_or_garbage_still_speaks(phone, number):
    for payload in [{}, {"original_request": "x"}, {"original_request": {"url": "https://evil/vonage/call/zzzzzzzzzzzzzzzzzzzz/input"}}]:
        response = phone.post("/vonage/fallback", payload)
        assert response.status_code == 200 and response.json()[0]["action"] == "talk"


def test_fallback_for_a_failed_answer_answers(phone, number):
    payload = {"reason": "read_timeout", "original_request": {"url": "https://callrouting.test/vonage/answer"},
               "to": "4930901820", "from": "4917600000000", "uuid": "late-1"}
    response = phone.post("/vonage/fallback", payload)
    assert [a["action"] for a in response.json()] == ["talk", "talk", "input"]  # the greeting, the menu


# --- constant queries -----------------------------------------------------------------------------------------


def _build(acme, options, agents, layers):
    users = [UserFactory(account=acme, phone=f"+4915130{i:06d}") for i in range(agents)]
    policy = policy_of(acme, *users)
    rule = RuleFactory(policy=policy, position=agents)
    for i in range(layers):
        schedule = ScheduleFactory(account=acme)
        LayerFactory(schedule=schedule, users=users[:2] or [UserFactory(account=acme)])
        rule.rule_schedules.create(schedule=schedule, position=i)
    number = RoutingNumberFactory(account=acme)
    for digit in range(1, options + 1):
        RoutingOptionFactory(routing_number=number, digit=digit, label=f"Topic {digit}", escalation_policy=policy)
    return number


def _queries(func):
    with CaptureQueriesContext(connection) as queries:
        func()
    return len(queries)


@pytest.mark.parametrize("webhook", ["answer", "input"])
def test_answer_and_input_webhooks_do_a_constant_number_of_queries(phone, acme, webhook, vonage_api, django_assert_max_num_queries):
    counts = []
    for size in (1, 10):
        number = _build(acme, options=min(9, max(2, size)), agents=size, layers=size)  # digits are 1-9
        if webhook == "answer":
            counts.append(_queries(lambda: phone.dial(number.phone_number, run_tasks=False)))
        else:
            response, uuid = phone.dial(number.phone_number, run_tasks=False)
            menu = response.json()
            counts.append(_queries(lambda: phone.press(menu, "1", run_tasks=False)))
    assert counts[0] == counts[1], counts
    # The answer: 6 on SQLite and PostgreSQL (the signature's jti, the number with its flow, the flow version,
    # the call's insert, and the test transaction's savepoint around it). An input that routes: 28 on SQLite, 29
    # on PostgreSQL: the route node resolves its people (policies, schedules, users) and freezes its agent legs
    # in the webhook (issue 17; before, a task did). One more query in either is a regression to look at.
    assert counts[0] <= {"answer": 6, "input": 29}[webhook], counts
    number = _build(acme, options=9, agents=10, layers=10)
    with django_assert_max_num_queries(13):
        phone.dial(number.phone_number, run_tasks=False)
    assert vonage_api.requests == []  # no Vonage request from inside a webhook


def test_single_option_answer_routes_in_constant_queries(phone, acme):
    counts = []
    for size in (1, 10):
        number = _build(acme, options=1, agents=size, layers=size)
        counts.append(_queries(lambda: phone.dial(number.phone_number, run_tasks=False)))
    assert counts[0] == counts[1], counts
