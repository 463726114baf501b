"""Alert sources, incidents and their timeline."""
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from escalation.models import Account, EscalationPolicy, NotificationRule

from .outbound import url_problem


def new_token():
    return secrets.token_urlsafe(24)


class HttpsURLField(models.URLField):
    """A URL field whose form reads an address typed without a scheme as https."""

    def formfield(self, **kwargs):
        kwargs.setdefault("assume_scheme", "https")
        return super().formfield(**kwargs)


class Priority(models.TextChoices):
    HIGH = "high", "High"
    LOW = "low", "Low"


class Language(models.TextChoices):
    """Languages notification calls are spoken in (BCP-47, as Vonage's talk action wants them)."""

    EN_US = "en-US", "English"
    DE_DE = "de-DE", "German"
    FR_FR = "fr-FR", "French"
    ES_ES = "es-ES", "Spanish"
    NL_NL = "nl-NL", "Dutch"
    IT_IT = "it-IT", "Italian"


class AlertSource(models.Model):
    """A named source of incidents. Call routing creates one per routing number, with the number's name."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="alert_sources")
    name = models.CharField(max_length=200)
    escalation_policy = models.ForeignKey(
        EscalationPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="alert_sources"
    )
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.HIGH)
    language = models.CharField(
        max_length=10,
        choices=Language.choices,
        blank=True,
        help_text="Language of notification calls and messages. Empty: the account's language, else English.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "name"]

    def __str__(self):
        return self.name


class Incident(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        RESOLVED = "resolved", "Resolved"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="incidents")
    alert_source = models.ForeignKey(AlertSource, on_delete=models.PROTECT, related_name="incidents")
    escalation_policy = models.ForeignKey(
        EscalationPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents"
    )
    summary = models.CharField(max_length=500)
    details = models.TextField(blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.HIGH)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="assigned_incidents"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    # Escalation state. The policy is frozen into escalation_snapshot when escalation (re)starts; the sweeper
    # claims rows whose escalation_due_at has passed. escalation_generation changes on every (re)start so a late
    # task of an earlier run can recognise itself and do nothing.
    escalation_suppressed = models.BooleanField(
        default=False, help_text="Normal escalation is held back (for example while a live call is routed)."
    )
    escalation_snapshot = models.JSONField(default=dict, blank=True)
    escalation_step = models.PositiveIntegerField(default=0)
    escalation_due_at = models.DateTimeField(null=True, blank=True)
    escalation_generation = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "status", "-created_at"]),
            # The lists' order and their keyset pages (created_at, id below the last row shown).
            models.Index(fields=["account", "-created_at", "-id"], name="incident_account_newest_idx"),
            # The dashboard's open incidents: a few rows among an account's many resolved ones.
            models.Index(fields=["account", "-created_at", "-id"], name="incident_account_open_idx",
                         condition=~models.Q(status="resolved")),
            models.Index(fields=["escalation_due_at"], name="incident_due_idx", condition=models.Q(escalation_due_at__isnull=False)),
        ]

    def __str__(self):
        return f"#{self.pk} {self.summary}"

    @property
    def is_open(self):
        return self.status != self.Status.RESOLVED

    @property
    def is_escalating(self):
        return self.status == self.Status.PENDING and self.escalation_due_at is not None

    @property
    def language(self):
        """The BCP-47 language notifications about this incident are spoken/written in."""
        return self.alert_source.language or getattr(self.account, "language", "") or Language.EN_US

    def get_public_url(self):
        """The absolute link people get in SMS, email and alert actions."""
        return f"{settings.PUBLIC_BASE_URL}/incidents/{self.pk}"


class IncidentEvent(models.Model):
    """One line of an incident's timeline."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        NOTIFIED = "notified", "Notified"
        DELIVERY_FAILED = "delivery_failed", "Delivery failed"
        ESCALATED = "escalated", "Escalated"
        ACCEPTED = "accepted", "Accepted"
        RESOLVED = "resolved", "Resolved"
        PRIORITY = "priority", "Priority changed"
        CALL = "call", "Call routing"
        VOICEMAIL = "voicemail", "Voicemail"
        ACTION = "action", "Alert action"
        NOTE = "note", "Note"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.TextField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}: {self.message}"


class Notification(models.Model):
    """One message to one responder about one incident: a due row the sweeper hands to a delivery task.

    Each row is attempted at most MAX_ATTEMPTS times (see incidents.notifications); `attempts` counts the attempts
    made and doubles as the idempotency key of the delivery task.
    """

    Channel = NotificationRule.Channel

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    contact = models.CharField(max_length=254, help_text="Phone number (E.164) or email address at planning time.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(help_text="When the next attempt is due.")
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When a delivery task was last enqueued.")
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="While sending: when the sweeper takes the attempt back from a worker that died."
    )
    escalation_generation = models.PositiveIntegerField(default=0)
    escalation_step = models.PositiveIntegerField(default=0)
    delay_minutes = models.PositiveIntegerField(default=0)
    # Unguessable: it is the only thing that ties a keypress webhook to this notification and its user.
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    provider_id = models.CharField(max_length=100, blank=True, help_text="Vonage call uuid or message id.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["due_at"], name="notification_due_idx", condition=models.Q(status="pending")),
            models.Index(fields=["lease_until"], name="notification_lease_idx", condition=models.Q(status="sending")),
        ]

    def __str__(self):
        return f"{self.get_channel_display()} to {self.user} ({self.get_status_display()})"


class AlertAction(models.Model):
    """Tell another system about an alert source's incidents: a generic webhook, Slack or Microsoft Teams."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (JSON)"
        SLACK = "slack", "Slack incoming webhook"
        TEAMS = "teams", "Microsoft Teams incoming webhook"

    class Trigger(models.TextChoices):
        CREATED = "created", "Incident created"
        ACCEPTED = "accepted", "Incident accepted"
        RESOLVED = "resolved", "Incident resolved"
        ESCALATED = "escalated", "Incident escalated"
        VOICEMAIL = "voicemail", "Voicemail left"

    alert_source = models.ForeignKey(AlertSource, on_delete=models.CASCADE, related_name="actions")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.WEBHOOK)
    url = HttpsURLField(max_length=1000)
    on_created = models.BooleanField("when created", default=True)
    on_accepted = models.BooleanField("when accepted", default=True)
    on_resolved = models.BooleanField("when resolved", default=True)
    on_escalated = models.BooleanField(
        "when escalated", default=True, help_text="A call's incident goes to its escalation policy (nobody took the call)."
    )
    on_voicemail = models.BooleanField(
        "when a voicemail is left", default=True,
        help_text="The recording (a signed link) and its length; again when the transcript arrives or the recording is lost.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["alert_source", "name", "id"]

    def __str__(self):
        return self.name

    def clean(self):
        # No lookup here (models do no network I/O); forms and the API also check where the host resolves to.
        if self.url and (problem := url_problem(self.url, self.kind)):
            raise ValidationError({"url": problem})

    def fires_on(self, trigger):
        """True when this action is enabled and selected for TRIGGER (an AlertAction.Trigger value)."""
        return self.enabled and getattr(self, f"on_{trigger}", False)


class AlertActionDelivery(models.Model):
    """One attempt to deliver one alert action for one incident transition; retries are new rows."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    action = models.ForeignKey(AlertAction, on_delete=models.CASCADE, related_name="deliveries")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="action_deliveries")
    trigger = models.CharField(max_length=10, choices=AlertAction.Trigger.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    due_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="While sending: when the sweeper takes the attempt back from a worker that died."
    )
    payload = models.JSONField(null=True, blank=True, help_text="Built at the first attempt; retries send the same.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "alert action deliveries"
        indexes = [
            models.Index(fields=["due_at"], name="action_delivery_due_idx", condition=models.Q(status="pending")),
            models.Index(fields=["lease_until"], name="action_delivery_lease_idx", condition=models.Q(status="sending")),
        ]

    def __str__(self):
        return f"{self.action} {self.trigger} #{self.attempt}: {self.get_status_display()}"


class CallRateWindow(models.Model):
    """The latest request slots reserved against one Vonage account and one of its limits (call creations, or
    requests that modify a call), shared by every process of the deployment (incidents.pacing keeps it; Vonage
    answers 429 to a 4th call creation within a second)."""

    name = models.CharField(max_length=50, primary_key=True)
    slots = models.JSONField(default=list, blank=True, help_text="Epoch seconds, ascending; possibly in the future.")

    def __str__(self):
        return f"{self.name}: {len(self.slots)} slots"

    def next_slot(self, now, *, rate, period):
        """The earliest time at or after NOW (epoch seconds) at which one more call creation keeps at most RATE of
        them in any PERIOD seconds, given the slots already reserved."""
        if len(self.slots) < rate:
            return now
        return max(now, self.slots[-rate] + period)

    def reserve(self, at, *, rate):
        """Record the slot AT, keeping the latest RATE slots in ascending order (all next_slot() needs)."""
        self.slots = sorted([*self.slots, at])[-rate:]


class WorkerHeartbeat(models.Model):
    """The last time a periodic task of the worker ran: the minute sweeper writes "sweeper" every minute, and
    /healthz answers 503 when it is older than HEARTBEAT_MAX_AGE (callrouting.monitoring)."""

    name = models.CharField(max_length=50, primary_key=True)
    at = models.DateTimeField()

    def __str__(self):
        return f"{self.name}: {self.at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls, name, at=None):
        """Record that NAME ran at AT (default: now)."""
        cls.objects.update_or_create(name=name, defaults={"at": at or timezone.now()})


class WebhookToken(models.Model):
    """A Vonage webhook signature already used, by its jti: a signed token proves one request, so a token seen
    twice (a replay, perhaps with other query parameters) is refused. Kept until the token could no longer pass
    the age check anyway; the sweeper deletes expired rows."""

    jti = models.CharField(max_length=200, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return self.jti


class VonageErrorEvent(models.Model):
    """An error event from Vonage (an event without a status): its only report that an NCCO we returned was
    invalid, or that a call it answered 201 for could not be placed after all. Shown in the recent failures."""

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    reason = models.TextField()
    conversation_uuid = models.CharField(max_length=64, blank=True)
    uuid = models.CharField(max_length=64, blank=True)
    webhook = models.CharField(max_length=200, help_text="The path of the event URL it was sent to.")
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self):
        return f"{self.received_at:%Y-%m-%d %H:%M:%S}: {self.reason[:80]}"
