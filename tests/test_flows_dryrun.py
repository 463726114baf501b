"""The dry run against the database (DatabaseWorld) and the number page's "Callers hear" and "Who would be called
right now", which are dry runs of the number's flow: every mode, support hours at a chosen time, audio greetings,
one option, users without a phone number left out, a fixed number of queries."""
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from callrouting import advanced, audio
from callrouting.flows import compiler, dryrun
from callrouting.flows.models import SupportCalendar
from callrouting.flows.world import DatabaseWorld
from callrouting.models import NumberAudio, SupportHoursRange
from callrouting.web.numbers import flow_preview
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory, policy_of
from tests.factories import UserFactory
from tests.flow_documents import EXTERNAL, document, route
from tests.settings_world import wav_bytes

MONDAY_10 = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone.utc)
MONDAY_20 = dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.timezone.utc)
MENU = "Welcome to Acme. Press 1 or say Outage for Outage. Press 2 or say Billing for Billing."


@pytest.fixture
def dan(acme):
    """A responder of Acme without a phone number: never in a list of people to ring."""
    return UserFactory(account=acme, username="dan", first_name="Dan")


@pytest.fixture
def number(acme, alice, bob, dan):
    number = RoutingNumberFactory(account=acme)
    RoutingOptionFactory(routing_number=number, digit=1, position=0, label="Outage",
                         escalation_policy=policy_of(acme, alice, dan, bob, name="Outage policy"))
    RoutingOptionFactory(routing_number=number, digit=2, position=1, label="Billing", simultaneous=True,
                         escalation_policy=policy_of(acme, bob, name="Billing policy"))
    return number


def people(rows):
    return [(row["key"], row["name"], row["style"], row["people"]) for row in rows]


def test_menu_mode(number):
    heard, rows = flow_preview(number, MONDAY_10)
    assert heard == MENU
    assert people(rows) == [("1", "Outage", "one after another", ["Alice", "Bob"]),  # Dan has no phone
                            ("2", "Billing", "all at once", ["Bob"])]


def test_a_single_option_plays_the_greeting_then_holds(number):
    number.options.get(digit=2).delete()
    heard, rows = flow_preview(number, MONDAY_10)
    assert heard == "Welcome to Acme. Connecting you, please hold. (hold music)"
    assert people(rows) == [("", "Outage", "one after another", ["Alice", "Bob"])]


def test_voicemail_only_mode(number):
    number.voicemail_enabled, number.voicemail_only, number.voicemail_greeting = True, True, "Leave a message."
    number.save()
    heard, rows = flow_preview(number, MONDAY_10)
    assert heard == ("Leave a message. (beep: the message is recorded, at most 120 s) "
                     "Thank you for your message. Goodbye.")
    assert rows == []


def test_support_hours_decide_at_the_time_asked(number, acme):
    calendar = SupportCalendar.objects.create(account=acme, name="Office", timezone="UTC")
    SupportHoursRange.objects.create(calendar=calendar, weekday=0, start=dt.time(9), end=dt.time(17))
    number.support_calendar, number.support_hours_enabled, number.voicemail_enabled = calendar, True, True
    number.out_of_hours_target = "voicemail"
    number.save()
    assert flow_preview(number, MONDAY_10)[0] == MENU
    heard, rows = flow_preview(number, MONDAY_20)
    assert heard.startswith("(beep: the message is recorded") and rows == []


def test_a_greeting_recording_replaces_the_spoken_greeting_and_menu(number):
    upload = io.BytesIO(wav_bytes())
    upload.name = "welcome.wav"
    advanced.store_audio(number, NumberAudio.Kind.GREETING, audio.prepare(upload, "greeting"))
    heard, _ = flow_preview(number, MONDAY_10)
    assert heard == "audio: welcome.wav"


def test_dry_run_through_the_database_world(number, acme):
    doc = compiler.compile_number(number)
    run = dryrun.dry_run(doc, at=MONDAY_10, caller="+4915550000100", inputs=["say:outage", "nobody_answers"],
                         world=DatabaseWorld(acme.pk), number_name=number.name)
    assert [(s["event"], s["node"]) for s in run.steps] == [
        ("call", "menu"), ("say:outage", "menu"), ("say:outage", "option-1"), ("nobody_answers", "option-1")]
    assert run.steps[2]["dials"] == [["Alice", "Bob"]] and run.ended
    assert run.steps[3]["effects"][-1] == {"type": "end_call", "outcome": "no_agent", "escalate": True}


def test_who_would_be_called_leaves_out_users_without_a_phone_and_other_accounts(acme, alice, dan, charlie, globex):
    theirs = policy_of(globex, charlie)
    doc = document("r", r=route([{"type": "user", "id": dan.pk}, {"type": "user", "id": alice.pk},
                                 {"type": "policy", "id": theirs.pk}, {"type": "user", "id": charlie.pk}, EXTERNAL]))
    targets = dryrun.who_would_be_called(doc, "r", MONDAY_10, DatabaseWorld(acme.pk))
    assert [(t.kind, t.label, t.phone) for t in targets] == [
        ("user", "Alice", "+4915110000001"), ("external", "Team lead mobile", "+441234567890")]


def test_the_database_world_makes_a_fixed_number_of_queries_however_many_routes(acme, alice, bob, carol):
    def queries(count):
        routes = {f"r{i}": route([{"type": "policy", "id": policy_of(acme, alice, bob, carol).pk}], no_answer=f"r{i + 1}")
                  for i in range(count)}
        routes[f"r{count - 1}"]["no_answer"] = None
        doc = document("r0", **routes)
        with CaptureQueriesContext(connection) as captured:
            rows = dryrun.routes_now(doc, MONDAY_10, DatabaseWorld(acme.pk))
        assert len(rows) == count and all(row["dials"] for row in rows)
        return len(captured)

    assert queries(1) == queries(6)


def test_the_page_and_its_preview_endpoint(client, alice, number):
    client.force_login(alice)
    page = client.get(reverse("web:number", args=[number.pk]))
    assert page.context["preview"] == MENU
    assert "<li>Alice</li>" in page.content.decode() and "<li>Dan</li>" not in page.content.decode()
    url = reverse("web:number-preview", args=[number.pk])
    only = client.post(url, {"greeting": "Hi.", "greeting_only": "on", "language": "en-US"}).json()
    assert only["text"] == "Hi."
    number.voicemail_enabled = number.voicemail_only = True
    number.save()
    assert client.post(url, {"greeting": "Hi.", "language": "en-US"}).json()["text"].startswith("(beep")
    assert "no call reaches a route right now (voicemail-only mode)" in client.get(reverse("web:number", args=[number.pk])).content.decode()
