"""Live calls on published call flows (issue 17): every node kind driven through the signed Vonage webhooks, with
the real SDK placing agent calls against the local fake Vonage API.

Acme's number runs a flow published for the test (tests/flow_documents.py builds the nodes). Alice, Bob and Carol
have phones; "Team lead mobile" is an external number nobody of the account owns."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from callrouting.calls import dispatch, webhooks
from callrouting.flows import actions
from callrouting.models import AgentLeg, Call
from callrouting.tasks import sweep, transfer_caller
from incidents.models import Incident, IncidentEvent
from tests import flow_documents as fd
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)

pytestmark = pytest.mark.django_db

L = AgentLeg.Status
LEAD = "+441234567890"
EXTERNAL = {"type": "external", "number": LEAD, "label": "Team lead mobile"}


@pytest.fixture
def number(acme, alice, bob):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", name="Acme support", greeting="Welcome.")
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    return number


def publish(number, document):
    """Publish DOCUMENT as NUMBER's flow (validated like any publish); returns the FlowVersion."""
    return actions.publish(actions.flow_of(number), data=document)


def texts(ncco):
    return [action.get("text") for action in ncco or () if action["action"] == "talk"]


def kinds(ncco):
    return [action["action"] for action in ncco or ()]


def timeline(incident):
    return list(incident.events.values_list("message", flat=True))


def dialled(phone):
    return [request["to"][0]["number"] for request in phone.dialled()]


def user(person):
    return {"type": "user", "id": person.pk}


def legs(call):
    return list(AgentLeg.objects.filter(call=call).order_by("position"))


# --- the answer webhook -----------------------------------------------------------------------------------------


def test_the_answer_webhook_makes_at_most_three_queries(number, alice):
    """The number with its flow, the published version (once per process), the call's insert. SAVEPOINT and
    RELEASE are left out of the count: they come from the test's own transaction around the insert's atomic
    block (in production the insert is the transaction). The view adds one query: the signature's jti."""
    publish(number, fd.document(
        "hello", hello=fd.message("main"), main=fd.menu([("1", "outage", "outage")]), outage=fd.route([user(alice)])))
    counts = []
    for uuid in ("first", "second"):
        with CaptureQueriesContext(connection) as captured:
            ncco = webhooks.handle_answer({"to": "4930901820", "from": "4917612345678", "uuid": uuid})
        counts.append([q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE"))])
        assert kinds(ncco) == ["talk", "talk", "input"]
    assert len(counts[0]) <= 3, counts[0]
    assert len(counts[1]) <= 2, counts[1]  # the version comes from the per-process cache
    assert Call.objects.filter(node="main").count() == 2


def test_a_call_keeps_the_version_it_started_on(phone, number, alice, bob, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    first = publish(number, fd.document("main", main=fd.menu([("1", "outage", "outage")]), outage=fd.route([user(alice)])))
    response, uuid = phone.dial(number.phone_number)
    second = publish(number, fd.document("main", main=fd.menu([("1", "outage", "vm")]), vm=fd.voicemail()))
    phone.press(response.json(), "1")
    call = the_call(uuid)
    assert call.flow_version_id == first.pk and call.state == Call.State.ROUTING and dialled(phone) == ["4915110000001"]
    later, later_uuid = phone.dial(number.phone_number)
    phone.press(later.json(), "1")
    assert the_call(later_uuid).flow_version_id == second.pk and the_call(later_uuid).state == Call.State.VOICEMAIL


def test_a_repeated_answer_webhook_hears_where_the_call_is(phone, number, alice):
    publish(number, fd.document("outage", outage=fd.route([user(alice)])))
    response, uuid = phone.dial(number.phone_number)
    again, _ = phone.dial(number.phone_number, uuid=uuid)
    assert kinds(response.json()) == ["talk", "conversation"] and kinds(again.json()) == ["conversation"]
    assert Incident.objects.count() == 1 and dialled(phone) == ["4915110000001"]


# --- message, menu, hangup --------------------------------------------------------------------------------------


def test_a_two_level_menu(phone, number, alice, bob):
    publish(number, fd.document(
        "greeting",
        greeting=fd.message("main", text="Welcome to Acme support."),
        main=fd.menu([("1", "outage", "outage"), ("2", "billing", "billing")]),
        billing=fd.menu([("1", "invoices", "invoices"), ("2", "refunds", "bye")], name="Billing"),
        outage=fd.route([user(alice)]),
        invoices=fd.route([user(bob)], name="Invoices"),
        bye=fd.hangup("Please write to us. Goodbye."),
    ))
    response, uuid = phone.dial(number.phone_number)
    assert texts(response.json())[0] == "Welcome to Acme support."
    submenu = phone.press(response.json(), "2").json()
    assert texts(submenu) == ["Press 1 or say invoices for invoices. Press 2 or say refunds for refunds."]
    hold = phone.say(submenu, "invoices please").json()
    assert kinds(hold) == ["talk", "conversation"]
    call = the_call(uuid)
    assert call.state == Call.State.ROUTING and call.node == "invoices" and dialled(phone) == ["4915110000002"]
    assert call.incident.summary == "Call from +4917612345678 for Invoices"


def test_a_duplicate_or_stale_input_changes_nothing(phone, number, alice):
    publish(number, fd.document("main", main=fd.menu([("1", "outage", "outage")]), outage=fd.route([user(alice)])))
    response, uuid = phone.dial(number.phone_number)
    menu = response.json()
    phone.press(menu, "1")
    again = phone.press(menu, "1")  # Vonage repeats the input webhook
    assert kinds(again.json()) == ["conversation"]
    assert Incident.objects.count() == 1 and dialled(phone) == ["4915110000001"] and len(legs(the_call(uuid))) == 1


def test_a_message_and_hang_up_end_the_call(phone, number):
    publish(number, fd.document("closed", closed=fd.message("bye", text="We are closed."), bye=fd.hangup()))
    response, uuid = phone.dial(number.phone_number)
    assert texts(response.json()) == ["We are closed.", "Goodbye."]
    call = the_call(uuid)
    assert call.state == Call.State.ENDED and call.outcome == Call.Outcome.FLOW_ENDED and call.incident is None


# --- caller list, PIN, incident ---------------------------------------------------------------------------------


def test_a_caller_list_that_blocks_hangs_up_with_no_incident(phone, number, alice):
    publish(number, fd.document(
        "blocked", blocked=fd.caller_list(["+49176*"], "bye", "outage"), bye=fd.hangup(""), outage=fd.route([user(alice)])))
    response, uuid = phone.dial(number.phone_number, caller="+4917612345678")
    call = the_call(uuid)
    assert kinds(response.json()) == ["talk"]
    assert call.state == Call.State.ENDED and call.outcome == Call.Outcome.BLOCKED  # the line in the call log
    assert not Incident.objects.exists() and dialled(phone) == []
    other, other_uuid = phone.dial(number.phone_number, caller="+4930111111")
    assert the_call(other_uuid).state == Call.State.ROUTING and dialled(phone) == ["4915110000001"]


def test_a_pin_label_goes_into_the_incident_and_a_wrong_pin_takes_its_branch(phone, number, alice):
    publish(number, fd.document(
        "pin", pin=fd.pin("outage", "bye", retries=2), outage=fd.route([user(alice)], name="Key customers line"),
        bye=fd.hangup("Goodbye."),
    ))
    response, uuid = phone.dial(number.phone_number)
    prompt = response.json()
    assert prompt[-1]["dtmf"]["submitOnHash"] is True
    phone.press(prompt, "1234")
    call = the_call(uuid)
    assert call.state == Call.State.ROUTING
    assert call.incident.summary == "Call from +4917612345678 for Key customers line, Globex"
    assert any("Globex" in line for line in timeline(call.incident))

    response, uuid = phone.dial(number.phone_number)
    retry = phone.press(response.json(), "0000").json()
    assert texts(retry)[0] == "Sorry, that PIN is not valid."
    bye = phone.press(retry, "9999").json()
    assert texts(bye)[-1] == "Goodbye."
    call = the_call(uuid)
    assert call.outcome == Call.Outcome.FLOW_ENDED and call.incident is None


def test_an_incident_node_sets_the_incident_and_a_hang_up_in_the_menu_escalates_it(phone, acme, number, alice, bob):
    other_policy = policy_of(acme, bob, name="Billing team")
    publish(number, fd.document(
        "inc",
        inc=fd.incident("main", alert_source=number.alert_source_id, priority="low", policy=other_policy.pk, accept=False),
        main=fd.menu([("1", "outage", "outage")]),
        outage=fd.route([user(bob)]),
    ))
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    incident = call.incident
    assert incident.priority == "low" and incident.escalation_policy == other_policy and incident.escalation_suppressed
    phone.press(response.json(), "1")
    assert Incident.objects.count() == 1  # the route made none of its own
    phone.agent_press(AgentLeg.objects.get(call=call), "1")
    incident.refresh_from_db()
    assert the_call(uuid).state == Call.State.CONNECTED and incident.status == Incident.Status.PENDING  # not accepted

    response, uuid = phone.dial(number.phone_number)
    phone.hang_up(uuid)  # in the menu, with its incident made
    incident = the_call(uuid).incident
    assert the_call(uuid).outcome == Call.Outcome.ABANDONED
    assert incident.events.filter(kind=IncidentEvent.Kind.ESCALATED).exists()


# --- route, external numbers, voicemail -------------------------------------------------------------------------


def test_a_chain_route_then_external_number_then_voicemail(phone, number, alice, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    publish(number, fd.document(
        "first",
        first=fd.route([user(alice)], ring_timeout=20, no_answer="lead", name="On call"),
        lead=fd.route([EXTERNAL], ring_timeout=45, no_answer="vm", name="Team lead"),
        vm=fd.voicemail("Please leave a message."),
    ))
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    assert phone.dialled()[0]["ringing_timer"] == 20
    phone.leg_event(legs(call)[0], "busy")
    # Route to route: the caller stays in the same hold conversation, the team lead's mobile rings.
    assert vonage_api.modifications(call.vonage_uuid) == []
    assert dialled(phone) == ["4915110000001", LEAD.lstrip("+")]
    external = legs(call)[1]
    assert external.user is None and external.label == "Team lead mobile" and external.node == "lead"
    request = phone.dialled()[1]
    assert request["ringing_timer"] == 45
    assert "Team lead" in texts(request["ncco"])[0] and request["ncco"][-1]["action"] == "input"  # whisper + accept
    phone.leg_event(external, "unanswered")
    call.refresh_from_db()
    assert call.state == Call.State.VOICEMAIL and call.transfer_due_at is None
    (transfer,) = [m for m in vonage_api.modifications(call.vonage_uuid) if m.get("action") == "transfer"]
    assert texts(transfer["destination"]["ncco"])[0] == "Please leave a message."
    assert Incident.objects.count() == 1
    assert any("Team lead mobile" in line for line in timeline(call.incident))


def test_an_external_number_that_accepts_is_connected(phone, number, vonage_api):
    publish(number, fd.document("lead", lead=fd.route([EXTERNAL])))
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    (leg,) = legs(call)
    answer = phone.agent_press(leg, "1").json()
    assert answer[0]["action"] == "conversation" and answer[0]["name"] == call.conversation_name
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED and call.connected_leg_id == leg.pk
    phone.hang_up(uuid)
    assert the_call(uuid).outcome == Call.Outcome.ANSWERED


def test_repeat_rings_the_list_again_then_nobody_is_available(phone, number, alice, vonage_api):
    publish(number, fd.document("outage", outage=fd.route([user(alice)], repeat=2)))
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    phone.leg_event(legs(call)[0], "busy")
    assert [(leg.round, leg.status) for leg in legs(call)] == [(1, L.BUSY), (2, L.DIALLING)]
    assert dialled(phone) == ["4915110000001", "4915110000001"]  # a new leg each round; no leg dialled twice
    phone.leg_event(legs(call)[1], "busy")
    call.refresh_from_db()
    assert call.state == Call.State.ENDED and call.outcome == Call.Outcome.NO_AGENT
    (transfer,) = [m for m in vonage_api.modifications(call.vonage_uuid) if m.get("action") == "transfer"]
    assert texts(transfer["destination"]["ncco"])[0].startswith("Sorry, no one is available")
    assert call.incident.events.filter(kind=IncidentEvent.Kind.ESCALATED).exists()


def test_nobody_answered_can_lead_back_to_a_menu(phone, number, alice, bob, vonage_api):
    publish(number, fd.document(
        "outage",
        outage=fd.route([user(alice)], no_answer="again"),
        again=fd.menu([("1", "billing", "billing")], text="Nobody is free. Press 1 for billing."),
        billing=fd.route([user(bob)], name="Billing"),
    ))
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    phone.leg_event(legs(call)[0], "busy")
    call.refresh_from_db()
    assert call.state == Call.State.MENU and call.node == "again"
    (transfer,) = [m for m in vonage_api.modifications(call.vonage_uuid) if m.get("action") == "transfer"]
    menu = transfer["destination"]["ncco"]
    assert texts(menu)[0] == "Nobody is free. Press 1 for billing."
    phone.press(menu, "1")
    call.refresh_from_db()
    assert call.state == Call.State.ROUTING and dialled(phone) == ["4915110000001", "4915110000002"]
    assert Incident.objects.count() == 1


def test_simultaneous_style_rings_every_target_at_once(phone, number, alice, bob):
    publish(number, fd.document("all", all=fd.route([user(alice), user(bob), EXTERNAL], style="simultaneous")))
    phone.dial(number.phone_number)
    assert sorted(dialled(phone)) == sorted(["4915110000001", "4915110000002", LEAD.lstrip("+")])


def test_voicemail_straight_away_is_titled_as_a_voicemail(phone, number, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    publish(number, fd.document("vm", vm=fd.voicemail("Leave a message.", max_length=60)))
    response, uuid = phone.dial(number.phone_number)
    assert kinds(response.json()) == ["talk", "notify", "record", "talk"]
    call = the_call(uuid)
    assert call.state == Call.State.VOICEMAIL and call.incident.summary == "Voicemail for Acme support from +4917612345678"
    assert response.json()[2]["timeOut"] == 60


def test_a_lost_transfer_to_the_next_node_is_sent_again_by_the_sweeper(phone, number, alice, vonage_api, monkeypatch,
                                                                       settings, tmp_path, django_capture_on_commit_callbacks):
    """Nobody answered and the caller's move to the mailbox is due, but the task carrying it is lost: the
    sweeper sends the same NCCO once its due time passes, once."""
    settings.MEDIA_ROOT = tmp_path
    publish(number, fd.document("outage", outage=fd.route([user(alice)], no_answer="vm"), vm=fd.voicemail("Hello.")))
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    lost, real_enqueue = [], dispatch.enqueue
    monkeypatch.setattr(dispatch, "enqueue", lambda func, *args: lost.append(func) if func == "transfer_caller"
                        else real_enqueue(func, *args))
    phone.leg_event(legs(call)[0], "busy")
    monkeypatch.setattr(dispatch, "enqueue", real_enqueue)
    call.refresh_from_db()
    assert lost == ["transfer_caller"] and call.state == Call.State.VOICEMAIL and call.transfer_ncco
    assert vonage_api.modifications(call.vonage_uuid) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=call.transfer_due_at)["transfers"] == 1
    (transfer,) = vonage_api.modifications(call.vonage_uuid)
    assert texts(transfer["destination"]["ncco"])[0] == "Hello."
    call.refresh_from_db()
    assert call.transfer_due_at is None and call.transfer_ncco is None
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=timezone.now() + dt.timedelta(hours=1))["transfers"] == 0


def test_a_caller_who_hangs_up_before_the_transfer_is_not_moved(phone, number, alice, vonage_api, monkeypatch):
    publish(number, fd.document("outage", outage=fd.route([user(alice)], no_answer="bye"), bye=fd.hangup("Sorry.")))
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    held, real_enqueue = [], dispatch.enqueue
    monkeypatch.setattr(dispatch, "enqueue", lambda func, *args: held.append(args) if func == "transfer_caller"
                        else real_enqueue(func, *args))
    phone.leg_event(legs(call)[0], "busy")
    monkeypatch.setattr(dispatch, "enqueue", real_enqueue)
    phone.hang_up(uuid)
    transfer_caller(*held[0])  # the task, run late
    assert vonage_api.modifications(call.vonage_uuid) == []
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NO_AGENT and call.transfer_due_at is None


@pytest.mark.parametrize("inside", [True, False], ids=["in_hours", "out_of_hours"])
def test_an_hours_node_branches_on_its_calendar(phone, acme, number, alice, inside, settings, tmp_path):
    from callrouting.models import SupportCalendar, SupportHoursRange

    settings.MEDIA_ROOT = tmp_path
    calendar = SupportCalendar.objects.create(account=acme, name="Office", timezone="Europe/Berlin")
    if inside:  # every day, all day
        SupportHoursRange.objects.bulk_create(
            [SupportHoursRange(calendar=calendar, weekday=day, start=dt.time(0), end=dt.time(0)) for day in range(7)])
    publish(number, fd.document(
        "hours", hours=fd.hours("outage", "vm", calendar=calendar.pk), outage=fd.route([user(alice)]), vm=fd.voicemail()))
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    assert call.in_support_hours is inside
    assert call.state == (Call.State.ROUTING if inside else Call.State.VOICEMAIL)
    assert dialled(phone) == (["4915110000001"] if inside else [])


@pytest.mark.parametrize("transcription", [False, True], ids=["node_without", "node_with"])
def test_a_voicemail_escalates_as_its_node_says_about_the_transcript(phone, number, vonage_api, settings, tmp_path,
                                                                      transcription):
    """The voicemail node's transcription setting, not the number's, says whether the incident waits for a
    transcript once the recording is in."""
    settings.MEDIA_ROOT = tmp_path
    number.voicemail_enabled, number.voicemail_transcription = True, not transcription
    number.save()
    publish(number, fd.document("vm", vm=fd.voicemail("Leave a message.", transcription=transcription)))
    response, uuid = phone.dial(number.phone_number)
    record = response.json()[2]
    assert record["action"] == "record" and ("transcription" in record) is transcription
    phone.post(record["eventUrl"][0], {"recording_url": vonage_api.add_recording(b"mp3"), "recording_uuid": "r"})
    call = the_call(uuid)
    escalated = IncidentEvent.objects.filter(incident=call.incident, kind=IncidentEvent.Kind.ESCALATED).exists()
    assert escalated is not transcription  # with a transcript to come, the incident waits for it
