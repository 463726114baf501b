"""End-to-end: calls driven through signed Vonage webhooks, with the real SDK placing agent calls against the
local fake Vonage API. Acme's number has "Outage" (Alice then Bob, one after another) and "Billing" (Bob and
Carol at once)."""
import datetime as dt

import pytest
from django.utils import timezone

from callrouting.models import AgentLeg, Call, Voicemail
from callrouting.tasks import sweep
from incidents.models import Incident, IncidentEvent
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    path_of,
    phone,
    policy_of,
    the_call,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def number(acme, alice, bob, carol):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", name="Acme support", greeting="Welcome to Acme.")
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    RoutingOptionFactory(
        routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob, carol), simultaneous=True
    )
    return number


def texts(ncco):
    return [action.get("text") for action in ncco if action["action"] == "talk"]


def timeline(incident):
    return list(incident.events.values_list("message", flat=True))


def escalations(incident):
    """How often the call handed its incident back to escalation (the engine's own lines not counted)."""
    return incident.events.filter(kind=IncidentEvent.Kind.ESCALATED, message__startswith="Escalating").count()


def route(phone, number, digit):
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), digit)
    return the_call(uuid)


# --- the menu -------------------------------------------------------------------------------------------------


def test_answer_greets_with_menu_taking_a_key_or_speech(phone, number):
    response, uuid = phone.dial(number.phone_number)
    assert response.status_code == 200
    *talks, entry = response.json()
    # The greeting (the menu node's prompt) and the generated "Press 1 ..." part are talks of their own.
    assert talks == [
        {"action": "talk", "text": "Welcome to Acme.", "language": "en-US", "bargeIn": True},
        {"action": "talk", "text": "Press 1 or say Outage for Outage. Press 2 or say Billing for Billing.",
         "language": "en-US", "bargeIn": True},
    ]
    assert " ".join(talk["text"] for talk in talks) == number.preview_greeting()
    assert entry["type"] == ["dtmf", "speech"] and entry["dtmf"]["maxDigits"] == 1
    assert entry["speech"]["context"] == ["Outage", "Billing"]
    call = the_call(uuid)
    assert call.state == Call.State.MENU and call.caller == "+4917612345678"
    assert call.token in entry["eventUrl"][0] and entry["eventUrl"][0].startswith("https://callrouting.test/vonage/call/")
    assert phone.dialled() == []


def test_answer_by_post_works_too(phone, number):
    response, uuid = phone.dial(number.phone_number, method="POST")
    assert response.status_code == 200 and response.json()[-1]["action"] == "input"


def test_digit_routes_creates_incident_and_holds_caller(phone, number, alice):
    response, uuid = phone.dial(number.phone_number)
    response = phone.press(response.json(), "1")
    connecting, conversation = response.json()
    assert connecting["text"] == "Connecting you, please hold."
    call = the_call(uuid)
    assert conversation == {
        "action": "conversation",
        "name": call.conversation_name,
        "startOnEnter": False,
        "endOnExit": True,
        "musicOnHoldUrl": ["https://callrouting.test/static/callrouting/hold-music.mp3"],
    }
    assert call.state == Call.State.ROUTING and call.option.label == "Outage"
    incident = call.incident
    assert incident.status == Incident.Status.PENDING and incident.escalation_suppressed
    assert incident.alert_source == number.alert_source and incident.escalation_policy == call.option.escalation_policy
    assert "+4917612345678" in incident.summary and "Outage" in incident.summary
    # Sequential: only Alice is dialled, with the ringing timeout, machine detection and the whisper.
    (request,) = phone.dialled()
    assert request["to"] == [{"type": "phone", "number": "4915110000001"}]
    assert request["from"] == {"type": "phone", "number": "4930901820"}
    assert request["ringing_timer"] == 30 and request["machine_detection"] == "hangup"
    whisper, keypress = request["ncco"]
    assert whisper["text"] == (
        "Acme support: Outage call from 4 9 1 7 6 1 2 3 4 5 6 7 8. Press 1 to accept, 2 to decline."
    )
    assert keypress["dtmf"]["maxDigits"] == 1
    leg = AgentLeg.objects.get(call=call, user=alice)
    assert leg.token in request["event_url"][0] and leg.token in keypress["eventUrl"][0]
    assert leg.status == AgentLeg.Status.DIALLING and leg.vonage_uuid


def test_hold_music_ships_as_a_small_mp3():
    from django.contrib.staticfiles import finders

    path = finders.find("callrouting/hold-music.mp3")
    data = open(path, "rb").read()
    assert 10_000 < len(data) < 200_000
    assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)  # an MPEG audio frame


def test_speech_routes_by_label(phone, number, bob, carol):
    response, uuid = phone.dial(number.phone_number)
    response = phone.say(response.json(), "uh I have a question about billing please")
    assert texts(response.json()) == ["Connecting you, please hold."]
    call = the_call(uuid)
    assert call.option.label == "Billing"
    # Simultaneous: Bob and Carol at once.
    assert [r["to"][0]["number"] for r in phone.dialled()] == ["4915110000002", "4915110000003"]


def test_speech_routes_by_spoken_digit(phone, number):
    response, uuid = phone.dial(number.phone_number)
    phone.say(response.json(), "two")
    assert the_call(uuid).option.digit == 2


def test_no_input_repeats_menu_then_routes_to_first_option(phone, number):
    response, uuid = phone.dial(number.phone_number)
    menu = response.json()
    first = phone.press(menu, "").json()
    # The same menu again; its input URL names the new prompt, so a late answer to the old one is recognised.
    assert first[:-1] == menu[:-1] and first[-1]["eventUrl"] != menu[-1]["eventUrl"]
    second = phone.say(first, "something unrelated")
    assert texts(second.json()) == texts(menu) and the_call(uuid).node_state["data"]["tries"] == 2
    third = phone.press(second.json(), "7")  # no such option
    # The caller is told where they go (issue 17).
    assert texts(third.json()) == ["Sorry, we did not get your choice. We will put you through to Outage.",
                                   "Connecting you, please hold."]
    call = the_call(uuid)
    assert call.state == Call.State.ROUTING and call.option.digit == 1 and call.node == "option-1"


def test_single_option_skips_menu(phone, acme, alice):
    number = RoutingNumberFactory(account=acme, greeting="Hello.")
    RoutingOptionFactory(routing_number=number, digit=1, label="Support", escalation_policy=policy_of(acme, alice))
    response, uuid = phone.dial(number.phone_number)
    # The greeting first (issue 17: a number with a single option still plays its greeting).
    assert texts(response.json()) == ["Hello.", "Connecting you, please hold."]
    assert the_call(uuid).state == Call.State.ROUTING
    assert len(phone.dialled()) == 1


def test_unknown_number_gets_an_apology_not_an_error(phone, number):
    response, uuid = phone.dial("+4930901899")
    assert response.status_code == 200
    assert texts(response.json()) == ["Sorry, this number is not in service. Goodbye."]
    assert not Call.objects.exists()


# --- sequential -----------------------------------------------------------------------------------------------


def test_sequential_accept_connects_and_accepts_incident(phone, number, alice, bob, vonage_api):
    call = route(phone, number, "1")
    alice_leg = phone.leg(alice)
    phone.leg_event(alice_leg, "ringing")
    phone.leg_event(alice_leg, "answered")
    response = phone.agent_press(alice_leg, "1")
    assert response.json() == [
        {"action": "conversation", "name": call.conversation_name, "startOnEnter": True, "endOnExit": True}
    ]
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED and call.connected_leg == alice_leg
    incident = call.incident
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACCEPTED and incident.assigned_to == alice
    assert len(phone.dialled()) == 1  # Bob never rang
    assert AgentLeg.objects.get(call=call, user=bob).status == AgentLeg.Status.CANCELLED


@pytest.mark.parametrize(
    "events, expected",
    [
        ([("answered", {}), ("press", "2")], AgentLeg.Status.DECLINED),
        ([("unanswered", {"detail": "timeout"})], AgentLeg.Status.NO_ANSWER),
        ([("timeout", {})], AgentLeg.Status.NO_ANSWER),
        ([("busy", {})], AgentLeg.Status.BUSY),
        ([("rejected", {"detail": "declined"})], AgentLeg.Status.DECLINED),
        ([("failed", {"detail": "cannot_route"})], AgentLeg.Status.FAILED),
        ([("machine", {"sub_state": "beep_start"})], AgentLeg.Status.MACHINE),
        ([("answered", {}), ("press", "")], AgentLeg.Status.NO_ANSWER),
        ([("answered", {}), ("completed", {})], AgentLeg.Status.NO_ANSWER),
    ],
    ids=["decline", "no-answer", "timeout", "busy", "rejected", "failed", "machine", "no-key", "hung-up"],
)
def test_sequential_moves_to_next_agent(phone, number, alice, bob, events, expected):
    call = route(phone, number, "1")
    alice_leg = phone.leg(alice)
    for kind, value in events:
        if kind == "press":
            response = phone.agent_press(alice_leg, value)
            assert texts(response.json()) == ["Goodbye."]
        else:
            phone.leg_event(alice_leg, kind, **value)
    alice_leg.refresh_from_db()
    assert alice_leg.status == expected
    assert [r["to"][0]["number"] for r in phone.dialled()] == ["4915110000001", "4915110000002"]
    bob_leg = phone.leg(bob)
    assert bob_leg.status == AgentLeg.Status.DIALLING
    phone.agent_press(bob_leg, "1")
    call.refresh_from_db()
    assert call.state == Call.State.CONNECTED and call.incident.assigned_to == bob
    assert any("Alice" in line and expected.label.lower() in line for line in timeline(call.incident))


def test_accepted_call_ending_resolves_incident(phone, number, alice):
    call = route(phone, number, "1")
    leg = phone.leg(alice)
    phone.agent_press(leg, "1")
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert call.state == Call.State.ENDED and call.outcome == Call.Outcome.ANSWERED
    call.incident.refresh_from_db()
    assert call.incident.status == Incident.Status.RESOLVED
    leg.refresh_from_db()
    assert leg.status == leg.Status.ACCEPTED and leg.ended_at == call.ended_at  # the agent's leg ends with the call
    # The agent's leg completing afterwards changes nothing.
    phone.leg_event(leg, "completed")
    assert Incident.objects.get().events.filter(kind=IncidentEvent.Kind.RESOLVED).count() == 1


def test_agent_hanging_up_ends_call_and_resolves(phone, number, alice):
    call = route(phone, number, "1")
    leg = phone.leg(alice)
    phone.agent_press(leg, "1")
    phone.leg_event(leg, "completed")
    call.refresh_from_db()
    assert call.state == Call.State.ENDED and call.incident.status == Incident.Status.RESOLVED


def test_keep_incident_open_option(phone, number, alice):
    number.keep_incident_open = True
    number.save()
    call = route(phone, number, "1")
    phone.agent_press(phone.leg(alice), "1")
    phone.hang_up(call.vonage_uuid)
    call.incident.refresh_from_db()
    assert call.incident.status == Incident.Status.ACCEPTED


# --- simultaneous ---------------------------------------------------------------------------------------------


def test_simultaneous_first_accept_wins_others_hung_up(phone, number, bob, carol, vonage_api):
    call = route(phone, number, "2")
    bob_leg, carol_leg = phone.leg(bob), phone.leg(carol)
    assert bob_leg.status == carol_leg.status == AgentLeg.Status.DIALLING
    phone.leg_event(bob_leg, "answered")
    phone.leg_event(carol_leg, "answered")
    assert phone.agent_press(carol_leg, "1").json()[0]["startOnEnter"] is True
    assert vonage_api.modifications(bob_leg.vonage_uuid) == [{"action": "hangup"}]
    # Bob pressing 1 a moment later hears that the call was taken.
    response = phone.agent_press(bob_leg, "1")
    assert texts(response.json()) == ["This call has already been taken by someone else. Goodbye."]
    call.refresh_from_db()
    assert call.connected_leg == carol_leg and call.incident.assigned_to == carol
    assert AgentLeg.objects.filter(call=call, status=AgentLeg.Status.ACCEPTED).count() == 1


def test_simultaneous_fan_out_respects_three_calls_per_second(phone, acme, inline_tasks):
    from tests.factories import UserFactory

    agents = [UserFactory(account=acme, phone=f"+49151200000{i:02d}") for i in range(7)]
    number = RoutingNumberFactory(account=acme)
    RoutingOptionFactory(routing_number=number, digit=1, label="All", escalation_policy=policy_of(acme, *agents), simultaneous=True)
    phone.dial(number.phone_number)
    assert len(phone.dialled()) == 7
    # The 4th and 7th requests had to wait for the window (1.1 s: Vonage's second plus jitter) of the 1st and 4th.
    assert inline_tasks == [1.1, 1.1]


def test_simultaneous_all_decline_goes_to_voicemail(phone, number, bob, carol, vonage_api):
    number.voicemail_enabled = True
    number.save()
    call = route(phone, number, "2")
    phone.leg_event(phone.leg(bob), "busy")
    call.refresh_from_db()
    assert call.state == Call.State.ROUTING
    phone.agent_press(phone.leg(carol), "2")
    call.refresh_from_db()
    assert call.state == Call.State.VOICEMAIL
    (transfer,) = vonage_api.modifications(call.vonage_uuid)
    assert transfer["action"] == "transfer"
    assert [action["action"] for action in transfer["destination"]["ncco"]] == ["notify", "record", "talk"]


# --- nobody left ----------------------------------------------------------------------------------------------


def test_voicemail_with_recording_and_transcript(phone, number, alice, bob, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    number.voicemail_enabled = True
    number.voicemail_greeting = "Please leave a message."
    number.save()
    call = route(phone, number, "1")
    phone.leg_event(phone.leg(alice), "unanswered", detail="timeout")
    phone.leg_event(phone.leg(bob), "busy")
    call.refresh_from_db()
    assert call.state == Call.State.VOICEMAIL
    (transfer,) = vonage_api.modifications(call.vonage_uuid)
    greeting, notify, record, thanks = transfer["destination"]["ncco"]
    assert greeting["text"] == "Please leave a message."
    assert notify["action"] == "notify" and call.token in notify["eventUrl"][0]
    phone.reach_notify(transfer["destination"]["ncco"])
    assert record["format"] == "mp3" and record["endOnKey"] == "#" and record["timeOut"] == 120 and record["beepStart"]
    assert record["transcription"]["language"] == "en-US"
    assert call.token in record["eventUrl"][0] and call.token in record["transcription"]["eventUrl"][0]
    assert escalations(call.incident) == 0

    url = vonage_api.add_recording(b"ID3-fake-mp3-bytes")
    phone.post(record["eventUrl"][0], {
        "start_time": "2026-11-27T10:00:00Z", "end_time": "2026-11-27T10:00:12Z", "recording_url": url,
        "recording_uuid": "rec-1", "size": 18, "conversation_uuid": "CON-1", "timestamp": "2026-11-27T10:00:12Z",
    })
    voicemail = Voicemail.objects.get(call=call)
    assert voicemail.recording.read() == b"ID3-fake-mp3-bytes" and voicemail.duration == 12
    # Transcription on: escalation waits for the transcript.
    assert escalations(call.incident) == 0
    phone.post(record["transcription"]["eventUrl"][0], {"recording_uuid": "rec-1", "transcript": "The VPN is down again."})
    voicemail.refresh_from_db()
    assert voicemail.transcript == "The VPN is down again." and voicemail.incident == call.incident
    assert escalations(call.incident) == 1
    incident = Incident.objects.get(pk=call.incident_id)
    assert not incident.escalation_suppressed
    assert any("Voicemail transcript: The VPN is down again." in line for line in timeline(incident))
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.VOICEMAIL


def test_voicemail_transcript_fetched_from_url(phone, number, alice, bob, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    number.voicemail_enabled = True
    number.save()
    call = route(phone, number, "1")
    phone.agent_press(phone.leg(alice), "2")
    phone.agent_press(phone.leg(bob), "2")
    notify, record, _ = vonage_api.modifications(call.vonage_uuid)[0]["destination"]["ncco"]  # no greeting
    assert (notify["action"], record["action"]) == ("notify", "record")
    phone.post(record["eventUrl"][0], {"recording_url": vonage_api.add_recording(b"mp3"), "recording_uuid": "r"})
    document = b'{"channels": [{"transcript": [{"sentence": "Call me back"}, {"sentence": "please."}]}]}'
    phone.post(record["transcription"]["eventUrl"][0], {"transcription_url": vonage_api.add_recording(document)})
    assert Voicemail.objects.get().transcript == "Call me back please."
    assert escalations(call.incident) == 1


def test_voicemail_without_transcription_escalates_on_recording(phone, number, alice, bob, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    number.voicemail_enabled, number.voicemail_transcription = True, False
    number.save()
    call = route(phone, number, "1")
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    record = vonage_api.modifications(call.vonage_uuid)[0]["destination"]["ncco"][1]
    assert "transcription" not in record
    phone.post(record["eventUrl"][0], {"recording_url": vonage_api.add_recording(b"mp3"), "recording_uuid": "r"})
    assert escalations(call.incident) == 1


def test_voicemail_deadline_escalates_when_the_transcript_never_comes(phone, number, alice, bob, vonage_api, settings, tmp_path):
    from django_q.models import Schedule

    settings.MEDIA_ROOT = tmp_path
    number.voicemail_enabled = True
    number.save()
    call = route(phone, number, "1")
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    record = vonage_api.modifications(call.vonage_uuid)[0]["destination"]["ncco"][1]
    phone.post(record["eventUrl"][0], {"recording_url": vonage_api.add_recording(b"mp3"), "recording_uuid": "r"})
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.VOICEMAIL
    # A due time on the call, claimed by the minute sweeper (no one-off schedule per call).
    assert not Schedule.objects.filter(func="callrouting.tasks.voicemail_deadline").exists()
    due = call.voicemail_due_at
    assert due is not None
    assert sweep(now=due - dt.timedelta(seconds=1))["voicemails"] == 0
    assert escalations(call.incident) == 0
    assert sweep(now=due)["voicemails"] == 1
    assert sweep(now=due + dt.timedelta(minutes=1))["voicemails"] == 0
    assert escalations(call.incident) == 1


def caller_ncco(vonage_api, call):
    """The NCCO the caller was last transferred to (None: never transferred)."""
    transfers = [m for m in vonage_api.modifications(call.vonage_uuid) if m["action"] == "transfer"]
    return transfers[-1]["destination"]["ncco"] if transfers else None


def test_caller_hanging_up_at_the_mailbox_escalates_at_once(phone, number, alice, bob, vonage_api):
    """The caller's leg completed before the NCCO reached its notify (they hung up during the mailbox greeting,
    no recording started): the incident is escalated at once, with the outcome on the timeline, not after the
    longest message plus grace."""
    number.voicemail_enabled = True
    number.voicemail_greeting = "Please leave a message after the tone."
    number.save()
    call = route(phone, number, "1")
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    assert caller_ncco(vonage_api, call)[0]["text"] == "Please leave a message after the tone."
    call.refresh_from_db()
    assert call.state == Call.State.VOICEMAIL and call.voicemail_due_at
    assert escalations(call.incident) == 0
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert (call.state, call.outcome) == (Call.State.ENDED, Call.Outcome.NO_MESSAGE)
    assert call.recording_started_at is None and call.recording_due_at is None
    assert call.voicemail_due_at is None and call.transfer_due_at is None
    assert escalations(call.incident) == 1
    lines = timeline(call.incident)
    assert "Call ended: hung up before leaving a message." in lines
    assert "Escalating: the caller hung up before leaving a message" in lines
    # A repeated event, and the minute sweeper later, page nobody a second time nor move the caller again.
    phone.hang_up(call.vonage_uuid)
    counts = sweep(now=timezone.now() + dt.timedelta(hours=1))
    assert (counts["voicemails"], counts["transfers"]) == (0, 0)
    assert escalations(call.incident) == 1


def to_mailbox(phone, number, alice, bob, vonage_api, settings, tmp_path):
    """Nobody takes the call; the caller hears the mailbox greeting. Returns (call, the caller's NCCO)."""
    settings.MEDIA_ROOT = tmp_path
    number.voicemail_enabled, number.voicemail_transcription = True, False
    number.voicemail_greeting = "Please leave a message after the tone."
    number.save()
    call = route(phone, number, "1")
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    return call, caller_ncco(vonage_api, call)


def post_recording(phone, ncco, url, seconds):
    record = next(action for action in ncco if action["action"] == "record")
    return phone.post(record["eventUrl"][0], {
        "start_time": "2026-11-27T10:00:00.000Z", "end_time": f"2026-11-27T10:00:{seconds:02d}.000Z", "recording_url": url,
        "recording_uuid": "rec-1", "size": 18, "conversation_uuid": "CON-1", "timestamp": "2026-11-27T10:00:30.000Z",
    })


def test_caller_who_speaks_then_hangs_up_leaves_a_voicemail_whose_recording_follows_the_hang_up(
        phone, number, alice, bob, vonage_api, settings, tmp_path):
    """Vonage sends the record webhook when the recording is finished: for a caller who speaks and hangs up, after
    the leg's "completed" event. The call ends as a voicemail awaiting its recording, and the recording is stored
    and escalated as any voicemail."""
    call, ncco = to_mailbox(phone, number, alice, bob, vonage_api, settings, tmp_path)
    phone.reach_notify(ncco)  # the greeting is over, the beep, the recording starts
    call.refresh_from_db()
    assert call.recording_started_at is not None and call.state == Call.State.VOICEMAIL
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert (call.state, call.outcome) == (Call.State.ENDED, Call.Outcome.VOICEMAIL)
    assert call.recording_due_at is not None and call.voicemail_due_at is not None
    assert escalations(call.incident) == 0  # waiting for the recording, not "hung up before leaving a message"

    post_recording(phone, ncco, vonage_api.add_recording(b"ID3-the-message"), 12)
    voicemail = Voicemail.objects.get(call=call)
    assert voicemail.recording.read() == b"ID3-the-message" and voicemail.duration == 12
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.VOICEMAIL and call.escalated_at is not None
    lines = timeline(call.incident)
    assert "The caller heard the mailbox greeting; recording their message." in lines
    assert "Escalating: the caller left a voicemail" in lines
    assert not any("before leaving a message" in line for line in lines)
    assert escalations(call.incident) == 1
    counts = sweep(now=call.recording_due_at)
    assert counts["missing_recordings"] == 0
    assert sweep(now=call.voicemail_due_at)["voicemails"] == 0
    assert escalations(call.incident) == 1


def test_a_failed_notify_records_the_message_from_the_fallback(phone, number, alice, bob, vonage_api, settings, tmp_path):
    """Vonage sends a refused notify to the fallback URL. Asking again could fail the same way and loop the
    caller through the greeting: the fallback answers with the recording itself, which has started."""
    call, ncco = to_mailbox(phone, number, alice, bob, vonage_api, settings, tmp_path)
    notify = next(action for action in ncco if action["action"] == "notify")
    refused = phone.client.post(path_of(notify["eventUrl"][0]), notify["payload"], content_type="application/json",
                                HTTP_AUTHORIZATION="Bearer forged.token.value")
    assert refused.status_code == 401  # a bad signature: refused, and Vonage goes to the fallback URL
    call.refresh_from_db()
    assert call.recording_started_at is None
    response = phone.post("/vonage/fallback", {
        "reason": "HTTP 503", "uuid": call.vonage_uuid, "conversation_uuid": "CON-1",
        "original_request": {"url": notify["eventUrl"][0], "type": "event_url"},
    })
    assert [action["action"] for action in response.json()] == ["record", "talk"]
    assert response.json()[0] == next(action for action in ncco if action["action"] == "record")
    call.refresh_from_db()
    assert call.recording_started_at is not None
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.VOICEMAIL and escalations(call.incident) == 0


def test_the_notify_changes_nothing_outside_the_mailbox(phone, number, alice, bob, vonage_api, settings, tmp_path):
    call, ncco = to_mailbox(phone, number, alice, bob, vonage_api, settings, tmp_path)
    phone.hang_up(call.vonage_uuid)  # during the greeting
    phone.reach_notify(ncco)  # late or replayed: the call is over
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NO_MESSAGE and call.recording_started_at is None
    unknown = phone.post("/vonage/call/" + "x" * 32 + "/recording-started", {"mailbox": "recording"})
    assert unknown.status_code == 204


def test_no_voicemail_says_nobody_available_and_escalates(phone, number, alice, bob, vonage_api):
    call = route(phone, number, "1")
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "failed")
    call.refresh_from_db()
    assert call.state == Call.State.ENDED and call.outcome == Call.Outcome.NO_AGENT
    (transfer,) = vonage_api.modifications(call.vonage_uuid)
    assert texts(transfer["destination"]["ncco"])[0].startswith("Sorry, no one is available")
    incident = Incident.objects.get(pk=call.incident_id)
    assert incident.status == Incident.Status.PENDING and not incident.escalation_suppressed
    assert escalations(incident) == 1


def test_policy_without_reachable_agents_goes_straight_on(phone, acme, vonage_api):
    from tests.factories import UserFactory

    nophone = UserFactory(account=acme, username="nophone")
    number = RoutingNumberFactory(account=acme)
    RoutingOptionFactory(routing_number=number, digit=1, label="X", escalation_policy=policy_of(acme, nophone))
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    assert call.outcome == Call.Outcome.NO_AGENT and phone.dialled() == []
    assert any("Nobody to call on “X”" in line for line in timeline(call.incident))


# --- caller hangs up -----------------------------------------------------------------------------------------


def test_caller_hang_up_mid_dial_cancels_legs_and_escalates(phone, number, bob, carol, vonage_api):
    call = route(phone, number, "2")
    bob_leg, carol_leg = phone.leg(bob), phone.leg(carol)
    phone.leg_event(bob_leg, "ringing")
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert call.state == Call.State.ENDED and call.outcome == Call.Outcome.ABANDONED
    assert set(AgentLeg.objects.filter(call=call).values_list("status", flat=True)) == {AgentLeg.Status.CANCELLED}
    assert vonage_api.modifications(bob_leg.vonage_uuid) == [{"action": "hangup"}]
    assert vonage_api.modifications(carol_leg.vonage_uuid) == [{"action": "hangup"}]
    assert escalations(call.incident) == 1
    # Carol answering and pressing 1 afterwards connects nobody.
    response = phone.agent_press(carol_leg, "1")
    assert texts(response.json()) == ["The caller has already hung up. Goodbye."]
    call.refresh_from_db()
    assert call.state == Call.State.ENDED and call.incident.status == Incident.Status.PENDING


def test_caller_hang_up_in_menu_creates_no_incident(phone, number):
    response, uuid = phone.dial(number.phone_number)
    phone.hang_up(uuid)
    call = the_call(uuid)
    assert call.outcome == Call.Outcome.ABANDONED and call.incident is None and not Incident.objects.exists()
