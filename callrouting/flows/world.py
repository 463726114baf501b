"""The engine's World backed by the database: support calendars and the people a route would ring, for one
account, in a fixed number of queries however many targets a route has."""
from escalation.models import EscalationPolicy, OnCallSchedule, User
from escalation.oncall import policies_on_call, schedules_on_call

from .steps import DialTarget


class DatabaseWorld:
    """What the engine asks, answered from ACCOUNT_ID's rows (another account's ids resolve to nobody)."""

    def __init__(self, account_id):
        self.account_id = account_id
        self._calendars = {}

    def calendar_status(self, calendar_id, at):
        from .models import SupportCalendar  # the flow model's app registry is ready by the time a call comes in

        if calendar_id not in self._calendars:
            self._calendars[calendar_id] = SupportCalendar.objects.filter(
                pk=calendar_id, account_id=self.account_id
            ).prefetch_related("ranges").first()
        calendar = self._calendars[calendar_id]
        return calendar.status_at(at) if calendar is not None else "out_of_hours"

    def dial_targets(self, targets, at):
        return self.dial_targets_of([targets], at)[0]

    def dial_targets_of(self, target_lists, at):
        """[[DialTarget]] for several routes' TARGET_LISTS at AT, in the queries of one route (pages that show
        "who would be called" on every route node ask for all of them at once)."""
        targets = [target for each in target_lists for target in each]
        ids = {kind: {t.get("id") for t in targets if t.get("type") == kind} for kind in ("policy", "schedule", "user")}
        policies = set(
            EscalationPolicy.objects.filter(account_id=self.account_id, pk__in=ids["policy"]).values_list("pk", flat=True)
        ) if ids["policy"] else set()
        schedules = set(
            OnCallSchedule.objects.filter(account_id=self.account_id, pk__in=ids["schedule"]).values_list("pk", flat=True)
        ) if ids["schedule"] else set()
        by_policy = policies_on_call(policies, at) if policies else {}
        by_schedule = schedules_on_call(schedules, at) if schedules else {}

        def user_ids(target):
            kind, pk = target.get("type"), target.get("id")
            if kind == "policy":
                return [u.pk for u in by_policy.get(pk, [])]
            if kind == "schedule":
                user = by_schedule.get(pk)
                return [user.pk] if user is not None else []
            return [pk] if kind == "user" else []

        wanted = {pk for target in targets for pk in user_ids(target)}
        users = (
            User.objects.filter(account_id=self.account_id, is_active=True).prefetch_related("contact_methods").in_bulk(wanted)
            if wanted else {}
        )
        return [self._resolved(each, user_ids, users) for each in target_lists]

    @staticmethod
    def _resolved(targets, user_ids, users):
        """TARGETS as DialTargets in the document's order (external numbers as given, users with a phone)."""
        found = []
        for target in targets:
            if target.get("type") == "external":
                number = target.get("number") or ""
                found.append(DialTarget("external", None, number, target.get("label") or number))
                continue
            for pk in user_ids(target):
                user = users.get(pk)
                phone = user.primary_phone() if user is not None else None
                if phone:
                    found.append(DialTarget("user", user.pk, phone, str(user)))
        return found


class PreparedWorld:
    """WORLD with the dial targets of many routes read at once, for a page asking about every route of a flow:
    TARGET_LISTS answered from one load at AT; anything else is asked of WORLD."""

    def __init__(self, world, target_lists, at):
        self.world, self.at = world, at
        answers = world.dial_targets_of(target_lists, at) if target_lists else []
        self._answers = {_key(targets): answer for targets, answer in zip(target_lists, answers)}

    def calendar_status(self, calendar_id, at):
        return self.world.calendar_status(calendar_id, at)

    def dial_targets(self, targets, at):
        key = _key(targets)
        if at == self.at and key in self._answers:
            return self._answers[key]
        return self.world.dial_targets(targets, at)


def _key(targets):
    return tuple(tuple(sorted((k, str(v)) for k, v in target.items())) for target in targets)
