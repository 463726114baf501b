"""django-q2 tasks of the incidents app.

Every task takes ids (and the state it expects), re-reads that state under a lock or a conditional update and
returns early when the world has moved on, so a duplicated or late task does nothing. Tasks are enqueued with
enqueue(), which waits for the surrounding transaction to commit.
"""
import logging
import os

from django.db import transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

log = logging.getLogger(__name__)

SWEEP_FUNC = "incidents.tasks.sweep"

_brokers = {}  # process id -> the django-q2 broker this process enqueues with


def broker():
    """This process's django-q2 broker, made once. django-q2 makes a new one per task by default, and with Redis
    that is a new connection each time: 2.3 ms of the menu-choice webhook instead of 0.3 ms. Keyed by process
    id, so that a forked process never shares its parent's connections."""
    pid = os.getpid()
    if pid not in _brokers:
        _brokers[pid] = get_broker()
    return _brokers[pid]


def enqueue(name, *args):
    """Enqueue incidents.tasks.NAME(*args) once the current transaction commits (at once outside of one)."""
    transaction.on_commit(lambda: _async_task(f"incidents.tasks.{name}", *args))


def _async_task(func, *args):
    # One seam for tests: they replace this to run or inspect what would be enqueued.
    return async_task(func, *args, task_name=f"{func.rsplit('.', 1)[-1]}{list(args)}"[:100], broker=broker())


def sweep(now=None):
    """The one periodic task: run due escalation steps and hand due notifications and deliveries to workers.

    Returns the counts of what it claimed. Safe to run concurrently (rows are claimed with SKIP LOCKED).
    """
    from .sweeper import sweep as run_sweep

    return run_sweep(now)


def escalation_step(incident_id, generation, step):
    """Run escalation step STEP of escalation GENERATION of the incident if that is still what is due."""
    from .escalation_engine import run_escalation_step

    return run_escalation_step(incident_id, generation, step)


def deliver_notification(notification_id, attempt):
    """Make attempt ATTEMPT (1-based) of a notification if nobody made it yet."""
    from .notifications import deliver_notification as deliver

    return deliver(notification_id, attempt)


def hang_up_call(uuid):
    """Hang up a notification call placed twice for one notification."""
    from .notifications import hang_up_call as hang_up

    return hang_up(uuid)


def deliver_alert_action(delivery_id):
    """Make one alert action delivery attempt if nobody made it yet."""
    from .actions import deliver

    return deliver(delivery_id)
