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
    from .tasks import SWEEP_FUNC

    ensure_every_minute(SWEEP_FUNC, "Incidents: escalations, notifications and alert action retries", using=using)


def ensure_every_minute(func, name, *, using="default"):
    """Create the django-q2 schedule running FUNC every minute unless it exists; returns the Schedule or None.

    Called from post_migrate handlers; None while django_q's own tables are not migrated yet (its migrate run
    brings the handler back).
    """
    from django.db import connections
    from django_q.models import Schedule

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return None
    schedule, created = Schedule.objects.using(using).get_or_create(
        func=func, defaults={"name": name, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1}
    )
    if created:
        log.info("schedule=%s action=created func=%s every=1min", schedule.pk, func)
    return schedule
