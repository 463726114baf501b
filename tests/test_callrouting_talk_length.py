"""Talk text is never cut: Vonage cuts a talk action's text after 1,500 characters, so a greeting with its menu
(or a mailbox greeting) longer than that is spoken as several talk actions, all interruptible, before the
input. The greeting has a maximum length, refused with a field error in the settings form and the API; the
preview shows exactly the words the call speaks.

Personas: alice owns Acme and edits its number.
"""
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from callrouting import ncco
from callrouting.configuration import create_api_token
from callrouting.models import GREETING_MAX_CHARS, RoutingNumber
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory, inline_tasks, phone  # noqa: F401

pytestmark = pytest.mark.django_db

# A greeting just under the longest allowed length, in sentences of 51 characters.
LONG_GREETING = " ".join(f"This is a long sentence of the greeting, number {i:02d}." for i in range(19))


@pytest.fixture
def long_number(acme):
    """Acme's number with the longest greeting and nine options with long labels (about 2,300 characters)."""
    number = RoutingNumberFactory(account=acme, phone_number="+4930901870", greeting=LONG_GREETING)
    for digit in range(1, 10):
        RoutingOptionFactory(routing_number=number, digit=digit, label=f"Topic {digit} " + "x" * 40)
    return number


def talks(ncco_actions):
    return [action for action in ncco_actions if action["action"] == "talk"]


def test_a_long_greeting_and_menu_is_spoken_whole_in_several_talk_actions(phone, long_number):
    assert GREETING_MAX_CHARS - 52 < len(LONG_GREETING) <= GREETING_MAX_CHARS
    preview = long_number.preview_greeting()
    assert len(preview) > ncco.TALK_MAX_CHARS

    response, uuid = phone.dial(long_number.phone_number)
    actions = response.json()
    spoken = talks(actions)

    assert len(spoken) == 2 and all(len(action["text"]) <= ncco.TALK_MAX_CHARS for action in spoken)
    assert all(action["bargeIn"] is True for action in spoken)
    assert actions[-1]["action"] == "input" and actions[:-1] == spoken
    # The call says exactly the words of the preview, and splits between sentences.
    assert " ".join(action["text"] for action in spoken) == preview
    assert spoken[0]["text"].endswith(".")
    assert "Press 9 or say Topic 9" in spoken[-1]["text"]


def test_a_long_mailbox_greeting_is_spoken_whole(phone, long_number):
    # Longer than the settings allow now: a mailbox greeting saved before the limit existed.
    RoutingNumber.objects.filter(pk=long_number.pk).update(
        voicemail_only=True, voicemail_greeting=LONG_GREETING + " " + LONG_GREETING
    )
    RoutingNumber.objects.get(pk=long_number.pk).save()  # the next settings change publishes it into the flow
    response, uuid = phone.dial(long_number.phone_number)
    actions = response.json()
    spoken = talks(actions)
    assert " ".join(action["text"] for action in spoken[:-1]) == LONG_GREETING + " " + LONG_GREETING
    assert all(len(action["text"]) <= ncco.TALK_MAX_CHARS for action in spoken)
    assert [action["action"] for action in actions][-2:] == ["record", "talk"]


@pytest.mark.parametrize("text, parts", [
    ("Short.", ["Short."]),
    ("a" * 1500, ["a" * 1500]),
    ("a" * 1499 + " b", ["a" * 1499, "b"]),
    ("a" * 1000 + ". " + "b" * 600, ["a" * 1000 + ".", "b" * 600]),
    ("a" * 1000 + " " + "b" * 600, ["a" * 1000, "b" * 600]),
    ("w" * 1600, ["w" * 1500, "w" * 100]),  # one word longer than a talk action: cut inside it, nothing lost
])
def test_talk_parts_keep_every_word_and_the_limit(text, parts):
    found = ncco.talk_parts(text)
    assert all(len(part) <= ncco.TALK_MAX_CHARS for part in found)
    assert found == parts


def test_talk_parts_rejoin_to_the_text():
    text = " ".join(f"Sentence {i} says something? Yes; it does!" for i in range(200))
    parts = ncco.talk_parts(text)
    assert len(parts) > 3 and " ".join(parts) == text
    assert all(len(part) <= ncco.TALK_MAX_CHARS and part[-1] in ".?!;" for part in parts)


# --- the maximum length -------------------------------------------------------------------------------------------


def test_the_settings_form_refuses_a_greeting_over_the_maximum(client, alice, long_number):
    client.force_login(alice)
    data = {
        "general-name": long_number.name, "general-language": long_number.language,
        "general-greeting": "x" * (GREETING_MAX_CHARS + 1), "general-ringing_timeout": long_number.ringing_timeout,
    }
    response = client.post(reverse("web:number-general", args=[long_number.pk]), data)
    assert response.status_code == 400
    form = next(s for s in response.context["sections"] if s["section"].slug == "general")["form"]
    assert form.errors["greeting"] == [f"Ensure this value has at most {GREETING_MAX_CHARS} characters (it has 1001)."]
    long_number.refresh_from_db()
    assert long_number.greeting == LONG_GREETING


def test_the_api_refuses_a_greeting_over_the_maximum(alice, long_number):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {create_api_token(alice, 'greeting check')[1]}")
    url = f"/api/numbers/{long_number.pk}/"
    response = api.patch(url, {"greeting": "x" * (GREETING_MAX_CHARS + 1)}, format="json")
    assert response.status_code == 400
    assert response.json() == {"greeting": [f"Ensure this field has no more than {GREETING_MAX_CHARS} characters."]}
    response = api.patch(url, {"voicemail_greeting": "x" * (GREETING_MAX_CHARS + 1)}, format="json")
    assert response.status_code == 400 and "voicemail_greeting" in response.json()
    assert api.patch(url, {"greeting": "x" * GREETING_MAX_CHARS}, format="json").status_code == 200
