"""Forms of a number's advanced settings, for the settings pages (callrouting/web) and the admin.

Each form edits one independently saved part: support hours (with the weekly ranges formset), holidays (formset
and iCalendar import), targets, voicemail-only mode, incident behaviour, and custom audio uploads. Validation is
the models' (ModelForm runs full_clean, whose clean() names the field) plus what spans rows (formset overlaps),
the iCalendar parser (callrouting.hours) and the audio checks (callrouting.audio).
"""
from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import inlineformset_factory

from escalation.forms import DATE, TIME, InlineFormSet

from . import advanced, audio, hours
from .web.lookup import LookupInput, TimezoneField
from .models import Holiday, NumberAudio, RoutingNumber, RoutingOption, SupportCalendar, SupportHoursRange

AUDIO_ACCEPT = ".mp3,.wav,audio/mpeg,audio/wav,audio/x-wav"


SUPPORT_HOURS_PREFIX = "hours"  # the prefix of SupportHoursForm on the number's page
SUPPORT_HOURS_ON = f"{SUPPORT_HOURS_PREFIX}-support_hours_enabled=on"


class SupportHoursForm(forms.ModelForm):
    timezone = TimezoneField(
        help_text="Ranges and holidays are in this time zone.",
        widget=LookupInput("timezones", attrs={"data-show-when": SUPPORT_HOURS_ON}),
    )

    class Meta:
        model = RoutingNumber
        fields = ["support_hours_enabled", "timezone"]
        help_texts = {"support_hours_enabled": "Send calls during and outside support hours to different targets."}


class SupportHoursRangeForm(forms.ModelForm):
    class Meta:
        model = SupportHoursRange
        fields = ["weekday", "start", "end"]
        widgets = {"start": TIME, "end": TIME}


class SupportHoursRangeFormSet(InlineFormSet):
    """Several ranges per day; the ranges of one day may not overlap (checked across the submitted rows, so
    rows edited together are compared with their new values, not the saved ones)."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.instance._siblings_checked_by_formset = True
        return form

    def clean(self):
        super().clean()
        seen = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or self._should_delete_form(form) or form.errors:
                continue
            weekday, start, end = data.get("weekday"), data.get("start"), data.get("end")
            if weekday is None or start is None or end is None:
                continue
            for other_weekday, other_start, other_end in seen:
                if other_weekday == weekday and hours.overlaps((start, end), (other_start, other_end)):
                    form.add_error("start", f"Overlaps {other_start:%H:%M}-{other_end:%H:%M} on the same day.")
                    break
            seen.append((weekday, start, end))


SupportHoursRangesFormSet = inlineformset_factory(
    SupportCalendar, SupportHoursRange, form=SupportHoursRangeForm, formset=SupportHoursRangeFormSet, extra=1,
    can_delete=True,
)


class HolidayForm(forms.ModelForm):
    class Meta:
        model = Holiday
        fields = ["date", "name"]
        widgets = {"date": DATE}


HolidaysFormSet = inlineformset_factory(
    SupportCalendar, Holiday, form=HolidayForm, formset=InlineFormSet, extra=1, can_delete=True,
    max_num=Holiday.MAX_PER_CALENDAR, validate_max=True,
)


class HolidayImportForm(forms.Form):
    """Holidays from an iCalendar (.ics) file: every date of every VEVENT (multi-day all-day events too)."""

    calendar = forms.FileField(label="iCalendar file (.ics)", widget=forms.ClearableFileInput(attrs={"accept": ".ics,text/calendar"}))
    replace = forms.BooleanField(required=False, label="Replace the existing holidays",
                                 help_text="Otherwise the file's dates are added to the existing ones.")

    def __init__(self, *args, support_calendar=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.support_calendar = support_calendar

    def clean(self):
        cleaned = super().clean()
        if upload := cleaned.get("calendar"):
            try:
                replace = cleaned.get("replace", False)
                self.entries = advanced.read_holiday_calendar(upload, self.support_calendar, replace=replace)
            except hours.CalendarError as exc:
                self.add_error("calendar", str(exc))
        return cleaned

    def save(self, support_calendar):
        """Import into SUPPORT_CALENDAR; returns (added, updated, removed)."""
        return advanced.import_holidays(support_calendar, self.entries, replace=self.cleaned_data.get("replace", False))


class OptionChoiceMixin:
    """Only this number's routing options can be targets."""

    option_fields = ("in_hours_option", "out_of_hours_option")

    def limit_options(self):
        options = RoutingOption.objects.filter(routing_number=self.instance) if self.instance.pk else RoutingOption.objects.none()
        for name in self.option_fields:
            if name in self.fields:
                self.fields[name].queryset = options


class TargetsForm(OptionChoiceMixin, forms.ModelForm):
    """Where calls go during and outside support hours (and voicemail-only mode, which overrides both)."""

    class Meta:
        model = RoutingNumber
        fields = ["in_hours_target", "in_hours_option", "in_hours_calling",
                  "out_of_hours_target", "out_of_hours_option", "out_of_hours_calling", "voicemail_only"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit_options()
        # The page shows a field only where it applies (static/js/number-settings.js reads data-show-when): the
        # targets with support hours on, the option when the target is an option, the calling style unless the
        # target is voicemail.
        for when in ("in_hours", "out_of_hours"):
            target = self.add_prefix(f"{when}_target")
            self.fields[f"{when}_target"].widget.attrs["data-show-when"] = SUPPORT_HOURS_ON
            self.fields[f"{when}_option"].widget.attrs["data-show-when"] = f"{SUPPORT_HOURS_ON} {target}=option"
            self.fields[f"{when}_calling"].widget.attrs["data-show-when"] = f"{SUPPORT_HOURS_ON} {target}=menu|option"


class VoicemailOnlyForm(forms.ModelForm):
    class Meta:
        model = RoutingNumber
        fields = ["voicemail_only"]


class IncidentBehaviourForm(forms.ModelForm):
    class Meta:
        model = RoutingNumber
        fields = ["keep_incident_open", "auto_raise"]
        labels = {"keep_incident_open": "Leave the incident open when an accepted call ends"}


class AutoRaiseForm(forms.ModelForm):
    """Auto raise alone, for pages that edit keep_incident_open with the number's general settings."""

    class Meta:
        model = RoutingNumber
        fields = ["auto_raise"]


def _limits_text():
    return (f"MP3 or WAV, at most {audio.MAX_BYTES // 1024 // 1024} MB; greetings up to "
            f"{audio.MAX_SECONDS['greeting'] // 60} minutes, hold music up to {audio.MAX_SECONDS['hold_music'] // 60}.")


class AudioUploadForm(forms.ModelForm):
    """Upload (or replace) one custom recording of a number. The file is checked and converted on clean()."""

    upload = forms.FileField(label="Recording", help_text=_limits_text(),
                             widget=forms.ClearableFileInput(attrs={"accept": AUDIO_ACCEPT}))

    class Meta:
        model = NumberAudio
        fields = ["kind"]

    def __init__(self, *args, number=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.number = number or getattr(self.instance, "routing_number", None)
        if self.instance.pk:
            self.fields["kind"].disabled = True
            self.fields["upload"].required = False

    def clean(self):
        data = super().clean()
        upload, kind = data.get("upload"), data.get("kind") or self.instance.kind
        self.prepared = None
        if upload and kind:
            try:
                self.prepared = audio.prepare(upload, kind)
            except audio.AudioError as exc:
                self.add_error("upload", str(exc))
        return data

    def validate_unique(self):
        # A second upload of a kind replaces the first (advanced.store_audio): not a uniqueness error.
        pass

    def save(self, commit=True):
        if self.prepared is None:
            return self.instance
        return advanced.store_audio(self.number, self.cleaned_data.get("kind") or self.instance.kind, self.prepared)


class NumberAudioForm(forms.Form):
    """All custom recordings of a number on one form: an optional upload and a remove box per kind."""

    def __init__(self, *args, number, **kwargs):
        super().__init__(*args, **kwargs)
        self.number = number
        self.current = {a.kind: a for a in NumberAudio.objects.filter(routing_number=number)} if number.pk else {}
        for kind, label in NumberAudio.Kind.choices:
            self.fields[kind] = forms.FileField(
                required=False, label=label, help_text=_limits_text() if kind == NumberAudio.Kind.GREETING else "",
                widget=forms.FileInput(attrs={"accept": AUDIO_ACCEPT}),
            )
            if kind in self.current:
                self.fields[f"remove_{kind}"] = forms.BooleanField(required=False, label="Remove this recording")
        self.prepared = {}

    def kinds(self):
        """[(kind, label, upload field, remove field or None, current NumberAudio or None)] for templates."""
        return [
            (kind, label, self[kind], self[f"remove_{kind}"] if f"remove_{kind}" in self.fields else None, self.current.get(kind))
            for kind, label in NumberAudio.Kind.choices
        ]

    def clean(self):
        data = super().clean()
        for kind in NumberAudio.Kind.values:
            upload = data.get(kind)
            if upload:
                try:
                    self.prepared[kind] = audio.prepare(upload, kind)
                except audio.AudioError as exc:
                    self.add_error(kind, str(exc))
        return data

    def save(self):
        """Store the new recordings and remove the ticked ones; returns the kinds changed."""
        changed = []
        for kind in NumberAudio.Kind.values:
            if kind in self.prepared:
                advanced.store_audio(self.number, kind, self.prepared[kind])
                changed.append(kind)
            elif self.cleaned_data.get(f"remove_{kind}") and kind in self.current:
                advanced.remove_audio(self.current[kind])
                changed.append(kind)
        return changed
