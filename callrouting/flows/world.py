"""The engine's World backed by the database: support calendars and the people a route would ring, for one
account, in a fixed number of queries however many targets a route (or, with prefetch(), a whole flow) has."""
from escalation.models import EscalationPolicy, OnCallSchedule, User
from escalation.oncall import policies_on_call, schedules_on_call

from .steps import DialTarget


class DatabaseWorld:
    """What the engine asks, answered from ACCOUNT_ID's rows (another account's ids resolve to nobody).
    AUDIO_NAMES {NumberAudio id: name} is what a dry run shows for recordings."""

    def __init__(self, account_id, *, audio_names=None):
        self.account_id = account_id
        self.audio_names = audio_names or {}
        self._calendars = {}
        self._at = None
        self._members = {}  # (type, id) -> [user id] at self._at
        self._users = {}  # user id -> User (active, of the account, contact methods loaded)

    def audio_name(self, audio_id):
        """What the dry run shows for a recording ("audio: <name>")."""
        return self.audio_names.get(audio_id) or f"recording {audio_id}"

    def calendar_status(self, calendar_id, at):
        from .models import SupportCalendar  # the flow model's app registry is ready by the time a call comes in

        if calendar_id not in self._calendars:
            self._calendars[calendar_id] = SupportCalendar.objects.filter(
                pk=calendar_id, account_id=self.account_id
            ).prefetch_related("ranges").first()
        calendar = self._calendars[calendar_id]
        return calendar.status_at(at) if calendar is not None else "out_of_hours"

    def prefetch(self, targets, at):
        """Load who TARGETS (route target dicts, e.g. of every route of a flow) ring at AT in one go: later
        dial_targets() calls for them make no query."""
        if at != self._at:
            self._at, self._members, self._users = at, {}, {}
        wanted = {(t.get("type"), t.get("id")) for t in targets if t.get("type") in ("policy", "schedule", "user")}
        wanted -= set(self._members)
        if not wanted:
            return
        ids = {kind: {pk for k, pk in wanted if k == kind} for kind in ("policy", "schedule", "user")}
        policies = set(
            EscalationPolicy.objects.filter(account_id=self.account_id, pk__in=ids["policy"]).values_list("pk", flat=True)
        ) if ids["policy"] else set()
        schedules = set(
            OnCallSchedule.objects.filter(account_id=self.account_id, pk__in=ids["schedule"]).values_list("pk", flat=True)
        ) if ids["schedule"] else set()
        by_policy = policies_on_call(policies, at) if policies else {}
        by_schedule = schedules_on_call(schedules, at) if schedules else {}
        for kind, pk in wanted:
            if kind == "policy":
                self._members[(kind, pk)] = [user.pk for user in by_policy.get(pk, [])]
            elif kind == "schedule":
                user = by_schedule.get(pk)
                self._members[(kind, pk)] = [user.pk] if user is not None else []
            else:
                self._members[(kind, pk)] = [pk]
        missing = {pk for key in wanted for pk in self._members[key]} - set(self._users)
        if missing:
            self._users.update(
                User.objects.filter(account_id=self.account_id, is_active=True)
                .prefetch_related("contact_methods").in_bulk(missing)
            )

    def dial_targets(self, targets, at):
        self.prefetch(targets, at)
        found = []
        for target in targets:
            if target.get("type") == "external":
                number = target.get("number") or ""
                found.append(DialTarget("external", None, number, target.get("label") or number))
                continue
            for pk in self._members.get((target.get("type"), target.get("id")), []):
                user = self._users.get(pk)
                phone = user.primary_phone() if user is not None else None
                if phone:
                    found.append(DialTarget("user", user.pk, phone, str(user)))
        return found
