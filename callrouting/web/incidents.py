"""Incident pages: the filtered list, one incident with its timeline, calls and voicemails, accept and resolve.

Accepting and resolving go through incidents.services, the only place that changes an incident's state;
responders may do both, as account admins may.
"""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from incidents import services
from incidents.models import Incident

from ..models import Call
from ..tenancy import get_scoped_or_404, scoped
from .access import account_view
from .common import keyset_paginate, not_allowed, query_without_page
from .forms import IncidentFilterForm


CALLS_PER_PAGE = 20


def _incident(request, incident_pk):
    return get_scoped_or_404(
        Incident.objects.select_related("alert_source", "escalation_policy", "assigned_to"), request.account, pk=incident_pk
    )


@account_view
def incident_list(request):
    if refused := not_allowed(request, "GET"):
        return refused
    form = IncidentFilterForm(request.GET or None, account=request.account)
    incidents = scoped(Incident, request.account).select_related("alert_source", "assigned_to")
    if form.is_bound:
        incidents = form.filter(incidents)
    return render(
        request,
        "web/incidents/list.html",
        {"form": form, "page": keyset_paginate(request, incidents, "created_at"), "query": query_without_page(request)},
    )


@account_view
def incident_detail(request, incident_pk):
    incident = _incident(request, incident_pk)
    if refused := not_allowed(request, "GET"):
        return refused
    calls = Call.objects.filter(incident=incident, account=request.account).select_related("option", "voicemail")
    return render(
        request,
        "web/incidents/detail.html",
        {
            "incident": incident,
            "events": incident.events.select_related("user"),
            # A caller who keeps calling back adds a call each time: the newest page, older ones by position.
            "calls": keyset_paginate(request, calls, "started_at", CALLS_PER_PAGE, prefix="calls_"),
        },
    )


def _act(request, incident_pk, verb):
    incident = _incident(request, incident_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    if verb == "accept":
        done = services.accept_incident(incident.pk, request.user, via="web")
        outcome = "You accepted the incident." if done else "The incident was not pending any more; nothing changed."
    else:
        done = services.resolve_incident(incident.pk, request.user, via="web")
        outcome = "Incident resolved." if done else "The incident was already resolved."
    messages.add_message(request, messages.SUCCESS if done else messages.INFO, outcome)
    return redirect(reverse("web:incident", args=[incident.pk]))


@account_view
def incident_accept(request, incident_pk):
    return _act(request, incident_pk, "accept")


@account_view
def incident_resolve(request, incident_pk):
    return _act(request, incident_pk, "resolve")
