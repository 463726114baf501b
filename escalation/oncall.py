"""Who is on call when: rotation layers, restrictions and overrides resolved into the final schedule.

The functions read schedules and policies only through `.all()`, so objects loaded with `prefetch_policy()` (or
`OnCallSchedule.objects.with_oncall()`) are answered with a fixed number of queries, however many rules,
schedules, layers and participants there are.

Deactivated users (is_active False) are never on call: an override of theirs does not count and their turn in a
rotation falls through to the layers below, and a rule's direct users skip them. Who is on call, who would be
called and who is dialled therefore never names them.

All functions take aware datetimes and return instants in UTC. Wall-clock rules (handoff times, restriction
windows) are read in the schedule's time zone through `local_instant()`:

- DAYS and WEEKS rotations hand off at the local handoff time on the right calendar dates, so a shift across a
  DST change lasts 23 or 25 hours (167 or 169 for a week). HOURS rotations count elapsed real time from the
  first handoff.
- A local time that happens twice (clocks going back) means its first occurrence.
- A local time that does not exist (clocks jumping forward) means the first valid instant after it: the moment
  of the jump.
"""
import datetime as dt
import zoneinfo
from collections import defaultdict
from types import SimpleNamespace
from typing import NamedTuple

from django.db.models import QuerySet

from .models import (
    EscalationPolicy,
    LayerMember,
    LayerRestriction,
    OnCallSchedule,
    RotationLayer,
    RuleSchedule,
    RuleUser,
    ScheduleOverride,
    User,
    policy_prefetches,
)

UTC = dt.timezone.utc
OVERRIDE = "override"


class Shift(NamedTuple):
    """USER is on call from START (inclusive) to END (exclusive); SOURCE is "override" or the RotationLayer."""

    user: object
    start: dt.datetime
    end: dt.datetime
    source: object


def local_instant(day, time, tz):
    """The UTC instant at which the wall clock in TZ shows DAY at TIME.

    A time that happens twice (the hour clocks go back) is its first occurrence. A time that does not exist
    (the hour clocks jump forward, e.g. 02:30 on 29 March 2026 in Europe/Berlin) is the first valid instant
    after it, the moment of the jump (03:00 CEST = 01:00 UTC).
    """
    wall = dt.datetime.combine(day, time)
    earlier_offset = wall.replace(tzinfo=tz).astimezone(UTC)
    if _wall(earlier_offset, tz) == wall:
        return earlier_offset
    # WALL is in a gap. Read with the offsets before and after the jump it lands on either side of the jump;
    # bisect (to the second) for the first instant whose wall time is past WALL.
    lo, hi = sorted((earlier_offset, wall.replace(tzinfo=tz, fold=1).astimezone(UTC)))
    low, high = 0, int((hi - lo).total_seconds())
    while low < high:
        middle = (low + high) // 2
        if _wall(lo + dt.timedelta(seconds=middle), tz) > wall:
            high = middle
        else:
            low = middle + 1
    return lo + dt.timedelta(seconds=low)


def _wall(instant, tz):
    return instant.astimezone(tz).replace(tzinfo=None)


def _aware(at):
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at!r} is naive: on-call questions need aware datetimes.")
    return at.astimezone(UTC)


class _Layer:
    """A rotation layer with its participants and restrictions loaded, answering for instants."""

    def __init__(self, layer, tz, people, restrictions):
        # PEOPLE: the participants in rotation order (anything with pk and is_active: users, or _Person rows).
        self.layer = layer
        self.tz = tz
        self.people = people
        self.restrictions = restrictions
        self.start = local_instant(layer.start_date, layer.handoff_time, tz)
        self.end = local_instant(layer.end_date, layer.handoff_time, tz) if layer.end_date else None
        if layer.shift_unit == RotationLayer.Unit.HOURS:
            self.shift_hours = dt.timedelta(hours=layer.shift_length)
            self.shift_days = None
        else:
            self.shift_hours = None
            self.shift_days = layer.shift_length * (7 if layer.shift_unit == RotationLayer.Unit.WEEKS else 1)

    def handoff(self, index):
        """The instant shift INDEX (0 = the first) starts."""
        if self.shift_hours is not None:
            return self.start + index * self.shift_hours
        day = self.layer.start_date + dt.timedelta(days=index * self.shift_days)
        return local_instant(day, self.layer.handoff_time, self.tz)

    def shift_index(self, at):
        """The index of the shift containing AT, or None before the first handoff or from the end date on."""
        if at < self.start or (self.end is not None and at >= self.end):
            return None
        if self.shift_hours is not None:
            return (at - self.start) // self.shift_hours
        # Estimate on the wall clock, then correct by whole shifts: DST moves handoffs by hours, not shifts.
        since_start = _wall(at, self.tz) - dt.datetime.combine(self.layer.start_date, self.layer.handoff_time)
        index = max(since_start // dt.timedelta(days=self.shift_days), 0)
        while index > 0 and self.handoff(index) > at:
            index -= 1
        while self.handoff(index + 1) <= at:
            index += 1
        return index

    def windows(self, first_day, last_day):
        """(start, end) instants of the restriction windows opening on local dates FIRST_DAY to LAST_DAY."""
        day = first_day
        while day <= last_day:
            for restriction in self.restrictions:
                if restriction.weekday is None or restriction.weekday == day.weekday():
                    end_day = day if restriction.end_time > restriction.start_time else day + dt.timedelta(days=1)
                    yield (
                        local_instant(day, restriction.start_time, self.tz),
                        local_instant(end_day, restriction.end_time, self.tz),
                    )
            day += dt.timedelta(days=1)

    def is_active(self, at):
        if not self.restrictions:
            return True
        today = _wall(at, self.tz).date()
        return any(start <= at < end for start, end in self.windows(today - dt.timedelta(days=1), today))

    def user_at(self, at):
        index = self.shift_index(at)
        if index is None or not self.people or not self.is_active(at):
            return None
        user = self.people[index % len(self.people)]
        return user if user.is_active else None

    def boundaries(self, start, end):
        """Instants strictly inside (START, END) at which this layer's answer may change."""
        points = [self.start] + ([self.end] if self.end is not None else [])
        first, last = max(start, self.start), min(end, self.end) if self.end is not None else end
        if first < last:
            index = self.shift_index(first) + 1
            while (handoff := self.handoff(index)) < last:
                points.append(handoff)
                index += 1
        if self.restrictions:
            first_day = _wall(start, self.tz).date() - dt.timedelta(days=1)
            for window in self.windows(first_day, _wall(end, self.tz).date()):
                points.extend(window)
        return [point for point in points if start < point < end]


class _Schedule:
    """A schedule with its layers (highest level first) and overrides loaded."""

    def __init__(self, layers, overrides):
        self.layers = sorted(layers, key=lambda l: -l.layer.level)
        self.overrides = overrides

    @classmethod
    def of(cls, schedule):
        """SCHEDULE (a model object, its relations prefetched or not) ready to answer."""
        tz = schedule.tz
        layers = [
            _Layer(layer, tz, [member.user for member in layer.members.all()], list(layer.restrictions.all()))
            for layer in schedule.layers.all()
        ]
        return cls(layers, list(schedule.overrides.all()))

    def answer(self, at):
        """(user, source) on call at AT, or (None, None)."""
        covering = [o for o in self.overrides if o.start <= at < o.end and o.user.is_active]
        if covering:
            # Validation keeps overrides apart; if some overlap anyway, the one that started last wins.
            return max(covering, key=lambda o: (o.start, o.pk or 0)).user, OVERRIDE
        for layer in self.layers:
            user = layer.user_at(at)
            if user is not None:
                return user, layer.layer
        return None, None

    def boundaries(self, start, end):
        points = {point for layer in self.layers for point in layer.boundaries(start, end)}
        points.update(p for o in self.overrides for p in (o.start, o.end) if start < p < end)
        return points


def on_call_at(schedule, at):
    """The user on call on SCHEDULE at AT (override, else the highest layer with someone on call), or None."""
    return _Schedule.of(schedule).answer(_aware(at))[0]


def shifts_between(schedule, start, end):
    """The final schedule of SCHEDULE in [START, END): a list of Shift in time order.

    Each shift is a stretch in which one user is on call from one source (an override or a layer); consecutive
    stretches of the same user from the same source are merged, gaps where nobody is on call are left out, and
    the first and last shift are clipped to START and END. The work is proportional to the number of handoffs,
    restriction windows and overrides in the range.
    """
    start, end = _aware(start), _aware(end)
    if end <= start:
        return []
    view = _Schedule.of(schedule)
    points = sorted({start, *view.boundaries(start, end)}) + [end]
    shifts = []
    for segment_start, segment_end in zip(points, points[1:]):
        user, source = view.answer(segment_start)
        if user is None:
            continue
        previous = shifts[-1] if shifts else None
        if previous and previous.end == segment_start and previous.user == user and previous.source == source:
            shifts[-1] = previous._replace(end=segment_end)
        else:
            shifts.append(Shift(user, segment_start, segment_end, source))
    return shifts


def _distinct(users):
    seen, result = set(), []
    for user in users:
        if user is not None and user.is_active and user.pk not in seen:
            seen.add(user.pk)
            result.append(user)
    return result


def rule_users(rule, at):
    """The distinct users RULE notifies at AT: its users in order, then whoever is on call on each schedule."""
    at = _aware(at)
    direct = [rule_user.user for rule_user in rule.rule_users.all()]
    on_call = [on_call_at(rule_schedule.schedule, at) for rule_schedule in rule.rule_schedules.all()]
    return _distinct(direct + on_call)


def policy_users(policy, at):
    """The flat ordered list of distinct users of POLICY's rules at AT, schedules with nobody on call skipped."""
    return _distinct(user for rule in policy.rules.all() for user in rule_users(rule, at))


def prefetch_policy(policy, at=None):
    """POLICY (an EscalationPolicy, a pk or a queryset of them) loaded so users_at() runs no further queries.

    A queryset is returned as a queryset; a policy or pk as the reloaded policy. With AT only the overrides
    not yet over at AT are loaded, so the result answers correctly from AT on.
    """
    if isinstance(policy, QuerySet):
        return policy.prefetch_related(*policy_prefetches(at))
    pk = policy.pk if isinstance(policy, EscalationPolicy) else policy
    return EscalationPolicy.objects.with_oncall(at).get(pk=pk)


class _Person(NamedTuple):
    """A user as the bulk answers read them: the id and whether they may be on call."""

    pk: int
    is_active: bool


def _schedule_answers(schedule_ids, at):
    """{schedule id: id of the user on call at AT, or None}, from plain rows in five queries."""
    ids = set(schedule_ids)
    zones = dict(OnCallSchedule.objects.filter(pk__in=ids).values_list("pk", "timezone"))
    layer_rows = RotationLayer.objects.filter(schedule_id__in=ids).values(
        "id", "schedule_id", "level", "shift_length", "shift_unit", "start_date", "handoff_time", "end_date"
    )
    people = defaultdict(list)
    members = LayerMember.objects.filter(layer__schedule_id__in=ids).order_by("layer", "position", "id")
    for layer_id, user_id, active in members.values_list("layer_id", "user_id", "user__is_active"):
        people[layer_id].append(_Person(user_id, active))
    restrictions = defaultdict(list)
    for row in LayerRestriction.objects.filter(layer__schedule_id__in=ids).values("layer_id", "weekday", "start_time", "end_time"):
        restrictions[row["layer_id"]].append(SimpleNamespace(**row))
    overrides = defaultdict(list)
    covering = ScheduleOverride.objects.filter(schedule_id__in=ids, start__lte=at, end__gt=at)
    for pk, schedule_id, start, end, user_id, active in covering.values_list(
        "pk", "schedule_id", "start", "end", "user_id", "user__is_active"
    ):
        overrides[schedule_id].append(SimpleNamespace(pk=pk, start=start, end=end, user=_Person(user_id, active)))
    layers = defaultdict(list)
    for row in layer_rows:
        tz = zoneinfo.ZoneInfo(zones[row["schedule_id"]])
        layers[row["schedule_id"]].append(_Layer(SimpleNamespace(**row), tz, people[row["id"]], restrictions[row["id"]]))
    answers = {}
    for pk in zones:
        person, _ = _Schedule(layers[pk], overrides[pk]).answer(at)
        answers[pk] = person.pk if person else None
    return answers


def schedules_on_call(schedule_ids, at):
    """{schedule id: the User on call at AT, or None} for many schedules at once.

    A fixed number of queries however many schedules, layers, participants and overrides there are; layers,
    participants and overrides are read as plain rows, and only the users on call are loaded as model objects.
    """
    answers = _schedule_answers(schedule_ids, _aware(at))
    users = User.objects.in_bulk({pk for pk in answers.values() if pk is not None})
    return {schedule: users.get(pk) for schedule, pk in answers.items()}


def policies_on_call(policy_ids, at):
    """{policy id: [User, ...]}: whom each policy would notify at AT, in order, as users_at() answers, for many
    policies at once in a fixed number of queries (schedules shared by several policies are resolved once)."""
    at = _aware(at)
    ids = set(policy_ids)
    order = ("rule__policy_id", "rule__position", "rule_id", "position", "id")
    direct = RuleUser.objects.filter(rule__policy_id__in=ids).order_by(*order).values_list(
        "rule__policy_id", "rule__position", "rule_id", "user_id", "user__is_active"
    )
    via_schedule = RuleSchedule.objects.filter(rule__policy_id__in=ids).order_by(*order).values_list(
        "rule__policy_id", "rule__position", "rule_id", "schedule_id"
    )
    via_schedule = list(via_schedule)
    answers = _schedule_answers({row[3] for row in via_schedule}, at)
    # Per rule: its users in order, then whoever is on call on each of its schedules (as rule_users()).
    per_rule = defaultdict(lambda: ([], []))
    for policy_id, position, rule_id, user_id, active in direct:
        per_rule[(policy_id, position, rule_id)][0].append(user_id if active else None)
    for policy_id, position, rule_id, schedule_id in via_schedule:
        per_rule[(policy_id, position, rule_id)][1].append(answers.get(schedule_id))
    user_ids = defaultdict(list)
    for (policy_id, _, _), (users, on_call) in sorted(per_rule.items()):
        for user_id in users + on_call:
            if user_id is not None and user_id not in user_ids[policy_id]:
                user_ids[policy_id].append(user_id)
    users = User.objects.in_bulk({pk for pks in user_ids.values() for pk in pks})
    return {policy: [users[pk] for pk in user_ids.get(policy, [])] for policy in ids}
