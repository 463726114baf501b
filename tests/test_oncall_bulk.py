"""Who is on call for many schedules and policies at once (escalation.oncall.schedules_on_call/policies_on_call)
answers exactly as the per-object answers (on_call_at, users_at), with a number of queries that does not grow."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from callrouting.benchmark.large_account import Size, seed_large_account
from escalation.models import EscalationPolicy, OnCallSchedule, User
from escalation.oncall import policies_on_call, schedules_on_call

SIZE = Size(people=12, schedules=6, policies=4, numbers=1, options=2, incidents=1, calls=1)


@pytest.fixture
def seeded(db):
    seeded = seed_large_account("Oncall", SIZE, number_prefix="3003")
    # A deactivated participant: their turn falls through to the layer below, as in on_call_at().
    User.objects.filter(pk__in=seeded.account.users.order_by("pk").values("pk")[1:3]).update(is_active=False)
    return seeded


INSTANTS = [dt.timedelta(hours=h) for h in (0, 5, 13, 30, 36, 70, 200)]


@pytest.mark.parametrize("offset", INSTANTS)
def test_the_bulk_answers_are_the_per_object_answers(seeded, offset):
    at = timezone.now() + offset
    schedules = list(OnCallSchedule.objects.filter(account=seeded.account).with_oncall())
    assert schedules_on_call([s.pk for s in schedules], at) == {s.pk: s.on_call_at(at) for s in schedules}
    policies = list(EscalationPolicy.objects.filter(account=seeded.account).with_oncall())
    expected = {p.pk: p.users_at(at) for p in policies}
    assert policies_on_call([p.pk for p in policies], at) == expected
    assert any(expected.values())


def test_the_bulk_answers_take_a_fixed_number_of_queries(seeded):
    at = timezone.now()
    schedule_ids = list(OnCallSchedule.objects.filter(account=seeded.account).values_list("pk", flat=True))
    policy_ids = list(EscalationPolicy.objects.filter(account=seeded.account).values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as one:
        schedules_on_call(schedule_ids[:1], at)
        policies_on_call(policy_ids[:1], at)
    with CaptureQueriesContext(connection) as many:
        schedules_on_call(schedule_ids, at)
        policies_on_call(policy_ids, at)
    assert len(many) == len(one) <= 14
