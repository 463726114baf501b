"""Routing numbers and their menus (configuration), and the call log (calls and agent legs, voicemails).

Advanced settings of a number: support hours (weekly ranges, holidays) with a target for calls during and outside
them, voicemail-only mode, auto raise, and custom audio (greeting, hold music, mailbox greeting).
"""
import datetime as dt
import secrets
from dataclasses import dataclass

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone as django_timezone

from escalation.models import Account, EscalationPolicy, User, normalize_phone_number, validate_timezone
from incidents.models import AlertSource, Incident

from . import hours, phrases


def new_token():
    """An unguessable token for per-call and per-leg webhook URLs."""
    return secrets.token_urlsafe(24)


def new_conversation_name():
    return "cr-" + secrets.token_urlsafe(18)


class Target(models.TextChoices):
    """Where a call goes first (support hours choose between the in-hours and the out-of-hours target)."""

    MENU = "menu", "The greeting and the menu"
    OPTION = "option", "A routing option directly (greeting, no menu)"
    VOICEMAIL = "voicemail", "Voicemail"


class CallingStyle(models.TextChoices):
    OPTION = "option", "As configured on the routing option"
    SIMULTANEOUS = "simultaneous", "Ring every agent at once"
    SEQUENTIAL = "sequential", "Ring agents one by one"


@dataclass(frozen=True)
class CallTarget:
    """Where a call goes: KIND (a Target), the OPTION_ID of an OPTION target, the CALLING style, and whether the
    call came in during support hours (None: the number has no support hours)."""

    kind: str = Target.MENU
    option_id: int | None = None
    calling: str = CallingStyle.OPTION
    in_support_hours: bool | None = None


# The longest greeting (and mailbox greeting) a number may have: about a minute of speech. With the menu it
# may still be longer than one talk action takes (1,500 characters): flow.greeting_ncco speaks it in parts.
GREETING_MAX_CHARS = 1000


class RoutingNumber(models.Model):
    """A phone number callers dial. Its greeting and menu lead to routing options; its alert source owns its
    incidents (created with the number, renamed with it)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="routing_numbers")
    phone_number = models.CharField(
        max_length=20, unique=True, help_text="The Vonage number in international format, for example +4930901820."
    )
    name = models.CharField(max_length=200, help_text="Read out to agents before each call, for example “Acme support”.")
    language = models.CharField(max_length=10, choices=phrases.LANGUAGE_CHOICES, default=phrases.DEFAULT_LANGUAGE)
    greeting = models.TextField(
        blank=True, max_length=GREETING_MAX_CHARS, validators=[MaxLengthValidator(GREETING_MAX_CHARS)],
        help_text=f"Read to every caller first, before the menu (at most {GREETING_MAX_CHARS} characters).",
    )
    greeting_only = models.BooleanField(
        default=False, help_text="Read only the greeting: no generated “Press 1 or say …” menu is appended."
    )
    ringing_timeout = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(120)], help_text="Seconds each agent's phone rings."
    )
    keep_incident_open = models.BooleanField(
        default=False, help_text="Keep the incident open when an answered call ends (default: resolve it)."
    )
    alert_source = models.OneToOneField(
        AlertSource, on_delete=models.PROTECT, related_name="routing_number", editable=False
    )

    # Voicemail, used when nobody takes the call.
    voicemail_enabled = models.BooleanField("voicemail", default=False)
    voicemail_greeting = models.TextField(
        blank=True, max_length=GREETING_MAX_CHARS, validators=[MaxLengthValidator(GREETING_MAX_CHARS)],
        help_text=f"Read before the beep (at most {GREETING_MAX_CHARS} characters). Empty: the recording starts at once.",
    )
    voicemail_max_length = models.PositiveIntegerField(
        default=120, validators=[MinValueValidator(3), MaxValueValidator(7200)], help_text="Longest message in seconds."
    )
    voicemail_transcription = models.BooleanField(default=True, help_text="Have Vonage transcribe the message.")
    voicemail_only = models.BooleanField(
        "voicemail-only mode",
        default=False,
        help_text="No greeting, no menu: every call goes straight to the recording; the first routing option's "
        "escalation policy handles the incident once the message is in.",
    )

    # Incident behaviour.
    auto_raise = models.BooleanField(
        default=False,
        help_text="A call sent to voicemail outside support hours creates a low-priority incident that is raised "
        "to high priority and escalated when the next support hours start (holidays respected).",
    )

    # Support hours: a time zone, weekly ranges (SupportHoursRange), holidays (Holiday), and two targets.
    support_hours_enabled = models.BooleanField("support hours", default=False)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    in_hours_target = models.CharField(
        "during support hours", max_length=12, choices=Target.choices, default=Target.MENU
    )
    in_hours_option = models.ForeignKey(
        "RoutingOption", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name="routing option during support hours",
    )
    in_hours_calling = models.CharField(
        "calling style during support hours", max_length=12, choices=CallingStyle.choices, default=CallingStyle.OPTION
    )
    out_of_hours_target = models.CharField(
        "outside support hours", max_length=12, choices=Target.choices, default=Target.MENU
    )
    out_of_hours_option = models.ForeignKey(
        "RoutingOption", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name="routing option outside support hours",
    )
    out_of_hours_calling = models.CharField(
        "calling style outside support hours", max_length=12, choices=CallingStyle.choices, default=CallingStyle.OPTION
    )

    # The calendar the simple-mode settings edit and compile into the flow's hours node (flows.compiler).
    support_calendar = models.ForeignKey(
        "callrouting.SupportCalendar", on_delete=models.SET_NULL, null=True, blank=True, related_name="numbers",
        help_text="The support hours (weekly ranges and holidays) of this number's settings.",
    )

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "name"]

    def __str__(self):
        return f"{self.name} ({self.phone_number})"

    def full_clean(self, exclude=None, validate_unique=True, validate_constraints=True):
        # clean() names the field a form shows: a form of one section must not get errors for another's fields.
        self._clean_exclude = set(exclude or ())
        try:
            super().full_clean(exclude, validate_unique, validate_constraints)
        finally:
            del self._clean_exclude

    def _error_field(self, *candidates):
        """The first of CANDIDATES the form being validated shows (all of them for a plain full_clean())."""
        excluded = getattr(self, "_clean_exclude", set())
        return next((name for name in candidates if name not in excluded), NON_FIELD_ERRORS)

    def clean(self):
        super().clean()
        try:
            self.phone_number = normalize_phone_number(self.phone_number)
        except ValidationError as exc:
            raise ValidationError({"phone_number": exc.messages}) from exc
        errors = {}

        def add(message, *fields):
            errors.setdefault(self._error_field(*fields), []).append(message)

        if self.greeting_only and not (self.greeting or "").strip() and not self._has_greeting_audio():
            add("“Greeting only” plays just the greeting: write a greeting or upload a greeting recording.",
                "greeting", "greeting_only")
        if self.voicemail_only and not self.voicemail_enabled:
            add("Voicemail-only mode records every call: turn voicemail on.", "voicemail_only", "voicemail_enabled")
        for when, label in (("in_hours", "during"), ("out_of_hours", "outside")):
            target, option = getattr(self, f"{when}_target"), getattr(self, f"{when}_option")
            if target == Target.VOICEMAIL and not self.voicemail_enabled:
                add(f"Calls {label} support hours go to voicemail: turn voicemail on, or choose another target.",
                    f"{when}_target", "voicemail_enabled")
            if target == Target.OPTION and option is None:
                add("Choose the routing option to send these calls to.", f"{when}_option", f"{when}_target")
            if option is not None and (self.pk is None or option.routing_number_id != self.pk):
                add("Choose one of this number's routing options.", f"{when}_option")
        if errors:
            raise ValidationError(errors)

    def _has_greeting_audio(self):
        if self.pk is None:
            return False
        return NumberAudio.objects.filter(routing_number=self, kind=NumberAudio.Kind.GREETING).exclude(file="").exists()

    def save(self, *args, **kwargs):
        """Save, creating the alert source with the number or renaming it with the number."""
        if self.phone_number:
            try:
                self.phone_number = normalize_phone_number(self.phone_number)
            except ValidationError:
                pass  # full_clean() reports it; a raw save keeps what it was given
        with transaction.atomic():
            if self.alert_source_id is None:
                self.alert_source = AlertSource.objects.create(account_id=self.account_id, name=self.name)
            else:
                AlertSource.objects.filter(pk=self.alert_source_id).exclude(name=self.name).update(name=self.name)
            super().save(*args, **kwargs)
            # The settings page's time zone is the one of the number's calendar: a change here is made there too
            # (for every number sharing that calendar).
            if self.support_calendar_id is not None and self.timezone != getattr(self, "_loaded_timezone", None):
                from .flows.models import SupportCalendar

                SupportCalendar.objects.filter(pk=self.support_calendar_id).update(timezone=self.timezone)
                if "support_calendar" in self._state.fields_cache and self.support_calendar is not None:
                    self.support_calendar.timezone = self.timezone
            self._loaded_timezone = self.timezone

    def greeting_text(self, options):
        """Exactly the text a caller hears first: the greeting, then the menu for OPTIONS (in order).

        A single option has no menu (its call is routed at once), and neither has a greeting-only number.
        """
        parts = [self.greeting.strip()] if self.greeting.strip() else []
        if len(options) > 1 and not self.greeting_only:
            parts += [phrases.phrase(self.language, "menu_item", digit=o.digit, label=o.label) for o in options]
        return " ".join(parts)

    def preview_greeting(self):
        """The greeting and menu exactly as callers will hear them (one query for the options)."""
        return self.greeting_text(list(self.options.all()))

    # --- Support hours --------------------------------------------------------------------------------------

    def hours_calendar(self, around=None):
        """The number's support hours (its calendar's) as an hours.SupportCalendar: loaded once (three queries),
        then cached on the instance while the holidays loaded cover AROUND (default: now). No calendar: no ranges,
        so every moment is out of hours."""
        cached = getattr(self, "_support_calendar", None)
        day = (around or django_timezone.now()).astimezone(self.tzinfo).date()
        if cached is not None and cached.covers(day):
            return cached
        calendar = self.support_calendar if self.support_calendar_id else None
        if calendar is None:
            self._support_calendar = hours.SupportCalendar(self.tzinfo, [], set())
        else:
            self._support_calendar = calendar.load_hours(around)
        return self._support_calendar

    def own_calendar(self):
        """The number's support calendar, created (named after the number, in its time zone) when it has none."""
        if self.support_calendar_id is None:
            from .flows.models import SupportCalendar

            calendar = SupportCalendar.objects.create(
                account_id=self.account_id, name=f"{self.name} support hours"[:200], timezone=self.timezone or "UTC"
            )
            RoutingNumber.objects.filter(pk=self.pk).update(support_calendar=calendar)
            self.support_calendar = calendar
            from .flows.actions import settings_changed

            settings_changed(self)  # simple mode: the hours node names the new calendar
        return self.support_calendar

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_timezone = instance.__dict__.get("timezone")
        return instance

    @property
    def tzinfo(self):
        """The time zone of the number's support hours: its calendar's (the number's own when it has none)."""
        if self.support_calendar_id is not None:
            return self.support_calendar.tzinfo
        return hours.zone(self.timezone)

    def in_support_hours(self, at):
        """True when AT (an aware datetime) is inside the weekly ranges and not on a holiday (local dates)."""
        return self.hours_calendar(at).in_hours(at)

    def next_support_hours_start(self, after):
        """The first moment at or after AFTER at which support hours begin (holidays skipped, DST-correct), or
        None when there is none within hours.SEARCH_DAYS days."""
        return self.hours_calendar(after).next_start(after)

    def target_at(self, at):
        """The CallTarget for a call arriving at AT: the menu without support hours, else the in-hours or the
        out-of-hours target (an option target whose option is gone falls back to the menu)."""
        if not self.support_hours_enabled:
            return CallTarget()
        inside = self.in_support_hours(at)
        when = "in_hours" if inside else "out_of_hours"
        kind, option_id = getattr(self, f"{when}_target"), getattr(self, f"{when}_option_id")
        if kind == Target.OPTION and option_id is None:
            kind = Target.MENU
        if kind == Target.VOICEMAIL and not self.voicemail_enabled:
            kind = Target.MENU
        return CallTarget(kind, option_id if kind == Target.OPTION else None, getattr(self, f"{when}_calling"), inside)

    # --- Custom audio ---------------------------------------------------------------------------------------

    def audio_urls(self):
        """{kind: absolute URL} of the number's custom audio (no query when audio_files is prefetched)."""
        if self.pk is None:
            return {}
        return {audio.kind: audio.absolute_url() for audio in self.audio_files.all() if audio.file}


class SupportHoursRange(models.Model):
    """One weekly range of a support calendar, in the calendar's time zone: WEEKDAY from START (included) to
    END (excluded). END 00:00 means midnight at the end of the day (24:00); a range never crosses midnight, so
    support through the night is two ranges (Mon 22:00-00:00 and Tue 00:00-06:00)."""

    Weekday = hours.Weekday

    calendar = models.ForeignKey("callrouting.SupportCalendar", on_delete=models.CASCADE, related_name="ranges")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField(help_text="00:00 is midnight at the end of the day.")

    class Meta:
        ordering = ["calendar", "weekday", "start"]
        constraints = [
            models.CheckConstraint(condition=Q(weekday__gte=0, weekday__lte=6), name="support_range_weekday_0_6"),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.start:%H:%M}-{self.end:%H:%M}".replace("-00:00", "-24:00")

    def clean(self):
        super().clean()
        if self.start is None or self.end is None:
            return
        for field in ("start", "end"):
            value = getattr(self, field)
            if value.second or value.microsecond:
                raise ValidationError({field: "Use whole minutes (for example 09:00)."})
        if not hours.valid_range(self.start, self.end):
            raise ValidationError({"end": "The end must be after the start (00:00 for midnight at the end of the day)."})
        if self.calendar_id is None or self.weekday is None or getattr(self, "_siblings_checked_by_formset", False):
            return  # a formset compares the rows being edited with their new values instead
        siblings = SupportHoursRange.objects.filter(calendar_id=self.calendar_id, weekday=self.weekday)
        for other in siblings.exclude(pk=self.pk):
            if hours.overlaps((self.start, self.end), (other.start, other.end)):
                raise ValidationError({"start": f"Overlaps {other}."})


@receiver(post_delete, sender="callrouting.NumberAudio", dispatch_uid="callrouting.delete_audio_file")
def delete_audio_file(sender, instance, **kwargs):
    """A removed custom recording takes its file along (once the deletion is committed)."""
    if instance.file:
        name, storage = instance.file.name, instance.file.storage
        transaction.on_commit(lambda: storage.delete(name))


class Holiday(models.Model):
    """A date (in the calendar's time zone) that counts as a holiday: outside support hours all day."""

    MAX_PER_CALENDAR = 1000

    calendar = models.ForeignKey("callrouting.SupportCalendar", on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["calendar", "date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="unique_calendar_holiday_date")]

    def __str__(self):
        return f"{self.date:%Y-%m-%d} {self.name}".strip()

    def clean(self):
        if self._state.adding and self.calendar_id is not None:
            if Holiday.objects.filter(calendar_id=self.calendar_id).count() >= self.MAX_PER_CALENDAR:
                raise ValidationError(f"A calendar has at most {self.MAX_PER_CALENDAR} holidays: remove old ones first.")


def audio_path(instance, filename):
    # A fresh random name: nothing about the number or the token shows up in the stored path.
    return f"audio/{instance.routing_number.account_id}/{secrets.token_hex(16)}.{instance.format}"


class NumberAudio(models.Model):
    """A custom recording of a number, validated and converted by callrouting.audio, served to Vonage at
    /audio/<token>.<format> (a new upload gets a new token, so the URL can be cached forever)."""

    class Kind(models.TextChoices):
        GREETING = "greeting", "Greeting (replaces the spoken greeting and menu)"
        HOLD_MUSIC = "hold_music", "Hold music"
        MAILBOX_GREETING = "mailbox_greeting", "Mailbox greeting (before the beep)"

    class Format(models.TextChoices):
        MP3 = "mp3", "MP3"
        WAV = "wav", "WAV (16-bit mono)"

    routing_number = models.ForeignKey(RoutingNumber, on_delete=models.CASCADE, related_name="audio_files")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    file = models.FileField(upload_to=audio_path, blank=True)
    format = models.CharField(max_length=4, choices=Format.choices, editable=False)
    original_name = models.CharField(max_length=255, blank=True, editable=False)
    duration = models.FloatField(default=0, editable=False, help_text="Seconds.")
    details = models.CharField(max_length=200, blank=True, editable=False, help_text="What was checked and converted.")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["routing_number", "kind"]
        verbose_name = "custom audio"
        verbose_name_plural = "custom audio"
        constraints = [models.UniqueConstraint(fields=["routing_number", "kind"], name="unique_number_audio_kind")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.original_name or self.token}"

    @property
    def content_type(self):
        return "audio/mpeg" if self.format == self.Format.MP3 else "audio/wav"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("callrouting-audio", kwargs={"token": self.token, "ext": self.format})

    def absolute_url(self):
        from django.conf import settings

        return settings.PUBLIC_BASE_URL + self.get_absolute_url()


class RoutingOption(models.Model):
    """One menu choice of a routing number: a key, a spoken label, and whom to call."""

    routing_number = models.ForeignKey(RoutingNumber, on_delete=models.CASCADE, related_name="options")
    position = models.PositiveSmallIntegerField(default=0)
    digit = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(9)])
    label = models.CharField(max_length=60, help_text="Spoken in the menu and recognised as the caller's answer.")
    escalation_policy = models.ForeignKey(EscalationPolicy, on_delete=models.PROTECT, related_name="routing_options")
    simultaneous = models.BooleanField(
        "simultaneous calling", default=False, help_text="Ring every agent at once instead of one after another."
    )

    class Meta:
        ordering = ["routing_number", "position", "digit"]
        constraints = [
            models.UniqueConstraint(fields=["routing_number", "digit"], name="unique_routing_option_digit"),
            models.CheckConstraint(condition=Q(digit__gte=1, digit__lte=9), name="routing_option_digit_1_9"),
        ]

    def __str__(self):
        return f"{self.digit}: {self.label}"

    def clean(self):
        super().clean()
        self.label = " ".join((self.label or "").split())
        number = getattr(self, "routing_number", None)  # None when not set yet (RelatedObjectDoesNotExist)
        policy_account = self.escalation_policy.account_id if self.escalation_policy_id else None
        if number is not None and number.account_id and policy_account and policy_account != number.account_id:
            raise ValidationError({"escalation_policy": "Choose an escalation policy of this number's account."})


class Call(models.Model):
    """A caller's leg: one inbound call to a routing number, from greeting to hang-up."""

    class State(models.TextChoices):
        MENU = "menu", "In the menu"
        ROUTING = "routing", "On hold, agents being called"
        CONNECTED = "connected", "Connected to an agent"
        VOICEMAIL = "voicemail", "In voicemail"
        ENDED = "ended", "Ended"

    class Outcome(models.TextChoices):
        NONE = "", "In progress"
        ANSWERED = "answered", "Answered by an agent"
        VOICEMAIL = "voicemail", "Voicemail"
        NO_AGENT = "no_agent", "Nobody available"
        ABANDONED = "abandoned", "Caller hung up"
        NO_MESSAGE = "no_message", "Hung up before leaving a message"
        FLOW_ENDED = "flow_ended", "Ended by the call flow"
        BLOCKED = "blocked", "Caller blocked"
        FLOW_ERROR = "flow_error", "Call flow error"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="calls")
    # PROTECT: a number with a call log is kept (its alert source and incidents are kept anyway).
    routing_number = models.ForeignKey(RoutingNumber, on_delete=models.PROTECT, related_name="calls")
    vonage_uuid = models.CharField("Vonage uuid", max_length=64, unique=True)
    conversation_uuid = models.CharField(max_length=64, blank=True)
    region_url = models.CharField(
        max_length=200, blank=True,
        help_text="The Vonage data centre that holds the call (the answer webhook's region_url, when it names a Vonage "
                  "host); hang-ups and transfers of the call go there. Empty: the configured API host.",
    )
    caller = models.CharField(max_length=32, blank=True, help_text="The caller's number as Vonage reported it.")
    called_number = models.CharField(max_length=32)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    conversation_name = models.CharField(max_length=64, unique=True, default=new_conversation_name, editable=False)

    state = models.CharField(max_length=12, choices=State.choices, default=State.MENU)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.NONE, blank=True)
    option = models.ForeignKey(RoutingOption, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls")
    simultaneous = models.BooleanField(default=False, help_text="Frozen from the option when the call was routed.")
    tries = models.PositiveSmallIntegerField(default=0, help_text="Menu attempts without a usable answer.")
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls")
    connected_leg = models.OneToOneField(
        "AgentLeg", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    started_at = models.DateTimeField(auto_now_add=True)
    routed_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the call's incident went back to normal escalation (once per call)."
    )
    recording_started_at = models.DateTimeField(
        null=True, blank=True,
        help_text="In voicemail: when the caller got past the mailbox greeting and the recording began (Vonage's "
        "notify webhook just before the record action).",
    )

    # Where the call is in its number's flow (callrouting.flows.engine): the node and that node's small state,
    # changed under the call's row lock. A call keeps the flow version it started on.
    flow_version = models.ForeignKey(
        "callrouting.FlowVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="calls",
        help_text="The published flow the call runs (empty: a call from before call flows).",
    )
    node = models.CharField(max_length=40, blank=True)
    node_state = models.JSONField(default=dict, blank=True)
    # Frozen from the route node that is ringing agents (the flow's incident node for accept_when_answered).
    about = models.CharField(max_length=200, blank=True, help_text="What agents hear the call is about.")
    ring_timeout = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Seconds each agent's phone rings (empty: the number's ringing timeout)."
    )
    accept_when_answered = models.BooleanField(
        default=True, help_text="The agent who takes the call accepts its incident."
    )
    transfer_ncco = models.JSONField(
        null=True, blank=True, help_text="Where the caller is being moved (with transfer_due_at): the NCCO to send."
    )

    # Frozen when the call comes in (callrouting.models.CallTarget).
    target = models.CharField(max_length=12, choices=Target.choices, default=Target.MENU)
    calling_style = models.CharField(max_length=12, choices=CallingStyle.choices, default=CallingStyle.OPTION)
    in_support_hours = models.BooleanField(null=True, blank=True, help_text="Empty: the number has no support hours.")

    # Due times claimed by the callrouting sweeper (callrouting.sweeper), each cleared by the one who acts on it.
    routing_due_at = models.DateTimeField(
        null=True, blank=True, help_text="While agents are called: when to move on if no agent-leg event arrived."
    )
    voicemail_due_at = models.DateTimeField(
        null=True, blank=True, help_text="In voicemail: when to escalate if the recording never completed it."
    )
    raise_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Auto raise: when the low-priority incident is raised and escalated."
    )
    transfer_due_at = models.DateTimeField(
        null=True, blank=True,
        help_text="While the caller is being moved to voicemail or 'nobody available': when to send them again if "
        "the transfer never happened (a lost task).",
    )
    recording_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Ended in voicemail: when to flag the voicemail if no recording webhook came."
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            # The call log's order and its keyset pages (started_at, id below the last row shown).
            models.Index(fields=["account", "-started_at", "-id"], name="call_account_newest_idx"),
            # The dashboard's live calls: a few rows among an account's many ended ones.
            models.Index(fields=["account", "-started_at", "-id"], name="call_account_live_idx", condition=~Q(state="ended")),
            models.Index(fields=["routing_due_at"], name="call_routing_due_idx", condition=Q(routing_due_at__isnull=False)),
            models.Index(fields=["voicemail_due_at"], name="call_voicemail_due_idx", condition=Q(voicemail_due_at__isnull=False)),
            models.Index(fields=["raise_due_at"], name="call_raise_due_idx", condition=Q(raise_due_at__isnull=False)),
            models.Index(fields=["transfer_due_at"], name="call_transfer_due_idx", condition=Q(transfer_due_at__isnull=False)),
            models.Index(fields=["recording_due_at"], name="call_recording_due_idx", condition=Q(recording_due_at__isnull=False)),
        ]

    @property
    def duration_seconds(self):
        """Seconds from the agent taking the call to its end (None for a call nobody took or still going)."""
        if self.connected_at and self.ended_at:
            return max(0, int((self.ended_at - self.connected_at).total_seconds()))
        return None

    def __str__(self):
        return f"Call from {self.caller or 'unknown'} to {self.called_number} ({self.get_state_display()})"


class AgentLeg(models.Model):
    """One outbound call to an agent on behalf of a Call, in the order agents are tried."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to be called"
        DIALLING = "dialling", "Dialling"
        RINGING = "ringing", "Ringing"
        ANSWERED = "answered", "Answered"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        MACHINE = "machine", "Answering machine"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="legs")
    position = models.PositiveSmallIntegerField()
    # No user: an external number of a route node (LABEL says whose).
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    phone_number = models.CharField(max_length=20)
    label = models.CharField(max_length=200, blank=True, help_text="Who is called (a user's name, an external number's label).")
    node = models.CharField(max_length=40, blank=True, help_text="The route node of the call's flow that rings this leg.")
    round = models.PositiveSmallIntegerField(default=1, help_text="The route node's round (its \"repeat\" count).")
    vonage_uuid = models.CharField("Vonage uuid", max_length=64, unique=True, null=True, blank=True)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    detail = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Create-call requests made for this leg.")

    created_at = models.DateTimeField(auto_now_add=True)
    dialled_at = models.DateTimeField(null=True, blank=True)
    api_host = models.CharField(
        max_length=200, blank=True, help_text="The Vonage API host that created the leg's call; it is modified there."
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["call", "position"]
        constraints = [
            models.UniqueConstraint(fields=["call", "position"], name="unique_agent_leg_position"),
            # The database itself refuses a second connected agent for one call.
            models.UniqueConstraint(
                fields=["call"], condition=Q(status="accepted"), name="one_accepted_agent_leg_per_call"
            ),
        ]

    def __str__(self):
        return f"{self.user or self.label or self.phone_number}: {self.get_status_display()}"


def voicemail_path(instance, filename):
    # A fresh random name: the call's token is a webhook secret and must not show up in a media URL.
    return f"voicemails/{instance.call.account_id}/{secrets.token_hex(16)}.mp3"


class Voicemail(models.Model):
    """The message a caller left when nobody took the call; the recording is downloaded from Vonage and kept."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="voicemail")
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="voicemails")
    recording = models.FileField(upload_to=voicemail_path, blank=True)
    recording_uuid = models.CharField(max_length=64, blank=True)
    recording_url = models.URLField(max_length=500, blank=True, help_text="Vonage's copy (deleted by Vonage after 30 days).")
    duration = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds.")
    recording_saved_at = models.DateTimeField(null=True, blank=True)
    recording_error = models.CharField(max_length=300, blank=True, help_text="Why the last download failed.")
    # Downloads that fail are retried with backoff until RECORDING_GIVE_UP_AFTER (callrouting.recordings).
    download_due_at = models.DateTimeField(null=True, blank=True, help_text="When the download is (re)tried.")
    download_attempts = models.PositiveSmallIntegerField(default=0, help_text="Failed downloads so far.")
    recording_lost_at = models.DateTimeField(null=True, blank=True, help_text="When the download was given up.")
    transcript = models.TextField(blank=True)
    transcribed_at = models.DateTimeField(null=True, blank=True)
    # What the signed links of alert-action payloads name (callrouting.recordings.signed_link).
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["download_due_at"], name="voicemail_download_due_idx",
                         condition=Q(download_due_at__isnull=False)),
        ]

    def __str__(self):
        return f"Voicemail of {self.call}"

    @property
    def is_stored(self):
        return bool(self.recording)

    @property
    def is_settled(self):
        """True once the recording is stored, lost, or its first download failed (retries go on): the team need
        not wait for it any longer."""
        return self.is_stored or self.recording_lost_at is not None or self.download_attempts > 0


class PlacedTestCall(models.Model):
    """A call an account admin placed from the Test call page to one of the account's routing numbers on the local
    phone network. Every admin of the account sees it while it lasts, so a closed browser tab never leaves a call
    that nobody can resume or hang up."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="test_calls")
    routing_number = models.ForeignKey(RoutingNumber, on_delete=models.CASCADE, related_name="test_calls")
    placed_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    vonage_uuid = models.CharField("caller leg uuid", max_length=64, unique=True)
    placed_at = models.DateTimeField(default=django_timezone.now)

    class Meta:
        ordering = ["-placed_at", "-pk"]
        indexes = [models.Index(fields=["account", "-placed_at"])]

    def __str__(self):
        return f"Test call {self.vonage_uuid} to {self.routing_number}"


# The call-flow models live in their own package; importing them here registers them with the app.
from .flows.models import CallFlow, FlowVersion, SupportCalendar  # noqa: E402,F401
