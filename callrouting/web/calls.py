"""The call log (calls with their agent legs and voicemails) and the dashboard."""
from django.http import FileResponse, Http404
from django.shortcuts import render

from incidents.models import Incident

from ..models import Call, RoutingNumber
from ..tenancy import get_scoped_or_404, scoped
from .access import account_view
from .common import keyset_paginate, not_allowed, query_without_page
from .forms import CallFilterForm


@account_view
def call_list(request):
    if refused := not_allowed(request, "GET"):
        return refused
    form = CallFilterForm(request.GET or None, account=request.account)
    calls = scoped(Call, request.account).select_related("routing_number", "option", "incident", "voicemail")
    if form.is_bound:
        calls = form.filter(calls)
    return render(
        request, "web/calls/list.html", {"form": form, "page": keyset_paginate(request, calls, "started_at"), "query": query_without_page(request)}
    )


def _call(request, call_pk):
    return get_scoped_or_404(
        Call.objects.select_related("routing_number", "option", "incident", "voicemail"), request.account, pk=call_pk
    )


@account_view
def call_detail(request, call_pk):
    call = _call(request, call_pk)
    if refused := not_allowed(request, "GET"):
        return refused
    return render(request, "web/calls/detail.html", {"call": call, "legs": call.legs.select_related("user")})


@account_view
def call_voicemail(request, call_pk):
    """The voicemail recording of the call (served through the account check, never from a public URL)."""
    call = _call(request, call_pk)
    if refused := not_allowed(request, "GET"):
        return refused
    voicemail = getattr(call, "voicemail", None)
    if voicemail is None or not voicemail.recording:
        raise Http404("No recording.")
    try:
        handle = voicemail.recording.open("rb")
    except (FileNotFoundError, OSError) as exc:
        raise Http404("The recording file is missing.") from exc
    return FileResponse(handle, content_type="audio/mpeg", filename=f"voicemail-{call.pk}.mp3")


@account_view
def home(request):
    if refused := not_allowed(request, "GET"):
        return refused
    account = request.account
    open_incidents = (
        scoped(Incident, account).exclude(status=Incident.Status.RESOLVED).select_related("alert_source", "assigned_to")
    )
    live_calls = scoped(Call, account).exclude(state=Call.State.ENDED).select_related("routing_number", "option")
    return render(
        request,
        "web/home.html",
        {
            "open_incidents": open_incidents[:10],
            "open_count": open_incidents.count(),
            "live_calls": live_calls[:10],
            "numbers": scoped(RoutingNumber, account).prefetch_related("options"),
            "recent_calls": scoped(Call, account).select_related("routing_number")[:5],
        },
    )
