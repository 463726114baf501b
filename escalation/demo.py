"""Demo people, on-call schedules and escalation policies for an account (manage.py load_demo).

Idempotent: every row is found by its natural key and brought to the state below, so loading twice changes
nothing.
"""
import datetime as dt

from django.db import transaction

from .models import (
    ContactMethod,
    EscalationPolicy,
    EscalationRule,
    LayerMember,
    LayerRestriction,
    NotificationRule,
    OnCallSchedule,
    RotationLayer,
    RuleSchedule,
    RuleUser,
    User,
)

# username suffix, first name, last name, phone (E.164), time zone
RESPONDERS = [
    ("anna", "Anna", "Becker", "+4915112345671", "Europe/Berlin"),
    ("ben", "Ben", "Hoffmann", "+4917612345672", "Europe/Berlin"),
    ("clara", "Clara", "Wagner", "+4915123456783", "Europe/Berlin"),
    ("david", "David", "Miller", "+14155550123", "America/Los_Angeles"),
    ("emily", "Emily", "Johnson", "+12125550144", "America/New_York"),
]
MONDAY = dt.date(2026, 1, 5)
WORKDAYS = [LayerRestriction.Weekday(day) for day in range(5)]


@transaction.atomic
def load_demo_escalation(account):
    """Create or reset the demo responders, schedules and policies of ACCOUNT.

    Returns {"responders": {name: User}, "schedules": {name: OnCallSchedule}, "policies": {name: EscalationPolicy}}.
    """
    people = {key: _responder(account, key, *details) for key, *details in RESPONDERS}

    primary = _schedule(account, "Primary on-call", "Weekly rotation, handoff Monday 09:00 Berlin time.")
    _layer(primary, 1, "Weekly", RotationLayer.Unit.WEEKS, [people["anna"], people["ben"], people["clara"]])
    secondary = _schedule(account, "Secondary / business hours", "Daily rotation, weekdays 09:00-17:00 Berlin time.")
    daily = _layer(secondary, 1, "Business hours", RotationLayer.Unit.DAYS, [people["david"], people["emily"]])
    for weekday in WORKDAYS:
        LayerRestriction.objects.get_or_create(
            layer=daily, weekday=weekday, start_time=dt.time(9), end_time=dt.time(17)
        )

    critical = _policy(
        account, "Critical infrastructure", repeat_count=1, rules=[(5, [], [primary]), (10, [people["ben"]], [secondary])]
    )
    support = _policy(account, "Customer support", repeat_count=0, rules=[(15, [people["emily"], people["ben"]], [])])

    return {
        "responders": {str(user): user for user in people.values()},
        "schedules": {schedule.name: schedule for schedule in (primary, secondary)},
        "policies": {policy.name: policy for policy in (critical, support)},
    }


def _responder(account, key, first_name, last_name, phone, timezone):
    user, created = User.objects.update_or_create(
        username=f"{account.slug}-{key}",
        defaults={
            "account": account,
            "first_name": first_name,
            "last_name": last_name,
            "email": f"{key}@{account.slug}.example.com",
            "role": User.Role.RESPONDER,
            "timezone": timezone,
        },
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    mobile, _ = ContactMethod.objects.update_or_create(
        user=user, kind=ContactMethod.Kind.PHONE, value=phone, defaults={"label": "mobile", "position": 0}
    )
    email, _ = ContactMethod.objects.update_or_create(
        user=user, kind=ContactMethod.Kind.EMAIL, value=user.email, defaults={"label": "work", "position": 1}
    )
    for channel, method, delay in [
        (NotificationRule.Channel.VOICE, mobile, 0),
        (NotificationRule.Channel.SMS, mobile, 0),
        (NotificationRule.Channel.EMAIL, email, 5),
    ]:
        NotificationRule.objects.update_or_create(
            user=user, channel=channel, contact_method=method, defaults={"delay_minutes": delay}
        )
    return user


def _schedule(account, name, description):
    schedule, _ = OnCallSchedule.objects.update_or_create(
        account=account, name=name, defaults={"description": description, "timezone": "Europe/Berlin"}
    )
    return schedule


def _layer(schedule, level, name, unit, users):
    layer, _ = RotationLayer.objects.update_or_create(
        schedule=schedule,
        level=level,
        defaults={
            "name": name,
            "shift_length": 1,
            "shift_unit": unit,
            "start_date": MONDAY,
            "handoff_time": dt.time(9),
            "end_date": None,
        },
    )
    for position, user in enumerate(users):
        LayerMember.objects.update_or_create(layer=layer, position=position, defaults={"user": user})
    LayerMember.objects.filter(layer=layer, position__gte=len(users)).delete()
    return layer


def _policy(account, name, repeat_count, rules):
    """RULES: (timeout minutes, users, schedules) in order."""
    policy, _ = EscalationPolicy.objects.update_or_create(
        account=account, name=name, defaults={"repeat_count": repeat_count}
    )
    for position, (timeout, users, schedules) in enumerate(rules):
        rule, _ = EscalationRule.objects.update_or_create(
            policy=policy, position=position, defaults={"escalation_timeout_minutes": timeout}
        )
        for order, user in enumerate(users):
            RuleUser.objects.update_or_create(rule=rule, user=user, defaults={"position": order})
        rule.rule_users.exclude(user__in=users).delete()
        for order, schedule in enumerate(schedules):
            RuleSchedule.objects.update_or_create(rule=rule, schedule=schedule, defaults={"position": order})
        rule.rule_schedules.exclude(schedule__in=schedules).delete()
    policy.rules.filter(position__gte=len(rules)).delete()
    return policy
