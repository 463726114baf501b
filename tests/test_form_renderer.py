"""The form renderer (callrouting/form_renderer.py) writes the commonest widgets without their templates: the markup
must be exactly what Django's templates give, for every widget and value that the settings pages use and for the
awkward ones (quotes and markup in values, labels and attributes, True/False attributes, numbers, dates)."""
import datetime as dt

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe

from callrouting.form_renderer import PlainWidgetRenderer
from callrouting.number_forms import TargetsForm
from callrouting.web.forms import AlertActionForm, NumberGeneralForm, RoutingOptionForm
from tests.settings_world import world


class Everything(forms.Form):
    text = forms.CharField(initial='say "hi" <b>&amp;</b>', widget=forms.TextInput(attrs={"data-x": "a\"b", "autofocus": True, "hidden": False}))
    safe = forms.CharField(initial=mark_safe("<i>safe</i>"), widget=forms.TextInput(attrs={"title": mark_safe("<t>")}))
    empty = forms.CharField(required=False)
    number = forms.IntegerField(initial=12345, widget=forms.NumberInput(attrs={"min": 1, "max": 9}))
    decimal = forms.DecimalField(initial="3.50")
    hidden = forms.IntegerField(initial=7, widget=forms.HiddenInput)
    email = forms.EmailField(initial="a@example.com")
    url = forms.URLField(initial="https://example.com/?a=1&b=<2>", assume_scheme="https")
    password = forms.CharField(widget=forms.PasswordInput(render_value=True), initial="secret")
    checked = forms.BooleanField(initial=True)
    unchecked = forms.BooleanField(required=False)
    date = forms.DateField(initial=dt.date(2026, 11, 30), widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(initial=dt.time(9, 30), widget=forms.TimeInput(attrs={"type": "time"}))
    when = forms.DateTimeField(initial=dt.datetime(2026, 11, 30, 9, 30))
    choice = forms.ChoiceField(choices=[("", "---"), ("a", 'A "quoted" <label>'), ("b", "B")], initial="a")
    numbers = forms.TypedChoiceField(choices=[(1, 1), (2, 2.5), (3, "three")], coerce=int, initial=2)
    grouped = forms.ChoiceField(choices=[("Group", [("x", "X"), ("y", "Y")]), ("z", "Z")], initial="y")
    several = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B")], initial=["a", "b"])
    yes_no = forms.NullBooleanField(initial=None)
    radio = forms.ChoiceField(choices=[("a", "A"), ("b", "B")], widget=forms.RadioSelect, initial="b")
    notes = forms.CharField(widget=forms.Textarea, initial="<x>")
    upload = forms.FileField(required=False)


def both(form_class, *args, **kwargs):
    """The same form rendered by Django's templates and by PlainWidgetRenderer."""
    return (form_class(*args, renderer=DjangoTemplates(), **kwargs), form_class(*args, renderer=PlainWidgetRenderer(), **kwargs))


def assert_same_fields(templates_form, written_form):
    assert list(templates_form.fields) == list(written_form.fields)
    for name in templates_form.fields:
        expected, got = templates_form[name], written_form[name]
        assert str(got) == str(expected), name
        assert str(got.errors) == str(expected.errors), name
    assert str(written_form.non_field_errors()) == str(templates_form.non_field_errors())
    assert str(written_form) == str(templates_form)


def test_every_kind_of_widget_unbound():
    assert_same_fields(*both(Everything))


def test_every_kind_of_widget_bound_with_errors():
    data = {"text": "<script>", "number": "x", "email": "not an email", "choice": "nope", "numbers": "3",
            "date": "2026-02-30", "grouped": "x", "several": ["b"], "radio": "a", "checked": "on"}
    templates_form, written_form = both(Everything, data)
    assert not templates_form.is_valid() and not written_form.is_valid()
    assert written_form.errors and written_form["number"].errors
    assert_same_fields(templates_form, written_form)


@pytest.mark.django_db
def test_the_number_pages_forms(acme, alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    built = world(acme, alice, alice)
    number, option, action = built.number, built.option, built.action
    assert_same_fields(*both(NumberGeneralForm, instance=number, account=acme))
    assert_same_fields(*both(TargetsForm, instance=number, prefix="targets"))
    assert_same_fields(*both(RoutingOptionForm, instance=option, account=acme))
    assert_same_fields(*both(AlertActionForm, instance=action, account=acme))
    bad = {"targets-in_hours_target": "option", "targets-in_hours_option": "999999", "targets-in_hours_calling": "x"}
    templates_form, written_form = both(TargetsForm, bad, instance=number, prefix="targets")
    assert not templates_form.is_valid() and not written_form.is_valid()
    assert_same_fields(templates_form, written_form)


def test_the_project_renders_forms_with_it():
    assert isinstance(Everything().renderer, PlainWidgetRenderer)
    # A widget written here renders no template; one that is not (a textarea) still does.
    renderer = PlainWidgetRenderer()
    assert "django/forms/widgets/input.html" in renderer.written_here
    assert "django/forms/widgets/textarea.html" not in renderer.written_here
