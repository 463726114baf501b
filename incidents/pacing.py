"""Pacing of Vonage call creations, and of requests that modify a call, across the whole deployment.

Vonage accepts VONAGE_CALLS_PER_SECOND (3) call creations per second per account and answers 429 above that,
without queueing (or answers 201 and then sends an error event instead of placing the call). Agent legs
(callrouting) and notification calls (incidents) are placed by several worker processes, possibly on several
machines, so the pace is kept in one database row (CallRateWindow) that every process reserves its slot in: at
most VONAGE_CALLS_PER_SECOND slots in any VONAGE_CALL_SPACING seconds. The spacing is a little over Vonage's
second (1.1 s) because requests reach Vonage with some jitter.

Requests that modify a live call (hang-up, transfer) have a limit of their own, VONAGE_MODIFIES_PER_SECOND (15):
the hang-ups of a large simultaneous fan-out, sent together when one agent accepts, are paced in a second window
(another CallRateWindow row) the same way.

Slots are wall-clock times (time.time) so that processes agree on them; the machines' clocks must be in sync
(NTP) to well under the 0.1 s margin.
"""
import time

from django.conf import settings
from django.db import transaction

from .models import CallRateWindow

# One Vonage account per deployment: one window for call creations, one for modify requests.
WINDOW = "vonage"
MODIFY_WINDOW = "vonage-modify"

clock = time.time  # replaced in tests
sleep = time.sleep  # replaced in tests


def reserve_call_slot(now=None):
    """Reserve the next create-call slot of the deployment; returns its time in epoch seconds (NOW or later).

    NOW defaults to the clock read once the window's row is locked. The reservation is committed at once; a
    process that dies before it sends its request just leaves its slot unused. Call it outside any transaction,
    or the row stays locked (and every other process waits) until that transaction ends.
    """
    return _reserve(WINDOW, settings.VONAGE_CALLS_PER_SECOND, now)


def reserve_modify_slot(now=None):
    """Reserve the next slot for a request that modifies a call (hang-up, transfer), as reserve_call_slot."""
    return _reserve(MODIFY_WINDOW, settings.VONAGE_MODIFIES_PER_SECOND, now)


def _reserve(name, rate, now):
    with transaction.atomic():
        # SQLite: the transaction (IMMEDIATE) already holds the write lock; PostgreSQL: the row lock.
        window, _ = CallRateWindow.objects.select_for_update().get_or_create(pk=name)
        if now is None:
            now = clock()
        at = window.next_slot(now, rate=rate, period=settings.VONAGE_CALL_SPACING)
        window.reserve(at, rate=rate)
        window.save(update_fields=["slots"])
    return at


def wait_for_call_slot():
    """Reserve the next create-call slot and sleep until it; returns the seconds slept (0.0: none)."""
    return _wait_until(reserve_call_slot())


def wait_for_modify_slot():
    """Reserve the next modify-request slot and sleep until it; returns the seconds slept (0.0: none)."""
    return _wait_until(reserve_modify_slot())


def _wait_until(at):
    # Microseconds: epoch floats carry sub-microsecond noise that would otherwise show in the delays.
    delay = round(at - clock(), 6)
    if delay <= 0:
        return 0.0
    sleep(delay)
    return delay
