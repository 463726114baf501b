"""Alert sources, incidents and their timeline."""
import secrets

from django.conf import settings
from django.db import models

from escalation.models import Account, EscalationPolicy


def new_token():
    return secrets.token_urlsafe(24)


class Priority(models.TextChoices):
    HIGH = "high", "High"
    LOW = "low", "Low"


class AlertSource(models.Model):
    """A named source of incidents. Call routing creates one per routing number, with the number's name."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="alert_sources")
    name = models.CharField(max_length=200)
    escalation_policy = models.ForeignKey(
        EscalationPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="alert_sources"
    )
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.HIGH)
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
            models.Index(fields=["escalation_due_at"], name="incident_due_idx", condition=models.Q(escalation_due_at__isnull=False)),
        ]

    def __str__(self):
        return f"#{self.pk} {self.summary}"

    @property
    def is_open(self):
        return self.status != self.Status.RESOLVED


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
