"""Choosing among hundreds of people, schedules, policies or time zones: a text input the server reads by name,
which static/js/lookup.js turns into a searchable list fed by the small JSON endpoint `lookup()`.

Without the script the input still works: type the name (a person's username, email or full name) and the form
finds the row, or says that none or several match. No page ships the whole list as <option> elements.
"""
from django import forms
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.urls import reverse

from escalation.models import TIMEZONE_CHOICES, EscalationPolicy, OnCallSchedule, User

from ..tenancy import scoped
from .access import account_view
from .common import not_allowed

MAX_RESULTS = 20
TIMEZONES = [name for name, _ in TIMEZONE_CHOICES]
KINDS = {User: "people", OnCallSchedule: "schedules", EscalationPolicy: "policies"}
LISTS = [*KINDS.values(), "timezones"]


def label_of(obj):
    """The text that names OBJ in a lookup input (and that the form reads back)."""
    if isinstance(obj, User):
        name = obj.get_full_name()
        return f"{name} ({obj.username})" if name else obj.username
    return str(obj)


def _matching(queryset, text):
    if queryset.model is User:
        return queryset.filter(
            Q(username__icontains=text) | Q(email__icontains=text) | Q(first_name__icontains=text)
            | Q(last_name__icontains=text)
        )
    return queryset.filter(name__icontains=text)


class LookupInput(forms.TextInput):
    """A text input showing the chosen row's name; `labels` ({pk: text}) is filled by the form or formset so a
    page of rows names their choices with one query."""

    def __init__(self, kind, attrs=None):
        super().__init__({"autocomplete": "off", "spellcheck": "false", **(attrs or {})})
        self.kind = kind
        self.queryset = None
        self.labels = {}

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"]["data-lookup"] = reverse(f"web:lookup-{self.kind}")
        return context

    def format_value(self, value):
        if value in (None, ""):
            return ""
        key = getattr(value, "pk", value)
        if key in self.labels or str(key) in self.labels:
            return self.labels.get(key, self.labels.get(str(key)))
        if self.queryset is not None and str(key).isdigit():
            row = self.queryset.filter(pk=key).first()
            if row is not None:
                return label_of(row)
        return str(value)


class LookupChoiceField(forms.ModelChoiceField):
    """A row of QUERYSET chosen by its name (or id) typed into a LookupInput."""

    default_error_messages = {
        "invalid_choice": "Nothing of that name here: pick one from the list or type the exact name.",
        "ambiguous": "Several match “%(value)s”: type the exact name (a person's username or email).",
    }

    def __init__(self, queryset, **kwargs):
        kwargs.setdefault("widget", LookupInput(KINDS[queryset.model]))
        super().__init__(queryset, **kwargs)

    def _set_queryset(self, queryset):
        super()._set_queryset(queryset)
        if isinstance(self.widget, LookupInput):
            self.widget.queryset = self.queryset

    queryset = property(forms.ModelChoiceField._get_queryset, _set_queryset)

    def share_across(self, forms_, name):
        """Name the chosen rows of field NAME in all of FORMS_ (a formset's rows) with one query."""
        values = [form.initial.get(name) for form in forms_ if not form.is_bound]
        ids = {int(key) for key in (getattr(v, "pk", v) for v in values) if str(key).isdigit()}
        labels = {row.pk: label_of(row) for row in self.queryset.filter(pk__in=ids)} if ids else {}
        for form in forms_:
            form.fields[name].widget.labels = labels

    def to_python(self, value):
        text = (str(value) if value is not None else "").strip()
        if text in self.empty_values:
            return None
        if text.isdigit():
            row = self.queryset.filter(pk=text).first()
            if row is not None:
                return row
        if self.queryset.model is User:
            username = text[text.rfind("(") + 1:-1] if text.endswith(")") and "(" in text else text
            candidates = self.queryset.filter(Q(username__iexact=username) | Q(email__iexact=text))
            if not candidates:
                candidates = [u for u in _matching(self.queryset, text.split()[0]) if u.get_full_name().lower() == text.lower()]
        else:
            candidates = self.queryset.filter(name__iexact=text)
        candidates = list(candidates[:2])
        if len(candidates) > 1:
            raise forms.ValidationError(self.error_messages["ambiguous"], code="ambiguous", params={"value": text})
        if not candidates:
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return candidates[0]


class TimezoneField(forms.CharField):
    """An IANA time zone typed (or looked up) by name: Europe/Berlin."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", LookupInput("timezones"))
        kwargs.setdefault("initial", "UTC")
        super().__init__(max_length=64, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        match = next((name for name in TIMEZONES if name.lower() == value.lower()), None)
        if match is None:
            raise forms.ValidationError("Not a time zone: pick one from the list, for example Europe/Berlin.")
        return match


@account_view
def lookup(request, kind):
    """{"results": [{"value", "label"}]}: at most MAX_RESULTS of the account's rows of KIND whose name contains ?q."""
    if refused := not_allowed(request, "GET"):
        return refused
    text = request.GET.get("q", "").strip()[:100]
    if kind == "timezones":
        names = [name for name in TIMEZONES if text.lower().replace(" ", "_") in name.lower()][:MAX_RESULTS]
        return JsonResponse({"results": [{"value": name, "label": name} for name in names]})
    model = next((model for model, name in KINDS.items() if name == kind), None)
    if model is None:
        raise Http404("No such list.")
    rows = scoped(model, request.account)
    if model is User:
        rows = rows.filter(is_active=True)
    rows = _matching(rows, text) if text else rows
    results = [{"value": label_of(row), "label": label_of(row)} for row in rows[:MAX_RESULTS]]
    return JsonResponse({"results": results})
