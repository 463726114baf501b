"""The verbs that change call flows: save a draft, validate it, publish it, restore a version, import and export,
and keep a simple-mode flow in step with its number's settings.

Each verb is atomic and the only place that makes its change; pages, the API and signals call them.
"""
import contextlib
import logging
import threading

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from . import compiler, document as doc
from .models import CallFlow, FlowVersion

log = logging.getLogger(__name__)


class FlowError(Exception):
    """A flow verb refused: MESSAGE says why, for the person who asked."""


class StaleDraft(FlowError):
    def __init__(self, flow):
        super().__init__(
            f"Someone else saved this flow after you opened it (it is now at revision {flow.draft_revision}): "
            "reload it to see their changes, then make yours again."
        )
        self.revision = flow.draft_revision


class InvalidFlow(FlowError):
    def __init__(self, errors):
        count = len(errors)
        super().__init__(f"The flow has {count} error{'s' if count != 1 else ''}: fix {'them' if count != 1 else 'it'} before publishing.")
        self.errors = errors


def flow_of(number):
    """NUMBER's CallFlow, created (empty, unpublished) when it has none."""
    try:
        return number.flow
    except CallFlow.DoesNotExist:
        pass
    flow, _ = CallFlow.objects.get_or_create(number=number, defaults={"account_id": number.account_id})
    number.flow = flow
    return flow


def summary_of(old, new):
    """What changed from document OLD (a dict or None) to NEW, by node id: "2 nodes added, 1 changed, 1 removed"."""
    if old is None:
        count = len(new.get("nodes", {}))
        return f"First version: {count} node{'s' if count != 1 else ''}."
    before, after = old.get("nodes", {}), new.get("nodes", {})
    added = [i for i in after if i not in before]
    removed = [i for i in before if i not in after]
    changed = [i for i in after if i in before and after[i] != before[i]]
    parts = []
    for count, word in ((len(added), "added"), (len(changed), "changed"), (len(removed), "removed")):
        if count:
            parts.append(f"{count} node{'s' if count != 1 else ''} {word}")
    others = [key for key in ("language", "start") if old.get(key) != new.get(key)]
    if others:
        parts.append(" and ".join(others) + " changed")
    return (", ".join(parts) + ".") if parts else "No changes."


def _normal(data):
    """DATA with its defaults filled in when it can be read (else as given)."""
    parsed, _ = doc.parse(data)
    return parsed.data if parsed is not None else data


@transaction.atomic
def save_draft(flow, data, revision, user=None):
    """Store DATA (a document dict) as FLOW's draft if the draft is still at REVISION; returns the [NodeError] the
    draft has (a draft may have errors; publishing refuses them). Raises StaleDraft when another save came first."""
    if not isinstance(data, dict):
        raise FlowError("A flow document is a JSON object.")
    lookup = doc.Lookup.load(flow.account_id, flow.number, data)
    parsed, errors = doc.parse(data, lookup)
    stored = parsed.data if parsed is not None else data
    now = timezone.now()
    changed = CallFlow.objects.filter(pk=flow.pk, draft_revision=revision).update(
        draft=stored, draft_revision=F("draft_revision") + 1, updated_by=user, updated_at=now,
    )
    if not changed:
        flow.refresh_from_db(fields=["draft_revision"])
        raise StaleDraft(flow)
    flow.draft, flow.draft_revision, flow.updated_by, flow.updated_at = stored, revision + 1, user, now
    log.info("flow=%s action=save_draft revision=%s errors=%d", flow.pk, flow.draft_revision, len(errors))
    return errors


def validate_draft(flow):
    """The [NodeError] of FLOW's draft, with the account's objects checked (a constant number of queries)."""
    return doc.validate(flow.draft, doc.Lookup.load(flow.account_id, flow.number, flow.draft))


@transaction.atomic
def publish(flow, user=None, *, data=None):
    """Publish FLOW's draft (or DATA) as its next version, which callers get from now on; returns the FlowVersion.
    Raises InvalidFlow while the document has errors."""
    flow = CallFlow.objects.select_for_update(of=("self",)).select_related("number", "published").get(pk=flow.pk)
    data = flow.draft if data is None else data
    parsed, errors = doc.parse(data, doc.Lookup.load(flow.account_id, flow.number, data))
    if parsed is None or errors:
        raise InvalidFlow(errors or [doc.NodeError(None, None, "The document cannot be read.")])
    return _publish(flow, parsed.data, user)


def _publish(flow, data, user):
    last = flow.versions.aggregate(last=Max("number"))["last"] or 0
    previous = flow.published.document if flow.published_id else None
    version = FlowVersion.objects.create(
        flow=flow, number=last + 1, document=data, published_by=user, summary=summary_of(previous, data)[:500],
    )
    CallFlow.objects.filter(pk=flow.pk).update(published=version)
    flow.published, flow.published_id = version, version.pk
    log.info("flow=%s action=publish version=%s number=%s", flow.pk, version.number, flow.number_id)
    return version


@transaction.atomic
def restore(flow, version, user=None):
    """Make VERSION (of FLOW) the draft again (a new revision); returns the [NodeError] it has today (an object it
    names may have been deleted since)."""
    if version.flow_id != flow.pk:
        raise FlowError("That version belongs to another flow.")
    current = CallFlow.objects.select_for_update().get(pk=flow.pk)
    return save_draft(flow, version.document, current.draft_revision, user)


def export_flow(flow, version=None):
    """The document to download: VERSION's, else the draft (else the published one)."""
    if version is not None:
        return version.document
    return flow.draft or (flow.published.document if flow.published_id else {})


def import_flow(flow, data, revision, user=None):
    """Replace FLOW's draft with the imported document DATA (see save_draft)."""
    return save_draft(flow, data, revision, user)


# --- Simple mode ------------------------------------------------------------------------------------------------

_local = threading.local()


@transaction.atomic
def sync_simple_flow(number, user=None):
    """Publish NUMBER's settings as a new version when its flow is in simple mode (no published version yet, or the
    published document is one the compiler makes) and the settings compile to something else. The draft follows
    when it was the published document (or empty). Returns the new FlowVersion, else None."""
    flow = flow_of(number)
    flow = CallFlow.objects.select_for_update(of=("self",)).select_related("published").get(pk=flow.pk)
    published = flow.published.document if flow.published_id else None
    if published is not None and not compiler.is_simple(published):
        return None
    compiled = compiler.compile_number(number)
    if compiled == published:
        return None
    parsed, errors = doc.parse(compiled)
    if parsed is None or errors:
        log.warning("number=%s action=sync_simple_flow refused errors=%s", number.pk, [e.message for e in errors])
        return None
    follow = not flow.draft or flow.draft == published
    version = _publish(flow, parsed.data, user)
    if follow:
        now = timezone.now()
        CallFlow.objects.filter(pk=flow.pk).update(
            draft=parsed.data, draft_revision=F("draft_revision") + 1, updated_by=user, updated_at=now
        )
        flow.draft, flow.draft_revision, flow.updated_by, flow.updated_at = parsed.data, flow.draft_revision + 1, user, now
    number.flow = flow  # the instance the caller holds sees the new version
    return version


def publish_compiled(numbers, options_by_number):
    """Give NUMBERS (saved with bulk_create, so no signal ran) flows whose version 1 is their compiled settings, in a
    few bulk queries. OPTIONS_BY_NUMBER: {number id: [its routing options in menu order]}."""
    flows, documents = [], []
    for number in numbers:
        data = compiler.compile_number(number, options_by_number.get(number.pk, []), audio={})
        documents.append(data)
        flows.append(CallFlow(account_id=number.account_id, number=number, draft=data, draft_revision=1))
    flows = CallFlow.objects.bulk_create(flows)
    versions = FlowVersion.objects.bulk_create(
        FlowVersion(flow=flow, number=1, document=data, summary=summary_of(None, data))
        for flow, data in zip(flows, documents)
    )
    for flow, version in zip(flows, versions):
        flow.published = version
    CallFlow.objects.bulk_update(flows, ["published"])
    return flows


@contextlib.contextmanager
def settings_change(user=None):
    """Group the changes of one settings save: the numbers whose settings changed inside are synced once, at the
    end (else every saved row would publish a version of its own). USER is recorded as the publisher."""
    pending = getattr(_local, "pending", None)
    if pending is not None:  # nested: the outermost block syncs
        yield
        return
    _local.pending = {}
    try:
        yield
        numbers = list(_local.pending.values())
    finally:
        _local.pending = None
    for number in numbers:
        try:
            number.refresh_from_db()
        except type(number).DoesNotExist:
            continue  # deleted in the same block: no flow left to change
        sync_simple_flow(number, user)


def settings_changed(number):
    """NUMBER's settings changed (a signal of callrouting.flows.signals): sync now, or at the end of the
    surrounding settings_change() block."""
    pending = getattr(_local, "pending", None)
    if pending is not None:
        pending[number.pk] = number
        return
    sync_simple_flow(number)
