"""Calls that came in while the database was down (callrouting.spool), recorded once it is back."""
import logging

from django.db import IntegrityError, transaction

from incidents.services import create_incident

from . import journal, lookup
from .incident import escalate_call_incident
from ..models import Call

log = logging.getLogger(__name__)

S = Call.State


@transaction.atomic
def record_outage_call(payload, received_at):
    """Record a call whose answer webhook arrived at RECEIVED_AT while the database was down (its spooled
    PAYLOAD): an ended call nobody took, and an escalated incident for the number's first option's escalation
    policy (the alert source's when the number has no options). The caller only heard an apology.

    Once per Vonage uuid. Returns the Call created, or None: recorded already (the database came back while the
    call went on, or another sweeper was first), or not a call to one of our numbers.
    """
    uuid = payload.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        log.warning("action=outage_call_skipped reason=no_uuid")
        return None
    uuid = uuid[:64]
    if Call.objects.filter(vonage_uuid=uuid).exists():
        log.info("call=%s action=outage_call_skipped reason=recorded_already", uuid)
        return None
    number = lookup.find_number(payload.get("to"))
    if number is None:
        log.warning("call=%s action=outage_call_skipped reason=unknown_number to=%s", uuid, str(payload.get("to"))[:32])
        return None
    options = lookup.options_of(number)
    option = options[0] if options else None
    try:
        with transaction.atomic():  # the unique vonage_uuid decides between two sweepers
            call = Call.objects.create(
                vonage_uuid=uuid,
                account_id=number.account_id,
                routing_number=number,
                caller=lookup.caller_number(payload.get("from")),
                called_number=number.phone_number,
                conversation_uuid=str(payload.get("conversation_uuid") or "")[:64],
                state=S.ENDED,
                outcome=Call.Outcome.NO_AGENT,
                option=option,
                ended_at=received_at,
            )
    except IntegrityError:
        log.info("call=%s action=outage_call_skipped reason=recorded_already", uuid)
        return None
    Call.objects.filter(pk=call.pk).update(started_at=received_at)  # when it rang, not when it was replayed
    caller = call.caller or "an unknown number"
    local = received_at.astimezone(number.tzinfo)
    incident = create_incident(
        alert_source=number.alert_source,
        summary=f"Missed call from {caller} during a database outage",
        details=(
            f"{caller} called {number.name} ({number.phone_number}) at {local:%Y-%m-%d %H:%M} {number.timezone} while "
            "the database was unavailable. The caller heard that we have technical difficulties; nobody was called."
        ),
        escalation_policy=option.escalation_policy if option is not None else None,
        suppress_escalation=True,
    )
    Call.objects.filter(pk=call.pk).update(incident=incident)
    call.incident = incident
    journal.timeline(call, f"Call received during a database outage ({local:%Y-%m-%d %H:%M} {number.timezone}): {caller} "
                     "heard an apology, nobody was called. Recorded once the database was back.")
    journal.log_decision(call, "outage_call", incident=incident.pk, received_at=received_at.isoformat())
    escalate_call_incident(call, "missed call during a database outage")
    return call
