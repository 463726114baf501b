"""Handing the call's work to the task layer: every verb of callrouting.calls enqueues through here, once its
transaction has committed. Nothing here calls Vonage."""
import datetime as dt

from django.db import transaction
from django_q.tasks import async_task

from incidents.tasks import broker


def enqueue(func, *args):
    """Run the task FUNC(*ARGS) once the current transaction has committed."""
    transaction.on_commit(lambda: async_task(f"callrouting.tasks.{func}", *args, group="callrouting", broker=broker()))


# Our own work between two steps of a call while no phone rings (choosing and dialling the next agent, moving
# the caller to voicemail or "nobody available"): how long the task carrying the step has before the sweeper
# issues it again (a lost task, a killed worker). Longer than a transfer with all its retries takes.
TASK_GRACE = dt.timedelta(seconds=30)
