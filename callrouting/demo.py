"""Demo data for call routing: one routing number of the demo account with a two-option menu and voicemail.

Support hours are Mon-Fri 09:00-17:00 Europe/Berlin: during them callers hear the menu; outside them they go to
voicemail and auto raise lifts the incident to high priority when support hours start again.
"""
import datetime as dt

from django.db import transaction

from escalation.models import EscalationPolicy

from . import phrases
from .models import RoutingNumber, RoutingOption, SupportHoursRange, Target

DEMO_NUMBER = "+4930901820"
DEMO_GREETING = "Welcome to Demo Company support."
DEMO_TIMEZONE = "Europe/Berlin"
DEMO_HOURS = [(weekday, dt.time(9), dt.time(17)) for weekday in range(5)]


def _policy(account, preferred):
    """The account's policy named PREFERRED, else its first policy, else a minimal one created for the demo."""
    policies = EscalationPolicy.objects.filter(account=account)
    policy = policies.filter(name=preferred).first() or policies.first()
    if policy is None:
        policy, _ = EscalationPolicy.objects.get_or_create(account=account, name="Demo call routing")
    return policy


@transaction.atomic
def load_demo_routing(account, *, support_hours=True):
    """Create or reset the demo routing number of ACCOUNT. Returns {"routing_numbers": {name: RoutingNumber}}.

    SUPPORT_HOURS=False leaves them off (every call hears the menu, whatever the time).
    """
    number = RoutingNumber.objects.filter(phone_number=DEMO_NUMBER).first() or RoutingNumber(phone_number=DEMO_NUMBER)
    if number.pk and number.account_id != account.pk:
        raise ValueError(f"{DEMO_NUMBER} belongs to another account ({number.account}); not touching it.")
    number.account = account
    number.name = "Demo Company support"
    number.language = "en-US"
    number.greeting = DEMO_GREETING
    number.greeting_only = False
    number.ringing_timeout = 30
    number.voicemail_enabled = True
    number.voicemail_greeting = phrases.phrase("en-US", "voicemail_prompt")
    number.voicemail_max_length = 120
    number.voicemail_transcription = True
    number.voicemail_only = False
    number.support_hours_enabled = support_hours
    number.timezone = DEMO_TIMEZONE
    number.in_hours_target, number.in_hours_option = Target.MENU, None
    number.out_of_hours_target, number.out_of_hours_option = Target.VOICEMAIL, None
    number.auto_raise = True
    number.full_clean()
    number.save()
    calendar = number.own_calendar()
    calendar.ranges.all().delete()
    SupportHoursRange.objects.bulk_create(
        SupportHoursRange(calendar=calendar, weekday=weekday, start=start, end=end) for weekday, start, end in DEMO_HOURS
    )
    options = [
        (1, "Outage", _policy(account, "Critical infrastructure"), False),
        (2, "Billing", _policy(account, "Customer support"), True),
    ]
    for position, (digit, label, policy, simultaneous) in enumerate(options):
        RoutingOption.objects.update_or_create(
            routing_number=number,
            digit=digit,
            defaults={"position": position, "label": label, "escalation_policy": policy, "simultaneous": simultaneous},
        )
    number.options.exclude(digit__in=[digit for digit, *_ in options]).delete()
    return {"routing_numbers": {f"{number.name} ({number.phone_number})": number}}
