"""The call's incident: handed back to its escalation policy once per call, raised at support hours."""
from django.db import transaction
from django.utils import timezone

from incidents.models import Priority
from incidents.services import escalate_incident, set_priority

from . import journal
from ..models import Call


def escalate_call_incident(call, reason, *, unless_raise_pending=False):
    """Hand the call's incident back to its escalation policy, once per call. True when this did it.

    UNLESS_RAISE_PENDING: do nothing while an auto raise is pending (the sweeper escalates at the raise).
    """
    if not call.incident_id:
        return False
    with transaction.atomic():
        calls = Call.objects.filter(pk=call.pk, escalated_at__isnull=True)
        if unless_raise_pending:
            calls = calls.filter(raise_due_at__isnull=True)
        changed = calls.update(escalated_at=timezone.now())
        if not changed:
            return False
        journal.log_decision(call, "escalate", incident=call.incident_id)
        escalate_incident(call.incident_id, reason=reason)
    return True


@transaction.atomic
def raise_call_incident(call_id, now):
    """Auto raise at the start of support hours: the call's incident goes to HIGH priority and is escalated.

    Returns True when this call made the change (its raise_due_at had passed at NOW and is now cleared).
    """
    call = Call.objects.select_for_update(of=("self",)).filter(pk=call_id, raise_due_at__lte=now).first()
    if call is None or not Call.objects.filter(pk=call.pk, raise_due_at=call.raise_due_at).update(raise_due_at=None):
        return False
    call.raise_due_at = None
    incident = call.incident
    if incident is None or not incident.is_open:
        journal.log_decision(call, "raise_skipped", incident=call.incident_id)
        return True
    set_priority(incident.pk, Priority.HIGH, reason="Support hours started (auto raise).")
    escalate_call_incident(call, "support hours started (auto raise)")
    journal.log_decision(call, "raise", incident=incident.pk)
    return True
