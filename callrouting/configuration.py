"""Verbs that change configuration: the settings pages, the REST API and the support-staff admin call these.

Validation happens before (forms, serializers, model clean()); these functions only make the change, atomically.
"""
import logging

from django.db import transaction
from knox.models import get_digest_token
from knox.settings import CONSTANTS

from escalation.models import ApiToken, LayerMember, RuleSchedule, RuleUser
from incidents.telephony import NotConfigured, TelephonyError, get_telephony, is_configured

from .models import RoutingOption

log = logging.getLogger(__name__)


@transaction.atomic
def renumber_options(number):
    """Give NUMBER's routing options the positions 0, 1, 2, ... in their current order; returns them."""
    options = list(RoutingOption.objects.select_for_update().filter(routing_number=number).order_by("position", "digit"))
    for position, option in enumerate(options):
        if option.position != position:
            RoutingOption.objects.filter(pk=option.pk).update(position=position)
            option.position = position
    return options


@transaction.atomic
def move_option(option, direction):
    """Move OPTION one place "up" or "down" in its number's menu. Returns True when it moved."""
    options = renumber_options(option.routing_number)
    index = next(i for i, o in enumerate(options) if o.pk == option.pk)
    other = index - 1 if direction == "up" else index + 1
    if direction not in ("up", "down") or not 0 <= other < len(options):
        return False
    RoutingOption.objects.filter(pk=options[index].pk).update(position=other)
    RoutingOption.objects.filter(pk=options[other].pk).update(position=index)
    log.info("number=%s option=%s action=move direction=%s", option.routing_number_id, option.digit, direction)
    return True


def next_option_position(number):
    """The position a new option of NUMBER gets: after the last one."""
    last = number.options.order_by("-position").values_list("position", flat=True).first()
    return 0 if last is None else last + 1


@transaction.atomic
def save_rule(rule, *, users=None, schedules=None):
    """Save RULE and, when given, replace whom it notifies with USERS then SCHEDULES (in that order)."""
    rule.save()
    if users is not None:
        RuleUser.objects.filter(rule=rule).delete()
        RuleUser.objects.bulk_create(RuleUser(rule=rule, user=user, position=i) for i, user in enumerate(users))
    if schedules is not None:
        RuleSchedule.objects.filter(rule=rule).delete()
        RuleSchedule.objects.bulk_create(
            RuleSchedule(rule=rule, schedule=schedule, position=i) for i, schedule in enumerate(schedules)
        )
    return rule


@transaction.atomic
def save_layer(layer, *, members=None):
    """Save LAYER and, when given, replace its participants with MEMBERS (users, in rotation order)."""
    layer.save()
    if members is not None:
        LayerMember.objects.filter(layer=layer).delete()
        LayerMember.objects.bulk_create(LayerMember(layer=layer, user=user, position=i) for i, user in enumerate(members))
    return layer


def create_api_token(user, name, expiry=None):
    """A new REST API token of USER named NAME, valid until EXPIRY (a datetime; None: until revoked).

    Returns (token, value): only the digest of VALUE is stored, so this is the one moment it can be shown."""
    digest, value = get_digest_token()
    token = ApiToken(digest=digest, token_key=value[: CONSTANTS.TOKEN_KEY_LENGTH], user=user, name=name, expiry=expiry)
    token.save(force_insert=True)
    log.info("user=%s token=%s action=api_token_created", user.pk, token.pk)
    return token, value


def revoke_api_token(token):
    """Delete TOKEN: requests with its value fail from now on."""
    ApiToken.objects.filter(pk=token.pk).delete()
    log.info("user=%s token=%s action=api_token_revoked", token.user_id, token.pk)


def link_number_to_vonage(number):
    """Point NUMBER's inbound calls at this installation's Vonage application (Numbers API).

    Raises incidents.telephony.NotConfigured when credentials are missing or the telephony client cannot link
    numbers, and TelephonyError when Vonage refuses.
    """
    if not is_configured():
        raise NotConfigured("Vonage credentials are not set (VONAGE_APPLICATION_ID, VONAGE_PRIVATE_KEY).")
    telephony = get_telephony()
    link = getattr(telephony, "link_number", None)
    if link is None:
        raise NotConfigured("This installation's telephony client cannot link numbers yet (Telephony.link_number).")
    link(number.phone_number)
    log.info("number=%s action=linked_to_vonage_application", number.phone_number)


def provision_number(number, *, link=False):
    """Save the validated new routing NUMBER (its alert source is created with it) and, with LINK, point it at the
    Vonage application. Returns the reason linking failed, or "" (the number is kept either way)."""
    number.save()
    log.info("number=%s account=%s action=provisioned", number.phone_number, number.account_id)
    if not link:
        return ""
    try:
        link_number_to_vonage(number)
    except TelephonyError as exc:
        return str(exc)
    return ""
