"""factory_boy factories for the escalation app (people, schedules, policies)."""
import datetime as dt

import factory
from factory.django import DjangoModelFactory

from escalation import models


class AccountFactory(DjangoModelFactory):
    class Meta:
        model = models.Account
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Account {n}")
    slug = factory.Sequence(lambda n: f"account-{n}")
    timezone = "Europe/Berlin"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = models.User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    account = factory.SubFactory(AccountFactory)
    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Sequence(lambda n: f"User{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    role = models.User.Role.RESPONDER
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def phone(self, create, extracted, **kwargs):
        """UserFactory(phone="+4915112345678") adds a phone contact method (and a voice notification rule)."""
        if extracted:
            method = models.ContactMethod.objects.create(user=self, kind="phone", value=extracted)
            models.NotificationRule.objects.create(user=self, channel="voice", contact_method=method)
        if create:
            self.save()


class ContactMethodFactory(DjangoModelFactory):
    class Meta:
        model = models.ContactMethod

    user = factory.SubFactory(UserFactory)
    kind = models.ContactMethod.Kind.PHONE
    value = factory.Sequence(lambda n: f"+4915112{n:06d}")


class ScheduleFactory(DjangoModelFactory):
    class Meta:
        model = models.OnCallSchedule

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Schedule {n}")
    timezone = "Europe/Berlin"


class LayerFactory(DjangoModelFactory):
    class Meta:
        model = models.RotationLayer
        skip_postgeneration_save = True

    schedule = factory.SubFactory(ScheduleFactory)
    level = factory.Sequence(lambda n: n + 1)
    shift_length = 1
    shift_unit = models.RotationLayer.Unit.WEEKS
    start_date = dt.date(2026, 1, 5)
    handoff_time = dt.time(9, 0)

    @factory.post_generation
    def users(self, create, extracted, **kwargs):
        """LayerFactory(users=[alice, bob]) adds the participants in that order."""
        for position, user in enumerate(extracted or []):
            models.LayerMember.objects.create(layer=self, user=user, position=position)


class PolicyFactory(DjangoModelFactory):
    class Meta:
        model = models.EscalationPolicy

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Policy {n}")


class RuleFactory(DjangoModelFactory):
    class Meta:
        model = models.EscalationRule
        skip_postgeneration_save = True

    policy = factory.SubFactory(PolicyFactory)
    position = factory.Sequence(lambda n: n)
    escalation_timeout_minutes = 10

    @factory.post_generation
    def users(self, create, extracted, **kwargs):
        for position, user in enumerate(extracted or []):
            models.RuleUser.objects.create(rule=self, user=user, position=position)

    @factory.post_generation
    def schedules(self, create, extracted, **kwargs):
        for position, schedule in enumerate(extracted or []):
            models.RuleSchedule.objects.create(rule=self, schedule=schedule, position=position)
