"""The form renderer of every form (settings.FORM_RENDERER): Django's, with the commonest widgets written directly.

A number's settings page shows over a hundred fields; through Django's widget templates each costs two or three
template renders (input.html includes attrs.html), and each field's empty error list one or two more. Here the
plain <input> widgets, <select> without option groups and empty error lists give the same markup as Django's
templates (tests/test_form_renderer.py compares them) without a template; every other widget, and a widget whose
template an app replaces, goes through the templates as before.
"""
from pathlib import Path

import django
from django.forms.renderers import DjangoTemplates
from django.utils.formats import localize
from django.utils.functional import cached_property
from django.utils.html import conditional_escape
from django.utils.timezone import template_localtime

DJANGO_TEMPLATES = Path(django.__file__).parent / "forms" / "templates"

INPUT_TEMPLATES = {
    f"django/forms/widgets/{kind}.html"
    for kind in ("input", "text", "number", "email", "url", "password", "hidden", "checkbox", "date", "time", "datetime",
                 "search", "tel")
}
SELECT_TEMPLATE = "django/forms/widgets/select.html"
OPTION_TEMPLATE = "django/forms/widgets/select_option.html"
ERROR_LIST_TEMPLATES = {"django/forms/errors/list/default.html", "django/forms/errors/list/ul.html"}


def _text(value):
    """`{{ value|stringformat:'s' }}` in an autoescaped template: "%s" gives a plain str, which is escaped."""
    return conditional_escape("%s" % (value,))


def _label(value):
    """`{{ value }}` in an autoescaped template."""
    return conditional_escape(localize(template_localtime(value)))


def _attrs(attrs):
    """django/forms/widgets/attrs.html: False leaves the attribute out, True writes it without a value."""
    return "".join(
        f" {conditional_escape(name)}" if value is True else f' {conditional_escape(name)}="{_text(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


def _input(widget):
    value = "" if widget["value"] is None else f' value="{_text(widget["value"])}"'
    return f'<input type="{conditional_escape(widget["type"])}" name="{conditional_escape(widget["name"])}"{value}{_attrs(widget["attrs"])}>'


def _select(widget):
    # Each option is the include of select_option.html, whose file ends with a newline.
    options = []
    for group_name, group_choices, _ in widget["optgroups"]:
        if group_name:
            return None
        for option in group_choices:
            if option["template_name"] != OPTION_TEMPLATE:
                return None
            options.append(
                f'\n  <option value="{_text(option["value"])}"{_attrs(option["attrs"])}>{_label(option["label"])}</option>\n'
            )
    return f'<select name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>{"".join(options)}\n</select>'


class PlainWidgetRenderer(DjangoTemplates):
    @cached_property
    def written_here(self):
        """The template names written here that resolve to Django's own files (none replaced by an app)."""
        names = INPUT_TEMPLATES | ERROR_LIST_TEMPLATES | {SELECT_TEMPLATE, OPTION_TEMPLATE}
        return {name for name in names if Path(self.get_template(name).origin.name).is_relative_to(DJANGO_TEMPLATES)}

    def render(self, template_name, context, request=None):
        markup = self._written(template_name, context) if template_name in self.written_here else None
        return super().render(template_name, context, request) if markup is None else markup

    def _written(self, template_name, context):
        """The markup of TEMPLATE_NAME with CONTEXT, or None where the template should render it."""
        if template_name in INPUT_TEMPLATES:
            return _input(context["widget"])
        if template_name == SELECT_TEMPLATE and OPTION_TEMPLATE in self.written_here:
            return _select(context["widget"])
        if template_name in ERROR_LIST_TEMPLATES and not context["errors"]:
            return ""
        return None
