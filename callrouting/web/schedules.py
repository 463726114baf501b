"""On-call schedule pages: the list, a schedule with its timeline (one, two or four weeks, paged backwards and
forwards; a click on a shift starts an override for it), layers and overrides, and the layer editor (participants
in rotation order, restriction windows)."""
import datetime as dt
from urllib.parse import urlencode

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from escalation.models import OnCallSchedule, RotationLayer, ScheduleOverride
from escalation.oncall import schedules_on_call

from ..tenancy import get_scoped_or_404, scoped
from . import forms
from .access import account_view, require_admin
from .common import confirm_delete, not_allowed, paginate, query_without_page
from .timeline import VIEW_WEEKS, timeline, window_from


def _schedule(request, schedule_pk):
    return get_scoped_or_404(OnCallSchedule.objects.with_oncall(timezone.now()), request.account, pk=schedule_pk)


@account_view
def schedule_list(request):
    if refused := not_allowed(request, "GET"):
        return refused
    page = paginate(request, scoped(OnCallSchedule, request.account).order_by("name", "pk"))
    on_call = schedules_on_call([schedule.pk for schedule in page], timezone.now())
    rows = [(schedule, on_call[schedule.pk]) for schedule in page]
    return render(request, "web/schedules/list.html", {"rows": rows, "page": page, "query": query_without_page(request)})


@account_view
def schedule_new(request):
    require_admin(request)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    schedule = OnCallSchedule(account=request.account, timezone=request.account.timezone)
    form = forms.ScheduleForm(request.POST or None, instance=schedule, account=request.account)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Created the on-call schedule “{schedule}”. Now add a rotation layer.")
        return redirect("web:schedule", schedule.pk)
    return render(request, "web/schedules/new.html", {"form": form}, status=400 if form.errors else 200)


def _override_link(schedule, window, bar):
    """The schedule page with the override form prefilled with BAR's whole shift."""
    query = {**window.query(), "override-start": bar.shift_start.isoformat(), "override-end": bar.shift_end.isoformat(),
             "covering": bar.user.pk}
    return reverse("web:schedule", args=[schedule.pk]) + "?" + urlencode(query) + "#add-override"


def _aware(value):
    try:
        moment = dt.datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return moment if timezone.is_aware(moment) else None


def _override_prefill(request, schedule):
    """(initial data, the covered shift's person) of an override started from a shift of the timeline."""
    start, end = _aware(request.GET.get("override-start")), _aware(request.GET.get("override-end"))
    if start is None or end is None or end <= start:
        return {}, None
    covering = request.GET.get("covering", "")
    person = schedule.account.users.filter(pk=covering).first() if covering.isdigit() else None
    return {"start": start, "end": end}, person


def _render_schedule(request, schedule, form, override_form, status=200):
    now = timezone.now()
    window = window_from(request.GET, timezone.localdate(now, schedule.tz))
    days, legend = timeline(schedule, now, window)
    if request.can_edit:
        for day in days:
            for bar in day.bars:
                bar.override_url = "" if bar.is_override else _override_link(schedule, window, bar)
    here = reverse("web:schedule", args=[schedule.pk])
    today = window_from({"weeks": window.weeks}, timezone.localdate(now, schedule.tz))
    views = [(weeks, here + "?" + urlencode(window.with_weeks(weeks).query()), weeks == window.weeks)
             for weeks in VIEW_WEEKS]
    overrides = schedule.overrides.filter(end__gt=now - dt.timedelta(days=1)).select_related("user")
    return render(
        request,
        "web/schedules/detail.html",
        {
            "schedule": schedule,
            "form": form,
            "override_form": override_form,
            "days": days,
            "legend": legend,
            "window": window,
            "views": views,
            "earlier_url": here + "?" + urlencode(window.earlier().query()),
            "later_url": here + "?" + urlencode(window.later().query()),
            "today_url": here + "?" + urlencode(today.query()),
            "showing_today": window.start <= today.start <= window.end,
            "covering": getattr(override_form, "covering", None),
            "on_call": schedule.on_call_at(now),
            "layers": schedule.layers.prefetch_related("members__user", "restrictions"),
            "overrides": overrides,
            "hours": range(0, 24, 3),
            "now_label": timezone.localtime(now, schedule.tz).strftime("%H:%M"),
        },
        status=status,
    )


@account_view
def schedule_detail(request, schedule_pk):
    schedule = _schedule(request, schedule_pk)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    form = forms.ScheduleForm(request.POST or None, instance=schedule, account=request.account)
    if request.method == "POST":
        require_admin(request)
        if form.is_valid():
            form.save()
            messages.success(request, "Schedule saved.")
            return redirect("web:schedule", schedule.pk)
    initial, covering = _override_prefill(request, schedule)
    override_form = forms.OverrideForm(account=request.account, prefix="override", initial=initial)
    override_form.covering = covering
    return _render_schedule(request, schedule, form, override_form, status=400 if form.errors else 200)


@account_view
def schedule_delete(request, schedule_pk):
    schedule = _schedule(request, schedule_pk)
    require_admin(request)
    return confirm_delete(
        request,
        schedule,
        back_url=reverse("web:schedule", args=[schedule.pk]),
        done_url=reverse("web:schedules"),
        what=f"on-call schedule “{schedule}”",
        consequences=["Its layers and overrides are deleted with it.", "Escalation rules stop notifying it."],
    )


@account_view
def override_new(request, schedule_pk):
    schedule = _schedule(request, schedule_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    require_admin(request)
    override = ScheduleOverride(schedule=schedule)
    form = forms.OverrideForm(request.POST, instance=override, account=request.account, prefix="override")
    if form.is_valid():
        form.save()
        messages.success(request, f"Override added: {override}.")
        return redirect(reverse("web:schedule", args=[schedule.pk]) + "#overrides")
    schedule_form = forms.ScheduleForm(instance=schedule, account=request.account)
    return _render_schedule(request, schedule, schedule_form, form, status=400)


@account_view
def override_delete(request, schedule_pk, override_pk):
    schedule = _schedule(request, schedule_pk)
    override = get_scoped_or_404(ScheduleOverride, request.account, pk=override_pk, schedule=schedule)
    require_admin(request)
    url = reverse("web:schedule", args=[schedule.pk]) + "#overrides"
    return confirm_delete(request, override, back_url=url, done_url=url, what=f"override {override}")


def _layer_page(request, schedule, layer, *, created):
    data = request.POST if request.method == "POST" else None
    form = forms.LayerForm(data, instance=layer, account=request.account)
    members = forms.MembersFormSet(data, instance=layer, prefix="members", form_kwargs={"account": request.account})
    restrictions = forms.RestrictionsFormSet(
        data, instance=layer, prefix="restrictions", form_kwargs={"account": request.account}
    )
    if data is not None:
        require_admin(request)
        if forms.is_valid_all(form, members, restrictions):
            with transaction.atomic():
                form.save()
                members.save()
                restrictions.save()
            messages.success(request, "Rotation layer saved.")
            return redirect("web:schedule", schedule.pk)
    return render(
        request,
        "web/schedules/layer.html",
        {"schedule": schedule, "layer": layer, "form": form, "members": members, "restrictions": restrictions,
         "created": created},
        status=400 if data is not None else 200,
    )


@account_view
def layer_new(request, schedule_pk):
    schedule = _schedule(request, schedule_pk)
    require_admin(request)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    top = max((layer.level for layer in schedule.layers.all()), default=0)
    layer = RotationLayer(
        schedule=schedule,
        level=top + 1,
        start_date=timezone.localdate(timezone.now(), schedule.tz),
        handoff_time=dt.time(9, 0),
    )
    return _layer_page(request, schedule, layer, created=True)


@account_view
def layer_detail(request, schedule_pk, layer_pk):
    schedule = _schedule(request, schedule_pk)
    layer = get_scoped_or_404(RotationLayer, request.account, pk=layer_pk, schedule=schedule)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    return _layer_page(request, schedule, layer, created=False)


@account_view
def layer_delete(request, schedule_pk, layer_pk):
    schedule = _schedule(request, schedule_pk)
    layer = get_scoped_or_404(RotationLayer, request.account, pk=layer_pk, schedule=schedule)
    require_admin(request)
    url = reverse("web:schedule", args=[schedule.pk])
    return confirm_delete(request, layer, back_url=url, done_url=url, what=f"rotation layer “{layer}” of {schedule}")
