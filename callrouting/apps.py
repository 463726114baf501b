import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate

log = logging.getLogger(__name__)


class CallRoutingConfig(AppConfig):
    name = "callrouting"
    verbose_name = "Call routing"

    def ready(self):
        # Support-staff admin extras, registered over callrouting/admin.py once the admin has autodiscovered it.
        from . import admin_support  # noqa: F401
        from incidents.actions import register_payload_extension

        from .payload import call_payload

        # Alert actions of a number's incidents carry the call's details under "extra" -> "call".
        register_payload_extension(call_payload)
        post_migrate.connect(ensure_sweep_schedule, sender=self, dispatch_uid="callrouting.ensure_sweep_schedule")


def ensure_sweep_schedule(using="default", **kwargs):
    """Schedule callrouting.tasks.sweep every minute (idempotent: runs after every migrate)."""
    from django.db import connections
    from django_q.models import Schedule

    from .tasks import SWEEP_FUNC

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return  # django_q is not migrated yet; its own migrate run brings us back here
    schedule, created = Schedule.objects.using(using).get_or_create(
        func=SWEEP_FUNC,
        defaults={
            "name": "Call routing: stuck calls, voicemail deadlines and auto raise",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    if created:
        log.info("schedule=%s action=created func=%s every=1min", schedule.pk, SWEEP_FUNC)
