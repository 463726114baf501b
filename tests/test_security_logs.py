"""The logs hold no secrets and no content (callrouting/log_privacy.py): a full call, from the answer webhook to the
agent's acceptance, a voicemail with its transcript, a forged webhook and a fallback, is logged at DEBUG and none of
the caller's number, the per-call tokens, the JWTs or the transcript appear; the caller's number shows as its last
four digits, and in full only with LOG_MASK_NUMBERS off."""
import json
import logging

import pytest

from callrouting import log_privacy
from callrouting.models import AgentLeg, Call, Target, Voicemail
from incidents.models import Notification
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    set_support_hours,
)

pytestmark = pytest.mark.django_db

CALLER = "+4917612345678"
TRANSCRIPT = "The password of the billing server is swordfish."


@pytest.fixture
def number(acme, alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", voicemail_enabled=True)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice))
    RoutingOptionFactory(routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, alice))
    return number


def full_call(phone, number, alice, vonage_api):
    """An answered call, a voicemail with a transcript, a forged webhook and a fallback, all from CALLER."""
    response, uuid = phone.dial(number.phone_number, caller=CALLER)
    phone.press(response.json(), "1")
    phone.agent_press(phone.leg(alice), "1")
    phone.hang_up(uuid)

    number.out_of_hours_target = Target.VOICEMAIL
    set_support_hours(number, inside=False)
    response, uuid = phone.dial(number.phone_number, caller=CALLER)
    record = next(action for action in response.json() if action["action"] == "record")
    phone.post(record["eventUrl"][0], {"recording_url": vonage_api.add_recording(b"ID3-msg"), "recording_uuid": "r1"})
    phone.post(record["transcription"]["eventUrl"][0], {"transcript": TRANSCRIPT})
    # A webhook without a valid signature on a per-call path, and a fallback naming a per-call URL.
    phone.client.post(record["eventUrl"][0].split("callrouting.test")[-1] + "?sig=abc", data=b"{}",
                      content_type="application/json", HTTP_AUTHORIZATION="Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl")
    phone.post("/vonage/fallback", {"reason": "timeout", "original_request": {"url": record["eventUrl"][0]}})


def secrets_of_the_call():
    tokens = [*Call.objects.values_list("token", flat=True), *AgentLeg.objects.values_list("token", flat=True),
              *Voicemail.objects.values_list("token", flat=True), *Notification.objects.values_list("token", flat=True)]
    assert tokens and all(tokens)
    return tokens


def logged(caplog):
    return "\n".join([caplog.text, *(record.getMessage() for record in caplog.records)])


def test_a_full_call_leaves_no_number_token_jwt_or_transcript_in_the_logs(phone, number, alice, vonage_api, caplog):
    caplog.set_level(logging.DEBUG)
    full_call(phone, number, alice, vonage_api)
    text = logged(caplog)
    assert "***5678" in text  # the caller's number was logged, masked
    assert CALLER.lstrip("+") not in text and "9017612345678"[-9:] not in text
    for token in secrets_of_the_call():
        assert token not in text
    assert "eyJ" not in text and "c2lnbmF0dXJl" not in text
    assert "swordfish" not in text
    assert "sig=abc" not in text
    assert Voicemail.objects.get().transcript == TRANSCRIPT  # the transcript was received, only not logged


def test_numbers_are_logged_in_full_with_masking_off(phone, number, alice, vonage_api, caplog, settings):
    settings.LOG_MASK_NUMBERS = False
    caplog.set_level(logging.DEBUG)
    full_call(phone, number, alice, vonage_api)
    text = logged(caplog)
    assert CALLER.lstrip("+") in text
    for token in secrets_of_the_call():
        assert token not in text  # tokens go whatever the setting
    assert "eyJ" not in text and "swordfish" not in text


@pytest.mark.parametrize(
    "message, args, scrubbed",
    [
        ("call from %s", ("+4917612345678",), "call from ***5678"),
        ("to=%s", ("4930901820",), "to=***1820"),
        ("body %s", (json.dumps({"to": [{"type": "phone", "number": "4917612345678"}]}),),
         'body {"to": [{"type": "phone", "number": "***5678"}]}'),
        ("call=%s leg=%s", ("3f1c2a9e-5b7d-4e8f-9a6b-1c2d3e4f5a6b", 1234567), "call=3f1c2a9e-5b7d-4e8f-9a6b-1c2d3e4f5a6b leg=1234567"),
        ("path=%s", ("/vonage/call/Abc123_-Abc123_-Abc123_-Abc123_-/input",), "path=/vonage/call/[token]/input"),
        ("url=%s", ("https://callrouting.test/voicemail/Abc123_-Abc123_-Abc123_-Abc1.mp3?e=1&s=x",),
         "url=https://callrouting.test/voicemail/[token].mp3?[query]"),
        ("headers %s", ({"Authorization": "Basic dXNlcjpwYXNz"},), "headers {'Authorization': 'Basic [redacted]'}"),
        ("jwt %s", ("eyJhbGciOiJSUzI1NiJ9.eyJpYXQiOjF9.c2ln",), "jwt [jwt]"),
    ],
)
def test_scrubbed_messages(message, args, scrubbed):
    record = logging.LogRecord("callrouting", logging.INFO, __file__, 1, message, args, None)
    assert log_privacy.scrub_record(record).getMessage() == scrubbed


def test_tracebacks_are_scrubbed_too(caplog):
    caplog.set_level(logging.ERROR)
    try:
        raise ValueError("no route for +4917612345678 at /vonage/leg/Abc123_-Abc123_-Abc123_-Abc123_-/event")
    except ValueError:
        logging.getLogger("callrouting.calls.webhooks").exception("failed")
    assert "***5678" in caplog.text and "[token]" in caplog.text
    assert "4917612345678" not in caplog.text and "Abc123_-Abc123_-Abc123_-Abc123_-" not in caplog.text
