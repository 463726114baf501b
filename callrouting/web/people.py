"""The People page: the account's people with their role, contact methods and whether they are on call now; adding
and inviting people, roles, deactivation; each person's contact methods and notification rules, with a test call
and a test SMS to each phone number.

Owners and admins manage everyone (escalation.people says who may change whom); a responder reaches only their
own page ("My contact methods") and edits only their contact methods and notification rules there.
"""
from django.contrib import messages
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.translation import ngettext

from escalation import people
from escalation.models import ContactMethod, NotificationRule, User
from incidents.notifications import TransportError, send_test_notification
from incidents.telephony import is_configured

from ..tenancy import get_scoped_or_404, scoped
from . import forms
from .access import account_view, require_admin
from .common import confirm_delete, not_allowed, paginate, query_without_page

PEOPLE = User.objects.prefetch_related(
    Prefetch("contact_methods", queryset=ContactMethod.objects.order_by("position", "id")),
    Prefetch("notification_rules", queryset=NotificationRule.objects.select_related("contact_method")),
)


def _person(request, user_pk):
    """The account's user USER_PK (404 for another account's) whose contact methods the signed-in user may edit
    (403 for a responder asking for someone else)."""
    person = get_scoped_or_404(PEOPLE, request.account, pk=user_pk)
    if not people.may_edit_contacts(request.user, person):
        raise PermissionDenied("Responders edit only their own contact methods and notification rules.")
    return person


def _manage(request, person):
    if not people.may_manage(request.user, person):
        raise PermissionDenied("You may not change this person's role or access.")


def _person_url(request, person):
    return reverse("web:me") if person.pk == request.user.pk else reverse("web:person", args=[person.pk])


@account_view
def person_list(request):
    require_admin(request)
    if refused := not_allowed(request, "GET"):
        return refused
    page = paginate(request, scoped(PEOPLE, request.account).order_by("-is_active", "first_name", "last_name", "username", "pk"))
    on_call = people.on_call_now(request.account, timezone.now())
    rows = [(person, on_call.get(person.pk, [])) for person in page]
    form = forms.PersonForm(roles=people.assignable_roles(request.user))
    context = {"rows": rows, "form": form, "page": page, "query": query_without_page(request)}
    return render(request, "web/people/list.html", context)


@account_view
def person_new(request):
    require_admin(request)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    form = forms.PersonForm(request.POST or None, roles=people.assignable_roles(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            person = people.add_person(request.account, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Added {person}. Invite them below so they can set a password.")
            return redirect("web:person", person.pk)
    return render(request, "web/people/new.html", {"form": form}, status=400 if form.errors else 200)


def _detail(request, person, *, status=200, **context):
    data = {
        "person": person,
        "own": person.pk == request.user.pk,
        "may_manage": people.may_manage(request.user, person),
        "on_call": people.on_call_now(request.account, timezone.now()).get(person.pk, []),
        "role_form": forms.RoleForm(initial={"role": person.role}, roles=people.assignable_roles(request.user)),
        "contact_form": forms.ContactMethodForm(instance=ContactMethod(user=person), account=request.account),
        "rule_form": forms.NotificationRuleForm(instance=NotificationRule(user=person), account=request.account),
        "can_test": is_configured(),
        "person_url": _person_url(request, person),
        **context,
    }
    return render(request, "web/people/detail.html", data, status=status)


@account_view
def person_detail(request, user_pk):
    person = _person(request, user_pk)
    if refused := not_allowed(request, "GET"):
        return refused
    return _detail(request, person)


@account_view
def my_contact_methods(request):
    if refused := not_allowed(request, "GET"):
        return refused
    return _detail(request, _person(request, request.user.pk))


@account_view
def person_role(request, user_pk):
    person = _person(request, user_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    _manage(request, person)
    form = forms.RoleForm(request.POST, roles=people.assignable_roles(request.user))
    if not form.is_valid():
        return _detail(request, person, role_form=form, status=400)
    try:
        people.change_role(person, form.cleaned_data["role"], changed_by=request.user)
    except ValidationError as exc:
        form.add_error("role", exc.messages)
        return _detail(request, person, role_form=form, status=400)
    messages.success(request, f"{person} is now {person.get_role_display().lower()}.")
    return redirect("web:person", person.pk)


@account_view
def person_invite(request, user_pk):
    person = _person(request, user_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    _manage(request, person)
    if not person.is_active:
        messages.error(request, f"{person} is deactivated: reactivate them before inviting them.")
        return redirect("web:person", person.pk)
    url, emailed = people.invite_person(person, invited_by=request.user)
    # The link is shown once, on this answer, and never stored (nor kept by a cache).
    response = _detail(request, person, invitation_url=url, invitation_emailed=emailed)
    response["Cache-Control"] = "no-store"
    return response


def _set_active(request, user_pk, active):
    person = _person(request, user_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    _manage(request, person)
    people.set_active(person, active, changed_by=request.user)
    if active:
        messages.success(request, f"Reactivated {person}.")
    else:
        messages.success(request, f"Deactivated {person}: they cannot log in and are never called or notified.")
    return redirect("web:person", person.pk)


@account_view
def person_deactivate(request, user_pk):
    return _set_active(request, user_pk, False)


@account_view
def person_reactivate(request, user_pk):
    return _set_active(request, user_pk, True)


# --- Contact methods and notification rules --------------------------------------------------------------------


def _contact_method(person, contact_method_pk):
    return get_scoped_or_404(ContactMethod, person.account, pk=contact_method_pk, user=person)


def _add_row(request, user_pk, model, form_class, context_name, done):
    """POST: add a MODEL row (contact method, notification rule) to the person through FORM_CLASS; errors show on
    the person's page in the form CONTEXT_NAME. DONE(row) is the confirmation."""
    person = _person(request, user_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    row = model(user=person, position=model.objects.filter(user=person).count())
    form = form_class(request.POST, instance=row, account=request.account)
    if not form.is_valid():
        return _detail(request, person, status=400, **{context_name: form})
    form.save()
    messages.success(request, done(row))
    return redirect(_person_url(request, person))


@account_view
def contact_method_new(request, user_pk):
    return _add_row(request, user_pk, ContactMethod, forms.ContactMethodForm, "contact_form", lambda m: f"Added {m}.")


@account_view
def contact_method_detail(request, user_pk, contact_method_pk):
    person = _person(request, user_pk)
    method = _contact_method(person, contact_method_pk)
    if refused := not_allowed(request, "GET", "POST"):
        return refused
    form = forms.ContactMethodForm(request.POST or None, instance=method, account=request.account)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Saved {method}.")
        return redirect(_person_url(request, person))
    return render(
        request, "web/people/contact_method.html",
        {"person": person, "method": method, "form": form, "person_url": _person_url(request, person)},
        status=400 if form.errors else 200,
    )


@account_view
def contact_method_delete(request, user_pk, contact_method_pk):
    person = _person(request, user_pk)
    method = _contact_method(person, contact_method_pk)
    url = _person_url(request, person)
    rules = method.notification_rules.count()
    return confirm_delete(
        request, method, back_url=url, done_url=url, what=f"contact method {method}",
        consequences=[ngettext("Its notification rule is deleted with it.",
                               "Its %(count)d notification rules are deleted with it.", rules) % {"count": rules}]
        if rules else [],
    )


def _send_test(request, user_pk, contact_method_pk, channel):
    person = _person(request, user_pk)
    method = _contact_method(person, contact_method_pk)
    if refused := not_allowed(request, "POST"):
        return refused
    what = "test call" if channel == NotificationRule.Channel.VOICE else "test SMS"
    try:
        send_test_notification(method, channel)
    except TransportError as exc:
        messages.error(request, f"The {what} to {method.value} failed: {exc.message}")
    else:
        messages.success(request, f"Sent a {what} to {method.value}.")
    return redirect(_person_url(request, person))


@account_view
def contact_method_test_call(request, user_pk, contact_method_pk):
    return _send_test(request, user_pk, contact_method_pk, NotificationRule.Channel.VOICE)


@account_view
def contact_method_test_sms(request, user_pk, contact_method_pk):
    return _send_test(request, user_pk, contact_method_pk, NotificationRule.Channel.SMS)


@account_view
def notification_rule_new(request, user_pk):
    return _add_row(request, user_pk, NotificationRule, forms.NotificationRuleForm, "rule_form",
                    lambda rule: f"Added the notification rule: {rule}.")


@account_view
def notification_rule_delete(request, user_pk, notification_rule_pk):
    person = _person(request, user_pk)
    rule = get_scoped_or_404(NotificationRule, request.account, pk=notification_rule_pk, user=person)
    url = _person_url(request, person)
    return confirm_delete(request, rule, back_url=url, done_url=url, what=f"notification rule “{rule}”")


class InvitationView(PasswordResetConfirmView):
    """The one-time set-password link of an invitation (escalation.people.invitation_url): the new person chooses
    a password and is signed in on their own page. A deactivated person's link does not work."""

    template_name = "registration/invitation.html"
    success_url = reverse_lazy("web:me")
    post_reset_login = True
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active and user.account_id is not None else None

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password is set. Add a phone number so you can be called.")
        return response
