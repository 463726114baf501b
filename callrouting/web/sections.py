"""The advanced sections of a number's settings page (callrouting/web/numbers.py lists them in SECTIONS):
support hours, holidays, targets, incident behaviour and custom audio.

Each follows the page's Section contract (slug, title, template, build/is_valid/save/editables) without importing
the web package, so the page imports this module and not the other way round.
"""
from django.db import transaction

from .. import number_forms
from ..models import NumberAudio


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


class SupportHoursSection(AdvancedSection):
    slug, title, template = "support-hours", "Support hours", "callrouting/sections/_support_hours.html"

    def build(self, request, number, data=None, files=None):
        return {
            "form": number_forms.SupportHoursForm(data, instance=number, prefix=number_forms.SUPPORT_HOURS_PREFIX),
            "formset": number_forms.SupportHoursRangesFormSet(data, instance=number, prefix="ranges"),
        }


class HolidaysSection(AdvancedSection):
    slug, title, template = "holidays", "Holidays", "callrouting/sections/_holidays.html"

    def build(self, request, number, data=None, files=None):
        uploaded = files is not None and files.get("ical-calendar")
        return {
            "formset": number_forms.HolidaysFormSet(data, instance=number, prefix="holidays"),
            "import_form": number_forms.HolidayImportForm(
                data if uploaded else None, files if uploaded else None, prefix="ical", number=number
            ),
        }

    def editables(self, context):
        items = [context["formset"]]
        return items + ([context["import_form"]] if context["import_form"].is_bound else [])

    def save(self, request, number, context):
        with transaction.atomic():
            context["formset"].save()
            if context["import_form"].is_bound:
                context["import_form"].save(number)


class TargetsSection(AdvancedSection):
    slug, title, template = "targets", "Where calls go", "callrouting/sections/_targets.html"

    def build(self, request, number, data=None, files=None):
        return {"form": number_forms.TargetsForm(data, instance=number, prefix="targets")}


class IncidentBehaviourSection(AdvancedSection):
    slug, title, template = "incident-behaviour", "Incident behaviour", "callrouting/sections/_incident_behaviour.html"

    def build(self, request, number, data=None, files=None):
        return {"form": number_forms.AutoRaiseForm(data, instance=number, prefix="behaviour")}


class AudioSection(AdvancedSection):
    slug, title, template = "audio", "Custom audio", "callrouting/sections/_audio.html"

    def build(self, request, number, data=None, files=None):
        return {"form": number_forms.NumberAudioForm(data, files, number=number, prefix="audio"),
                "kinds": NumberAudio.Kind}


SECTIONS = [TargetsSection(), SupportHoursSection(), HolidaysSection(), IncidentBehaviourSection(), AudioSection()]
