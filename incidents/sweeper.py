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

from .models import WorkerHeartbeat

log = logging.getLogger(__name__)

BATCH = 100
# A row handed to a worker is handed out again when no worker claimed it within this time (a lost task).
ENQUEUE_LEASE = timedelta(minutes=5)
# A row being sent is taken back when its attempt has not finished within this time: longer than django-q2's
# task timeout (Q_CLUSTER["timeout"], 60 s), so the lease runs out only when the worker that sent it is gone.
SEND_LEASE = timedelta(minutes=3)


def locked(queryset):
    """QUERYSET locked FOR UPDATE, skipping rows another transaction holds where the database can."""
    return queryset.select_for_update(skip_locked=connection.features.has_select_for_update_skip_locked)


def not_enqueued_since(now):
    """Rows never handed to a worker, or whose hand-out lease ran out."""
    return Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=now - ENQUEUE_LEASE)


def sweep(now=None):
    """Claim everything due at NOW (default: the current time). Returns {"escalations": n, ...} counts."""
    from .actions import reclaim_delivery, sweep_deliveries
    from .escalation_engine import sweep_escalations
    from .models import AlertActionDelivery, Notification
    from .notifications import reclaim_notification, sweep_notifications
    from .webhooks import forget_expired_tokens

    # The real time, also when a test sweeps at another NOW: /healthz reads it as "the worker is alive".
    WorkerHeartbeat.beat("sweeper")
    now = now or timezone.now()
    counts = {
        "escalations": sweep_escalations(now),
        # Attempts whose worker died go back to pending (or fail for good) before the due rows are handed out.
        "reclaimed_notifications": reclaim(Notification, reclaim_notification, now),
        "reclaimed_deliveries": reclaim(AlertActionDelivery, reclaim_delivery, now),
        "notifications": sweep_notifications(now),
        "deliveries": sweep_deliveries(now),
        "webhook_tokens": forget_expired_tokens(now),
    }
    if any(counts.values()):
        log.info("sweep at=%s %s", now.isoformat(), " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def lock_expired(model, pk, now, *related):
    """MODEL's row PK if it is still SENDING with its lease run out at NOW, locked FOR UPDATE (call it inside a
    transaction); else None."""
    rows = model.objects.select_for_update(of=("self",)).select_related(*related)
    return rows.filter(pk=pk, status="sending", lease_until__lte=now).first()


def reclaim(model, verb, now):
    """Hand each SENDING row of MODEL whose lease ran out at NOW to VERB(row id, now), which re-checks it under
    its row lock in its own transaction and returns None (or "skipped") when it took nothing back. Returns how
    many VERB took back."""
    with transaction.atomic():
        expired = locked(model.objects.filter(status="sending", lease_until__lte=now).order_by("lease_until"))
        ids = list(expired.values_list("pk", flat=True)[:BATCH])
    done = 0
    for pk in ids:
        try:
            done += verb(pk, now) not in (None, "skipped")
        except Exception:  # one broken row must not stop the others; it is tried again next minute
            log.exception("%s=%s action=reclaim_failed", model._meta.model_name, pk)
    return done


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
