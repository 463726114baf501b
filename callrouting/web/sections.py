"""The sections of a number's settings page, in page order (SECTIONS): general settings, routing options, voicemail,
where calls go, support hours, holidays, incident behaviour, custom audio and alert actions.

Each section has its own form or formset, posts to its own URL and is saved on its own (callrouting/web/numbers.py
renders and saves them; callrouting/web/urls.py gives each a URL). A new setting is a further Section subclass in
SECTIONS, with a template; the page, the URLs and the tests pick it up from that list.
"""
from django.db import transaction

from .. import configuration, number_forms, phrases
from ..models import NumberAudio, SupportCalendar
from . import forms


class Section:
    """One independently saved part of a number's page."""

    slug = title = template = ""

    def build(self, request, number, data=None, files=None):
        """The template context of the section: its form or formset, bound to DATA when given."""
        raise NotImplementedError

    def editables(self, context):
        return [context[key] for key in ("form", "formset") if key in context]

    def is_valid(self, context):
        # Every form is validated (no short circuit), so each shows its errors at once.
        return all([item.is_valid() for item in self.editables(context)])

    def save(self, request, number, context):
        with transaction.atomic():
            for item in self.editables(context):
                item.save()


class GeneralSection(Section):
    slug, title, template = "general", "General", "web/numbers/_general.html"

    def build(self, request, number, data=None, files=None):
        return {"form": forms.NumberGeneralForm(data, files, instance=number, prefix="general", account=request.account)}


class OptionsSection(Section):
    slug, title, template = "options", "Routing options", "web/numbers/_options.html"

    def build(self, request, number, data=None, files=None):
        formset = forms.OptionFormSet(data, files, instance=number, prefix="options", form_kwargs={"account": request.account})
        return {"formset": formset}

    def save(self, request, number, context):
        with transaction.atomic():
            context["formset"].save()
            configuration.renumber_options(number)


class VoicemailSection(Section):
    slug, title, template = "voicemail", "Voicemail", "web/numbers/_voicemail.html"

    def build(self, request, number, data=None, files=None):
        form = forms.VoicemailForm(data, files, instance=number, prefix="voicemail", account=request.account)
        default_prompt = phrases.phrase(number.language, "voicemail_prompt")
        return {"form": form, "default_prompt": default_prompt}


class TargetsSection(Section):
    slug, title, template = "targets", "Where calls go", "callrouting/sections/_targets.html"

    def build(self, request, number, data=None, files=None):
        return {"form": number_forms.TargetsForm(data, instance=number, prefix="targets")}


class SupportHoursSection(Section):
    slug, title, template = "support-hours", "Support hours", "callrouting/sections/_support_hours.html"

    def build(self, request, number, data=None, files=None):
        return {
            "form": number_forms.SupportHoursForm(data, instance=number, prefix=number_forms.SUPPORT_HOURS_PREFIX),
            "formset": number_forms.SupportHoursRangesFormSet(data, instance=calendar_of(number), prefix="ranges"),
            "shared_with": shared_with(number),
        }

    def save(self, request, number, context):
        with transaction.atomic():
            context["form"].save()
            save_on_calendar(number, context["formset"])


class HolidaysSection(Section):
    slug, title, template = "holidays", "Holidays", "callrouting/sections/_holidays.html"

    def build(self, request, number, data=None, files=None):
        uploaded = files is not None and files.get("ical-calendar")
        calendar = calendar_of(number)
        return {
            "formset": number_forms.HolidaysFormSet(data, instance=calendar, prefix="holidays"),
            "import_form": number_forms.HolidayImportForm(
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


def shared_with(number):
    """The other numbers whose support hours are this number's calendar (the page says a change applies to them)."""
    if number.support_calendar_id is None:
        return []
    return list(number.support_calendar.numbers.exclude(pk=number.pk).values_list("name", flat=True))


class IncidentBehaviourSection(Section):
    slug, title, template = "incident-behaviour", "Incident behaviour", "callrouting/sections/_incident_behaviour.html"

    def build(self, request, number, data=None, files=None):
        return {"form": number_forms.AutoRaiseForm(data, instance=number, prefix="behaviour")}


class AudioSection(Section):
    slug, title, template = "audio", "Custom audio", "callrouting/sections/_audio.html"

    def build(self, request, number, data=None, files=None):
        return {"form": number_forms.NumberAudioForm(data, files, number=number, prefix="audio"),
                "kinds": NumberAudio.Kind}


class AlertActionsSection(Section):
    slug, title, template = "actions", "Alert actions", "web/numbers/_actions.html"

    def build(self, request, number, data=None, files=None):
        formset = forms.AlertActionFormSet(
            data, files, instance=number.alert_source, prefix="actions", form_kwargs={"account": request.account}
        )
        return {"formset": formset}


SECTIONS = [
    GeneralSection(), OptionsSection(), VoicemailSection(), TargetsSection(), SupportHoursSection(), HolidaysSection(),
    IncidentBehaviourSection(), AudioSection(), AlertActionsSection(),
]
SECTIONS_BY_SLUG = {section.slug: section for section in SECTIONS}
