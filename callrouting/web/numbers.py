"""Routing number pages: the list, and one page per number built from independent sections.

Each section (callrouting/web/sections.py) has its own form, posts to its own URL and is saved on its own; a
failing section is shown with its errors while the others show what is saved.
"""
import copy
import dataclasses

from django.contrib import messages
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from incidents.models import AlertAction

from .. import configuration, phrases
from ..flows import actions as flow_actions
from ..flows import compiler, dryrun
from ..flows.compiler import is_simple
from ..flows.world import DatabaseWorld
from ..models import RoutingNumber, RoutingOption
from ..tenancy import get_scoped_or_404, scoped
from . import forms
from .access import account_view, require_admin
from .common import confirm_delete, not_allowed
from .sections import SECTIONS, SECTIONS_BY_SLUG


# A number's options with their policies, read once for the page: its preview, who is on call and the targets.
OPTIONS_WITH_POLICIES = Prefetch("options", queryset=RoutingOption.objects.select_related("escalation_policy"))


def _number(request, number_pk):
    return get_scoped_or_404(RoutingNumber.objects.select_related("alert_source"), request.account, pk=number_pk)


def preview_document(number, settings=None):
    """The flow the number's preview dry-runs: its settings compiled (SETTINGS: NumberSettings with unsaved
    changes), or its published flow when that goes beyond simple mode (the settings no longer describe it)."""
    if settings is not None:
        return compiler.compile_settings(settings)
    flow = flow_actions.flow_of(number)
    published = flow.published.document if flow.published_id else None
    if published is not None and not is_simple(published):
        return published
    return compiler.compile_number(number)


def _world(number):
    names = {audio.pk: audio.original_name or audio.get_kind_display() for audio in number.audio_files.all()}
    return DatabaseWorld(number.account_id, audio_names=names)


def callers_hear(number, at, settings=None):
    """What callers hear on a call arriving at AT: the dry run of the number's flow, the same engine code as live
    calls (SETTINGS: unsaved changes of the settings page)."""
    document = preview_document(number, settings)
    return dryrun.callers_hear(document, at=at, world=_world(number), number_name=number.name)


def who_would_be_called(number, at):
    """A row per route a caller can reach at AT, its people in ringing order (users without a phone number left
    out): the dry run of the number's flow, the same engine code as live calls."""
    document = preview_document(number)
    world = _world(number)
    nodes = document.get("nodes", {})
    rows = []
    for row in dryrun.routes_now(document, at, world):
        otherwise = nodes.get(row["otherwise"]) if row["otherwise"] else None
        if otherwise is None:
            fallback = "“nobody available”"
        elif otherwise.get("kind") == "voicemail":
            fallback = "voicemail"
        else:
            fallback = f"“{otherwise.get('name') or row['otherwise']}”"
        rows.append({**row, "people": [target.label for target in row["dials"]], "fallback": fallback})
    return rows


@account_view
@require_GET
def number_list(request):
    numbers = scoped(RoutingNumber, request.account).prefetch_related("options")
    return render(request, "web/numbers/list.html", {"numbers": numbers})


SECTION_TAG = "section-"


def _section_url(number, slug):
    """Where SLUG's form posts: the fragment makes the browser land on the section again, with its errors."""
    return reverse(f"web:number-{slug}", args=[number.pk]) + f"#{slug}"


def _split_messages(request):
    """(page messages, {section slug: [messages]}): a section's confirmation is shown inside that section."""
    page, by_section = [], {}
    for message in messages.get_messages(request):
        tag = message.extra_tags or ""
        if tag.startswith(SECTION_TAG):
            by_section.setdefault(tag.removeprefix(SECTION_TAG), []).append(message)
        else:
            page.append(message)
    return page, by_section


def _render_number(request, number, bound=None, status=200):
    """The number's page; BOUND = (section, context) of a section that failed validation."""
    prefetch_related_objects([number], OPTIONS_WITH_POLICIES)
    page_messages, section_messages = _split_messages(request)
    sections = []
    for section in SECTIONS:
        notes = section_messages.get(section.slug, [])
        if bound and bound[0] is section:
            context = bound[1]
            notes = [Message(constants.ERROR, f"{section.title} not saved: please correct the errors below.")]
        else:
            context = section.build(request, copy.copy(number))
        sections.append({"section": section, "url": _section_url(number, section.slug), "notes": notes, **context})
    return render(
        request,
        "web/numbers/detail.html",
        {
            "number": number,
            "flow": flow_state(number),
            "sections": sections,
            "preview": callers_hear(number, timezone.now()),
            "page_messages": page_messages,
        },
        status=status,
    )


def flow_state(number):
    """{"simple": bool, "url": the flow's page, "version": the published FlowVersion or None} for the page's
    banner: a flow the settings below cannot describe (not simple) is edited in the flow editor."""
    flow = flow_actions.flow_of(number)
    version = flow.published
    return {
        "simple": version is None or is_simple(version.document),
        "url": reverse("web:flow-editor", args=[number.pk]),
        "version": version,
    }


@account_view
def number_detail(request, number_pk):
    number = _number(request, number_pk)
    return not_allowed(request, "GET") or _render_number(request, number)


@account_view
def number_on_call(request, number_pk):
    """Whom each of the number's options would call now: the card of the number's page (?fragment=1, which the
    page's script loads after the page) or a page of its own (the card's link without the script)."""
    number = _number(request, number_pk)
    if refused := not_allowed(request, "GET"):
        return refused
    now = timezone.now()
    template = "web/numbers/_on_call.html" if request.GET.get("fragment") else "web/numbers/on_call.html"
    return render(request, template, {"number": number, "on_call": who_would_be_called(number, now), "now": now})


@account_view
def number_section(request, number_pk, section):
    """POST one section of the number's page; errors re-render the page (status 400) with them inside the section,
    success redirects to the section (#slug) where the confirmation shows."""
    number = _number(request, number_pk)
    if request.method != "POST":
        return redirect(reverse("web:number", args=[number.pk]) + f"#{section}")
    require_admin(request)
    handler = SECTIONS_BY_SLUG[section]
    context = handler.build(request, copy.copy(number), request.POST, request.FILES)
    if not handler.is_valid(context):
        return _render_number(request, number, bound=(handler, context), status=400)
    with flow_actions.settings_change(request.user):
        handler.save(request, number, context)
    messages.success(request, f"{handler.title} saved.", extra_tags=SECTION_TAG + section)
    return redirect(reverse("web:number", args=[number.pk]) + f"#{section}")


@account_view
def number_preview(request, number_pk):
    """JSON {"text": ...}: what callers would hear now with the posted (unsaved) greeting settings and the saved
    rest (the dry run of the flow those settings compile to)."""
    number = _number(request, number_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    form = forms.PreviewForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    languages = dict(phrases.LANGUAGE_CHOICES)
    settings = dataclasses.replace(
        compiler.settings_of(number),
        greeting=(data.get("greeting") or "").strip(),
        greeting_only=bool(data.get("greeting_only")),
        language=data.get("language") if data.get("language") in languages else number.language,
    )
    text = callers_hear(number, timezone.now(), settings)
    return JsonResponse({"text": text})


@account_view
def option_delete(request, number_pk, option_pk):
    number = _number(request, number_pk)
    option = get_scoped_or_404(RoutingOption, request.account, pk=option_pk, routing_number=number)
    require_admin(request)
    url = reverse("web:number", args=[number.pk]) + "#options"

    def delete():
        with transaction.atomic(), flow_actions.settings_change(request.user):
            option.delete()
            configuration.renumber_options(number)

    return confirm_delete(
        request, option, back_url=url, done_url=url, what=f"routing option {option}", delete=delete,
        consequences=["Callers no longer hear it in the menu. Past calls keep their log."],
    )


@account_view
def option_move(request, number_pk, option_pk):
    number = _number(request, number_pk)
    option = get_scoped_or_404(RoutingOption, request.account, pk=option_pk, routing_number=number)
    if refused := not_allowed(request, "POST"):
        return refused
    require_admin(request)
    with flow_actions.settings_change(request.user):
        configuration.move_option(option, request.POST.get("direction", ""))
    return redirect(reverse("web:number", args=[number.pk]) + "#options")


@account_view
def action_delete(request, number_pk, action_pk):
    number = _number(request, number_pk)
    action = get_scoped_or_404(AlertAction, request.account, pk=action_pk, alert_source=number.alert_source_id)
    require_admin(request)
    url = reverse("web:number", args=[number.pk]) + "#actions"
    return confirm_delete(request, action, back_url=url, done_url=url, what=f"alert action “{action}”")
