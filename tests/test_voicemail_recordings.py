"""Voicemail recordings are never lost, the team hears about them at once, and links from outside expire.

The fake Vonage answers 500 or hangs on the recording download; time moves forward by sweeping at the due times
the product stored (and by backdating a voicemail), never by sleeping. Alert actions are inspected as the
deliveries the product queued (the payload is built when a voicemail trigger fires); delivering them is the
alert-action tests' business.

Acme's number "Acme support": "Outage" calls Alice then Bob ("Billing" only Bob); nobody takes the call, so the
caller gets voicemail.
Globex's Charlie must never hear Acme's voicemail.
"""
import datetime as dt
import time

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from callrouting import recordings
from callrouting.models import Call, Voicemail
from callrouting.tasks import sweep
from incidents import actions
from incidents.models import AlertAction, AlertActionDelivery, IncidentEvent
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)
from tests.incidents_factories import AlertActionFactory, worker  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

FILES = r"^/v1/files/"
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def number(acme, alice, bob, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", name="Acme support",
                                  voicemail_enabled=True, voicemail_transcription=False)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    RoutingOptionFactory(routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob))
    return number


@pytest.fixture
def hook(number, worker):
    """A webhook action on the number's alert source; its deliveries are queued, not sent (worker not run)."""
    return AlertActionFactory(alert_source=number.alert_source, name="Ops hook", url="https://hooks.example.com/ops")


def to_voicemail(phone, number, alice, bob, *, recording=True):
    """A caller nobody takes: (call, the record action the caller hears). RECORDING: the caller gets past the
    mailbox greeting and the recording starts (the NCCO's notify action reaches the product)."""
    response, uuid = phone.dial(number.phone_number, caller="+4917612345678")
    phone.press(response.json(), "1")
    phone.leg_event(phone.leg(alice), "busy")
    phone.leg_event(phone.leg(bob), "busy")
    call = the_call(uuid)
    assert call.state == Call.State.VOICEMAIL
    ncco = phone.api.modifications(call.vonage_uuid)[0]["destination"]["ncco"]
    if recording:
        phone.reach_notify(ncco)
        call.refresh_from_db()
        assert call.recording_started_at is not None
    return call, next(action for action in ncco if action["action"] == "record")


def record(phone, record_action, url, **kwargs):
    phone.post(record_action["eventUrl"][0], {"recording_url": url, "recording_uuid": "rec-1",
                                              "start_time": "2026-11-27T10:00:00Z", "end_time": "2026-11-27T10:00:12Z"},
               **kwargs)


def timeline(call):
    return list(IncidentEvent.objects.filter(incident_id=call.incident_id).values_list("message", flat=True))


def escalations(call):
    return IncidentEvent.objects.filter(incident_id=call.incident_id, kind=IncidentEvent.Kind.ESCALATED,
                                        message__startswith="Escalating").count()


def voicemail_payloads(action):
    return [d.payload["voicemail"] for d in AlertActionDelivery.objects.filter(action=action, trigger="voicemail").order_by("id")]


def sweep_at(phone, now):
    with phone.capture(execute=True):
        return sweep(now=now)


# --- 14.4: retried over days, then lost -------------------------------------------------------------------------


def test_a_failing_download_is_retried_at_its_due_times_until_stored(phone, number, alice, bob, hook):
    call, record_action = to_voicemail(phone, number, alice, bob)
    url = phone.api.add_recording(b"ID3-the-message")
    phone.api.fail_next("GET", FILES, 500, times=3)  # one task's three quick attempts
    record(phone, record_action, url)

    voicemail = Voicemail.objects.get(call=call)
    assert not voicemail.is_stored and voicemail.download_attempts == 1 and "500" in voicemail.recording_error
    first_due = voicemail.download_due_at
    assert first_due - voicemail.created_at >= recordings.RETRY_DELAYS[0]
    assert any("could not be downloaded yet" in line for line in timeline(call))
    # The team is not kept waiting for the recording: escalated, and the actions told a voicemail is in.
    assert escalations(call) == 1
    assert [p["status"] for p in voicemail_payloads(hook)] == ["downloading"]
    assert voicemail_payloads(hook)[0]["recording_url"] is None

    assert sweep_at(phone, first_due - SECOND)["recording_downloads"] == 0
    phone.api.fail_next("GET", FILES, 500, times=3)
    assert sweep_at(phone, first_due)["recording_downloads"] == 1
    voicemail.refresh_from_db()
    assert voicemail.download_attempts == 2 and not voicemail.is_stored
    second_due = voicemail.download_due_at
    assert second_due - first_due >= recordings.RETRY_DELAYS[1] - recordings.RETRY_DELAYS[0]  # backing off

    assert sweep_at(phone, second_due)["recording_downloads"] == 1  # Vonage answers again
    voicemail.refresh_from_db()
    assert voicemail.recording.read() == b"ID3-the-message"
    assert voicemail.download_due_at is None and voicemail.recording_error == "" and voicemail.recording_lost_at is None
    assert "Voicemail recording stored (0 KB) after 2 failed attempts." in timeline(call)
    recorded = voicemail_payloads(hook)[-1]
    assert recorded["status"] == "recorded" and recorded["recording_url"].startswith("https://callrouting.test/voicemail/")
    assert sweep_at(phone, second_due + dt.timedelta(days=1))["recording_downloads"] == 0
    assert escalations(call) == 1


def test_a_download_timing_out_is_retried(phone, number, alice, bob, settings):
    from incidents.telephony import reset_telephony

    # Downloads go through requests, which takes a fraction of a second: each of the attempt's three tries gives
    # up after 0.2 s, long before the fake answers. The retry later gets the usual timeout, so a slow machine
    # cannot make the download that must succeed time out.
    usual = settings.VONAGE_TIMEOUT
    settings.VONAGE_TIMEOUT = 0.2
    reset_telephony()
    call, record_action = to_voicemail(phone, number, alice, bob)
    phone.api.hang_next("GET", FILES, seconds=1.5, times=3)
    record(phone, record_action, phone.api.add_recording(b"ID3-slow"))
    voicemail = Voicemail.objects.get(call=call)
    assert voicemail.download_attempts == 1 and "timed out" in voicemail.recording_error
    settings.VONAGE_TIMEOUT = usual
    reset_telephony()
    assert sweep_at(phone, voicemail.download_due_at)["recording_downloads"] == 1
    voicemail.refresh_from_db()
    assert voicemail.recording.read() == b"ID3-slow"


def test_a_lost_download_task_is_handed_out_again_after_its_lease(phone, number, alice, bob):
    call, record_action = to_voicemail(phone, number, alice, bob)
    record(phone, record_action, phone.api.add_recording(b"ID3-x"), run_tasks=False)  # the worker never ran it
    voicemail = Voicemail.objects.get(call=call)
    assert not voicemail.is_stored and voicemail.download_due_at is not None
    assert sweep_at(phone, voicemail.download_due_at - SECOND)["recording_downloads"] == 0
    assert sweep_at(phone, voicemail.download_due_at)["recording_downloads"] == 1
    voicemail.refresh_from_db()
    assert voicemail.recording.read() == b"ID3-x"


def test_the_recording_is_given_up_at_day_25_and_the_actions_are_told(phone, number, alice, bob, hook):
    call, record_action = to_voicemail(phone, number, alice, bob)
    phone.api.fail_next("GET", FILES, 500, times=3)
    record(phone, record_action, phone.api.add_recording(b"ID3-never"))
    # Days of failures later: the voicemail is 24 days 20 hours old, the daily retry is due.
    voicemail = Voicemail.objects.get(call=call)
    born = timezone.now() - dt.timedelta(days=24, hours=20)
    Voicemail.objects.filter(pk=voicemail.pk).update(created_at=born, download_attempts=len(recordings.RETRY_DELAYS))
    voicemail.refresh_from_db()
    assert recordings.next_attempt_at(voicemail, voicemail.download_attempts + 1, timezone.now()) is None
    phone.api.fail_next("GET", FILES, 503, times=3)
    assert sweep_at(phone, voicemail.download_due_at)["recording_downloads"] == 1

    voicemail.refresh_from_db()
    assert voicemail.recording_lost_at is not None and voicemail.download_due_at is None and not voicemail.is_stored
    lost = [line for line in timeline(call) if line.startswith("The voicemail recording is lost")]
    assert len(lost) == 1 and "25 days" in lost[0] and "503" in lost[0]
    assert [p["status"] for p in voicemail_payloads(hook)] == ["downloading", "lost"]
    # Nothing is tried any more.
    assert sweep_at(phone, timezone.now() + dt.timedelta(days=10))["recording_downloads"] == 0


def test_next_attempts_back_off_from_minutes_to_days_and_stop_before_vonage_deletes_it():
    voicemail = Voicemail(created_at=timezone.now())
    at, attempts = voicemail.created_at, 0
    while at is not None:
        attempts += 1
        previous, at = at, recordings.next_attempt_at(voicemail, attempts, at)
        if at is not None:
            assert at - previous == recordings.RETRY_DELAYS[min(attempts, len(recordings.RETRY_DELAYS)) - 1]
    assert recordings.RECORDING_GIVE_UP_AFTER < dt.timedelta(days=30)
    assert previous > voicemail.created_at + dt.timedelta(days=24)  # kept trying until about day 25
    assert 25 < attempts < 40


def test_a_voicemail_whose_recording_webhook_never_came_is_flagged(phone, number, alice, bob, hook):
    call, _ = to_voicemail(phone, number, alice, bob)  # the recording started (notify), then the caller hung up
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.VOICEMAIL and call.recording_due_at is not None
    assert escalations(call) == 0  # the record webhook follows the hang-up: it is waited for
    assert sweep_at(phone, call.recording_due_at - SECOND)["missing_recordings"] == 0
    assert sweep_at(phone, call.recording_due_at)["missing_recordings"] == 1
    assert any(line.startswith("Vonage sent no recording for this voicemail") for line in timeline(call))
    assert [p["status"] for p in voicemail_payloads(hook)] == ["missing"]
    assert escalations(call) == 1
    assert sweep_at(phone, call.recording_due_at + dt.timedelta(hours=1))["missing_recordings"] == 0


def test_a_voicemail_whose_recording_came_after_the_hang_up_is_not_flagged(phone, number, alice, bob):
    call, record_action = to_voicemail(phone, number, alice, bob)
    phone.hang_up(call.vonage_uuid)
    record(phone, record_action, phone.api.add_recording(b"ID3-late"))
    call.refresh_from_db()
    assert sweep_at(phone, call.recording_due_at)["missing_recordings"] == 0
    assert not any("no recording" in line for line in timeline(call))


def test_a_recording_of_under_two_seconds_after_the_hang_up_is_no_message(phone, number, alice, bob, hook):
    """The caller hung up right after the beep: Vonage still sends a recording (a second of line noise). It is
    kept, but the call ends as "hung up before leaving a message", escalated at once, and announced to nobody."""
    call, record_action = to_voicemail(phone, number, alice, bob)
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.VOICEMAIL and escalations(call) == 0
    phone.post(record_action["eventUrl"][0], {"recording_url": phone.api.add_recording(b"ID3-click"),
                                              "recording_uuid": "rec-1", "start_time": "2026-11-27T10:00:00.000Z",
                                              "end_time": "2026-11-27T10:00:01.400Z"})
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NO_MESSAGE
    assert call.recording_due_at is None and call.voicemail_due_at is None
    lines = timeline(call)
    assert "The recording is only 1 s long: the caller hung up before leaving a message." in lines
    assert "Escalating: the caller hung up before leaving a message" in lines
    assert escalations(call) == 1
    assert Voicemail.objects.get(call=call).recording.read() == b"ID3-click"  # nothing is thrown away
    assert voicemail_payloads(hook) == []
    assert sweep_at(phone, timezone.now() + dt.timedelta(hours=1))["missing_recordings"] == 0
    assert escalations(call) == 1


def test_a_message_after_a_lost_notify_turns_no_message_into_a_voicemail(phone, number, alice, bob, hook):
    """The notify never reached the product, so the hang-up looked like one during the greeting (escalated at
    once); the recording that follows shows a real message: the voicemail is stored and announced as any other."""
    call, record_action = to_voicemail(phone, number, alice, bob, recording=False)
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NO_MESSAGE and escalations(call) == 1
    record(phone, record_action, phone.api.add_recording(b"ID3-real-message"))
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.VOICEMAIL
    assert "A recording of 12 s came in after the caller hung up: they left a message after all." in timeline(call)
    assert Voicemail.objects.get(call=call).is_stored
    assert [p["status"] for p in voicemail_payloads(hook)] == ["recorded"]
    assert escalations(call) == 1


# --- 14.6: the team hears about it at once ------------------------------------------------------------------------


def test_voicemail_left_then_its_transcript_reach_the_actions(phone, number, alice, bob, hook):
    number.voicemail_transcription = True
    number.save()
    slack = AlertActionFactory(alert_source=number.alert_source, name="Slack", kind=AlertAction.Kind.SLACK,
                               url="https://hooks.slack.com/services/T/B/x", on_created=False, on_escalated=False)
    teams = AlertActionFactory(alert_source=number.alert_source, name="Teams", kind=AlertAction.Kind.TEAMS,
                               url="https://example.webhook.office.com/x", on_voicemail=False)
    call, record_action = to_voicemail(phone, number, alice, bob)
    record(phone, record_action, phone.api.add_recording(b"ID3-hello"))
    phone.post(record_action["transcription"]["eventUrl"][0], {"transcript": "The VPN is down again."})

    recorded, transcribed = voicemail_payloads(hook)
    assert recorded["status"] == "recorded" and recorded["duration_seconds"] == 12 and recorded["transcript"] is None
    assert recorded["caller"] == "+4917612345678"
    assert recorded["recording_url"].startswith("https://callrouting.test/voicemail/")
    expires = dt.datetime.fromisoformat(recorded["recording_url_expires_at"])
    assert dt.timedelta(days=6) < expires - timezone.now() <= dt.timedelta(days=7)
    assert transcribed["status"] == "transcribed" and transcribed["transcript"] == "The VPN is down again."
    assert voicemail_payloads(teams) == []

    delivery = AlertActionDelivery.objects.filter(action=slack, trigger="voicemail").order_by("id").first()
    message = actions.slack_message(delivery.payload)
    assert message["text"].startswith(f"Voicemail left #{call.incident_id}")
    text = str(message["blocks"])
    assert "*Length*\\n12 s" in text and "+4917612345678" in text
    buttons = message["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Play recording", "Open incident"]
    assert buttons[0]["url"] == recorded["recording_url"]
    later = AlertActionDelivery.objects.filter(action=slack, trigger="voicemail").order_by("id").last()
    assert "Transcript: The VPN is down again." in str(actions.slack_message(later.payload)["blocks"])

    card = actions.teams_message(delivery.payload)["attachments"][0]["content"]
    assert [a["title"] for a in card["actions"]] == ["Play recording", "Open incident"]
    assert {"title": "Length", "value": "12 s"} in card["body"][1]["facts"]


def test_escalated_trigger_carries_the_reason_to_slack_and_teams(phone, number, alice, bob, hook):
    call, _ = to_voicemail(phone, number, alice, bob)
    phone.hang_up(call.vonage_uuid)
    call.refresh_from_db()
    sweep_at(phone, call.recording_due_at)
    (delivery,) = AlertActionDelivery.objects.filter(action=hook, trigger="escalated")
    assert delivery.payload["event"] == "incident.escalated"
    assert delivery.payload["escalation"] == {"reason": "the voicemail recording is missing"}
    slack = actions.slack_message(delivery.payload)
    assert slack["text"].startswith(f"Incident escalated #{call.incident_id}")
    assert "*Why*\\nthe voicemail recording is missing" in str(slack["blocks"])
    card = actions.teams_message(delivery.payload)["attachments"][0]["content"]
    assert {"title": "Why", "value": "the voicemail recording is missing"} in card["body"][1]["facts"]


def test_actions_choose_the_new_triggers(phone, number, alice, bob, worker):
    quiet = AlertActionFactory(alert_source=number.alert_source, name="Quiet", url="https://hooks.example.com/q",
                               on_escalated=False, on_voicemail=False)
    call, record_action = to_voicemail(phone, number, alice, bob)
    record(phone, record_action, phone.api.add_recording(b"ID3"))
    assert set(AlertActionDelivery.objects.filter(action=quiet).values_list("trigger", flat=True)) == {"created"}


# --- 13.7: signed links that expire; in the product only for the owning account ------------------------------------


@pytest.fixture
def stored(phone, number, alice, bob):
    call, record_action = to_voicemail(phone, number, alice, bob)
    record(phone, record_action, phone.api.add_recording(b"ID3-secret-message"))
    voicemail = Voicemail.objects.get(call=call)
    assert voicemail.is_stored
    return voicemail


def path_of(url):
    return url.removeprefix("https://callrouting.test")


def test_a_signed_link_plays_the_recording(client, stored):
    url, _ = recordings.signed_link(stored)
    response = client.get(path_of(url))
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"ID3-secret-message"


def test_an_expired_link_plays_nothing(client, stored, monkeypatch, settings):
    eight_days_ago = time.time() - dt.timedelta(days=8).total_seconds()
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: eight_days_ago)
        url, _ = recordings.signed_link(stored)
    response = client.get(path_of(url))
    assert response.status_code == 410 and b"expired" in response.content
    settings.VOICEMAIL_LINK_MAX_AGE = dt.timedelta(days=9)  # a longer setting keeps the same link alive
    assert client.get(path_of(url)).status_code == 200


def test_a_tampered_link_plays_nothing(client, stored, phone, number, alice, bob):
    url, _ = recordings.signed_link(stored)
    token, stamp, signature = path_of(url).removeprefix("/voicemail/").removesuffix(".mp3").split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert client.get(f"/voicemail/{token}.{stamp}.{flipped}.mp3").status_code == 404
    later = str(int(stamp, 36) + 86400)  # pretend the link is younger
    assert client.get(f"/voicemail/{token}.{later}.{signature}.mp3").status_code == 404
    other = Voicemail.objects.create(call=Call.objects.create(
        account=number.account, routing_number=number, vonage_uuid="other-call", called_number=number.phone_number))
    assert client.get(f"/voicemail/{other.token}.{stamp}.{signature}.mp3").status_code == 404  # another voicemail
    assert client.get(f"/voicemail/{token}.mp3").status_code == 404  # the bare token is no link


def test_in_the_product_only_the_owning_account_plays_it(client, stored, bob, charlie):
    path = reverse("web:call-voicemail", args=[stored.call_id])
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response["Location"]
    client.force_login(charlie)
    assert client.get(path).status_code == 404
    client.force_login(bob)
    response = client.get(path)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"ID3-secret-message"


# --- PostgreSQL: two sweepers never hand out the same download ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not connection.features.has_select_for_update_skip_locked, reason="row locks need PostgreSQL")
def test_a_download_held_by_another_sweeper_is_skipped_then_handed_out_once(number, monkeypatch):
    import threading

    from django.db import connections, transaction

    from callrouting.calls import dispatch

    enqueued = []
    monkeypatch.setattr(dispatch, "enqueue", lambda func, *args: enqueued.append((func, *args)))
    call = Call.objects.create(account=number.account, routing_number=number, vonage_uuid="vm-call",
                               called_number=number.phone_number, state=Call.State.ENDED)
    now = timezone.now()
    voicemail = Voicemail.objects.create(call=call, recording_url="https://api.nexmo.com/v1/files/x", download_due_at=now)
    locked, release = threading.Event(), threading.Event()

    def other_sweeper():  # holds the voicemail's row lock, as a sweeper in the middle of handing it out would
        try:
            with transaction.atomic():
                Voicemail.objects.select_for_update().get(pk=voicemail.pk)
                locked.set()
                release.wait(60)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_sweeper)
    thread.start()
    assert locked.wait(60)
    try:
        assert recordings.sweep_downloads(now) == 0  # skipped, not waited for
    finally:
        release.set()
        thread.join(60)
    assert recordings.sweep_downloads(now) == 1
    assert recordings.sweep_downloads(now) == 0  # leased: not handed out again before DOWNLOAD_LEASE
    assert enqueued == [("download_voicemail", voicemail.pk)]
    voicemail.refresh_from_db()
    assert voicemail.download_due_at == now + recordings.DOWNLOAD_LEASE
