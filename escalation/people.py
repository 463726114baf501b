"""The people of an account: adding, inviting, changing roles, deactivating, and who is on call now.

Who may do what (the views and the API check it with the `may_*` questions before calling a verb):
- owners and admins add people, invite them, change roles and deactivate; only an owner makes, unmakes or
  deactivates an owner; nobody changes their own role or deactivates themselves (an account never locks its
  last owner out);
- everyone edits their own contact methods and notification rules; owners and admins edit everyone's.

An invitation is a one-time set-password link made with Django's password-reset tokens: it stops working once
the password is set (the token covers the password hash) or after PASSWORD_RESET_TIMEOUT.
"""
import logging

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .models import OnCallSchedule, User
from .oncall import schedules_on_call

log = logging.getLogger(__name__)

# The URL name of the set-password page (callrouting/urls.py); escalation names it without importing callrouting.
INVITATION_URL_NAME = "invitation"


def may_manage(actor, person):
    """True when ACTOR may change PERSON's name, role and active state and invite them."""
    if not actor.is_account_admin or actor.account_id != person.account_id or actor.pk == person.pk:
        return False
    return person.role != User.Role.OWNER or actor.role == User.Role.OWNER


def may_edit_contacts(actor, person):
    """True when ACTOR may edit PERSON's contact methods and notification rules."""
    return actor.account_id == person.account_id and (actor.pk == person.pk or actor.is_account_admin)


def assignable_roles(actor):
    """The roles ACTOR may give: an owner any, an admin admin or responder."""
    if actor.role == User.Role.OWNER:
        return list(User.Role)
    return [User.Role.ADMIN, User.Role.RESPONDER]


@transaction.atomic
def add_person(account, *, first_name, last_name, email, role):
    """Create a user of ACCOUNT who cannot log in until they set a password (see invitation_url). Their email is
    their username and their first contact method. Raises ValidationError naming the field."""
    from .models import ContactMethod

    email = User.objects.normalize_email(email).strip()
    if User.objects.filter(username__iexact=email).exists():
        raise ValidationError({"email": "Someone with this email address already has a login."})
    user = User(account=account, username=email, email=email, first_name=first_name, last_name=last_name, role=role)
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    ContactMethod.objects.create(user=user, kind=ContactMethod.Kind.EMAIL, value=email, label="work")
    log.info("account=%s action=add_person user=%s role=%s", account.pk, user.pk, role)
    return user


def invitation_url(user):
    """The absolute one-time set-password link of USER."""
    path = reverse(
        INVITATION_URL_NAME,
        kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user)},
    )
    return settings.PUBLIC_BASE_URL + path


def invite_person(user, *, invited_by):
    """Make USER's set-password link and, when outgoing email is configured, email it to them.

    Returns (url, emailed). A failed email is logged and reported as not emailed: the admin still has the link."""
    url = invitation_url(user)
    emailed = False
    if settings.EMAIL_CONFIGURED and user.email:
        try:
            send_mail(
                f"{invited_by} invited you to {user.account} on callrouting",
                f"Hello {user.first_name or user},\n\n{invited_by} added you to {user.account} on callrouting.\n"
                f"Set your password here (the link works once):\n\n{url}\n\nYour username is {user.username}.\n",
                None,
                [user.email],
            )
            emailed = True
        except Exception as exc:  # SMTP and connection errors alike: the link is shown anyway
            log.warning("user=%s action=invite_email_failed error=%s", user.pk, exc)
    log.info("user=%s action=invite by=%s emailed=%s", user.pk, invited_by.pk, emailed)
    return url, emailed


def change_role(user, role, *, changed_by):
    """Give USER the ROLE. Returns True when it changed. Raises ValidationError when CHANGED_BY may not."""
    if role not in User.Role.values:
        raise ValidationError({"role": f"{role!r} is not a role."})
    if not may_manage(changed_by, user) or role not in assignable_roles(changed_by):
        raise ValidationError({"role": "You may not give this person this role."})
    changed = User.objects.filter(pk=user.pk).exclude(role=role).update(role=role)
    user.role = role
    log.info("user=%s action=change_role role=%s by=%s changed=%s", user.pk, role, changed_by.pk, bool(changed))
    return bool(changed)


def set_active(user, active, *, changed_by):
    """Deactivate (ACTIVE False) or reactivate USER. A deactivated user cannot log in and is never on call,
    dialled or notified. Returns True when it changed. Raises ValidationError when CHANGED_BY may not."""
    if not may_manage(changed_by, user):
        raise ValidationError("You may not deactivate or reactivate this person.")
    changed = User.objects.filter(pk=user.pk, is_active=not active).update(is_active=active)
    user.is_active = active
    log.info("user=%s action=%s by=%s changed=%s", user.pk, "reactivate" if active else "deactivate", changed_by.pk,
             bool(changed))
    return bool(changed)


def on_call_now(account, at):
    """{user pk: [names of the schedules the user is on call on at AT]} for ACCOUNT, in a fixed number of queries."""
    names = dict(OnCallSchedule.objects.filter(account=account).values_list("pk", "name"))
    on_call = {}
    for schedule, user in schedules_on_call(names, at).items():
        if user is not None:
            on_call.setdefault(user.pk, []).append(names[schedule])
    return {pk: sorted(schedules) for pk, schedules in on_call.items()}
