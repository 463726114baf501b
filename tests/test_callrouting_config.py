"""Configuration of routing numbers: validation, the alert source, the greeting preview, admin and demo.

Acme owns the number; Globex's policies must not be selectable for it. Only support staff (sam) use the admin."""
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from callrouting import phrases
from callrouting.demo import load_demo_routing
from callrouting.models import Call, RoutingNumber, RoutingOption
from incidents.models import AlertSource
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory, policy_of
from tests.factories import PolicyFactory

pytestmark = pytest.mark.django_db


def test_phone_number_is_normalised_to_e164(acme):
    number = RoutingNumber(account=acme, phone_number="+49 (30) 901-820", name="Acme")
    number.full_clean()
    assert number.phone_number == "+4930901820"


@pytest.mark.parametrize("value", ["030 901820", "hello", "+49 30", ""])
def test_invalid_phone_numbers_are_refused(acme, value):
    with pytest.raises(ValidationError) as error:
        RoutingNumber(account=acme, phone_number=value, name="Acme").full_clean()
    assert "phone_number" in error.value.message_dict


def test_phone_number_is_unique(acme, globex):
    RoutingNumberFactory(account=acme, phone_number="+4930901820")
    with pytest.raises(ValidationError):
        RoutingNumber(account=globex, phone_number="+49 30 901820", name="Other").full_clean()


def test_alert_source_created_with_number_and_renamed_with_it(acme):
    number = RoutingNumberFactory(account=acme, name="Acme support")
    source = number.alert_source
    assert source.name == "Acme support" and source.account == acme
    number.name = "Acme helpdesk"
    number.save()
    source.refresh_from_db()
    assert source.name == "Acme helpdesk" and AlertSource.objects.count() == 1


def test_digit_unique_per_number(acme):
    option = RoutingOptionFactory(routing_number=RoutingNumberFactory(account=acme), digit=1)
    duplicate = RoutingOption(routing_number=option.routing_number, digit=1, label="Other", escalation_policy=option.escalation_policy)
    with pytest.raises(ValidationError):
        duplicate.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    # Another number may use the same digit.
    RoutingOptionFactory(routing_number=RoutingNumberFactory(account=acme), digit=1)


@pytest.mark.parametrize("digit", [0, 10])
def test_digit_is_1_to_9(acme, digit):
    number = RoutingNumberFactory(account=acme)
    with pytest.raises(ValidationError):
        RoutingOption(routing_number=number, digit=digit, label="X", escalation_policy=PolicyFactory(account=acme)).full_clean()


def test_option_policy_must_belong_to_the_numbers_account(acme, globex):
    number = RoutingNumberFactory(account=acme)
    option = RoutingOption(routing_number=number, digit=1, label="X", escalation_policy=PolicyFactory(account=globex))
    with pytest.raises(ValidationError) as error:
        option.full_clean()
    assert "escalation_policy" in error.value.message_dict


def test_preview_in_english(acme):
    number = RoutingNumberFactory(account=acme, greeting="Welcome to Acme.")
    RoutingOptionFactory(routing_number=number, digit=2, position=2, label="Billing")
    RoutingOptionFactory(routing_number=number, digit=1, position=1, label="Outage")
    assert number.preview_greeting() == (
        "Welcome to Acme. Press 1 or say Outage for Outage. Press 2 or say Billing for Billing."
    )


def test_preview_in_german(acme):
    number = RoutingNumberFactory(account=acme, language="de-DE", greeting="Willkommen bei Acme.")
    RoutingOptionFactory(routing_number=number, digit=1, label="Störung")
    RoutingOptionFactory(routing_number=number, digit=2, label="Rechnung")
    assert number.preview_greeting() == (
        "Willkommen bei Acme. Drücken Sie die 1 oder sagen Sie Störung für Störung. "
        "Drücken Sie die 2 oder sagen Sie Rechnung für Rechnung."
    )


def test_preview_greeting_only_and_single_option(acme):
    number = RoutingNumberFactory(account=acme, greeting="Press 1 for outages, 2 for billing.", greeting_only=True)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage")
    RoutingOptionFactory(routing_number=number, digit=2, label="Billing")
    assert number.preview_greeting() == "Press 1 for outages, 2 for billing."
    single = RoutingNumberFactory(account=acme, greeting="Hello.")
    RoutingOptionFactory(routing_number=single, digit=1, label="Support")
    assert single.preview_greeting() == "Hello."


def test_every_language_has_every_phrase():
    keys = set(phrases.PHRASES["en-US"])
    for code, _ in phrases.LANGUAGE_CHOICES:
        assert set(phrases.PHRASES[code]) == keys, code
        for key in keys:
            phrases.phrase(code, key, digit=1, label="x", name="n", caller="1 2")


def test_admin_pages_for_support_staff(client, sam, acme, alice):
    number = RoutingNumberFactory(account=acme)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice))
    call = Call.objects.create(account=acme, routing_number=number, vonage_uuid="u-1", called_number=number.phone_number)
    client.force_login(sam)
    for url in [
        "/admin/callrouting/routingnumber/",
        "/admin/callrouting/routingnumber/add/",
        f"/admin/callrouting/routingnumber/{number.pk}/change/",
        "/admin/callrouting/call/",
        f"/admin/callrouting/call/{call.pk}/change/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(f"/admin/callrouting/routingnumber/{number.pk}/change/").content.decode()
    assert "Press 1 or say Outage for Outage" not in page  # a single option has no menu
    assert f"/admin/incidents/alertsource/{number.alert_source_id}/change/" in page
    assert client.get("/admin/callrouting/call/add/").status_code == 403


def test_admin_hidden_from_account_users(client, alice):
    alice.is_staff = True
    alice.save()
    client.force_login(alice)
    assert client.get("/admin/callrouting/routingnumber/").status_code in (302, 403)


def test_demo_routing_is_idempotent(acme):
    PolicyFactory(account=acme, name="Critical infrastructure")
    PolicyFactory(account=acme, name="Customer support")
    load_demo_routing(acme)
    demo = load_demo_routing(acme)
    number = RoutingNumber.objects.get()
    assert list(demo["routing_numbers"].values()) == [number]
    assert number.phone_number == "+4930901820" and number.voicemail_enabled
    assert [(o.digit, o.label, o.escalation_policy.name, o.simultaneous) for o in number.options.all()] == [
        (1, "Outage", "Critical infrastructure", False),
        (2, "Billing", "Customer support", True),
    ]
    # Support hours Mon-Fri 09:00-17:00 in Berlin: the menu inside them, voicemail with auto raise outside.
    assert number.support_hours_enabled and number.timezone == "Europe/Berlin" and number.auto_raise
    assert [str(r) for r in number.own_calendar().ranges.all()] == [
        f"{day} 09:00-17:00" for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
    ]
    import datetime as dt
    import zoneinfo

    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    assert number.target_at(dt.datetime(2026, 12, 1, 10, 0, tzinfo=berlin)).kind == "menu"
    assert number.target_at(dt.datetime(2026, 12, 1, 18, 0, tzinfo=berlin)).kind == "voicemail"
    assert number.target_at(dt.datetime(2026, 12, 5, 10, 0, tzinfo=berlin)).kind == "voicemail"
    load_demo_routing(acme, support_hours=False)
    assert not RoutingNumber.objects.get().support_hours_enabled


def test_demo_routing_without_policies_creates_one(acme):
    load_demo_routing(acme)
    assert {o.escalation_policy.name for o in RoutingOption.objects.all()} == {"Demo call routing"}
