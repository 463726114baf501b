"""Forms of the settings pages. Validation is the models' (ModelForm runs full_clean); the formsets spanning
several rows reuse escalation/forms.py. Every dropdown offers only the account's own people, schedules and
policies, so an id of another account is a field error ("Select a valid choice"), never a leak."""
import datetime as dt

from django import forms
from django.db.models import Q
from django.forms.models import inlineformset_factory
from django.utils import timezone

from escalation.forms import DATE, DATETIME, TIME, InlineFormSet, LayerMemberFormSet, RuleUserFormSet
from escalation.models import (
    ContactMethod,
    EscalationPolicy,
    EscalationRule,
    LayerMember,
    LayerRestriction,
    NotificationRule,
    OnCallSchedule,
    RotationLayer,
    RuleSchedule,
    RuleUser,
    ScheduleOverride,
    User,
)
from incidents import outbound
from incidents.models import AlertAction, AlertSource, Incident

from ..models import Call, RoutingNumber, RoutingOption
from ..tenancy import scoped, unique_errors
from .lookup import LookupChoiceField, TimezoneField

SHORT_TEXT = forms.Textarea(attrs={"rows": 3})


class AccountForm(forms.ModelForm):
    """A ModelForm of one account: limits the user/schedule/policy dropdowns and checks unique constraints
    whose account or parent field is not on the form (Django skips those), naming the field."""

    account_choices = {"user": User, "schedule": OnCallSchedule, "escalation_policy": EscalationPolicy}

    def __init__(self, *args, account=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account
        for name, model in self.account_choices.items():
            if name in self.fields:
                # Hundreds of people or policies: a searchable input, not a dropdown of every one of them.
                chosen = self.fields[name]
                self.fields[name] = LookupChoiceField(
                    scoped(model, account), required=chosen.required, label=chosen.label, help_text=chosen.help_text,
                    initial=chosen.initial,
                )
        if "user" in self.fields:
            # A deactivated person is never on call nor dialled: not offered for a new row (a row that already
            # names them keeps its choice, so the rest of its formset still saves).
            current = getattr(self.instance, "user_id", None)
            self.fields["user"].queryset = self.fields["user"].queryset.filter(Q(is_active=True) | Q(pk=current))

    def _post_clean(self):
        super()._post_clean()
        for field, message in unique_errors(self.instance).items():
            if field in self.fields and not self.has_error(field):
                self.add_error(field, message)


# --- Routing numbers ------------------------------------------------------------------------------------------


class NumberGeneralForm(AccountForm):
    class Meta:
        model = RoutingNumber
        fields = ["name", "language", "greeting", "greeting_only", "ringing_timeout", "keep_incident_open"]
        widgets = {"greeting": SHORT_TEXT}


class VoicemailForm(AccountForm):
    class Meta:
        model = RoutingNumber
        fields = ["voicemail_enabled", "voicemail_greeting", "voicemail_max_length", "voicemail_transcription"]
        widgets = {"voicemail_greeting": SHORT_TEXT}


class PreviewForm(forms.Form):
    """What the preview endpoint reads of the (unsaved) general settings form."""

    greeting = forms.CharField(required=False)
    greeting_only = forms.BooleanField(required=False)
    language = forms.CharField(required=False)


class RoutingOptionForm(AccountForm):
    class Meta:
        model = RoutingOption
        fields = ["position", "digit", "label", "escalation_policy", "simultaneous"]
        # The order is changed with the arrows beside each option, not by typing positions.
        widgets = {"position": forms.HiddenInput,
                   "digit": forms.NumberInput(attrs={"min": 1, "max": 9, "class": "narrow"})}
        labels = {"simultaneous": "Ring all at once"}


class RoutingOptionFormSet(InlineFormSet):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The new row goes to the end of the menu unless the admin types another position.
            last = max((form.instance.position for form in self.initial_forms), default=-1)
            for form in self.extra_forms:
                form.initial.setdefault("position", last + 1)


OptionFormSet = inlineformset_factory(
    RoutingNumber, RoutingOption, form=RoutingOptionForm, formset=RoutingOptionFormSet, extra=1, can_delete=False
)


class AlertActionForm(AccountForm):
    class Meta:
        model = AlertAction
        fields = ["name", "kind", "url", "on_created", "on_accepted", "on_resolved", "on_escalated", "on_voicemail", "enabled"]
        widgets = {"url": forms.URLInput(attrs={"placeholder": "https://hooks.example.com/..."})}

    def _post_clean(self):
        super()._post_clean()
        if self.instance.url and not self.has_error("url") and (problem := outbound.address_problem(self.instance.url)):
            self.add_error("url", problem)


AlertActionFormSet = inlineformset_factory(
    AlertSource, AlertAction, form=AlertActionForm, formset=InlineFormSet, extra=1, can_delete=False
)


# --- Escalation policies ------------------------------------------------------------------------------------


class PolicyForm(AccountForm):
    class Meta:
        model = EscalationPolicy
        fields = ["name", "description", "repeat_count"]
        widgets = {"description": SHORT_TEXT}


class RuleForm(AccountForm):
    class Meta:
        model = EscalationRule
        fields = ["position", "escalation_timeout_minutes"]


class RuleUserForm(AccountForm):
    class Meta:
        model = RuleUser
        fields = ["position", "user"]
        widgets = {"position": forms.NumberInput(attrs={"min": 0, "class": "narrow"})}


class RuleScheduleForm(AccountForm):
    class Meta:
        model = RuleSchedule
        fields = ["position", "schedule"]
        widgets = {"position": forms.NumberInput(attrs={"min": 0, "class": "narrow"})}


RuleUsersFormSet = inlineformset_factory(
    EscalationRule, RuleUser, form=RuleUserForm, formset=RuleUserFormSet, extra=2, can_delete=True
)
RuleSchedulesFormSet = inlineformset_factory(
    EscalationRule, RuleSchedule, form=RuleScheduleForm, formset=InlineFormSet, extra=1, can_delete=True
)


# --- On-call schedules -----------------------------------------------------------------------------------------


class ScheduleForm(AccountForm):
    timezone = TimezoneField()

    class Meta:
        model = OnCallSchedule
        fields = ["name", "description", "timezone"]
        widgets = {"description": SHORT_TEXT}


class LayerForm(AccountForm):
    class Meta:
        model = RotationLayer
        fields = ["name", "level", "shift_length", "shift_unit", "start_date", "handoff_time", "end_date"]
        widgets = {"start_date": DATE, "end_date": DATE, "handoff_time": TIME}


class LayerMemberForm(AccountForm):
    class Meta:
        model = LayerMember
        fields = ["position", "user"]
        widgets = {"position": forms.NumberInput(attrs={"min": 0, "class": "narrow"})}


class RestrictionForm(AccountForm):
    class Meta:
        model = LayerRestriction
        fields = ["weekday", "start_time", "end_time"]
        widgets = {"start_time": TIME, "end_time": TIME}


MembersFormSet = inlineformset_factory(
    RotationLayer, LayerMember, form=LayerMemberForm, formset=LayerMemberFormSet, extra=2, can_delete=True
)
RestrictionsFormSet = inlineformset_factory(
    RotationLayer, LayerRestriction, form=RestrictionForm, formset=InlineFormSet, extra=1, can_delete=True
)


class OverrideForm(AccountForm):
    start = forms.SplitDateTimeField(widget=DATETIME, help_text="Date and 24-hour time.")
    end = forms.SplitDateTimeField(widget=DATETIME, help_text="Date and 24-hour time.")

    class Meta:
        model = ScheduleOverride
        fields = ["user", "start", "end"]


# --- Filters --------------------------------------------------------------------------------------------------


def local_day_start(day):
    """The instant at which DAY begins in the current time zone (the account's, on the pages), or None where that
    lies beyond the calendar (year 1 east of UTC, 9999-12-31 west of it). Midnight inside a daylight-saving gap is
    read as the day's first instant."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())
    try:
        start.astimezone(dt.timezone.utc)
    except OverflowError:
        return None
    return start


def within_days(queryset, field, first=None, last=None):
    """QUERYSET narrowed to the rows whose FIELD (a time) falls on the local days FIRST to LAST, both included
    (either may be None): a half-open range of instants, which the (account, FIELD descending, id descending)
    index serves; a __date lookup would convert every row's time to a date instead."""
    if first is not None and (start := local_day_start(first)) is not None:
        queryset = queryset.filter(**{f"{field}__gte": start})
    if last is not None and last < dt.date.max and (end := local_day_start(last + dt.timedelta(days=1))) is not None:
        queryset = queryset.filter(**{f"{field}__lt": end})
    return queryset


class IncidentFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any state"), ("open", "Open"), *Incident.Status.choices], required=False)
    number = forms.ModelChoiceField(queryset=RoutingNumber.objects.none(), required=False, empty_label="Any number")
    date_from = forms.DateField(required=False, widget=DATE, label="From")
    date_to = forms.DateField(required=False, widget=DATE, label="To")

    def __init__(self, *args, account=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["number"].queryset = scoped(RoutingNumber, account)

    def filter(self, incidents):
        """INCIDENTS narrowed by the valid filters (invalid ones show their error and are ignored)."""
        data = self.cleaned_data if self.is_valid() else getattr(self, "cleaned_data", {})
        status = data.get("status")
        if status == "open":
            incidents = incidents.exclude(status=Incident.Status.RESOLVED)
        elif status:
            incidents = incidents.filter(status=status)
        if data.get("number"):
            incidents = incidents.filter(alert_source__routing_number=data["number"])
        return within_days(incidents, "created_at", data.get("date_from"), data.get("date_to"))


class CallFilterForm(forms.Form):
    number = forms.ModelChoiceField(queryset=RoutingNumber.objects.none(), required=False, empty_label="Any number")
    outcome = forms.ChoiceField(
        choices=[("", "Any outcome"), ("live", "In progress"), *[c for c in Call.Outcome.choices if c[0]]], required=False
    )
    date_from = forms.DateField(required=False, widget=DATE, label="From")
    date_to = forms.DateField(required=False, widget=DATE, label="To")

    def __init__(self, *args, account=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["number"].queryset = scoped(RoutingNumber, account)

    def filter(self, calls):
        data = self.cleaned_data if self.is_valid() else getattr(self, "cleaned_data", {})
        if data.get("number"):
            calls = calls.filter(routing_number=data["number"])
        if data.get("outcome") == "live":
            calls = calls.exclude(state=Call.State.ENDED)
        elif data.get("outcome"):
            calls = calls.filter(outcome=data["outcome"])
        return within_days(calls, "started_at", data.get("date_from"), data.get("date_to"))


def is_valid_all(*forms_and_formsets):
    """Validate every form and formset (so all of them show their errors) and say whether all are valid."""
    return all([f.is_valid() for f in forms_and_formsets])


class ApiTokenForm(forms.Form):
    """A new API token: what it is for, and how long it works."""

    LIFETIMES = [("", "Until revoked"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]

    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. the script that uses it.")
    expires_in = forms.TypedChoiceField(label="Works for", choices=LIFETIMES, coerce=int, empty_value=None, required=False)

    def clean_name(self):
        return " ".join(self.cleaned_data["name"].split())


# --- People ---------------------------------------------------------------------------------------------------


class PersonForm(forms.Form):
    """A new person of the account (see escalation.people.add_person)."""

    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(max_length=150, help_text="Also their username.")
    role = forms.ChoiceField(choices=User.Role.choices, initial=User.Role.RESPONDER)

    def __init__(self, *args, roles=None, **kwargs):
        super().__init__(*args, **kwargs)
        if roles is not None:
            self.fields["role"].choices = [(role.value, role.label) for role in roles]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=User.Role.choices)

    def __init__(self, *args, roles=None, **kwargs):
        super().__init__(*args, **kwargs)
        if roles is not None:
            self.fields["role"].choices = [(role.value, role.label) for role in roles]


class ContactMethodForm(AccountForm):
    """A phone number (stored in E.164) or an email address of the person the instance belongs to."""

    class Meta:
        model = ContactMethod
        fields = ["kind", "value", "label"]
        widgets = {"value": forms.TextInput(attrs={"autocomplete": "off", "placeholder": "+49 30 1234567"})}


class NotificationRuleForm(AccountForm):
    """How and when the person is told: a channel, one of their own contact methods, a delay."""

    class Meta:
        model = NotificationRule
        fields = ["channel", "contact_method", "delay_minutes"]
        labels = {"delay_minutes": "After (minutes)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact_method"].queryset = ContactMethod.objects.filter(user_id=self.instance.user_id)
