"""manage.py seed_large_account: an account of a large customer (by default 500 people, 200 schedules, 100
policies, 100 numbers with 5 options, 50,000 incidents and 20,000 calls) for measuring pages at that size.

The people cannot log in (no password): set one with `manage.py changepassword <slug>-0` (the owner) to look
around. The account's name must not be taken yet.
"""
import dataclasses
import time

from django.core.management.base import BaseCommand, CommandError

from callrouting.benchmark.large_account import Size, seed_large_account
from escalation.models import Account


class Command(BaseCommand):
    help = "Build a large account with bulk inserts (sizes adjustable) to measure the pages at a customer's size."

    def add_arguments(self, parser):
        parser.add_argument("--name", default="Large Customer", help="The account's name (its slug must be free).")
        for field in dataclasses.fields(Size):
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default,
                                help=f"Default {field.default}.")

    def handle(self, *args, name, **options):
        size = Size(**{field.name: options[field.name] for field in dataclasses.fields(Size)})
        if min(dataclasses.astuple(size)) < 1 or size.options > 9:
            raise CommandError("Every size is at least 1; a number has at most 9 options.")
        if Account.objects.filter(name=name).exists():
            raise CommandError(f"An account named {name!r} exists already.")
        started = time.monotonic()
        seeded = seed_large_account(name, size, log=lambda message: self.stdout.write(f"  {message}"))
        self.stdout.write(self.style.SUCCESS(
            f"Account {seeded.account.name!r} (id {seeded.account.pk}) built in {time.monotonic() - started:.0f} s; "
            f"its owner is {seeded.owner.username!r}."
        ))
