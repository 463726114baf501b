"""A stale or foreign row id in a formset is a form error, never a 500, and changes nothing: every formset of the
settings pages (routing options, alert actions, support hours, holidays, a rule's users and schedules, a layer's
members and restrictions) is posted as the page renders it, with its first row's id replaced by an id of Globex's
row (foreign) or of a row deleted since the page was rendered (stale). Alice is Acme's owner; Charlie is Globex's."""
import pytest
from django.urls import reverse

from tests.factories import UserFactory
from tests.settings_world import world

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_world(acme, alice, bob):
    return world(acme, alice, bob)


@pytest.fixture
def globex_world(globex, charlie):
    return world(globex, charlie, UserFactory(account=globex, username="dave", phone="+4915110000008"))


def number_section(slug):
    """A section of the number page: shown on the page, saved to its own URL."""

    def locate(w):
        return reverse("web:number", args=[w.number.pk]), reverse(f"web:number-{slug}", args=[w.number.pk])

    def editables(response):
        section = next(s for s in response.context["sections"] if s["section"].slug == slug)
        return [section[key] for key in ("form", "formset") if key in section]

    return locate, editables


def page(name, args, keys):
    def locate(w):
        url = reverse(f"web:{name}", args=[getattr(w, arg).pk for arg in args])
        return url, url

    def editables(response):
        return [response.context[key] for key in keys]

    return locate, editables


# prefix of the formset -> (page, the row of a world that is its first row)
FORMSETS = {
    "options": (number_section("options"), lambda w: w.option),
    "actions": (number_section("actions"), lambda w: w.action),
    "ranges": (number_section("support-hours"), lambda w: w.support_range),
    "holidays": (number_section("holidays"), lambda w: w.holiday),
    "rule_users": (page("rule", ["policy", "rule"], ["form", "users", "schedules"]), lambda w: w.rule.rule_users.first()),
    "rule_schedules": (page("rule", ["policy", "rule"], ["form", "users", "schedules"]),
                       lambda w: w.rule.rule_schedules.first()),
    "members": (page("layer", ["schedule", "layer"], ["form", "members", "restrictions"]), lambda w: w.layer.members.first()),
    "restrictions": (page("layer", ["schedule", "layer"], ["form", "members", "restrictions"]), lambda w: w.restriction),
}


def form_data(form):
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[form.add_prefix(name)] = "on"
        elif value is not None:
            data[form.add_prefix(name)] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
    return data


def post_data(editables):
    """The POST the page's forms and formsets send when saved unchanged (existing rows only)."""
    data = {}
    for item in editables:
        if hasattr(item, "management_form"):
            data.update(form_data(item.management_form))
            data[item.add_prefix("TOTAL_FORMS")] = str(len(item.initial_forms))
            for form in item.initial_forms:
                data.update(form_data(form))
        else:
            data.update(form_data(item))
    return data


@pytest.mark.parametrize("prefix", list(FORMSETS))
@pytest.mark.parametrize("kind", ["foreign", "stale"])
def test_a_foreign_or_stale_row_id_is_a_form_error(prefix, kind, client, alice, acme_world, globex_world):
    (locate, editables), row_of = FORMSETS[prefix]
    client.force_login(alice)
    shown_at, url = locate(acme_world)
    shown = client.get(shown_at)
    assert shown.status_code == 200
    data = post_data(editables(shown))
    mine = row_of(acme_world)
    assert data[f"{prefix}-0-id"] == str(mine.pk)
    assert client.post(url, data).status_code == 302  # the page's own data saves

    if kind == "foreign":
        target = row_of(globex_world)
    else:
        target = mine
        type(mine).objects.filter(pk=mine.pk).delete()
    before = {field.name: getattr(target, field.attname) for field in type(target)._meta.concrete_fields}
    data[f"{prefix}-0-id"] = str(target.pk)
    response = client.post(url, data)

    assert response.status_code == 400
    formset = next(item for item in editables(response) if getattr(item, "prefix", None) == prefix)
    errors = formset.forms[0].errors
    assert "id" in errors, (formset.errors, formset.non_form_errors())
    assert "no longer exists or belongs elsewhere" in errors["id"][0]
    assert "no longer exists or belongs elsewhere" in response.content.decode()  # shown on the row
    if kind == "foreign":
        target.refresh_from_db()
        assert {field.name: getattr(target, field.attname) for field in type(target)._meta.concrete_fields} == before
    else:
        assert not type(target).objects.filter(pk=target.pk).exists()


# --- The formsets of escalation/forms.py (the support staff's admin) ----------------------------------------------

ADMIN_FORMSETS = [
    ("LayerMemberFormSet", "layer", "members", "layer"),
    ("RuleUserFormSet", "rule", "rule_users", "rule"),
    ("OverrideFormSet", "schedule", "overrides", "schedule"),
]


@pytest.mark.parametrize("formset_name, parent_attr, related_name, fk_name", ADMIN_FORMSETS)
@pytest.mark.parametrize("kind", ["foreign", "stale"])
def test_escalation_formsets_refuse_foreign_and_stale_row_ids(formset_name, parent_attr, related_name, fk_name, kind,
                                                              acme_world, globex_world):
    from django.forms.models import inlineformset_factory, model_to_dict

    from escalation import forms as escalation_forms

    parent = getattr(acme_world, parent_attr)
    mine = getattr(parent, related_name).first()
    model = type(mine)
    formset_class = inlineformset_factory(
        type(parent), model, formset=getattr(escalation_forms, formset_name), fields="__all__", fk_name=fk_name, extra=0
    )
    prefix = formset_class.get_default_prefix()
    if kind == "foreign":
        target = getattr(getattr(globex_world, parent_attr), related_name).first()
    else:
        target = mine
        model.objects.filter(pk=mine.pk).delete()
    row = {f"{prefix}-0-{name}": value for name, value in model_to_dict(mine).items() if value is not None}
    data = {f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-INITIAL_FORMS": "1", **row, f"{prefix}-0-id": str(target.pk)}
    formset = formset_class(data, instance=parent, prefix=prefix)
    assert not formset.is_valid()
    assert "no longer exists or belongs elsewhere" in formset.forms[0].errors["id"][0]
