"""Escalation policy pages: the list, a policy with its rules and who it would call now, and the rule editor
(whom the rule notifies: users, then on-call schedules, in order)."""
from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from escalation.models import EscalationPolicy, EscalationRule
from escalation.oncall import policies_on_call

from ..tenancy import get_scoped_or_404, scoped
from . import forms
from .access import account_view, require_admin
from .common import confirm_delete, not_allowed, paginate, query_without_page


def _policy(request, policy_pk):
    return get_scoped_or_404(EscalationPolicy.objects.with_oncall(timezone.now()), request.account, pk=policy_pk)


@account_view
def policy_list(request):
    if refused := not_allowed(request, "GET"):
        return refused
    page = paginate(request, scoped(EscalationPolicy, request.account).annotate(rule_count=Count("rules")).order_by("name", "pk"))
    on_call = policies_on_call([policy.pk for policy in page], timezone.now())
    rows = [(policy, on_call[policy.pk]) for policy in page]
    return render(request, "web/policies/list.html", {"rows": rows, "page": page, "query": query_without_page(request)})


@account_view
def policy_new(request):
    require_admin(request)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    policy = EscalationPolicy(account=request.account)
    form = forms.PolicyForm(request.POST or None, instance=policy, account=request.account)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Created the escalation policy “{policy}”. Now add its rules.")
        return redirect("web:policy", policy.pk)
    return render(request, "web/policies/new.html", {"form": form}, status=400 if form.errors else 200)


@account_view
def policy_detail(request, policy_pk):
    policy = _policy(request, policy_pk)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    form = forms.PolicyForm(request.POST or None, instance=policy, account=request.account)
    if request.method == "POST":
        require_admin(request)
        if form.is_valid():
            form.save()
            messages.success(request, "Policy saved.")
            return redirect("web:policy", policy.pk)
    now = timezone.now()
    rules = [(rule, rule.targets()) for rule in policy.rules.all()]
    return render(
        request,
        "web/policies/detail.html",
        {"policy": policy, "form": form, "rules": rules, "on_call": policy.users_at(now), "now": now},
        status=400 if form.errors else 200,
    )


@account_view
def policy_delete(request, policy_pk):
    policy = _policy(request, policy_pk)
    require_admin(request)
    return confirm_delete(
        request,
        policy,
        back_url=reverse("web:policy", args=[policy.pk]),
        done_url=reverse("web:policies"),
        what=f"escalation policy “{policy}”",
        consequences=["Its rules are deleted with it.", "Routing options that use it keep it: change them first."],
    )


def _rule_page(request, policy, rule, *, created):
    data = request.POST if request.method == "POST" else None
    form = forms.RuleForm(data, instance=rule, account=request.account)
    users = forms.RuleUsersFormSet(data, instance=rule, prefix="rule_users", form_kwargs={"account": request.account})
    schedules = forms.RuleSchedulesFormSet(
        data, instance=rule, prefix="rule_schedules", form_kwargs={"account": request.account}
    )
    if data is not None:
        require_admin(request)
        if forms.is_valid_all(form, users, schedules):
            with transaction.atomic():
                form.save()
                users.save()
                schedules.save()
            messages.success(request, "Rule saved.")
            return redirect("web:policy", policy.pk)
    invalid = data is not None
    return render(
        request,
        "web/policies/rule.html",
        {"policy": policy, "rule": rule, "form": form, "users": users, "schedules": schedules, "created": created},
        status=400 if invalid else 200,
    )


@account_view
def rule_new(request, policy_pk):
    policy = _policy(request, policy_pk)
    require_admin(request)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    rule = EscalationRule(policy=policy, position=policy.rules.count())
    return _rule_page(request, policy, rule, created=True)


@account_view
def rule_detail(request, policy_pk, rule_pk):
    policy = _policy(request, policy_pk)
    rule = get_scoped_or_404(EscalationRule, request.account, pk=rule_pk, policy=policy)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    return _rule_page(request, policy, rule, created=False)


@account_view
def rule_delete(request, policy_pk, rule_pk):
    policy = _policy(request, policy_pk)
    rule = get_scoped_or_404(EscalationRule, request.account, pk=rule_pk, policy=policy)
    require_admin(request)
    url = reverse("web:policy", args=[policy.pk])
    return confirm_delete(request, rule, back_url=url, done_url=url, what=f"escalation rule “{rule}” of {policy}")
