import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate

log = logging.getLogger(__name__)


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self):
        post_migrate.connect(ensure_sweep_schedule, sender=self, dispatch_uid="incidents.ensure_sweep_schedule")


def ensure_sweep_schedule(using="default", **kwargs):
    """Schedule incidents.tasks.sweep every minute (idempotent: runs after every migrate)."""
    from django.db import connections
    from django_q.models import Schedule

    from .tasks import SWEEP_FUNC

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return  # django_q is not migrated yet; its own migrate run brings us back here
    schedule, created = Schedule.objects.using(using).get_or_create(
        func=SWEEP_FUNC,
        defaults={
            "name": "Incidents: escalations, notifications and alert action retries",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    if created:
        log.info("schedule=%s action=created func=%s every=1min", schedule.pk, SWEEP_FUNC)
