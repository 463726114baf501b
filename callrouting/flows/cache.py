"""Published flow versions, parsed once per process.

A FlowVersion never changes (models.FlowVersion.save refuses), so the cache is a dict keyed by version id that is
never invalidated: the answer and input webhooks read the call's version without a query once it is loaded.
"""
from . import document as doc

_versions = {}
MAX_VERSIONS = 5000  # a process serving more distinct versions than this starts afresh rather than grow forever


class UnreadableVersion(Exception):
    """A stored version that does not parse (it passed validation when it was published; schema drift)."""


def load_version(version_id, *, document=None):
    """The FlowDocument of FlowVersion VERSION_ID (one query the first time in this process, none after).
    DOCUMENT: the version's document when the caller already has it (no query)."""
    cached = _versions.get(version_id)
    if cached is not None:
        return cached
    if document is None:
        from .models import FlowVersion

        document = FlowVersion.objects.values_list("document", flat=True).get(pk=version_id)
    parsed, errors = doc.parse(document)
    if parsed is None:
        raise UnreadableVersion(f"flow version {version_id}: {[e.as_dict() for e in errors]}")
    if len(_versions) >= MAX_VERSIONS:
        _versions.clear()
    _versions[version_id] = parsed
    return parsed


def clear():
    """Forget every loaded version (tests that roll back the database reuse version ids)."""
    _versions.clear()
