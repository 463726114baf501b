"""Test calls to a draft: the Test call page can call a number's draft before it is published.

The draft is stored as a test-call FlowVersion (immutable like any version: the call keeps it, the per-process
cache serves it) and the call is placed on the local phone network from a caller id that names that version:
+999 (a country code that does not exist, so no real caller has it) and the version's id. The answer webhook
runs that version instead of the published one only on the local phone network (settings.EMULATOR_URL set), only
for a version of the called number's own flow; every other call costs nothing more (no query).
"""
from django.conf import settings

PREFIX = "999"
DIGITS = 11  # "+999" and 11 digits: 15, the longest E.164 number


def caller_id(version):
    """The caller id a test call to VERSION (a test-call FlowVersion) is placed from."""
    return f"+{PREFIX}{version.pk:0{DIGITS}d}"


def version_for(number, caller):
    """The id of the test-call version CALLER (the answer webhook's "from") asks NUMBER's call to run, or None."""
    raw = str(caller or "").removeprefix("+")
    if not settings.EMULATOR_URL or not raw.startswith(PREFIX) or len(raw) != len(PREFIX) + DIGITS or not raw.isdigit():
        return None
    from .models import FlowVersion

    return (FlowVersion.objects.filter(pk=int(raw[len(PREFIX):]), test_call=True, flow__number_id=number.pk)
            .values_list("pk", flat=True).first())
