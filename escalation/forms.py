"""Forms and formsets of the escalation admin: the validation that spans more than one row, and the date and
time widgets every form shares."""
from django import forms
from django.contrib.auth.forms import AdminUserCreationForm
from django.contrib.auth.forms import UserChangeForm as BaseUserChangeForm
from django.core.exceptions import ValidationError
from django.forms import Select
from django.forms.models import BaseInlineFormSet, ModelChoiceField
from django.utils.functional import cached_property

from .models import User

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
# Times are typed in 24-hour form whatever the browser's locale (a type="time" input follows the locale and may
# show AM/PM): a text input that takes HH:MM.
TIME_ATTRS = {"pattern": "([01][0-9]|2[0-3]):[0-5][0-9]", "inputmode": "numeric", "placeholder": "HH:MM",
              "size": 5, "maxlength": 5, "title": "24-hour time, e.g. 09:00 or 17:30", "class": "time24"}
TIME = forms.TimeInput(attrs=TIME_ATTRS, format="%H:%M")
DATETIME = forms.SplitDateTimeWidget(date_attrs={"type": "date"}, time_attrs=TIME_ATTRS, date_format="%Y-%m-%d",
                                     time_format="%H:%M")


class UserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "account", "role")


class UserChangeForm(BaseUserChangeForm):
    class Meta(BaseUserChangeForm.Meta):
        model = User


class InlineFormSet(BaseInlineFormSet):
    """The base of every formset: a row id that is not one of this formset's rows (another parent's or another
    account's row, or one deleted since the page was shown) is an error on that row, not a new row or a 500."""

    STALE_ROW = "This row no longer exists or belongs elsewhere: reload the page and make the change again."

    def add_fields(self, form, index):
        super().add_fields(form, index)
        field = form.fields.get(self._pk_field.name)
        if isinstance(field, ModelChoiceField):
            # Django accepts any row of the table here and then edits a blank row instead: only ours are valid.
            field.queryset = self.get_queryset() if self.instance.pk is not None else field.queryset.none()
            field.error_messages = {**field.error_messages, "invalid_choice": self.STALE_ROW}
            if index is not None and index < self.initial_form_count():
                field.required = True
                field.error_messages["required"] = self.STALE_ROW

    @cached_property
    def forms(self):
        forms = super().forms
        # Every row offers the same people, schedules or policies: read them once for the formset, not per row.
        # Fields that show only the chosen row (a lookup input) name all rows' choices at once instead.
        for name, field in (forms[0].fields.items() if forms else ()):
            if hasattr(field, "share_across"):
                field.share_across(forms, name)
            elif isinstance(field, ModelChoiceField) and isinstance(field.widget, Select) and name != self._pk_field.name:
                choices = list(field.choices)
                for form in forms:
                    form.fields[name].choices = choices
        return forms

    def clean(self):
        super().clean()
        # The row id is a hidden field: repeat its error where the page shows a row's errors.
        for form in self.forms:
            if self._pk_field.name in form.errors and self.STALE_ROW not in form.non_field_errors():
                form.add_error(None, self.STALE_ROW)

    def live_forms(self):
        """The forms that will be saved: filled in, valid so far and not marked for deletion."""
        return [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None) and not self._should_delete_form(form)
        ]


class LayerMemberFormSet(InlineFormSet):
    """A rotation layer is edited with its participants; it must keep at least one."""

    def clean(self):
        super().clean()
        if not any(form.cleaned_data.get("user") for form in self.live_forms()):
            raise ValidationError("A rotation layer needs at least one participant.")


class RuleUserFormSet(InlineFormSet):
    """A rule's users and schedules are two inlines of the rule page; together they must name someone.

    The schedules inline is a separate formset, so its rows are counted from the submitted data.
    """

    schedules_prefix = "rule_schedules"

    def clean(self):
        super().clean()
        if not self.live_forms() and not self._submitted_schedules():
            raise ValidationError("A rule needs at least one user or one on-call schedule.")

    def _submitted_schedules(self):
        prefix = self.schedules_prefix
        try:
            total = int(self.data.get(f"{prefix}-TOTAL_FORMS", 0))
        except ValueError:
            return 0
        return sum(
            1
            for i in range(total)
            if self.data.get(f"{prefix}-{i}-schedule") and not self.data.get(f"{prefix}-{i}-DELETE")
        )


class OverrideFormSet(InlineFormSet):
    """Overrides of one schedule must not overlap; the model checks saved rows, this checks the rows submitted."""

    def clean(self):
        super().clean()
        rows = [form for form in self.live_forms() if form.cleaned_data.get("start") and form.cleaned_data.get("end")]
        rows.sort(key=lambda form: form.cleaned_data["start"])
        for earlier, later in zip(rows, rows[1:]):
            if later.cleaned_data["start"] < earlier.cleaned_data["end"]:
                later.add_error("start", "This override overlaps another one in this list.")
