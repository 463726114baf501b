"""On-call computation: rotations, restrictions, layers, overrides, DST, the final schedule and policies.

Acme's people: alice, bob, carol. Schedules default to Europe/Berlin; instants are asserted in UTC.
"""
import datetime as dt
import zoneinfo

import pytest

from escalation.models import EscalationPolicy, LayerRestriction, OnCallSchedule, RotationLayer, ScheduleOverride
from escalation.oncall import OVERRIDE, Shift, local_instant, prefetch_policy
from tests.factories import LayerFactory, PolicyFactory, RuleFactory, ScheduleFactory

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
HOURS, DAYS, WEEKS = RotationLayer.Unit.HOURS, RotationLayer.Unit.DAYS, RotationLayer.Unit.WEEKS
MONDAY, FRIDAY = LayerRestriction.Weekday.MONDAY, LayerRestriction.Weekday.FRIDAY


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def handoffs(schedule, start, end):
    """The instants the final schedule changes hands in [start, end)."""
    return [shift.start for shift in schedule.shifts_between(start, end)][1:]


def restrict(layer, weekday, start, end):
    return LayerRestriction.objects.create(layer=layer, weekday=weekday, start_time=start, end_time=end)


@pytest.fixture
def schedule(acme):
    return ScheduleFactory(account=acme, timezone="Europe/Berlin")


@pytest.fixture
def people(alice, bob, carol):
    return [alice, bob, carol]


# Rotations of each shift length


def test_weekly_rotation_hands_off_monday_0900_berlin(schedule, people):
    alice, bob, carol = people
    LayerFactory(schedule=schedule, shift_unit=WEEKS, start_date=dt.date(2026, 1, 5), handoff_time=dt.time(9), users=people)

    assert schedule.on_call_at(utc(2026, 1, 5, 7, 59)) is None  # before the first handoff (09:00 CET = 08:00 UTC)
    assert schedule.on_call_at(utc(2026, 1, 5, 8)) == alice
    assert schedule.on_call_at(utc(2026, 1, 12, 7, 59, 59)) == alice
    assert schedule.on_call_at(utc(2026, 1, 12, 8)) == bob
    assert schedule.on_call_at(utc(2026, 1, 19, 8)) == carol
    assert schedule.on_call_at(utc(2026, 1, 26, 8)) == alice  # round again


def test_rotation_of_two_weeks(schedule, people):
    alice, bob, _ = people
    LayerFactory(schedule=schedule, shift_length=2, shift_unit=WEEKS, start_date=dt.date(2026, 1, 5), users=[alice, bob])

    assert schedule.on_call_at(utc(2026, 1, 18, 12)) == alice
    assert schedule.on_call_at(utc(2026, 1, 19, 8)) == bob
    assert handoffs(schedule, utc(2026, 1, 5, 8), utc(2026, 2, 17)) == [utc(2026, 1, 19, 8), utc(2026, 2, 2, 8), utc(2026, 2, 16, 8)]


def test_rotation_of_three_days(schedule, people):
    alice, bob, carol = people
    LayerFactory(schedule=schedule, shift_length=3, shift_unit=DAYS, start_date=dt.date(2026, 2, 1), handoff_time=dt.time(8, 30), users=people)

    assert schedule.on_call_at(utc(2026, 2, 4, 7, 29)) == alice  # 08:29 CET on day 3
    assert schedule.on_call_at(utc(2026, 2, 4, 7, 30)) == bob
    assert schedule.on_call_at(utc(2026, 2, 7, 7, 30)) == carol
    assert schedule.on_call_at(utc(2026, 2, 10, 7, 30)) == alice


def test_rotation_of_eight_hours(schedule, people):
    alice, bob, carol = people
    LayerFactory(schedule=schedule, shift_length=8, shift_unit=HOURS, start_date=dt.date(2026, 2, 2), handoff_time=dt.time(6), users=people)

    start = utc(2026, 2, 2, 5)  # 06:00 CET
    assert [s.user for s in schedule.shifts_between(start, start + dt.timedelta(hours=32))] == [alice, bob, carol, alice]
    assert handoffs(schedule, start, start + dt.timedelta(hours=24)) == [utc(2026, 2, 2, 13), utc(2026, 2, 2, 21)]


def test_layer_ends_at_the_end_date_handoff(schedule, alice):
    LayerFactory(schedule=schedule, shift_unit=DAYS, start_date=dt.date(2026, 2, 1), end_date=dt.date(2026, 2, 3), users=[alice])

    assert schedule.on_call_at(utc(2026, 2, 3, 7, 59)) == alice
    assert schedule.on_call_at(utc(2026, 2, 3, 8)) is None
    assert schedule.shifts_between(utc(2026, 1, 1), utc(2026, 3, 1)) == [
        Shift(alice, utc(2026, 2, 1, 8), utc(2026, 2, 3, 8), schedule.layers.get())
    ]


def test_layer_without_participants_puts_nobody_on_call(schedule):
    LayerFactory(schedule=schedule, users=[])

    assert schedule.on_call_at(utc(2026, 2, 1)) is None
    assert schedule.shifts_between(utc(2026, 1, 1), utc(2026, 3, 1)) == []


# Daylight saving time: days and weeks follow the wall clock, hours follow real time


def test_daily_handoffs_across_berlin_spring_forward(schedule, people):
    LayerFactory(schedule=schedule, shift_unit=DAYS, start_date=dt.date(2026, 3, 1), handoff_time=dt.time(9), users=people)

    shifts = schedule.shifts_between(utc(2026, 3, 28, 8), utc(2026, 3, 30, 7))
    assert [(s.start, s.end) for s in shifts] == [
        (utc(2026, 3, 28, 8), utc(2026, 3, 29, 7)),  # 09:00 CET to 09:00 CEST: 23 hours
        (utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)),
    ]


def test_daily_handoffs_across_berlin_fall_back(schedule, people):
    LayerFactory(schedule=schedule, shift_unit=DAYS, start_date=dt.date(2026, 10, 1), handoff_time=dt.time(9), users=people)

    shifts = schedule.shifts_between(utc(2026, 10, 24, 7), utc(2026, 10, 26, 8))
    assert [(s.start, s.end) for s in shifts] == [
        (utc(2026, 10, 24, 7), utc(2026, 10, 25, 8)),  # 09:00 CEST to 09:00 CET: 25 hours
        (utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)),
    ]


def test_weekly_shifts_across_berlin_dst_last_167_and_169_hours(schedule, people):
    LayerFactory(schedule=schedule, shift_unit=WEEKS, start_date=dt.date(2026, 1, 5), handoff_time=dt.time(9), users=people)

    spring = schedule.shifts_between(utc(2026, 3, 23, 8), utc(2026, 3, 30, 12))
    autumn = schedule.shifts_between(utc(2026, 10, 19, 7), utc(2026, 10, 26, 12))
    assert (spring[0].start, spring[0].end) == (utc(2026, 3, 23, 8), utc(2026, 3, 30, 7))
    assert spring[0].end - spring[0].start == dt.timedelta(hours=167)
    assert (autumn[0].start, autumn[0].end) == (utc(2026, 10, 19, 7), utc(2026, 10, 26, 8))
    assert autumn[0].end - autumn[0].start == dt.timedelta(hours=169)


def test_daily_handoffs_across_new_york_dst(acme, people):
    schedule = ScheduleFactory(account=acme, timezone="America/New_York")
    LayerFactory(schedule=schedule, shift_unit=DAYS, start_date=dt.date(2026, 3, 1), handoff_time=dt.time(9), users=people)

    # 8 March: 09:00 EST (14:00 UTC) then 09:00 EDT (13:00 UTC). 1 November: back to 14:00 UTC.
    assert handoffs(schedule, utc(2026, 3, 7, 12), utc(2026, 3, 9, 14)) == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]
    assert handoffs(schedule, utc(2026, 10, 31, 12), utc(2026, 11, 2, 15)) == [
        utc(2026, 10, 31, 13),
        utc(2026, 11, 1, 14),
        utc(2026, 11, 2, 14),
    ]


def test_hourly_rotation_counts_elapsed_time_across_dst(schedule, people):
    alice, bob, _ = people
    LayerFactory(schedule=schedule, shift_length=12, shift_unit=HOURS, start_date=dt.date(2026, 3, 28), handoff_time=dt.time(9), users=[alice, bob])

    shifts = schedule.shifts_between(utc(2026, 3, 28, 8), utc(2026, 3, 29, 20))
    # 12 real hours each: the third shift starts at 10:00 CEST, not at 09:00.
    assert [(s.user, s.start) for s in shifts] == [(alice, utc(2026, 3, 28, 8)), (bob, utc(2026, 3, 28, 20)), (alice, utc(2026, 3, 29, 8))]


def test_handoff_at_a_time_that_does_not_exist_happens_when_clocks_jump(schedule, acme, people):
    LayerFactory(schedule=schedule, shift_unit=DAYS, start_date=dt.date(2026, 3, 1), handoff_time=dt.time(2, 30), users=people)
    new_york = ScheduleFactory(account=acme, timezone="America/New_York")
    LayerFactory(schedule=new_york, shift_unit=DAYS, start_date=dt.date(2026, 3, 1), handoff_time=dt.time(2, 30), users=people)

    # Berlin, 29 March: 02:30 does not exist; the handoff is at 03:00 CEST = 01:00 UTC.
    assert handoffs(schedule, utc(2026, 3, 28), utc(2026, 3, 30, 12)) == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]
    # New York, 8 March: at 03:00 EDT = 07:00 UTC.
    assert handoffs(new_york, utc(2026, 3, 7), utc(2026, 3, 9, 12)) == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)]


def test_handoff_at_a_repeated_time_happens_at_its_first_occurrence(schedule, people):
    alice, _, carol = people
    LayerFactory(schedule=schedule, shift_unit=DAYS, start_date=dt.date(2026, 10, 1), handoff_time=dt.time(2, 30), users=people)

    assert local_instant(dt.date(2026, 10, 25), dt.time(2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)  # still CEST
    assert local_instant(dt.date(2026, 11, 1), dt.time(1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)  # still EDT
    assert schedule.on_call_at(utc(2026, 10, 25, 0, 29)) == carol
    # 01:15 UTC reads 02:15 CET, before the handoff time on the wall clock, but the handoff (02:30 CEST) is past.
    assert schedule.on_call_at(utc(2026, 10, 25, 1, 15)) == alice


# Restrictions


def test_daily_restriction_window(schedule, alice):
    layer = LayerFactory(schedule=schedule, shift_unit=WEEKS, users=[alice])
    restrict(layer, None, dt.time(9), dt.time(17))

    assert schedule.on_call_at(utc(2026, 2, 4, 7, 59)) is None  # 08:59 CET
    assert schedule.on_call_at(utc(2026, 2, 4, 8)) == alice
    assert schedule.on_call_at(utc(2026, 2, 4, 15, 59)) == alice
    assert schedule.on_call_at(utc(2026, 2, 4, 16)) is None
    # The window follows the wall clock: 09:00 CEST is 07:00 UTC on the day clocks go forward.
    assert schedule.on_call_at(utc(2026, 3, 29, 7)) == alice


def test_weekday_restriction_window(schedule, alice):
    layer = LayerFactory(schedule=schedule, shift_unit=WEEKS, users=[alice])
    restrict(layer, MONDAY, dt.time(9), dt.time(17))

    assert schedule.on_call_at(utc(2026, 2, 2, 9)) == alice  # Monday 10:00 CET
    assert schedule.on_call_at(utc(2026, 2, 3, 9)) is None  # Tuesday


def test_restriction_window_over_midnight(schedule, alice):
    layer = LayerFactory(schedule=schedule, shift_unit=WEEKS, users=[alice])
    restrict(layer, FRIDAY, dt.time(22), dt.time(6))

    assert schedule.on_call_at(utc(2026, 2, 6, 20, 59)) is None  # Friday 21:59 CET
    assert schedule.on_call_at(utc(2026, 2, 6, 21)) == alice  # Friday 22:00
    assert schedule.on_call_at(utc(2026, 2, 7, 4, 59)) == alice  # Saturday 05:59
    assert schedule.on_call_at(utc(2026, 2, 7, 5)) is None  # Saturday 06:00
    assert schedule.on_call_at(utc(2026, 2, 5, 22)) is None  # Thursday 23:00
    assert [(s.start, s.end) for s in schedule.shifts_between(utc(2026, 2, 2), utc(2026, 2, 9))] == [
        (utc(2026, 2, 6, 21), utc(2026, 2, 7, 5))
    ]


# Layers, overrides, gaps


def test_higher_layer_wins_where_it_has_someone_on_call(schedule, alice, carol):
    LayerFactory(schedule=schedule, level=1, users=[alice])
    business_hours = LayerFactory(schedule=schedule, level=2, users=[carol])
    restrict(business_hours, None, dt.time(9), dt.time(17))

    assert schedule.on_call_at(utc(2026, 2, 4, 10)) == carol
    assert schedule.on_call_at(utc(2026, 2, 4, 20)) == alice
    assert [(s.user, s.start, s.end) for s in schedule.shifts_between(utc(2026, 2, 4, 6), utc(2026, 2, 4, 18))] == [
        (alice, utc(2026, 2, 4, 6), utc(2026, 2, 4, 8)),
        (carol, utc(2026, 2, 4, 8), utc(2026, 2, 4, 16)),
        (alice, utc(2026, 2, 4, 16), utc(2026, 2, 4, 18)),
    ]


def test_override_wins_over_every_layer(schedule, alice, bob, carol):
    LayerFactory(schedule=schedule, level=1, users=[alice])
    LayerFactory(schedule=schedule, level=2, users=[carol])
    ScheduleOverride.objects.create(schedule=schedule, user=bob, start=utc(2026, 2, 4, 12), end=utc(2026, 2, 4, 14))

    assert schedule.on_call_at(utc(2026, 2, 4, 12)) == bob
    assert schedule.on_call_at(utc(2026, 2, 4, 14)) == carol
    shifts = schedule.shifts_between(utc(2026, 2, 4, 10), utc(2026, 2, 4, 16))
    assert [(s.user, s.source) for s in shifts] == [(carol, schedule.layers.get(level=2)), (bob, OVERRIDE), (carol, schedule.layers.get(level=2))]


def test_gaps_where_nobody_is_on_call(schedule, alice):
    layer = LayerFactory(schedule=schedule, start_date=dt.date(2026, 2, 2), users=[alice])
    restrict(layer, None, dt.time(9), dt.time(17))

    assert schedule.on_call_at(utc(2026, 2, 4, 20)) is None
    assert schedule.on_call_at(utc(2026, 1, 1, 10)) is None  # before the start date
    shifts = schedule.shifts_between(utc(2026, 2, 1), utc(2026, 2, 4))
    assert [(s.start, s.end) for s in shifts] == [
        (utc(2026, 2, 2, 8), utc(2026, 2, 2, 16)),
        (utc(2026, 2, 3, 8), utc(2026, 2, 3, 16)),
    ]


# The final schedule


def test_shifts_between_clips_to_the_range(schedule, people):
    alice, bob, carol = people
    layer = LayerFactory(schedule=schedule, shift_unit=WEEKS, start_date=dt.date(2026, 1, 5), users=people)

    assert schedule.shifts_between(utc(2026, 1, 7), utc(2026, 1, 21)) == [
        Shift(alice, utc(2026, 1, 7), utc(2026, 1, 12, 8), layer),
        Shift(bob, utc(2026, 1, 12, 8), utc(2026, 1, 19, 8), layer),
        Shift(carol, utc(2026, 1, 19, 8), utc(2026, 1, 21), layer),
    ]


def test_shifts_between_merges_when_the_same_user_continues(schedule, alice, bob):
    layer = LayerFactory(schedule=schedule, shift_unit=DAYS, start_date=dt.date(2026, 2, 2), users=[alice])
    restrict(layer, MONDAY, dt.time(9), dt.time(17))
    restrict(layer, MONDAY, dt.time(17), dt.time(20))

    # Daily handoffs from alice to alice and two adjacent windows make one shift each Monday.
    assert schedule.shifts_between(utc(2026, 2, 1), utc(2026, 2, 10)) == [
        Shift(alice, utc(2026, 2, 2, 8), utc(2026, 2, 2, 19), layer),
        Shift(alice, utc(2026, 2, 9, 8), utc(2026, 2, 9, 19), layer),
    ]


def test_shifts_between_keeps_sources_apart(schedule, alice):
    layer = LayerFactory(schedule=schedule, users=[alice])
    ScheduleOverride.objects.create(schedule=schedule, user=alice, start=utc(2026, 2, 4, 12), end=utc(2026, 2, 4, 14))

    shifts = schedule.shifts_between(utc(2026, 2, 4, 10), utc(2026, 2, 4, 16))
    assert [(s.start, s.end, s.source) for s in shifts] == [
        (utc(2026, 2, 4, 10), utc(2026, 2, 4, 12), layer),
        (utc(2026, 2, 4, 12), utc(2026, 2, 4, 14), OVERRIDE),
        (utc(2026, 2, 4, 14), utc(2026, 2, 4, 16), layer),
    ]


def test_shifts_between_a_year_of_hourly_shifts_is_computed_from_boundaries(schedule, people, django_assert_max_num_queries):
    LayerFactory(schedule=schedule, shift_unit=HOURS, start_date=dt.date(2026, 1, 1), handoff_time=dt.time(0), users=people)
    loaded = OnCallSchedule.objects.with_oncall().get(pk=schedule.pk)

    with django_assert_max_num_queries(0):
        shifts = loaded.shifts_between(utc(2026, 1, 1), utc(2027, 1, 1))
    assert len(shifts) == 365 * 24 and shifts[0].start == utc(2026, 1, 1) and shifts[-1].end == utc(2027, 1, 1)
    assert all(s.end - s.start == dt.timedelta(hours=1) for s in shifts)


def test_empty_range_and_naive_datetimes(schedule, alice):
    LayerFactory(schedule=schedule, users=[alice])

    assert schedule.shifts_between(utc(2026, 2, 4), utc(2026, 2, 4)) == []
    with pytest.raises(ValueError, match="naive"):
        schedule.on_call_at(dt.datetime(2026, 2, 4, 12))


# Escalation policies: what call routing dials


def on_call_schedule(account, user, **kwargs):
    schedule = ScheduleFactory(account=account)
    LayerFactory(schedule=schedule, users=[user] if user else [], **kwargs)
    return schedule


def test_policy_users_in_rule_order_users_before_schedules(acme, alice, bob, carol):
    policy = PolicyFactory(account=acme)
    RuleFactory(policy=policy, position=0, users=[bob], schedules=[on_call_schedule(acme, alice)])
    RuleFactory(policy=policy, position=1, users=[carol])
    at = utc(2026, 2, 4, 12)

    assert policy.users_for_rule(0, at) == [bob, alice]
    assert policy.users_for_rule(1, at) == [carol]
    assert policy.users_at(at) == [bob, alice, carol]


def test_policy_users_are_distinct_across_rules_and_schedules(acme, alice, bob):
    policy = PolicyFactory(account=acme)
    alice_on_call = on_call_schedule(acme, alice)
    RuleFactory(policy=policy, position=0, users=[alice], schedules=[alice_on_call, on_call_schedule(acme, alice)])
    RuleFactory(policy=policy, position=1, users=[bob, alice], schedules=[alice_on_call])
    at = utc(2026, 2, 4, 12)

    assert policy.users_for_rule(0, at) == [alice]
    assert policy.users_for_rule(1, at) == [bob, alice]
    assert policy.users_at(at) == [alice, bob]


def test_policy_skips_schedules_with_nobody_on_call(acme, alice, bob):
    policy = PolicyFactory(account=acme)
    not_started = on_call_schedule(acme, alice, start_date=dt.date(2027, 1, 4))
    RuleFactory(policy=policy, position=0, schedules=[not_started, on_call_schedule(acme, None)])
    RuleFactory(policy=policy, position=1, schedules=[on_call_schedule(acme, bob)])

    assert policy.users_for_rule(0, utc(2026, 2, 4)) == []
    assert policy.users_at(utc(2026, 2, 4)) == [bob]


def build_policy(account, users, *, rules, layers_per_schedule):
    """A policy of RULES rules, each with a user and a schedule of LAYERS_PER_SCHEDULE restricted layers."""
    policy = PolicyFactory(account=account)
    for position in range(rules):
        schedule = ScheduleFactory(account=account)
        for level in range(1, layers_per_schedule + 1):
            layer = LayerFactory(schedule=schedule, level=level, users=users)
            restrict(layer, None, dt.time(level % 24), dt.time((level + 8) % 24))
        ScheduleOverride.objects.create(schedule=schedule, user=users[0], start=utc(2026, 2, 4), end=utc(2026, 2, 4, 1))
        RuleFactory(policy=policy, position=position, users=[users[position % len(users)]], schedules=[schedule])
    return policy


def test_policy_users_take_a_constant_number_of_queries(acme, people, django_assert_num_queries):
    small = build_policy(acme, people, rules=1, layers_per_schedule=1)
    large = build_policy(acme, people, rules=10, layers_per_schedule=10)
    at = utc(2026, 2, 4, 12)

    # policy, rules, rule users, rule schedules, layers, participants, restrictions, overrides
    with django_assert_num_queries(8):
        small_users = prefetch_policy(small.pk, at).users_at(at)
    with django_assert_num_queries(8):
        large_users = prefetch_policy(large, at).users_at(at)
    assert small_users == small.users_at(at) and large_users == large.users_at(at)
    assert set(large_users) == set(people)
    with django_assert_num_queries(8):
        both = {p.pk: p.users_at(at) for p in prefetch_policy(EscalationPolicy.objects.filter(pk__in=[small.pk, large.pk]), at)}
    assert both == {small.pk: small_users, large.pk: large_users}
