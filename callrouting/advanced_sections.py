"""The advanced sections of a number's settings page (callrouting/web/numbers.py lists them in SECTIONS):
support hours, holidays, targets, incident behaviour and custom audio.

Each follows the page's Section contract (slug, title, template, build/is_valid/save/editables) without importing
the web package, so the page imports this module and not the other way round.
"""
from django.db import transaction

from . import advanced_forms
from .models import NumberAudio, SupportCalendar


class AdvancedSection:
    slug = title = template = ""

    def build(self, request, number, data=None, files=None):
        raise NotImplementedError

    def editables(self, context):
        return [context[key] for key in ("form", "formset") if key in context]

    def is_valid(self, context):
        return all([item.is_valid() for item in self.editables(context)])

    def save(self, request, number, context):
        with transaction.atomic():
            for item in self.editables(context):
                item.save()


def calendar_of(number):
    """NUMBER's support calendar, or an unsaved one for it (created by the first save that needs it: showing the
    page creates nothing)."""
    if number.support_calendar_id is not None:
        return number.support_calendar
    return SupportCalendar(account_id=number.account_id, name=f"{number.name} support hours", timezone=number.timezone)


def save_on_calendar(number, formset):
    """Save FORMSET (of the number's calendar's rows) once the number has its calendar."""
    if formset.instance.pk is None:
        formset.instance = number.own_calendar()
    formset.save()


class SupportHoursSection(AdvancedSection):
    slug, title, template = "support-hours", "Support hours", "callrouting/sections/_support_hours.html"

    def build(self, request, number, data=None, files=None):
        return {
            "form": advanced_forms.SupportHoursForm(data, instance=number, prefix=advanced_forms.SUPPORT_HOURS_PREFIX),
            "formset": advanced_forms.SupportHoursRangesFormSet(data, instance=calendar_of(number), prefix="ranges"),
            "shared_with": shared_with(number),
        }

    def save(self, request, number, context):
        with transaction.atomic():
            context["form"].save()
            save_on_calendar(number, context["formset"])


class HolidaysSection(AdvancedSection):
    slug, title, template = "holidays", "Holidays", "callrouting/sections/_holidays.html"

    def build(self, request, number, data=None, files=None):
        uploaded = files is not None and files.get("ical-calendar")
        calendar = calendar_of(number)
        return {
            "formset": advanced_forms.HolidaysFormSet(data, instance=calendar, prefix="holidays"),
            "import_form": advanced_forms.HolidayImportForm(
                data if uploaded else None, files if uploaded else None, prefix="ical", support_calendar=calendar
            ),
        }

    def editables(self, context):
        items = [context["formset"]]
        return items + ([context["import_form"]] if context["import_form"].is_bound else [])

    def save(self, request, number, context):
        with transaction.atomic():
            save_on_calendar(number, context["formset"])
            if context["import_form"].is_bound:
                context["import_form"].save(number.own_calendar())


def shared_with(number):
    """The other numbers whose support hours are this number's calendar (the page says a change applies to them)."""
    if number.support_calendar_id is None:
        return []
    return list(number.support_calendar.numbers.exclude(pk=number.pk).values_list("name", flat=True))


class TargetsSection(AdvancedSection):
    slug, title, template = "targets", "Where calls go", "callrouting/sections/_targets.html"

    def build(self, request, number, data=None, files=None):
        return {"form": advanced_forms.TargetsForm(data, instance=number, prefix="targets")}


class IncidentBehaviourSection(AdvancedSection):
    slug, title, template = "incident-behaviour", "Incident behaviour", "callrouting/sections/_incident_behaviour.html"

    def build(self, request, number, data=None, files=None):
        return {"form": advanced_forms.AutoRaiseForm(data, instance=number, prefix="behaviour")}


class AudioSection(AdvancedSection):
    slug, title, template = "audio", "Custom audio", "callrouting/sections/_audio.html"

    def build(self, request, number, data=None, files=None):
        return {"form": advanced_forms.NumberAudioForm(data, files, number=number, prefix="audio"),
                "kinds": NumberAudio.Kind}


SECTIONS = [TargetsSection(), SupportHoursSection(), HolidaysSection(), IncidentBehaviourSection(), AudioSection()]
