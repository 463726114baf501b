"""People, on-call schedules and escalation policies.

An Account owns everything. Users belong to one account with a role; support staff are Django staff users
without an account who work across accounts in the Django admin.
"""
import zoneinfo

import phonenumbers
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS

TIMEZONE_CHOICES = sorted((name, name) for name in zoneinfo.available_timezones() if "/" in name or name == "UTC")


def validate_timezone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not a known time zone (for example Europe/Berlin).") from exc


def normalize_phone_number(value, region=None):
    """Return VALUE in E.164 (+4930123456) or raise ValidationError with a message a person understands."""
    value = (value or "").strip()
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            f"{value!r} is not a phone number. Use international format, for example +49 30 1234567."
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            f"{value!r} is not a valid phone number. Use international format, for example +49 30 1234567."
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def validate_phone_number(value):
    normalize_phone_number(value)


def check_same_account(account_id, **related):
    """Raise a field ValidationError for each of RELATED (field name -> user or schedule) of another account.

    Schedules, layers, overrides and rules may only name people and schedules of their own account.
    """
    if account_id is None:
        return
    errors = {
        field: f"Choose one from this account; {obj} belongs to {obj.account or 'no account'}."
        for field, obj in related.items()
        if obj is not None and obj.account_id != account_id
    }
    if errors:
        raise ValidationError(errors)


def schedule_prefetches(prefix="", at=None):
    """prefetch_related() lookups for everything the on-call answers read of the schedules at PREFIX.

    With AT only the overrides not yet over at AT are loaded: the schedules then answer correctly from AT on.
    """
    overrides = ScheduleOverride.objects.select_related("user")
    if at is not None:
        overrides = overrides.filter(end__gt=at)
    return [
        f"{prefix}layers",
        models.Prefetch(f"{prefix}layers__members", queryset=LayerMember.objects.select_related("user")),
        f"{prefix}layers__restrictions",
        models.Prefetch(f"{prefix}overrides", queryset=overrides),
    ]


def policy_prefetches(at=None):
    """prefetch_related() lookups for everything EscalationPolicy.users_at() reads (a fixed number of queries)."""
    return [
        "rules",
        models.Prefetch("rules__rule_users", queryset=RuleUser.objects.select_related("user")),
        models.Prefetch("rules__rule_schedules", queryset=RuleSchedule.objects.select_related("schedule")),
        *schedule_prefetches("rules__rule_schedules__schedule__", at),
    ]


class Account(models.Model):
    """A customer: the tenant that owns users, schedules, policies, numbers and incidents."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class User(AbstractUser):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        RESPONDER = "responder", "Responder"

    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="users",
        null=True,
        blank=True,
        help_text="Empty for support staff, who work across accounts in the admin.",
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.RESPONDER)
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone])

    class Meta:
        ordering = ["first_name", "last_name", "username"]

    def __str__(self):
        return self.get_full_name() or self.username

    @property
    def is_support_staff(self):
        """Staff without an account: works across accounts in the Django admin."""
        return self.is_active and self.is_staff and self.account_id is None

    @property
    def is_account_admin(self):
        return self.account_id is not None and self.role in (self.Role.OWNER, self.Role.ADMIN)

    def clean(self):
        super().clean()
        if self.account_id is None and not self.is_staff:
            raise ValidationError({"account": "A user who is not support staff belongs to an account."})

    def phone_numbers(self):
        """The user's phone contact methods in their order (uses prefetched contact_methods when present)."""
        return [c for c in self.contact_methods.all() if c.kind == ContactMethod.Kind.PHONE]

    def primary_phone(self):
        phones = self.phone_numbers()
        return phones[0].value if phones else None


class ApiToken(AbstractAuthToken):
    """A named REST API token of a user (django-rest-knox). Only a SHA-512 digest of the value is stored, with the
    value's first characters (token_key) to find it; the value itself is shown once, when it is created."""

    # An id of its own: knox makes the digest the primary key, which would put it into URLs.
    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_token_set")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the script that uses it.")
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.user})"

    @property
    def expired(self):
        return self.expiry is not None and self.expiry <= timezone.now()


class ContactMethod(models.Model):
    class Kind(models.TextChoices):
        PHONE = "phone", "Phone"
        EMAIL = "email", "Email"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="contact_methods")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.CharField(max_length=254, help_text="A phone number in international format, or an email address.")
    label = models.CharField(max_length=60, blank=True, help_text="For example mobile, desk.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["user", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "kind", "value"], name="unique_contact_method")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.value}"

    def clean(self):
        super().clean()
        if self.kind == self.Kind.PHONE:
            try:
                self.value = normalize_phone_number(self.value)
            except ValidationError as exc:
                raise ValidationError({"value": exc.messages}) from exc
        elif self.kind == self.Kind.EMAIL:
            from django.core.validators import validate_email

            self.value = (self.value or "").strip()
            try:
                validate_email(self.value)
            except ValidationError as exc:
                raise ValidationError({"value": "Enter a valid email address."}) from exc

    def save(self, *args, **kwargs):
        if self.kind == self.Kind.PHONE and self.value:
            try:
                self.value = normalize_phone_number(self.value)
            except ValidationError:
                pass  # full_clean() reports it; a raw save keeps what it was given
        super().save(*args, **kwargs)


class NotificationRule(models.Model):
    """How a responder wants to be told about an incident: channel, contact method and delay."""

    class Channel(models.TextChoices):
        VOICE = "voice", "Voice call"
        SMS = "sms", "SMS"
        EMAIL = "email", "Email"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notification_rules")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    contact_method = models.ForeignKey(ContactMethod, on_delete=models.CASCADE, related_name="notification_rules")
    delay_minutes = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(24 * 60)], help_text="Minutes after the escalation reaches the user."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["user", "delay_minutes", "position", "id"]

    def __str__(self):
        return f"{self.get_channel_display()} to {self.contact_method.value} after {self.delay_minutes} min"

    def clean(self):
        super().clean()
        if self.contact_method_id and self.user_id and self.contact_method.user_id != self.user_id:
            raise ValidationError({"contact_method": "Choose one of this user's own contact methods."})
        if self.contact_method_id:
            wanted = ContactMethod.Kind.EMAIL if self.channel == self.Channel.EMAIL else ContactMethod.Kind.PHONE
            if self.contact_method.kind != wanted:
                raise ValidationError(
                    {"contact_method": f"{self.get_channel_display()} needs a {wanted.label.lower()} contact method."}
                )


class OnCallScheduleQuerySet(models.QuerySet):
    def with_oncall(self, at=None):
        """Schedules loaded for on_call_at()/shifts_between() from AT on without further queries."""
        return self.prefetch_related(*schedule_prefetches(at=at))


class OnCallSchedule(models.Model):
    """Who is on call when: rotation layers (higher wins) and overrides (win over layers)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])

    objects = OnCallScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["account", "name"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="unique_schedule_name")]

    def __str__(self):
        return self.name

    @property
    def tz(self):
        return zoneinfo.ZoneInfo(self.timezone)

    def on_call_at(self, at):
        """The user on call at the aware datetime AT, or None when nobody is."""
        from .oncall import on_call_at

        return on_call_at(self, at)

    def shifts_between(self, start, end):
        """The final schedule between START and END: a list of oncall.Shift(user, start, end, source)."""
        from .oncall import shifts_between

        return shifts_between(self, start, end)


class RotationLayer(models.Model):
    class Unit(models.TextChoices):
        HOURS = "hours", "Hours"
        DAYS = "days", "Days"
        WEEKS = "weeks", "Weeks"

    schedule = models.ForeignKey(OnCallSchedule, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=100, blank=True)
    level = models.PositiveSmallIntegerField(default=1, help_text="Higher layers win over lower ones.")
    shift_length = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)])
    shift_unit = models.CharField(max_length=10, choices=Unit.choices, default=Unit.WEEKS)
    start_date = models.DateField(help_text="The first shift starts on this date, at the handoff time.")
    handoff_time = models.TimeField(help_text="Wall-clock time in the schedule's time zone when shifts change.")
    end_date = models.DateField(null=True, blank=True, help_text="Optional: the layer stops at this date's handoff.")

    class Meta:
        ordering = ["schedule", "-level", "id"]
        constraints = [models.UniqueConstraint(fields=["schedule", "level"], name="unique_layer_level")]

    def __str__(self):
        return self.name or f"Layer {self.level}"

    @property
    def account(self):
        return self.schedule.account

    def participants(self):
        """The participants' users in rotation order (a user may appear more than once)."""
        return [member.user for member in self.members.all()]

    def rotation_display(self):
        """For example "every week from 2026-01-05 09:00" or "every 8 hours from 2026-01-05 06:00"."""
        unit = self.get_shift_unit_display().lower()
        every = f"every {unit.removesuffix('s')}" if self.shift_length == 1 else f"every {self.shift_length} {unit}"
        return f"{every} from {self.start_date} {self.handoff_time:%H:%M}"

    def clean(self):
        super().clean()
        if self.end_date and self.start_date and self.end_date <= self.start_date:
            raise ValidationError({"end_date": "The end date must be after the start date."})


class LayerMember(models.Model):
    """A participant of a rotation layer, in rotation order."""

    layer = models.ForeignKey(RotationLayer, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["layer", "position", "id"]

    def __str__(self):
        return f"{self.position}: {self.user}"

    def clean(self):
        super().clean()
        layer = getattr(self, "layer", None)
        if layer is not None and getattr(layer, "schedule", None) is not None and self.user_id:
            check_same_account(layer.schedule.account_id, user=self.user)


class LayerRestriction(models.Model):
    """A window in which the layer is active. A layer with restrictions is active only inside them.

    weekday empty = every day. An end time at or before the start time runs into the next day.
    """

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    layer = models.ForeignKey(RotationLayer, on_delete=models.CASCADE, related_name="restrictions")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, null=True, blank=True)
    start_time = models.TimeField()
    end_time = models.TimeField()

    class Meta:
        ordering = ["layer", "weekday", "start_time"]

    def __str__(self):
        day = self.get_weekday_display() if self.weekday is not None else "Every day"
        return f"{day} {self.start_time:%H:%M}-{self.end_time:%H:%M}"

    def clean(self):
        super().clean()
        if self.start_time is None or self.end_time is None:
            return
        if self.start_time == self.end_time and self.weekday is None:
            raise ValidationError(
                {"end_time": "Every day from this time to the same time is always: remove the restrictions instead."}
            )
        for field in ("start_time", "end_time"):
            value = getattr(self, field)
            if value.second or value.microsecond:
                raise ValidationError({field: "Use whole minutes (for example 09:00)."})


class ScheduleOverride(models.Model):
    """A user covers a time range, winning over every layer."""

    schedule = models.ForeignKey(OnCallSchedule, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()

    class Meta:
        ordering = ["schedule", "start"]
        indexes = [models.Index(fields=["schedule", "end"])]
        constraints = [models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="override_end_after_start")]

    def __str__(self):
        return f"{self.user} {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}"

    def clean(self):
        super().clean()
        schedule = getattr(self, "schedule", None)
        if schedule is not None and self.user_id:
            check_same_account(schedule.account_id, user=self.user)
        if self.start and self.end:
            if self.end <= self.start:
                raise ValidationError({"end": "The end must be after the start."})
            if self.schedule_id:
                overlapping = ScheduleOverride.objects.filter(
                    schedule_id=self.schedule_id, start__lt=self.end, end__gt=self.start
                ).exclude(pk=self.pk)
                if overlapping.exists():
                    raise ValidationError(
                        {"start": f"This override overlaps another one ({overlapping.first()}) on this schedule."}
                    )


class EscalationPolicyQuerySet(models.QuerySet):
    def with_oncall(self, at=None):
        """Policies loaded so users_at() from AT on needs no further queries (see policy_prefetches)."""
        return self.prefetch_related(*policy_prefetches(at))


class EscalationPolicy(models.Model):
    """Whom to notify, in which order: rules tried one after the other, each after the previous one's timeout."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="escalation_policies")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    repeat_count = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(10)], help_text="How often the whole policy repeats after the last rule."
    )

    objects = EscalationPolicyQuerySet.as_manager()

    class Meta:
        ordering = ["account", "name"]
        verbose_name_plural = "escalation policies"
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="unique_policy_name")]

    def __str__(self):
        return self.name

    def users_for_rule(self, index, at):
        """The distinct users rule INDEX (0-based) notifies at AT: its users, then whoever is on call."""
        from .oncall import rule_users

        return rule_users(self.rules.all()[index], at)

    def users_at(self, at):
        """The flat ordered list of distinct users of the whole policy at AT; call routing dials exactly this."""
        from .oncall import policy_users

        return policy_users(self, at)


class EscalationRule(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField(default=0)
    escalation_timeout_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    users = models.ManyToManyField(User, blank=True, related_name="+", through="RuleUser")
    schedules = models.ManyToManyField(OnCallSchedule, blank=True, related_name="+", through="RuleSchedule")

    class Meta:
        ordering = ["policy", "position", "id"]

    def __str__(self):
        return f"Rule {self.position + 1} ({self.escalation_timeout_minutes} min)"

    @property
    def account(self):
        return self.policy.account

    def targets(self):
        """Whom the rule names, in order: its users, then its schedules."""
        return [ru.user for ru in self.rule_users.all()] + [rs.schedule for rs in self.rule_schedules.all()]


class RuleUser(models.Model):
    rule = models.ForeignKey(EscalationRule, on_delete=models.CASCADE, related_name="rule_users")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["rule", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["rule", "user"], name="unique_rule_user")]

    def clean(self):
        super().clean()
        rule = getattr(self, "rule", None)
        if rule is not None and getattr(rule, "policy", None) is not None and self.user_id:
            check_same_account(rule.policy.account_id, user=self.user)


class RuleSchedule(models.Model):
    rule = models.ForeignKey(EscalationRule, on_delete=models.CASCADE, related_name="rule_schedules")
    schedule = models.ForeignKey(OnCallSchedule, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["rule", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["rule", "schedule"], name="unique_rule_schedule")]

    def clean(self):
        super().clean()
        rule = getattr(self, "rule", None)
        if rule is not None and getattr(rule, "policy", None) is not None and self.schedule_id:
            check_same_account(rule.policy.account_id, schedule=self.schedule)
