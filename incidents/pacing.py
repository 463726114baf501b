"""Pacing of Vonage call creations across the whole deployment.

Vonage accepts VONAGE_CALLS_PER_SECOND (3) call creations per second per account and answers 429 above that,
without queueing. Agent legs (callrouting) and notification calls (incidents) are placed by several worker
processes, possibly on several machines, so the pace is kept in one database row (CallRateWindow) that every
process reserves its slot in: at most VONAGE_CALLS_PER_SECOND slots in any VONAGE_CALL_SPACING seconds. The
spacing is a little over Vonage's second (1.1 s) because requests reach Vonage with some jitter.

Slots are wall-clock times (time.time) so that processes agree on them; the machines' clocks must be in sync
(NTP) to well under the 0.1 s margin.
"""
import time

from django.conf import settings
from django.db import transaction

from .models import CallRateWindow

# One Vonage account per deployment: one window.
WINDOW = "vonage"

clock = time.time  # replaced in tests
sleep = time.sleep  # replaced in tests


def reserve_call_slot(now=None):
    """Reserve the next create-call slot of the deployment; returns its time in epoch seconds (NOW or later).

    NOW defaults to the clock read once the window's row is locked. The reservation is committed at once; a
    process that dies before it sends its request just leaves its slot unused. Call it outside any transaction,
    or the row stays locked (and every other process waits) until that transaction ends.
    """
    with transaction.atomic():
        # SQLite: the transaction (IMMEDIATE) already holds the write lock; PostgreSQL: the row lock.
        window, _ = CallRateWindow.objects.select_for_update().get_or_create(pk=WINDOW)
        if now is None:
            now = clock()
        rate = settings.VONAGE_CALLS_PER_SECOND
        at = window.next_slot(now, rate=rate, period=settings.VONAGE_CALL_SPACING)
        window.reserve(at, rate=rate)
        window.save(update_fields=["slots"])
    return at


def wait_for_call_slot():
    """Reserve the next create-call slot and sleep until it; returns the seconds slept (0.0: none)."""
    # Microseconds: epoch floats carry sub-microsecond noise that would otherwise show in the delays.
    delay = round(reserve_call_slot() - clock(), 6)
    if delay <= 0:
        return 0.0
    sleep(delay)
    return delay
