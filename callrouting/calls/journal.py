"""What a call's decisions leave behind: one log line per decision (call=<uuid> action=...) and the lines on the
timeline of the call's incident."""
import logging

from incidents.models import IncidentEvent
from incidents.services import add_event

log = logging.getLogger("callrouting.calls")


def log_decision(call, action, **fields):
    extra = "".join(f" {key}={value}" for key, value in fields.items())
    log.info("call=%s action=%s%s", call.vonage_uuid, action, extra)


def timeline(call, message, *, kind=IncidentEvent.Kind.CALL, user=None, **data):
    if call.incident_id:
        add_event(call.incident_id, kind, message, user=user, data={"call": call.pk, **data})


def agent_name(leg):
    """The agent of LEG as the timeline names them: the user, or an external number's label."""
    return str(leg.user) if leg.user_id else (leg.label or leg.phone_number)
