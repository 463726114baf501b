"""manage.py load_demo: a demo account with people, schedules and policies, plus logins to try it with.

Loads only into an empty database (no account, no user yet), so that `make run` keeps an owner's edits across
restarts. With --reset it creates or resets the demo rows and the demo passwords whatever else the database holds
(`make demo-reset`); that is idempotent.
"""
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from callrouting.demo import load_demo_routing
from escalation.demo import load_demo_escalation
from escalation.models import Account, User

# Documented in the README; used only with DEBUG on. With --force on a DEBUG-off installation a random password
# is generated and printed instead.
DEMO_PASSWORD = "demo-password"


class Command(BaseCommand):
    help = "Create or reset the demo account (Demo Company) with responders, schedules, policies and logins."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off (prints a random password).")
        parser.add_argument("--reset", action="store_true",
                            help="Create or reset the demo rows and passwords even when the database holds data.")

    def handle(self, *args, force=False, reset=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("load_demo creates logins with a known password: run it with DEBUG=true or --force.")
        if not reset and (Account.objects.exists() or User.objects.exists()):
            self.stdout.write("The database already holds accounts or users: the demo is not loaded "
                              "(`make demo-reset` or `manage.py load_demo --reset` resets the demo rows).")
            return
        password = DEMO_PASSWORD if settings.DEBUG else secrets.token_urlsafe(12)
        with transaction.atomic():
            account, _ = Account.objects.update_or_create(
                slug="demo", defaults={"name": "Demo Company", "timezone": "Europe/Berlin"}
            )
            logins = [
                _login("admin", password, account=None, is_staff=True, is_superuser=True),
                _login("demo", password, account=account, role=User.Role.OWNER),
            ]
            # Each app adds its demo rows to DEMO ({kind: {name: object}}); the summary lists them all.
            demo = load_demo_escalation(account)
            demo.update(load_demo_routing(account))
        self._print_summary(account, logins, password, demo)

    def _print_summary(self, account, logins, password, demo):
        self.stdout.write(self.style.SUCCESS(f"Demo account {account.name!r} is ready."))
        for key, objects in demo.items():
            self.stdout.write(f"  {key.replace('_', ' ').capitalize()}: {', '.join(objects)}")
        # The address depends on how the server runs (make run PORT=..., ADDR=...): run_local prints it.
        self.stdout.write("Django admin: /admin/ on the web server's address")
        self.stdout.write(f"  support staff: {logins[0].username} / {password}")
        self.stdout.write(f"  account owner: {logins[1].username} / {password} ({account.name})")


def _login(username, password, **fields):
    user, _ = User.objects.update_or_create(username=username, defaults={"is_active": True, **fields})
    user.set_password(password)
    user.save(update_fields=["password"])
    return user
