"""The caller's call state: routed to an option, ended, moved on by a transfer.

Every change is a conditional update (flow.CALL_FROM) so that a duplicate or late webhook cannot apply twice.
"""
from django.db import transaction
from django.utils import timezone

from incidents.models import IncidentEvent
from incidents.services import create_incident, resolve_incident

from . import dispatch, flow, journal
from .incident import escalate_call_incident
from .legs import cancel_agent_legs
from .. import recordings
from ..models import AgentLeg, Call, CallingStyle

S = Call.State
L = AgentLeg.Status


class _AlreadyMoved(Exception):
    """Rolls back what a verb created once its conditional update finds the call has moved on."""


def route_call(call, option, how, *, number):
    """Route CALL to OPTION: create its incident (escalation held back), start calling agents.

    Returns True when this call made the change (False: it was routed already).
    """
    try:
        return _route_call(call, option, how, number=number)
    except _AlreadyMoved:
        return False


@transaction.atomic
def _route_call(call, option, how, *, number):
    now = timezone.now()
    simultaneous = {CallingStyle.SIMULTANEOUS: True, CallingStyle.SEQUENTIAL: False}.get(
        call.calling_style, option.simultaneous
    )
    caller = call.caller or "an unknown number"
    mode = "all at once" if simultaneous else "one after another"
    # The incident first, so that one conditional update both routes the call and links it; a repeated input
    # (the call moved on meanwhile) rolls the incident back.
    incident = create_incident(
        alert_source=number.alert_source,
        summary=f"Call from {caller} for {option.label}",
        details=f"{caller} called {number.name} ({number.phone_number}) and chose {option.digit} “{option.label}” ({how}).",
        escalation_policy=option.escalation_policy,
        suppress_escalation=True,
        timeline=[(IncidentEvent.Kind.CALL,
                   f"Call from {caller}: chose {option.digit} “{option.label}” ({how}). Calling agents {mode}.",
                   {"call": call.pk})],
    )
    changed = Call.objects.filter(pk=call.pk, state__in=flow.CALL_FROM[S.ROUTING]).update(
        state=S.ROUTING, option=option, simultaneous=simultaneous, routed_at=now,
        routing_due_at=now + dispatch.TASK_GRACE, incident=incident,
    )
    if not changed:
        raise _AlreadyMoved()
    call.state, call.option, call.incident, call.simultaneous = S.ROUTING, option, incident, simultaneous
    journal.log_decision(call, "route", option=option.digit, how=how.replace(" ", "_"), incident=incident.pk)
    dispatch.enqueue("start_dialling", call.pk)
    return True


@transaction.atomic
def end_call(call, outcome, *, cancel_legs=False, escalate="", resolve=False):
    """End CALL with OUTCOME (once). Optionally cancel ringing legs, re-escalate or resolve its incident."""
    now = timezone.now()
    changed = Call.objects.filter(pk=call.pk, state__in=flow.CALL_FROM[S.ENDED]).update(
        state=S.ENDED, outcome=outcome, ended_at=now, routing_due_at=None, transfer_due_at=None
    )
    if not changed:
        return False
    previous, call.state, call.outcome = call.state, S.ENDED, outcome
    if outcome == Call.Outcome.VOICEMAIL:
        # Vonage's record webhook usually follows the hang-up within seconds; the sweeper flags it if it never comes.
        Call.objects.filter(pk=call.pk).update(recording_due_at=now + recordings.RECORDING_WEBHOOK_GRACE)
    # The connected agent's leg ends with the call (its own "completed" event finds it already final).
    AgentLeg.objects.filter(call_id=call.pk, status=L.ACCEPTED, ended_at__isnull=True).update(ended_at=now)
    journal.log_decision(call, "end", outcome=outcome or "none", was=previous)
    journal.timeline(call, f"Call ended: {Call.Outcome(outcome).label.lower()}.")
    if cancel_legs:
        cancel_agent_legs(call, reason="the call ended")
    if escalate and previous == S.VOICEMAIL:
        # Nothing more to wait for in the mailbox; a pending auto raise still escalates at support hours.
        Call.objects.filter(pk=call.pk).update(voicemail_due_at=None)
        escalate_call_incident(call, escalate, unless_raise_pending=True)
    elif escalate:
        escalate_call_incident(call, escalate)
    if resolve and call.incident_id:
        if call.routing_number.keep_incident_open:
            journal.timeline(call, "The answered call ended; the incident stays open.")
        else:
            agent = call.connected_leg.user if call.connected_leg_id and call.connected_leg else None
            resolve_incident(call.incident_id, agent, via="phone", reason="The answered call ended.")
    return True


# Where a transfer takes the caller: the call's state (and outcome) it expects.
TRANSFER_STATES = {
    "voicemail": {"state": S.VOICEMAIL},
    "nobody_available": {"state": S.ENDED, "outcome": Call.Outcome.NO_AGENT},
    # A flow's "nobody answered" branch: wherever it led (Call.transfer_ncco), unless the caller hung up.
    "flow": {"transfer_ncco__isnull": False},
}


def claim_caller_transfer(call_id, destination, due=None):
    """Take on the transfer of the caller of CALL_ID to DESTINATION that was due at DUE (None: whatever is due).

    Returns the call (with its routing number) when this task is the one to transfer the caller; None when the
    transfer was done, taken on by another task, reissued by the sweeper, or the caller is gone.
    """
    calls = Call.objects.filter(pk=call_id, **TRANSFER_STATES[destination]).exclude(outcome=Call.Outcome.ABANDONED)
    calls = calls.filter(transfer_due_at=due) if due is not None else calls.filter(transfer_due_at__isnull=False)
    # While the transfer is under way the due time is this task's lease: the sweeper sends the caller again
    # only if the task dies.
    if not calls.update(transfer_due_at=timezone.now() + dispatch.TASK_GRACE):
        return None
    return Call.objects.select_related("routing_number").get(pk=call_id)


def caller_transferred(call_id):
    """The caller's transfer is over (done, or given up and the caller hung up): nothing more is due."""
    Call.objects.filter(pk=call_id, transfer_due_at__isnull=False).update(transfer_due_at=None, transfer_ncco=None)


@transaction.atomic
def reissue_caller_transfer(call_id, now):
    """The caller of CALL_ID should have been moved to voicemail or "nobody available" by its transfer_due_at,
    passed at NOW, but the task doing it was lost (or died): issue it again. Returns True when it did."""
    call = Call.objects.select_for_update(of=("self",)).filter(pk=call_id, transfer_due_at__lte=now).first()
    if call is None:
        return False
    if call.transfer_ncco is not None and call.outcome != Call.Outcome.ABANDONED:
        destination = "flow"
    else:
        destination = next((name for name, fields in TRANSFER_STATES.items()
                            if name != "flow" and all(getattr(call, k) == v for k, v in fields.items())), None)
    if destination is None:  # the call moved on without clearing it (the caller hung up meanwhile)
        caller_transferred(call.pk)
        return False
    due = now + dispatch.TASK_GRACE
    Call.objects.filter(pk=call.pk).update(transfer_due_at=due)
    journal.log_decision(call, "transfer_again", destination=destination)
    where = "the next step of the call flow" if destination == "flow" else destination.replace("_", " ")
    journal.timeline(call, f"The caller was not moved to {where} in time: trying again.")
    dispatch.enqueue("transfer_caller", call.pk, destination, due)
    return True
