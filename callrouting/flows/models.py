"""The call-flow model: a number's flow (draft + published version), its immutable versions, and the support-hours
calendars flows share.

These are models of the `callrouting` app (callrouting/models.py imports this module so Django registers them).
"""
import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as django_timezone

from escalation.models import Account, validate_timezone

from .. import hours


class SupportCalendar(models.Model):
    """Support hours an account's flows share: weekly ranges (SupportHoursRange) and holidays (Holiday) in a time
    zone. A flow's hours node names a calendar; a number's settings page edits the calendar of the number."""

    class Status(models.TextChoices):
        IN_HOURS = "in_hours", "In support hours"
        OUT_OF_HOURS = "out_of_hours", "Outside support hours"
        HOLIDAY = "holiday", "Holiday"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="support_calendars")
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "callrouting"
        ordering = ["account", "name", "pk"]

    def __str__(self):
        return self.name

    @property
    def tzinfo(self):
        return hours.zone(self.timezone)

    def hours_calendar(self, around=None):
        """The calendar as plain data (hours.SupportCalendar): two queries, then cached on the instance while the
        loaded holidays cover AROUND (default: now) and the longest search ahead."""
        cached = getattr(self, "_hours_calendar", None)
        day = (around or django_timezone.now()).astimezone(self.tzinfo).date()
        if cached is not None and cached.covers(day):
            return cached
        self._hours_calendar = self.load_hours(around)
        return self._hours_calendar

    def load_hours(self, around=None):
        """hours_calendar() without the cache: the ranges and the holidays around AROUND (two queries)."""
        day = (around or django_timezone.now()).astimezone(self.tzinfo).date()
        first, last = day - dt.timedelta(days=2), day + dt.timedelta(days=hours.SEARCH_DAYS + 2)
        if self.pk is None:
            ranges, holidays = [], set()
        else:
            ranges = [(r.weekday, r.start, r.end) for r in self.ranges.all()]
            holidays = set(self.holidays.filter(date__gte=first, date__lte=last).values_list("date", flat=True))
        return hours.SupportCalendar(self.tzinfo, ranges, holidays, first=first, last=last)

    def forget_loaded(self):
        """Drop the rows loaded by hours_calendar() (after the ranges or holidays changed)."""
        self.__dict__.pop("_hours_calendar", None)

    def status_at(self, at):
        """"in_hours", "out_of_hours" or "holiday" (a Status) for AT, an aware datetime."""
        return self.hours_calendar(at).status(at)

    def in_hours(self, at):
        return self.hours_calendar(at).in_hours(at)

    def next_start(self, after):
        """The first moment at or after AFTER at which support hours begin, or None (see hours.SupportCalendar)."""
        return self.hours_calendar(after).next_start(after)


class CallFlow(models.Model):
    """The flow a routing number runs: the draft being edited and the published version callers get.

    DRAFT_REVISION grows by one on every saved draft: a save names the revision it started from and is refused
    when another save came first (flows.actions.save_draft), so two admins cannot overwrite each other silently.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="call_flows")
    number = models.OneToOneField("callrouting.RoutingNumber", on_delete=models.CASCADE, related_name="flow")
    draft = models.JSONField(default=dict, blank=True)
    draft_revision = models.PositiveIntegerField(default=0)
    published = models.ForeignKey(
        "callrouting.FlowVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=django_timezone.now)

    class Meta:
        app_label = "callrouting"
        ordering = ["account", "number"]

    def __str__(self):
        return f"Flow of {self.number}"


class FlowVersion(models.Model):
    """One published document of a flow. Immutable: calls keep the version they started on, the per-process cache
    (flows.cache) never needs invalidating, and restore copies a version into the draft."""

    flow = models.ForeignKey(CallFlow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, 3 ... per flow.")
    document = models.JSONField()
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(default=django_timezone.now)
    summary = models.CharField(max_length=500, blank=True, help_text="What changed from the version before.")

    class Meta:
        app_label = "callrouting"
        ordering = ["flow", "-number"]
        constraints = [models.UniqueConstraint(fields=["flow", "number"], name="unique_flow_version_number")]

    def __str__(self):
        return f"Version {self.number} of {self.flow}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError("A published flow version never changes: publish a new one.")
        super().save(*args, **kwargs)
