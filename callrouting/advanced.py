"""Verbs that change a number's advanced settings: holidays imported from iCalendar, custom audio stored.

Validation happens before (advanced_forms, callrouting.audio, callrouting.hours); these only make the change,
atomically. Used by the settings pages, the admin and the tests.
"""
import logging

from django.core.files.base import ContentFile
from django.db import transaction

from . import hours
from .models import Holiday, NumberAudio, new_token

log = logging.getLogger(__name__)

MAX_CALENDAR_BYTES = 2 * 1024 * 1024


def read_holiday_calendar(upload, calendar=None, *, replace=False):
    """The [(date, name)] of the iCalendar UPLOAD (a file) for the holidays of CALENDAR, a SupportCalendar (REPLACE:
    instead of its current ones). Raises hours.CalendarError, with a message for the uploader, when the file is too
    large, cannot be used (see hours.holidays_from_ical) or would give CALENDAR more than Holiday.MAX_PER_CALENDAR
    holidays."""
    if upload.size > MAX_CALENDAR_BYTES:
        raise hours.CalendarError(f"The file is larger than {MAX_CALENDAR_BYTES // 1024 // 1024} MB.")
    entries = hours.holidays_from_ical(upload.read())
    dates = {day for day, _ in entries}
    if calendar is not None and calendar.pk and not replace:
        dates.update(Holiday.objects.filter(calendar=calendar).values_list("date", flat=True))
    if len(dates) > Holiday.MAX_PER_CALENDAR:
        raise hours.CalendarError(
            f"The calendar would have {len(dates)} holidays (at most {Holiday.MAX_PER_CALENDAR}): import fewer dates "
            "or replace the existing holidays."
        )
    return entries


@transaction.atomic
def import_holidays(calendar, entries, *, replace=False):
    """Add ENTRIES [(date, name)] as the holidays of CALENDAR (a SupportCalendar) (a date already there keeps its row and takes the new
    name). REPLACE: remove the holidays not in ENTRIES first. Returns (added, updated, removed) counts."""
    entries = dict(entries)
    removed = 0
    if replace:
        removed, _ = Holiday.objects.filter(calendar=calendar).exclude(date__in=list(entries)).delete()
    existing = {h.date: h for h in Holiday.objects.select_for_update().filter(calendar=calendar, date__in=list(entries))}
    updated = 0
    for day, name in entries.items():
        holiday = existing.get(day)
        if holiday is not None and name and holiday.name != name:
            Holiday.objects.filter(pk=holiday.pk).update(name=name[:200])
            updated += 1
    new = [Holiday(calendar=calendar, date=day, name=(name or "")[:200]) for day, name in entries.items() if day not in existing]
    Holiday.objects.bulk_create(new)
    log.info("calendar=%s action=import_holidays added=%d updated=%d removed=%d", calendar.pk, len(new), updated, removed)
    return len(new), updated, removed


@transaction.atomic
def store_audio(number, kind, prepared):
    """Store PREPARED (a callrouting.audio.PreparedAudio) as NUMBER's KIND recording, replacing the previous one
    (its file is deleted once the change is committed). A new recording always gets a new token (URL)."""
    audio = NumberAudio.objects.select_for_update().filter(routing_number=number, kind=kind).first()
    old_file = audio.file.name if audio is not None and audio.file else None
    if audio is None:
        audio = NumberAudio(routing_number=number, kind=kind)
    audio.routing_number = number
    audio.format = prepared.format
    audio.duration = prepared.duration
    audio.original_name = prepared.original_name
    audio.details = prepared.details[:200]
    audio.token = new_token()
    audio.file.save(f"{kind}.{prepared.format}", ContentFile(prepared.content), save=False)
    audio.save()
    if old_file:
        storage = audio.file.storage
        transaction.on_commit(lambda: storage.delete(old_file))
    log.info("number=%s action=store_audio kind=%s format=%s seconds=%.1f", number.pk, kind, audio.format, audio.duration)
    return audio


@transaction.atomic
def remove_audio(audio):
    """Delete a custom recording: callers hear the spoken text (or the default hold music) again. The file goes
    with the row (models.delete_audio_file), also when the admin or a cascade deletes it."""
    log.info("number=%s action=remove_audio kind=%s", audio.routing_number_id, audio.kind)
    audio.delete()
