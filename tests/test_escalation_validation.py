"""Validation of people, schedules and policies: each bad value is a field error through full_clean/ModelForms."""
import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.forms import modelform_factory

from escalation.models import ContactMethod, LayerMember, LayerRestriction, RuleSchedule, RuleUser, ScheduleOverride, User
from tests.factories import LayerFactory, RuleFactory, ScheduleFactory


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def field_errors(obj):
    with pytest.raises(ValidationError) as caught:
        obj.full_clean()
    return caught.value.message_dict


ContactMethodForm = modelform_factory(ContactMethod, fields=["user", "kind", "value", "label", "position"])


def test_bad_phone_number_is_a_field_error_of_the_form(bob):
    form = ContactMethodForm({"user": bob.pk, "kind": "phone", "value": "0151 not a number", "position": 0})

    assert not form.is_valid()
    assert "is not a phone number" in form.errors["value"][0]


def test_impossible_phone_number_is_refused(bob):
    assert "is not a valid phone number" in field_errors(ContactMethod(user=bob, kind="phone", value="+49 123"))["value"][0]


def test_phone_number_is_stored_in_e164(bob):
    form = ContactMethodForm({"user": bob.pk, "kind": "phone", "value": "+49 151 2345 6789", "position": 1})

    assert form.is_valid(), form.errors
    assert form.save().value == "+4915123456789"


def test_user_outside_support_staff_needs_an_account(db):
    assert "account" in field_errors(User(username="drifter", password="x"))


def test_override_ending_before_it_starts(acme, alice):
    schedule = ScheduleFactory(account=acme)
    override = ScheduleOverride(schedule=schedule, user=alice, start=utc(2026, 2, 4, 12), end=utc(2026, 2, 4, 11))

    assert field_errors(override)["end"] == ["The end must be after the start."]


def test_overlapping_override(acme, alice, bob):
    schedule = ScheduleFactory(account=acme)
    ScheduleOverride.objects.create(schedule=schedule, user=alice, start=utc(2026, 2, 4, 8), end=utc(2026, 2, 4, 12))
    overlapping = ScheduleOverride(schedule=schedule, user=bob, start=utc(2026, 2, 4, 11), end=utc(2026, 2, 4, 14))
    adjacent = ScheduleOverride(schedule=schedule, user=bob, start=utc(2026, 2, 4, 12), end=utc(2026, 2, 4, 14))

    assert "overlaps another one" in field_errors(overlapping)["start"][0]
    adjacent.full_clean()  # touching is not overlapping


def test_people_and_schedules_of_another_account_are_refused(acme, globex, alice, charlie):
    layer = LayerFactory(schedule=ScheduleFactory(account=acme), users=[alice])
    rule = RuleFactory(policy__account=acme, users=[alice])
    globex_schedule = ScheduleFactory(account=globex)

    assert "belongs to Globex" in field_errors(LayerMember(layer=layer, user=charlie))["user"][0]
    assert "user" in field_errors(ScheduleOverride(schedule=layer.schedule, user=charlie, start=utc(2026, 1, 1), end=utc(2026, 1, 2)))
    assert "user" in field_errors(RuleUser(rule=rule, user=charlie))
    assert "schedule" in field_errors(RuleSchedule(rule=rule, schedule=globex_schedule))
    LayerMember(layer=layer, user=alice, position=1).full_clean()


def test_restriction_validation(acme):
    layer = LayerFactory(schedule=ScheduleFactory(account=acme))

    always = LayerRestriction(layer=layer, weekday=None, start_time=dt.time(9), end_time=dt.time(9))
    seconds = LayerRestriction(layer=layer, weekday=0, start_time=dt.time(9, 0, 30), end_time=dt.time(17))
    assert "remove the restrictions" in field_errors(always)["end_time"][0]
    assert field_errors(seconds)["start_time"] == ["Use whole minutes (for example 09:00)."]
    # A whole Saturday and a window over midnight are fine.
    LayerRestriction(layer=layer, weekday=5, start_time=dt.time(0), end_time=dt.time(0)).full_clean()
    LayerRestriction(layer=layer, weekday=4, start_time=dt.time(22), end_time=dt.time(6)).full_clean()


def test_layer_end_date_after_start_date(acme):
    layer = LayerFactory.build(schedule=ScheduleFactory(account=acme), start_date=dt.date(2026, 2, 1), end_date=dt.date(2026, 2, 1))

    assert "end_date" in field_errors(layer)
