"""Outbound messages for a number's incidents: the number's alert source carries alert actions like any alert
source, and their payload (delivered here to a local HTTP server) carries the call: number, option, caller, the
agent who accepted, the call's duration, and the voicemail link and transcript.

Acme's number "Acme support": "Outage" calls Alice. Outside support hours callers go to voicemail."""
import datetime as dt

import pytest

from callrouting.models import Call, Target, Voicemail
from incidents.models import AlertAction
from incidents.services import resolve_incident
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    set_support_hours,
    the_call,
)
from tests.incidents_factories import AlertActionFactory
from tests.test_incidents_actions import SLACK_HOST, receiver  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def number(acme, alice, media):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", name="Acme support", voicemail_enabled=True)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice))
    RoutingOptionFactory(routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, alice))
    return number


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def test_webhook_action_receives_the_call_of_an_answered_call(phone, number, alice, receiver):
    AlertActionFactory(alert_source=number.alert_source, name="Ops hook", kind=AlertAction.Kind.WEBHOOK, url=receiver.url("/hook"))
    response, uuid = phone.dial(number.phone_number, caller="+4917612345678")
    phone.press(response.json(), "1")
    phone.agent_press(phone.leg(alice), "1")
    Call.objects.filter(vonage_uuid=uuid).update(connected_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=95))
    phone.hang_up(uuid)

    created, accepted, resolved = receiver.bodies("/hook")
    assert [created["event"], accepted["event"], resolved["event"]] == ["incident.created", "incident.accepted", "incident.resolved"]
    assert created["extra"]["call"] == {
        "number": "+4930901820",
        "number_name": "Acme support",
        "option": {"digit": 1, "label": "Outage"},
        "caller": "+4917612345678",
        "accepted_by": None,
        "duration_seconds": None,
        "outcome": None,
        "in_support_hours": None,
        "voicemail_url": None,
        "transcript": None,
    }
    assert accepted["extra"]["call"]["accepted_by"] == {"id": alice.pk, "name": str(alice)}
    call = resolved["extra"]["call"]
    assert call["accepted_by"] == {"id": alice.pk, "name": str(alice)} and call["outcome"] == "answered"
    assert 95 <= call["duration_seconds"] <= 100
    assert resolved["incident"]["alert_source"]["name"] == "Acme support"


def test_voicemail_link_and_transcript_in_the_payload(phone, number, alice, receiver, vonage_api, client):
    AlertActionFactory(alert_source=number.alert_source, name="Ops hook", url=receiver.url("/hook"),
                       on_created=False, on_accepted=False, on_escalated=False, on_voicemail=False)
    AlertActionFactory(alert_source=number.alert_source, name="Slack", kind=AlertAction.Kind.SLACK, url=receiver.url("/slack", SLACK_HOST),
                       on_created=False, on_accepted=False, on_escalated=False, on_voicemail=False)
    number.out_of_hours_target = Target.VOICEMAIL
    set_support_hours(number, inside=False)
    response, uuid = phone.dial(number.phone_number)
    record = next(action for action in response.json() if action["action"] == "record")
    phone.post(record["eventUrl"][0], {"recording_url": vonage_api.add_recording(b"ID3-the-message"), "recording_uuid": "r1"})
    phone.post(record["transcription"]["eventUrl"][0], {"transcript": "Please call back about invoice 42."})
    call = the_call(uuid)
    with phone.capture(execute=True):
        resolve_incident(call.incident_id, alice)

    (resolved,) = receiver.bodies("/hook")
    payload = resolved["extra"]["call"]
    voicemail = Voicemail.objects.get(call=call)
    assert payload["voicemail_url"].startswith(f"https://callrouting.test/voicemail/{voicemail.token}.")
    assert payload["transcript"] == "Please call back about invoice 42."
    # Sent to voicemail by the flow's support hours: no routing option was chosen (issue 17).
    assert payload["in_support_hours"] is False and payload["option"] is None
    # The signed link serves the stored recording; the voicemail's token alone finds nothing.
    response = client.get(payload["voicemail_url"].replace("https://callrouting.test", ""))
    assert response.status_code == 200 and response["Content-Type"] == "audio/mpeg"
    assert b"".join(response.streaming_content) == b"ID3-the-message"
    assert client.get(f"/voicemail/{voicemail.token}.mp3").status_code == 404
    # Slack gets its message built from the same payload.
    (slack,) = receiver.bodies("/slack")
    assert slack["text"].startswith("Incident resolved")


def test_incidents_not_from_call_routing_have_no_call(acme):
    from incidents.actions import incident_payload
    from incidents.services import create_incident
    from tests.incidents_factories import AlertSourceFactory

    incident = create_incident(alert_source=AlertSourceFactory(account=acme), summary="Disk full")
    assert "call" not in incident_payload(incident, "created")["extra"]
