"""Routing numbers and their menus (configuration), and the call log (calls and agent legs, voicemails)."""
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q

from escalation.models import Account, EscalationPolicy, User, normalize_phone_number
from incidents.models import AlertSource, Incident

from . import phrases


def new_token():
    """An unguessable token for per-call and per-leg webhook URLs."""
    return secrets.token_urlsafe(24)


def new_conversation_name():
    return "cr-" + secrets.token_urlsafe(18)


class RoutingNumber(models.Model):
    """A phone number callers dial. Its greeting and menu lead to routing options; its alert source owns its
    incidents (created with the number, renamed with it)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="routing_numbers")
    phone_number = models.CharField(
        max_length=20, unique=True, help_text="The Vonage number in international format, for example +4930901820."
    )
    name = models.CharField(max_length=200, help_text="Read out to agents before each call, for example “Acme support”.")
    language = models.CharField(max_length=10, choices=phrases.LANGUAGE_CHOICES, default=phrases.DEFAULT_LANGUAGE)
    greeting = models.TextField(blank=True, help_text="Read to every caller first, before the menu.")
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
        blank=True, help_text="Read before the beep. Empty: the recording starts at once."
    )
    voicemail_max_length = models.PositiveIntegerField(
        default=120, validators=[MinValueValidator(3), MaxValueValidator(7200)], help_text="Longest message in seconds."
    )
    voicemail_transcription = models.BooleanField(default=True, help_text="Have Vonage transcribe the message.")

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "name"]

    def __str__(self):
        return f"{self.name} ({self.phone_number})"

    def clean(self):
        super().clean()
        try:
            self.phone_number = normalize_phone_number(self.phone_number)
        except ValidationError as exc:
            raise ValidationError({"phone_number": exc.messages}) from exc

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

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="calls")
    # PROTECT: a number with a call log is kept (its alert source and incidents are kept anyway).
    routing_number = models.ForeignKey(RoutingNumber, on_delete=models.PROTECT, related_name="calls")
    vonage_uuid = models.CharField("Vonage uuid", max_length=64, unique=True)
    conversation_uuid = models.CharField(max_length=64, blank=True)
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

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["account", "-started_at"])]

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
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    phone_number = models.CharField(max_length=20)
    vonage_uuid = models.CharField("Vonage uuid", max_length=64, unique=True, null=True, blank=True)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    detail = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Create-call requests made for this leg.")

    created_at = models.DateTimeField(auto_now_add=True)
    dialled_at = models.DateTimeField(null=True, blank=True)
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
        return f"{self.user or self.phone_number}: {self.get_status_display()}"


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
    recording_error = models.CharField(max_length=300, blank=True)
    transcript = models.TextField(blank=True)
    transcribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Voicemail of {self.call}"
