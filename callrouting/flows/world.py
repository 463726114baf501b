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
        ids = {kind: {t.get("id") for t in targets if t.get("type") == kind} for kind in ("policy", "schedule", "user")}
        policies = set(
            EscalationPolicy.objects.filter(account_id=self.account_id, pk__in=ids["policy"]).values_list("pk", flat=True)
        ) if ids["policy"] else set()
        schedules = set(
            OnCallSchedule.objects.filter(account_id=self.account_id, pk__in=ids["schedule"]).values_list("pk", flat=True)
        ) if ids["schedule"] else set()
        by_policy = policies_on_call(policies, at) if policies else {}
        by_schedule = schedules_on_call(schedules, at) if schedules else {}
        ordered = []  # (target, [user ids]) in the document's order
        for target in targets:
            kind, pk = target.get("type"), target.get("id")
            if kind == "policy":
                ordered.append((target, [u.pk for u in by_policy.get(pk, [])]))
            elif kind == "schedule":
                user = by_schedule.get(pk)
                ordered.append((target, [user.pk] if user is not None else []))
            elif kind == "user":
                ordered.append((target, [pk]))
            else:
                ordered.append((target, []))
        wanted = {pk for _, pks in ordered for pk in pks}
        users = (
            User.objects.filter(account_id=self.account_id, is_active=True).prefetch_related("contact_methods").in_bulk(wanted)
            if wanted else {}
        )
        found = []
        for target, pks in ordered:
            if target.get("type") == "external":
                number = target.get("number") or ""
                found.append(DialTarget("external", None, number, target.get("label") or number))
                continue
            for pk in pks:
                user = users.get(pk)
                phone = user.primary_phone() if user is not None else None
                if phone:
                    found.append(DialTarget("user", user.pk, phone, str(user)))
        return found
