"""Time-based work of the call flow, stored as due times on the Call and claimed once a minute by
callrouting.tasks.sweep (the same pattern as incidents.sweeper; django-q2 has no countdown):

- routing_due_at: agents are being called but no agent-leg event arrived for the ringing timeout plus a grace
  (a lost webhook, or a worker killed mid-dial): the ringing legs are given up and the next agent is called, so
  a caller is never left on hold for ever; while no phone rings (the task choosing the next agent was lost) it
  is due after callrouting.calls.dispatch.TASK_GRACE;
- transfer_due_at: the caller should have been moved to voicemail or "nobody available" but the task doing it
  was lost (a killed worker): the transfer is issued again, so nobody waits on hold with nobody being called;
- voicemail_due_at: the voicemail window passed without the recording completing: escalate anyway;
- raise_due_at: auto raise, the next support hours started: the incident goes to high priority and is escalated;
- recording_due_at: the call ended in voicemail but Vonage's record webhook never came: the voicemail is flagged;
- Voicemail.download_due_at: a voicemail recording to download (again), until day 25 (callrouting.recordings);
- outage_calls: calls answered while the database was down, spooled to files (callrouting.spool), are recorded
  (an ended call and an escalated incident, once per Vonage uuid) now that the database answers again.

Each due row is locked with SELECT ... FOR UPDATE SKIP LOCKED (where the database has it) and handled in its own
transaction by a verb of callrouting.calls that re-checks the due time under the lock, so two sweepers never
act on the same row and a failing row does not hold up the others.
"""
import logging

from django.db import transaction
from django.utils import timezone

from incidents.sweeper import locked

from . import recordings, spool
from .calls import caller, incident, routing, voicemail
from .models import Call

log = logging.getLogger(__name__)

BATCH = 100

DUE = [
    # (counter, due-time field, extra filter, verb)
    ("stuck_calls", "routing_due_at", {"state": Call.State.ROUTING}, routing.move_on_stuck_call),
    ("transfers", "transfer_due_at", {}, caller.reissue_caller_transfer),
    ("voicemails", "voicemail_due_at", {}, voicemail.voicemail_time_up),
    ("raises", "raise_due_at", {}, incident.raise_call_incident),
    ("missing_recordings", "recording_due_at", {}, recordings.flag_missing_recording),
]


def _due_ids(field, filters, now):
    with transaction.atomic():
        due = locked(Call.objects.filter(**{f"{field}__lte": now}, **filters).order_by(field))
        return list(due.values_list("pk", flat=True)[:BATCH])


def sweep(now=None):
    """Record the spooled outage calls and act on every call due at NOW (default: the current time).
    Returns {"outage_calls": n, "stuck_calls": n, ...}: how many calls each kind of work recorded or changed."""
    now = now or timezone.now()
    counts = {}
    try:
        counts["outage_calls"] = spool.replay()
    except Exception:  # the spool must not stop the due work below; it is tried again next minute
        log.exception("action=sweep_failed kind=outage_calls")
        counts["outage_calls"] = 0
    for name, field, filters, verb in DUE:
        done = 0
        for call_id in _due_ids(field, filters, now):
            try:
                done += bool(verb(call_id, now))
            except Exception:  # one broken row must not stop the others; it is tried again next minute
                log.exception("call_id=%s action=sweep_failed kind=%s", call_id, name)
        counts[name] = done
    try:
        counts["recording_downloads"] = recordings.sweep_downloads(now)
    except Exception:  # tried again next minute, like the rows above
        log.exception("action=sweep_failed kind=recording_downloads")
        counts["recording_downloads"] = 0
    if any(counts.values()):
        log.info("callrouting sweep at=%s %s", now.isoformat(), " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts
