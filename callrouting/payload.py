"""What alert actions (webhook, Slack, Teams) get about a call-routing incident, under payload["extra"]["call"].

Registered with incidents.actions.register_payload_extension in CallRoutingConfig.ready(). The payload is built
when an action fires (created, accepted, resolved), so it carries what is known then: the agent and the duration
once the call was taken and has ended, the voicemail link (signed, expiring) and transcript once they are in.
"""
from .models import Call, Voicemail
from .recordings import signed_link


def call_payload(incident):
    """{"call": {...}} for an incident created by call routing (its first call), else {}."""
    call = (
        Call.objects.filter(incident_id=incident.pk)
        .select_related("routing_number", "option", "connected_leg__user")
        .order_by("started_at", "id")
        .first()
    )
    if call is None:
        return {}
    voicemail = Voicemail.objects.filter(call=call).first()
    leg = call.connected_leg
    accepted_by = None
    if leg is not None and leg.status == leg.Status.ACCEPTED:
        accepted_by = {"id": leg.user_id, "name": str(leg.user) if leg.user_id else leg.phone_number}
    number = call.routing_number
    return {
        "call": {
            "number": number.phone_number,
            "number_name": number.name,
            "option": {"digit": call.option.digit, "label": call.option.label} if call.option_id else None,
            "caller": call.caller or None,
            "accepted_by": accepted_by,
            "duration_seconds": call.duration_seconds,
            "outcome": call.outcome or None,
            "in_support_hours": call.in_support_hours,
            "voicemail_url": signed_link(voicemail)[0] if voicemail is not None else None,
            "transcript": (voicemail.transcript or None) if voicemail is not None else None,
        }
    }
