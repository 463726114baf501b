"""Support hours: the calendar at its boundaries (first and last minute of a range, midnight, DST changes,
holidays), validation, iCalendar import, each target kind through the answer webhook, calling styles, and the
answer webhook's constant number of queries on the support-hours path.

Acme's number "Acme support" is in Europe/Berlin with Mon-Fri 09:00-17:00. Options: 1 "Outage" calls Alice then
Bob; 2 "Billing" calls Bob and Carol at once. Globex's number must never be a target of Acme's."""
import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from callrouting import advanced_forms, hours
from callrouting.models import Call, CallingStyle, Holiday, SupportHoursRange, Target
from incidents.models import Incident
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    set_support_hours,
    the_call,
)
from tests.factories import LayerFactory, RuleFactory, ScheduleFactory, UserFactory

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc


def berlin(*args):
    return dt.datetime(*args, tzinfo=BERLIN)


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def add_ranges(number, days, start, end):
    for day in days:
        SupportHoursRange.objects.create(calendar=number.own_calendar(), weekday=day, start=start, end=end)


def fresh(number):
    """The number re-read (the support calendar is cached on an instance)."""
    return type(number).objects.get(pk=number.pk)


@pytest.fixture
def number(acme, alice, bob, carol):
    number = RoutingNumberFactory(
        account=acme, phone_number="+4930901820", name="Acme support", greeting="Welcome to Acme.",
        timezone="Europe/Berlin", support_hours_enabled=True, voicemail_enabled=True,
    )
    number.outage = RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob))
    number.billing = RoutingOptionFactory(
        routing_number=number, digit=2, label="Billing", escalation_policy=policy_of(acme, bob, carol), simultaneous=True
    )
    add_ranges(number, range(5), dt.time(9), dt.time(17))
    return number


def always(number, inside):
    return set_support_hours(number, inside=inside)


# --- the calendar at its boundaries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment, inside",
    [
        (berlin(2026, 11, 30, 8, 59, 59), False),  # Monday, the second before the first minute
        (berlin(2026, 11, 30, 9, 0), True),  # the first minute
        (berlin(2026, 11, 30, 16, 59), True),  # the last minute
        (berlin(2026, 11, 30, 16, 59, 59), True),
        (berlin(2026, 11, 30, 17, 0), False),  # the end is excluded
        (berlin(2026, 12, 5, 10, 0), False),  # Saturday
        (utc(2026, 11, 30, 8, 0), True),  # 09:00 in Berlin (CET, UTC+1)
        (utc(2026, 11, 30, 7, 59), False),
    ],
)
def test_in_support_hours_at_a_ranges_first_and_last_minute(number, moment, inside):
    assert number.in_support_hours(moment) is inside


def test_midnight_end_and_ranges_across_midnight(number):
    # Saturday 22:00-24:00 and Sunday 00:00-02:00: one stretch through midnight.
    add_ranges(number, [5], dt.time(22), dt.time(0))
    add_ranges(number, [6], dt.time(0), dt.time(2))
    number = fresh(number)
    assert str(SupportHoursRange.objects.get(weekday=5)) == "Saturday 22:00-24:00"
    assert not number.in_support_hours(berlin(2026, 12, 5, 21, 59))
    assert number.in_support_hours(berlin(2026, 12, 5, 22, 0))
    assert number.in_support_hours(berlin(2026, 12, 5, 23, 59, 59))
    assert number.in_support_hours(berlin(2026, 12, 6, 0, 0))
    assert number.in_support_hours(berlin(2026, 12, 6, 1, 59))
    assert not number.in_support_hours(berlin(2026, 12, 6, 2, 0))
    assert number.next_support_hours_start(berlin(2026, 12, 5, 18, 0)) == berlin(2026, 12, 5, 22, 0)
    # Inside the stretch, Sunday 00:00 is not a start (the moment before is in hours): the next is Monday 09:00.
    assert number.next_support_hours_start(berlin(2026, 12, 5, 23, 0)) == berlin(2026, 12, 7, 9, 0)


def test_next_start_across_the_spring_dst_change(number):
    # Berlin moves from CET (UTC+1) to CEST (UTC+2) on Sunday 29 March 2026 at 02:00.
    start = number.next_support_hours_start(berlin(2026, 3, 27, 18, 0))
    assert start == utc(2026, 3, 30, 7, 0)  # Monday 09:00 CEST
    assert start.astimezone(BERLIN).hour == 9
    assert not number.in_support_hours(utc(2026, 3, 30, 6, 59))
    assert number.in_support_hours(utc(2026, 3, 30, 7, 0))
    # The Friday before, 09:00 was 08:00 UTC.
    assert number.in_support_hours(utc(2026, 3, 27, 8, 0)) and not number.in_support_hours(utc(2026, 3, 27, 7, 59))


def test_range_starting_in_the_skipped_hour_starts_when_the_clock_jumps(number):
    add_ranges(number, [6], dt.time(2, 30), dt.time(4))
    number = fresh(number)
    # 02:30 does not exist on 29 March 2026: the range starts at 03:00 CEST, the moment the clock jumps.
    assert number.next_support_hours_start(berlin(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)
    assert number.in_support_hours(utc(2026, 3, 29, 1, 0))
    assert not number.in_support_hours(utc(2026, 3, 29, 0, 59))


def test_autumn_dst_change(number):
    # Back from CEST to CET on Sunday 25 October 2026 at 03:00; Monday 09:00 is 08:00 UTC again.
    assert number.next_support_hours_start(berlin(2026, 10, 23, 18, 0)) == utc(2026, 10, 26, 8, 0)
    add_ranges(number, [6], dt.time(2), dt.time(3))
    number = fresh(number)
    # 02:00-03:00 happens twice that night: in hours both times.
    assert number.in_support_hours(utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    assert number.in_support_hours(utc(2026, 10, 25, 1, 30))  # 02:30 CET
    assert not number.in_support_hours(utc(2026, 10, 25, 2, 0))  # 03:00 CET


def test_holiday_is_outside_support_hours_and_skipped(number):
    Holiday.objects.create(calendar=number.own_calendar(), date=dt.date(2026, 12, 7), name="Company day")
    number = fresh(number)
    assert not number.in_support_hours(berlin(2026, 12, 7, 10, 0))
    assert number.in_support_hours(berlin(2026, 12, 8, 10, 0))
    assert number.next_support_hours_start(berlin(2026, 12, 4, 18, 0)) == berlin(2026, 12, 8, 9, 0)
    # The holiday is a Berlin date: 08:00 UTC is 09:00 on the holiday in Berlin.
    assert number.target_at(utc(2026, 12, 7, 8, 0)).in_support_hours is False
    assert number.target_at(utc(2026, 12, 8, 8, 0)).in_support_hours is True


def test_next_start_is_none_without_ranges_and_search_is_bounded(number):
    SupportHoursRange.objects.all().delete()
    number = fresh(number)
    assert number.next_support_hours_start(berlin(2026, 12, 1, 12, 0)) is None
    calendar = hours.SupportCalendar(BERLIN, [(0, dt.time(9), dt.time(17))],
                                     {dt.date(2027, 1, 4) + dt.timedelta(weeks=w) for w in range(80)})
    assert calendar.next_start(berlin(2027, 1, 1)) is None  # every Monday for more than a year is a holiday


# --- targets ----------------------------------------------------------------------------------------------------


def test_target_at_picks_in_or_out_of_hours_target(number):
    number.in_hours_target, number.in_hours_option, number.in_hours_calling = Target.OPTION, number.billing, CallingStyle.SIMULTANEOUS
    number.out_of_hours_target, number.out_of_hours_calling = Target.VOICEMAIL, CallingStyle.SEQUENTIAL
    number.save()
    inside = number.target_at(berlin(2026, 12, 1, 10, 0))
    assert (inside.kind, inside.option_id, inside.calling, inside.in_support_hours) == (
        Target.OPTION, number.billing.pk, CallingStyle.SIMULTANEOUS, True)
    outside = number.target_at(berlin(2026, 12, 1, 20, 0))
    assert (outside.kind, outside.option_id, outside.in_support_hours) == (Target.VOICEMAIL, None, False)
    number.support_hours_enabled = False
    assert number.target_at(berlin(2026, 12, 1, 20, 0)).kind == Target.MENU


def test_voicemail_target_needs_voicemail(number):
    number.voicemail_enabled = False
    number.out_of_hours_target = Target.VOICEMAIL
    with pytest.raises(ValidationError) as error:
        number.full_clean()
    assert "out_of_hours_target" in error.value.message_dict
    form = advanced_forms.TargetsForm({"in_hours_target": "menu", "in_hours_calling": "option",
                                       "out_of_hours_target": "voicemail", "out_of_hours_calling": "option"}, instance=number)
    assert not form.is_valid() and "turn voicemail on" in form.errors["out_of_hours_target"][0]


def test_only_this_numbers_options_can_be_targets(number, globex):
    other = RoutingOptionFactory(routing_number=RoutingNumberFactory(account=globex), digit=1, label="Theirs")
    number.in_hours_target, number.in_hours_option = Target.OPTION, other
    with pytest.raises(ValidationError) as error:
        number.full_clean()
    assert error.value.message_dict["in_hours_option"] == ["Choose one of this number's routing options."]
    form = advanced_forms.TargetsForm({"in_hours_target": "option", "in_hours_option": other.pk, "in_hours_calling": "option",
                                       "out_of_hours_target": "menu", "out_of_hours_calling": "option"}, instance=fresh(number))
    assert not form.is_valid() and "in_hours_option" in form.errors
    assert list(form.fields["in_hours_option"].queryset) == [number.outage, number.billing]
    number.in_hours_option = None
    with pytest.raises(ValidationError) as error:
        number.full_clean()
    assert "in_hours_option" in error.value.message_dict  # an option target needs its option


def test_range_validation(number):
    with pytest.raises(ValidationError) as error:
        SupportHoursRange(calendar=number.own_calendar(), weekday=0, start=dt.time(17), end=dt.time(9)).full_clean()
    assert "end" in error.value.message_dict
    SupportHoursRange(calendar=number.own_calendar(), weekday=0, start=dt.time(17), end=dt.time(0)).full_clean()  # to midnight
    with pytest.raises(ValidationError) as error:
        SupportHoursRange(calendar=number.own_calendar(), weekday=0, start=dt.time(16), end=dt.time(18)).full_clean()
    assert error.value.message_dict["start"] == ["Overlaps Monday 09:00-17:00."]
    SupportHoursRange(calendar=number.own_calendar(), weekday=0, start=dt.time(17), end=dt.time(18)).full_clean()  # touching


def test_ranges_formset_refuses_overlaps_among_submitted_rows(number):
    data = {"ranges-TOTAL_FORMS": "2", "ranges-INITIAL_FORMS": "0",
            "ranges-0-weekday": "5", "ranges-0-start": "08:00", "ranges-0-end": "12:00",
            "ranges-1-weekday": "5", "ranges-1-start": "11:00", "ranges-1-end": "13:00"}
    formset = advanced_forms.SupportHoursRangesFormSet(data, instance=number.own_calendar(), prefix="ranges", queryset=SupportHoursRange.objects.none())
    assert not formset.is_valid()
    assert formset.forms[1].errors["start"] == ["Overlaps 08:00-12:00 on the same day."]
    data["ranges-1-start"] = "12:00"
    formset = advanced_forms.SupportHoursRangesFormSet(data, instance=number.own_calendar(), prefix="ranges", queryset=SupportHoursRange.objects.none())
    assert formset.is_valid(), formset.errors
    formset.save()
    assert SupportHoursRange.objects.filter(weekday=5).count() == 2


# --- iCalendar import -------------------------------------------------------------------------------------------

ICS = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Acme//Holidays//EN\r
BEGIN:VEVENT\r
UID:1\r
DTSTART;VALUE=DATE:20261225\r
DTEND;VALUE=DATE:20261227\r
SUMMARY:Christmas\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:2\r
DTSTART;VALUE=DATE:20261231\r
SUMMARY:New Year's Eve\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:3\r
DTSTART;TZID=Europe/Berlin:20261203T100000\r
DTEND;TZID=Europe/Berlin:20261203T120000\r
SUMMARY:Offsite\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:4\r
DTSTART;VALUE=DATE:20270501\r
RRULE:FREQ=YEARLY;COUNT=2\r
SUMMARY:Labour Day\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_ical_import_reads_all_day_multi_day_timed_and_recurring_events(number):
    entries = hours.holidays_from_ical(ICS, today=dt.date(2026, 11, 27))
    assert entries == [
        (dt.date(2026, 12, 3), "Offsite"),
        (dt.date(2026, 12, 25), "Christmas"),
        (dt.date(2026, 12, 26), "Christmas"),  # DTEND of an all-day event is exclusive
        (dt.date(2026, 12, 31), "New Year's Eve"),
        (dt.date(2027, 5, 1), "Labour Day"),
        (dt.date(2028, 5, 1), "Labour Day"),
    ]
    Holiday.objects.create(calendar=number.own_calendar(), date=dt.date(2026, 12, 25), name="Xmas")
    form = advanced_forms.HolidayImportForm({}, {"calendar": SimpleUploadedFile("holidays.ics", ICS, "text/calendar")})
    assert form.is_valid(), form.errors
    assert form.save(number.own_calendar()) == (5, 1, 0)
    assert Holiday.objects.get(date=dt.date(2026, 12, 25)).name == "Christmas"
    # Importing again changes nothing.
    form = advanced_forms.HolidayImportForm({}, {"calendar": SimpleUploadedFile("holidays.ics", ICS)})
    assert form.is_valid() and form.save(number.own_calendar()) == (0, 0, 0)
    assert not fresh(number).in_support_hours(berlin(2026, 12, 3, 15, 0))  # a holiday all day


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"Dear team,\nthe office is closed at Christmas.\n", "not an iCalendar file"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "no events"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Broken\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "no start date"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:2026-13-45\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "event 1"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260101\r\nDTEND;VALUE=DATE:20280101\r\n"
         b"SUMMARY:Sabbatical\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "lasts 730 days"),
    ],
    ids=["empty", "text", "no-events", "no-start", "bad-date", "too-long"],
)
def test_ical_import_errors_are_clear(number, content, message):
    form = advanced_forms.HolidayImportForm({}, {"calendar": SimpleUploadedFile("holidays.ics", content)})
    assert not form.is_valid()
    assert message in form.errors["calendar"][0], form.errors
    assert not Holiday.objects.exists()


# --- each target kind through the answer webhook ----------------------------------------------------------------


def texts(ncco):
    return [action.get("text") for action in ncco if action["action"] == "talk"]


def test_menu_target_during_support_hours(phone, number):
    number = always(number, inside=True)
    response, uuid = phone.dial(number.phone_number)
    assert [a["action"] for a in response.json()] == ["talk", "talk", "input"]  # the greeting, the menu
    call = the_call(uuid)
    assert call.state == Call.State.MENU and call.in_support_hours is True and call.node.startswith("menu")


def test_option_target_plays_greeting_without_menu_and_routes_with_its_calling_style(phone, number, bob, carol):
    number.in_hours_target, number.in_hours_option, number.in_hours_calling = Target.OPTION, number.billing, CallingStyle.SEQUENTIAL
    number.save()
    number = always(number, inside=True)
    response, uuid = phone.dial(number.phone_number)
    greeting, connecting, conversation = response.json()
    assert greeting == {"action": "talk", "text": "Welcome to Acme.", "language": "en-US"}  # no menu, no barge-in
    assert connecting["text"] == "Connecting you, please hold." and conversation["action"] == "conversation"
    call = the_call(uuid)
    assert call.state == Call.State.ROUTING and call.option == number.billing and not call.simultaneous
    assert call.in_support_hours is True and call.node.startswith("option-2")
    # Billing rings Bob and Carol at once when chosen from the menu; this target calls them one by one.
    assert [r["to"][0]["number"] for r in phone.dialled()] == ["4915110000002"]


def test_simultaneous_calling_style_outside_hours_for_a_sequential_option(phone, number, alice, bob):
    number.out_of_hours_target, number.out_of_hours_option = Target.OPTION, number.outage
    number.out_of_hours_calling = CallingStyle.SIMULTANEOUS
    number.save()
    number = always(number, inside=False)
    response, uuid = phone.dial(number.phone_number)
    call = the_call(uuid)
    assert call.in_support_hours is False and call.simultaneous and call.option == number.outage
    assert [r["to"][0]["number"] for r in phone.dialled()] == ["4915110000001", "4915110000002"]


def test_menu_choice_uses_the_targets_calling_style(phone, number, bob, carol):
    number.in_hours_calling = CallingStyle.SEQUENTIAL
    number.save()
    number = always(number, inside=True)
    response, uuid = phone.dial(number.phone_number)
    phone.press(response.json(), "2")
    assert not the_call(uuid).simultaneous and len(phone.dialled()) == 1


def test_voicemail_target_outside_hours_records_at_once(phone, number):
    number.out_of_hours_target = Target.VOICEMAIL
    number.save()
    number = always(number, inside=False)
    response, uuid = phone.dial(number.phone_number)
    ncco = response.json()
    assert [a["action"] for a in ncco] == ["notify", "record", "talk"]  # no mailbox greeting: the recording starts at once
    call = the_call(uuid)
    assert call.state == Call.State.VOICEMAIL and call.node == "voicemail" and call.voicemail_due_at
    incident = call.incident
    assert incident.escalation_suppressed and incident.status == Incident.Status.PENDING
    assert incident.priority == "high"  # no auto raise
    assert incident.escalation_policy == number.outage.escalation_policy
    assert phone.dialled() == []
    # A repeated answer webhook gives the same recording, once.
    again, _ = phone.dial(number.phone_number, uuid=uuid)
    assert again.json() == ncco and Incident.objects.count() == 1


def test_option_target_whose_option_was_deleted_falls_back_to_the_menu(phone, number):
    number.in_hours_target, number.in_hours_option = Target.OPTION, number.billing
    number.save()
    number.billing.delete()
    number.refresh_from_db()
    assert number.in_hours_target == Target.OPTION and number.in_hours_option is None
    number = always(number, inside=True)
    RoutingOptionFactory(routing_number=number, digit=3, label="Sales")
    response, uuid = phone.dial(number.phone_number)
    assert [a["action"] for a in response.json()] == ["talk", "talk", "input"]


# --- constant queries -----------------------------------------------------------------------------------------


def _build(acme, size):
    users = [UserFactory(account=acme, phone=f"+4915140{i:06d}") for i in range(size)]
    policy = policy_of(acme, *users)
    rule = RuleFactory(policy=policy, position=size)
    for i in range(size):
        schedule = ScheduleFactory(account=acme)
        LayerFactory(schedule=schedule, users=users[:2])
        rule.rule_schedules.create(schedule=schedule, position=i)
    number = RoutingNumberFactory(account=acme, support_hours_enabled=True, timezone="Europe/Berlin", voicemail_enabled=True)
    for digit in range(1, min(9, max(2, size)) + 1):
        RoutingOptionFactory(routing_number=number, digit=digit, label=f"Topic {digit}", escalation_policy=policy)
    add_ranges(number, range(7), dt.time(0), dt.time(0))
    for day in range(size * 3):
        Holiday.objects.create(calendar=number.own_calendar(), date=dt.date(2030, 1, 1) + dt.timedelta(days=day))
    return number


@pytest.mark.parametrize("target", [Target.MENU, Target.OPTION, Target.VOICEMAIL])
def test_answer_webhook_with_support_hours_does_a_constant_number_of_queries(phone, acme, target, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for size in (1, 10):
        number = _build(acme, size)
        number.in_hours_target = target
        number.in_hours_option = number.options.first() if target == Target.OPTION else None
        number.save()
        with CaptureQueriesContext(connection) as queries:
            phone.dial(number.phone_number, run_tasks=False)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    number = _build(acme, 10)
    with django_assert_max_num_queries(14):
        phone.dial(number.phone_number, run_tasks=False)
