"""Time-based work: due escalation steps, notifications and alert action deliveries, and forgetting the used
webhook tokens that are too old to be replayed anyway.

All of it is stored as due times on rows and claimed here by the one periodic sweeper (incidents.tasks.sweep,
scheduled every minute) with SELECT ... FOR UPDATE SKIP LOCKED, so two sweepers never claim the same row.
SQLite has no row locks: Django ignores select_for_update there, and the settings' IMMEDIATE transactions
serialise writers instead.
"""
import logging
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)

BATCH = 100
# A row handed to a worker is handed out again when no worker claimed it within this time (a lost task).
ENQUEUE_LEASE = timedelta(minutes=5)


def locked(queryset):
    """QUERYSET locked FOR UPDATE, skipping rows another transaction holds where the database can."""
    return queryset.select_for_update(skip_locked=connection.features.has_select_for_update_skip_locked)


def not_enqueued_since(now):
    """Rows never handed to a worker, or whose hand-out lease ran out."""
    return Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=now - ENQUEUE_LEASE)


def sweep(now=None):
    """Claim everything due at NOW (default: the current time). Returns {"escalations": n, ...} counts."""
    from .actions import sweep_deliveries
    from .escalation_engine import sweep_escalations
    from .notifications import sweep_notifications
    from .webhooks import forget_expired_tokens

    now = now or timezone.now()
    counts = {
        "escalations": sweep_escalations(now),
        "notifications": sweep_notifications(now),
        "deliveries": sweep_deliveries(now),
        "webhook_tokens": forget_expired_tokens(now),
    }
    if any(counts.values()):
        log.info("sweep at=%s escalations=%s notifications=%s deliveries=%s webhook_tokens=%s", now.isoformat(),
                 *counts.values())
    return counts


def hand_out(model, task_name, args_for, now):
    """Lock due PENDING rows of MODEL, mark them enqueued and enqueue TASK_NAME(*args_for(row)) for each.

    Returns how many rows were handed out.
    """
    from .tasks import enqueue

    with transaction.atomic():
        due = locked(
            model.objects.filter(status="pending", due_at__lte=now).filter(not_enqueued_since(now)).order_by("due_at")
        )[:BATCH]
        rows = list(due)
        if rows:
            model.objects.filter(pk__in=[row.pk for row in rows]).update(enqueued_at=now)
        for row in rows:
            log.info("%s=%s action=enqueue task=%s", model._meta.model_name, row.pk, task_name)
            enqueue(task_name, *args_for(row))
    return len(rows)
