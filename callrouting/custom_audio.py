"""Verbs that change a number's custom audio: a checked recording stored (replacing the previous one) or removed.

Validation and conversion happen before (callrouting.audio); these only make the change, atomically. Used by the
settings pages (callrouting.number_forms), the REST API, the admin and the tests.
"""
import logging

from django.core.files.base import ContentFile
from django.db import transaction

from .models import NumberAudio, new_token

log = logging.getLogger(__name__)


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
