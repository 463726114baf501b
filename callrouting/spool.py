"""Calls that arrive while the database is down, kept outside it until it is back.

When the answer (or fallback) webhook cannot reach the database, the caller hears an apology at once
(callrouting.views.answer_when_database_down) and the signed, already verified webhook payload is written here:
one JSON-lines file per webhook under settings.CALL_SPOOL_DIR, written to a temporary name and renamed, so a
reader never sees half a file. Redis is not always there and the database is what failed, so this is a plain
directory; it must be one the web and worker processes share.

The callrouting sweeper (every minute) replays the files once the database answers: callrouting.calls.outage.record_outage_call
records each call once per Vonage uuid (an ended call nobody took, with an escalated incident), and a file is
deleted only after that transaction has committed. A second sweeper, a repeated webhook (answer then fallback
for the same call) or a crash between commit and delete therefore never records a call twice.
"""
import json
import logging
import os
import uuid as uuid_lib
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
BAD_SUFFIX = ".bad"  # a file that cannot be read is renamed to this and left for a person to look at
BATCH = 100


def spool_dir():
    return Path(settings.CALL_SPOOL_DIR)


def spool_call(kind, payload, received_at=None):
    """Keep the webhook PAYLOAD of a call that came in while the database was down (KIND: "answer" or
    "fallback"). Returns the file written, or None when there is nothing to keep (no uuid or dialled number)
    or it could not be written (logged; the caller still hears the apology)."""
    call_uuid, to = payload.get("uuid"), payload.get("to")
    if not isinstance(call_uuid, str) or not call_uuid or not to:
        return None
    received_at = received_at or timezone.now()
    record = {"kind": kind, "received_at": received_at.isoformat(), "payload": payload}
    directory = spool_dir()
    name = f"{received_at:%Y%m%dT%H%M%S%f}-{uuid_lib.uuid4().hex}{SUFFIX}"
    temporary = directory / f".{name}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, directory / name)
    except OSError:
        log.exception("call=%s action=spool_failed kind=%s dir=%s", call_uuid[:64], kind, directory)
        temporary.unlink(missing_ok=True)
        return None
    log.warning("call=%s action=spooled kind=%s file=%s", call_uuid[:64], kind, name)
    return directory / name


def spooled_files():
    """The spooled calls waiting to be recorded, oldest first."""
    directory = spool_dir()
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.glob(f"*{SUFFIX}") if not path.name.startswith("."))


def _read(path):
    """(payload, received_at) of a spool file; raises ValueError when it is not one of ours."""
    record = json.loads(path.read_text(encoding="utf-8"))
    payload = record.get("payload") if isinstance(record, dict) else None
    received_at = parse_datetime(str(record.get("received_at"))) if isinstance(payload, dict) else None
    if received_at is None:
        raise ValueError("not a spooled call")
    return payload, received_at


def replay():
    """Record the spooled calls (at most BATCH per run) now that the database answers. Stops at the first
    database error (still down: the files wait for the next run). Returns how many calls were recorded."""
    from .calls.outage import record_outage_call

    recorded = 0
    for path in spooled_files()[:BATCH]:
        try:
            payload, received_at = _read(path)
        except FileNotFoundError:
            continue  # another sweeper recorded it meanwhile
        except (OSError, ValueError) as exc:
            log.error("action=spool_unreadable file=%s error=%s", path.name, exc)
            path.replace(path.with_name(path.name + BAD_SUFFIX))
            continue
        try:
            with transaction.atomic():
                call = record_outage_call(payload, received_at)
                transaction.on_commit(lambda path=path: path.unlink(missing_ok=True))
        except DatabaseError as exc:
            log.warning("action=spool_replay_stopped file=%s error=%s", path.name, exc)
            break
        except Exception:  # one broken file must not block the others; it is tried again next run
            log.exception("action=spool_replay_failed file=%s", path.name)
            continue
        recorded += call is not None
    return recorded
