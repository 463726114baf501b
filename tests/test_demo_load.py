"""The demo: manage.py load_demo and escalation.demo.load_demo_escalation, both safe to run again."""
import datetime as dt
import io

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from escalation.demo import load_demo_escalation
from escalation.models import Account, ContactMethod, User


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def row_counts():
    return {model.__name__: model.objects.count() for model in apps.get_app_config("escalation").get_models()}


def load_demo(*args):
    out = io.StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


def test_load_demo_reset_twice_changes_nothing(db, debug):
    first = load_demo("--reset")
    counts = row_counts()
    second = load_demo("--reset")

    assert row_counts() == counts
    assert counts["Account"] == 1 and counts["OnCallSchedule"] == 2 and counts["EscalationPolicy"] == 2
    assert counts["User"] == 7 and counts["RuleUser"] == 3 and counts["LayerRestriction"] == 5
    assert first == second
    assert "Django admin: /admin/" in first and "admin / demo-password" in first and "demo / demo-password" in first


def test_load_demo_logins_work(client, db, debug):
    load_demo()
    admin, owner = User.objects.get(username="admin"), User.objects.get(username="demo")

    assert admin.is_support_staff and admin.is_superuser
    assert owner.account.name == "Demo Company" and owner.role == User.Role.OWNER and not owner.is_staff
    assert client.post("/accounts/login/", {"username": "admin", "password": "demo-password"}).status_code == 302
    assert client.get("/admin/escalation/oncallschedule/").status_code == 200


def test_load_demo_reset_resets_the_demo_password(db, debug):
    load_demo()
    admin = User.objects.get(username="admin")
    admin.set_password("something else")
    admin.save()

    load_demo("--reset")

    assert User.objects.get(username="admin").check_password("demo-password")


def test_load_demo_keeps_an_owners_edits(db, debug):
    load_demo()
    account = Account.objects.get(slug="demo")
    account.name = "Renamed by the owner"
    account.save()
    owner = User.objects.get(username="demo")
    owner.set_password("the owner's own password")
    owner.save()
    counts = row_counts()

    output = load_demo()

    assert "not loaded" in output and "make demo-reset" in output
    assert Account.objects.get(slug="demo").name == "Renamed by the owner"
    assert User.objects.get(username="demo").check_password("the owner's own password")
    assert row_counts() == counts


def test_load_demo_leaves_a_database_with_other_data_alone(db, debug, acme):
    output = load_demo()

    assert "not loaded" in output
    assert not Account.objects.filter(slug="demo").exists()


def test_load_demo_reset_restores_the_demo(db, debug):
    load_demo()
    Account.objects.filter(slug="demo").update(name="Renamed by the owner")

    load_demo("--reset")

    assert Account.objects.get(slug="demo").name == "Demo Company"


def test_load_demo_refuses_without_debug(db, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        load_demo()
    assert not Account.objects.exists()


def test_load_demo_forced_without_debug_prints_a_random_password(db, settings):
    settings.DEBUG = False

    output = load_demo("--force")

    password = output.split("support staff: admin / ")[1].split()[0]
    assert password != "demo-password" and len(password) >= 12
    assert User.objects.get(username="admin").check_password(password)


def test_demo_phone_numbers_are_valid_e164(acme):
    load_demo_escalation(acme)
    phones = ContactMethod.objects.filter(kind="phone", user__account=acme)

    assert phones.count() == 5
    assert {p.value[:3] for p in phones} == {"+49", "+14", "+12"}
    for phone in phones:
        phone.full_clean()


def test_demo_policies_dial_the_people_on_call(acme):
    demo = load_demo_escalation(acme)
    critical, support = demo["policies"]["Critical infrastructure"], demo["policies"]["Customer support"]
    ben, david, emily = (User.objects.get(username=f"acme-{name}") for name in ("ben", "david", "emily"))

    # Monday 2 February 10:00 Berlin: week 5 of the weekly rotation (Ben), day 29 of the daily one (David).
    assert critical.users_at(utc(2026, 2, 2, 9)) == [ben, david]
    # Saturday: the business-hours schedule has nobody on call and is skipped.
    assert critical.users_at(utc(2026, 2, 7, 12)) == [ben]
    assert support.users_at(utc(2026, 2, 7, 12)) == [emily, ben]
    assert critical.repeat_count == 1 and [r.escalation_timeout_minutes for r in critical.rules.all()] == [5, 10]
