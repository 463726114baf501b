"""Voicemail-only mode: no greeting, no menu, no agents: every call goes straight to the recording; the first
routing option's escalation policy gets the incident once the recording and transcript are attached.

Acme's number "Acme support" has "Outage" (Alice) and "Billing" (Bob); in voicemail-only mode nobody is dialled."""
import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from callrouting import advanced_forms
from callrouting.models import Call, Voicemail
from callrouting.tasks import sweep
from incidents.models import Incident, IncidentEvent
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def number(acme, alice, bob):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", greeting="Welcome to Acme.",
                                  voicemail_enabled=True, voicemail_only=True)
    number.outage = RoutingOptionFactory(routing_number=number, digit=1, position=1, label="Outage",
                                         escalation_policy=policy_of(acme, alice, name="Outage policy"))
    RoutingOptionFactory(routing_number=number, digit=2, position=2, label="Billing",
                         escalation_policy=policy_of(acme, bob, name="Billing policy"))
    return number


def escalations(incident):
    return incident.events.filter(kind=IncidentEvent.Kind.ESCALATED, message__startswith="Escalating").count()


def test_every_call_goes_straight_to_the_recording(phone, number, vonage_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    response, uuid = phone.dial(number.phone_number)
    notify, record, thanks = response.json()
    # No greeting, no menu, no mailbox greeting: the recording starts at once (an automated caller's message
    # is not clipped).
    assert notify["action"] == "notify"
    assert record["action"] == "record" and record["beepStart"] is True
    assert record["transcription"]["language"] == "en-US"
    assert thanks["text"] == "Thank you for your message. Goodbye."
    call = the_call(uuid)
    assert call.state == Call.State.VOICEMAIL and phone.dialled() == []
    incident = call.incident
    assert incident.escalation_policy.name == "Outage policy" and incident.escalation_suppressed
    assert incident.summary == "Voicemail for Acme support from +4917612345678"  # issue 17
    assert escalations(incident) == 0

    phone.post(record["eventUrl"][0], {"recording_url": vonage_api.add_recording(b"ID3-recording"), "recording_uuid": "r1",
                                       "start_time": "2026-11-27T10:00:00Z", "end_time": "2026-11-27T10:00:31Z"})
    assert escalations(incident) == 0  # waits for the transcript
    phone.post(record["transcription"]["eventUrl"][0], {"transcript": "Server room is flooding."})
    voicemail = Voicemail.objects.get(call=call)
    assert voicemail.incident == incident and voicemail.recording.read() == b"ID3-recording"
    assert voicemail.transcript == "Server room is flooding." and voicemail.duration == 31
    incident = Incident.objects.get(pk=incident.pk)
    assert escalations(incident) == 1 and not incident.escalation_suppressed
    assert any("Voicemail transcript: Server room is flooding." in m for m in incident.events.values_list("message", flat=True))
    phone.hang_up(uuid)
    assert the_call(uuid).outcome == Call.Outcome.VOICEMAIL


def test_mailbox_greeting_text_is_read_before_the_beep(phone, number):
    number.voicemail_greeting = "Leave a message."
    number.save()
    response, uuid = phone.dial(number.phone_number)
    assert [a["action"] for a in response.json()] == ["talk", "notify", "record", "talk"]
    assert response.json()[0]["text"] == "Leave a message."
    assert "Welcome to Acme." not in str(response.json())


def test_caller_hanging_up_without_a_message_escalates_at_once(phone, number):
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    assert escalations(call.incident) == 0 and call.voicemail_due_at
    phone.hang_up(uuid)
    call.refresh_from_db()
    assert call.outcome == Call.Outcome.NO_MESSAGE and call.voicemail_due_at is None
    assert escalations(call.incident) == 1
    assert "Call ended: hung up before leaving a message." in call.incident.events.values_list("message", flat=True)
    assert sweep(now=timezone.now() + dt.timedelta(hours=1))["voicemails"] == 0
    assert escalations(call.incident) == 1


def test_caller_hanging_up_after_speaking_leaves_a_voicemail(phone, number, vonage_api, settings, tmp_path):
    """The recording started (notify), the caller spoke and hung up; Vonage's record webhook comes after that."""
    settings.MEDIA_ROOT = tmp_path
    response, uuid = phone.dial(number.phone_number)
    ncco = response.json()
    phone.reach_notify(ncco)
    phone.hang_up(uuid)
    call = the_call(uuid)
    assert call.outcome == Call.Outcome.VOICEMAIL and escalations(call.incident) == 0
    record = ncco[1]
    phone.post(record["eventUrl"][0], {"recording_url": vonage_api.add_recording(b"ID3-recording"), "recording_uuid": "r1",
                                       "start_time": "2026-11-27T10:00:00Z", "end_time": "2026-11-27T10:00:09Z"})
    phone.post(record["transcription"]["eventUrl"][0], {"transcript": "Call me back."})
    assert Voicemail.objects.get(call=call).recording.read() == b"ID3-recording"
    assert escalations(call.incident) == 1
    assert the_call(uuid).outcome == Call.Outcome.VOICEMAIL
    assert "Call ended: hung up before leaving a message." not in call.incident.events.values_list("message", flat=True)


def test_voicemail_only_without_options_uses_the_alert_source(phone, acme):
    number = RoutingNumberFactory(account=acme, voicemail_enabled=True, voicemail_only=True)
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    assert call.state == Call.State.VOICEMAIL and call.incident.alert_source == number.alert_source


def test_voicemail_only_needs_voicemail(number):
    number.voicemail_enabled = False
    with pytest.raises(ValidationError) as error:
        number.full_clean()
    assert error.value.message_dict["voicemail_only"] == ["Voicemail-only mode records every call: turn voicemail on."]
    form = advanced_forms.VoicemailOnlyForm({"voicemail_only": "on"}, instance=number)
    assert not form.is_valid() and "voicemail_only" in form.errors


def test_turning_voicemail_off_names_the_field_the_form_shows(number):
    """The settings form of another section (voicemail) gets the error on its own field, not a crash."""
    from django import forms

    class VoicemailForm(forms.ModelForm):
        class Meta:
            model = type(number)
            fields = ["voicemail_enabled"]

    form = VoicemailForm({}, instance=number)
    assert not form.is_valid()
    assert form.errors["voicemail_enabled"] == ["Voicemail-only mode records every call: turn voicemail on."]
