"""The engine's World (flows.steps.World) read from the database, for one account: support calendars and who is
on call. `load(documents, at)` reads everything the documents' routes and hours nodes name in a fixed number of
queries, so a page showing "who would be called" on every route node costs the same for 2 routes or 40.
Objects of another account are never read: their ids resolve to nobody (validation reports them).
"""
from django.db.models import prefetch_related_objects

from escalation.models import EscalationPolicy, OnCallSchedule, User
from escalation.oncall import policies_on_call, schedules_on_call

from .models import SupportCalendar
from .steps import DialTarget


def _ids(documents):
    """{"policy"|"user"|"schedule"|"calendar": set of ids} that the DOCUMENTS' routes and hours nodes name."""
    found = {"policy": set(), "user": set(), "schedule": set(), "calendar": set()}
    for document in documents:
        for node in (document.get("nodes") or {}).values():
            if node.get("kind") == "route":
                for target in node.get("targets") or []:
                    if target.get("type") in found and isinstance(target.get("id"), int):
                        found[target["type"]].add(target["id"])
            elif node.get("kind") == "hours" and isinstance(node.get("calendar"), int):
                found["calendar"].add(node["calendar"])
    return found


class AccountWorld:
    def __init__(self, account):
        self.account = account
        self.at = None
        self.policies, self.schedules, self.users, self.calendars = {}, {}, {}, {}

    def load(self, documents, at):
        """Read what DOCUMENTS name, as of AT; returns self."""
        wanted = _ids(documents)
        self.at = at
        policy_ids = set(EscalationPolicy.objects.filter(account=self.account, pk__in=wanted["policy"]).values_list("pk", flat=True))
        schedule_ids = set(OnCallSchedule.objects.filter(account=self.account, pk__in=wanted["schedule"]).values_list("pk", flat=True))
        self.policies = policies_on_call(policy_ids, at) if policy_ids else {}
        self.schedules = schedules_on_call(schedule_ids, at) if schedule_ids else {}
        self.users = User.objects.filter(account=self.account).in_bulk(wanted["user"]) if wanted["user"] else {}
        people = [u for u in self.users.values()] + [u for us in self.policies.values() for u in us]
        people += [u for u in self.schedules.values() if u is not None]
        prefetch_related_objects(people, "contact_methods")
        self.calendars = SupportCalendar.objects.filter(account=self.account).in_bulk(wanted["calendar"]) if wanted["calendar"] else {}
        return self

    def _ensure(self, targets, at):
        """Load again when asked about another moment or about targets the last load did not read."""
        missing = any(
            (t.get("type") == "policy" and t.get("id") not in self.policies)
            or (t.get("type") == "schedule" and t.get("id") not in self.schedules)
            or (t.get("type") == "user" and t.get("id") not in self.users)
            for t in targets
        )
        if at != self.at or missing:
            self.load([{"nodes": {"route": {"kind": "route", "targets": targets}}}], at)

    def calendar_status(self, calendar_id, at):
        calendar = self.calendars.get(calendar_id)
        if calendar is None:
            calendar = SupportCalendar.objects.filter(account=self.account, pk=calendar_id).first()
            if calendar is None:
                return SupportCalendar.Status.OUT_OF_HOURS
            self.calendars[calendar_id] = calendar
        return calendar.status_at(at)

    def dial_targets(self, targets, at):
        self._ensure(targets, at)
        found = []
        for target in targets:
            kind = target.get("type")
            if kind == "external":
                number = target.get("number") or ""
                found.append(DialTarget("external", None, number, target.get("label") or number))
                continue
            if kind == "policy":
                people = self.policies.get(target.get("id"), [])
            elif kind == "schedule":
                people = [self.schedules.get(target.get("id"))]
            elif kind == "user":
                people = [self.users.get(target.get("id"))]
            else:
                people = []
            for person in people:
                phone = person.primary_phone() if person is not None and person.is_active else None
                if phone:
                    found.append(DialTarget("user", person.pk, phone, str(person)))
        return found
