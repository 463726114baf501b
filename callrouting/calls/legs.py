"""Agent legs: the outbound call to each agent on behalf of a Call, from dialling to accepted or given up.

Every change is a conditional update on the leg (flow.LEG_FROM) with the Call row locked by the caller of these
verbs. Lock order: the Call row first, then its legs.
"""
import datetime as dt

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from incidents.services import accept_incident

from . import dispatch, flow, journal
from ..models import AgentLeg, Call

S = Call.State
L = AgentLeg.Status


# While agents are called: how long after the ringing timeout without any agent-leg event the sweeper moves on
# (covers create-call retries, the whisper and the key press; a lost task or webhook costs at most this).
ROUTING_GRACE = dt.timedelta(seconds=60)


def ring_seconds(call, number):
    """How long each agent's phone rings for CALL: its route node's ring timeout, else the number's."""
    return call.ring_timeout or number.ringing_timeout


def routing_due(call, number, now=None):
    """When the sweeper should look at routed CALL (of NUMBER) that no agent-leg event moved on."""
    return (now or timezone.now()) + dt.timedelta(seconds=ring_seconds(call, number)) + ROUTING_GRACE


def bump_routing_due(call, number):
    Call.objects.filter(pk=call.pk, state=S.ROUTING).update(routing_due_at=routing_due(call, number))


def call_about(call):
    """What the agent's whisper says the call is about: the route node's name (with a PIN's label), or the
    routing option of a call routed by the number's settings."""
    return call.about or (call.option.label if call.option_id else "")


def dial_request(leg_id):
    """What the dial task needs to place LEG_ID's call, or None when the leg is no longer wanted or its call
    was placed already (an event of it arrived although the create-call request failed)."""
    leg = AgentLeg.objects.select_related("call__routing_number", "call__option", "user").filter(pk=leg_id).first()
    if leg is None or leg.status != L.DIALLING or leg.call.state != S.ROUTING or leg.vonage_uuid:
        return None
    call, number = leg.call, leg.call.routing_number
    return {
        "to": leg.phone_number,
        "from_": number.phone_number,
        "event_url": flow.absolute_url("callrouting:leg-event", token=leg.token),
        "ncco": flow.agent_whisper_ncco(number, call_about(call), call.caller, leg),
        "ringing_timer": ring_seconds(call, number),
        "machine_detection": "hangup",
    }


def count_dial_attempt(leg_id):
    AgentLeg.objects.filter(pk=leg_id).update(attempts=F("attempts") + 1)


@transaction.atomic
def leg_dialled(leg_id, uuid, api_host=""):
    """Store the Vonage uuid of LEG_ID's call and the API_HOST that created it (where it is modified). False
    when the leg was given up meanwhile (hang the call up)."""
    AgentLeg.objects.filter(pk=leg_id, vonage_uuid__isnull=True).update(
        vonage_uuid=uuid, api_host=api_host, dialled_at=timezone.now()
    )
    # A leg adopted from its first event (adopt_leg_call) before this answer came back knows the uuid, not the host.
    AgentLeg.objects.filter(pk=leg_id, vonage_uuid=uuid, api_host="").update(api_host=api_host)
    leg = AgentLeg.objects.select_related("call").get(pk=leg_id)
    journal.log_decision(leg.call, "dialled", agent=leg.user_id, leg=leg.pk, uuid=uuid)
    return leg.status in flow.LEG_ACTIVE and leg.vonage_uuid == uuid


def adopt_leg_call(call, leg, uuid):
    """The first call seen on LEG's event URL is the leg's call, whether or not its create-call request has
    answered (it may have timed out although Vonage placed the call): the dial task places no other, and a call
    its request still returns is hung up. Returns True when LEG took UUID."""
    if not AgentLeg.objects.filter(pk=leg.pk, vonage_uuid__isnull=True).update(vonage_uuid=uuid, dialled_at=timezone.now()):
        return False
    leg.vonage_uuid = uuid
    journal.log_decision(call, "adopt", agent=leg.user_id, leg=leg.pk, uuid=uuid)
    return True


def leg_dial_failed(leg_id, reason):
    """Placing LEG_ID's call failed for good: the leg FAILED, the next agent is called."""
    with transaction.atomic():
        leg = AgentLeg.objects.select_related("call").filter(pk=leg_id).first()
        if leg is None:
            return
        call = Call.objects.select_for_update(of=("self",)).select_related("routing_number").get(pk=leg.call_id)
        set_leg_status(call, leg, L.FAILED, f"could not place the call: {reason}"[:200])


def set_leg_status(call, leg, status, detail=""):
    """Move LEG to STATUS if it still may; when the leg has ended, go on with the next agent. Call row locked."""
    now = timezone.now()
    values = {"status": status}
    if detail:
        values["detail"] = detail[:200]
    if status == L.ANSWERED:
        values["answered_at"] = now
    if status in flow.LEG_FINISHED:
        values["ended_at"] = now
    if not AgentLeg.objects.filter(pk=leg.pk, status__in=flow.LEG_FROM[status]).update(**values):
        return False
    leg.status = status
    journal.log_decision(call, "leg", agent=leg.user_id, leg=leg.pk, status=status)
    if status == L.ANSWERED:
        journal.timeline(call, f"{journal.agent_name(leg)} answered and hears who is calling.", user=leg.user)
    if status not in flow.LEG_FINISHED:
        bump_routing_due(call, call.routing_number)
        return True
    journal.timeline(call, f"{journal.agent_name(leg)}: {L(status).label.lower()}" + (f" ({detail})." if detail else "."), user=leg.user)
    statuses = list(call.legs.values_list("status", flat=True))
    effects = flow.next_dial(call, statuses, call.routing_number.voicemail_enabled).effects
    if any(isinstance(effect, (flow.DialNext, flow.NobodyLeft)) for effect in effects):
        # claim_next_legs decides again under the lock (and sends the caller on when nobody is left). No phone
        # rings meanwhile: if that task is lost, the sweeper takes the step after dispatch.TASK_GRACE, not a ringing timeout.
        dispatch.enqueue("dial_next", call.pk)
        Call.objects.filter(pk=call.pk, state=S.ROUTING).update(routing_due_at=now + dispatch.TASK_GRACE)
    else:
        bump_routing_due(call, call.routing_number)
    return True


def cancel_agent_legs(call, *, reason, keep_leg_id=None):
    """Give up every leg of CALL that has not ended (except KEEP_LEG_ID) and hang up the ones already placed."""
    legs = call.legs.filter(status__in=flow.LEG_FROM[L.CANCELLED])
    if keep_leg_id:
        legs = legs.exclude(pk=keep_leg_id)
    legs = list(legs)
    cancelled = []
    for leg in legs:
        if AgentLeg.objects.filter(pk=leg.pk, status__in=flow.LEG_FROM[L.CANCELLED]).update(
            status=L.CANCELLED, detail=reason[:200], ended_at=timezone.now()
        ):
            cancelled.append(leg)
            journal.log_decision(call, "cancel", agent=leg.user_id, leg=leg.pk)
    if legs:
        journal.timeline(call, f"Stopped calling {', '.join(journal.agent_name(leg) for leg in legs)}: {reason}.")
    hang_up_legs(cancelled)
    return len(legs)


def hang_up_legs(legs):
    """Hang up the placed calls of LEGS once the transaction commits, each on the host that created it.

    One task per call, as the fan-out dials them: a slow Vonage answering the hang-ups of a large simultaneous
    fan-out one after another would push the last ones past the task timeout, and those phones would ring on."""
    for leg in legs:
        if leg.vonage_uuid:
            dispatch.enqueue("hang_up", [leg.vonage_uuid], leg.api_host)


@transaction.atomic
def connect_agent_leg(call, leg):
    """LEG's agent takes CALL: CONNECTED, incident accepted and assigned, every other leg hung up.

    Returns True for exactly one leg per call, whatever the interleaving of webhooks.
    """
    now = timezone.now()
    if not Call.objects.filter(pk=call.pk, state__in=flow.CALL_FROM[S.CONNECTED]).update(
        state=S.CONNECTED, connected_leg=leg, connected_at=now, routing_due_at=None
    ):
        return False
    if not AgentLeg.objects.filter(pk=leg.pk, status__in=flow.LEG_FROM[L.ACCEPTED]).update(
        status=L.ACCEPTED, answered_at=F("answered_at") if leg.answered_at else now
    ):
        transaction.set_rollback(True)
        return False
    call.state, call.connected_leg, leg.status = S.CONNECTED, leg, L.ACCEPTED
    journal.log_decision(call, "connect", agent=leg.user_id, leg=leg.pk)
    journal.timeline(call, f"{journal.agent_name(leg)} accepted the call and is connected to the caller.", user=leg.user)
    # An external number is nobody of the account: the incident stays for its people to accept.
    if call.incident_id and leg.user_id and call.accept_when_answered:
        accept_incident(call.incident_id, leg.user, via="phone")
    cancel_agent_legs(call, reason=f"{journal.agent_name(leg)} took the call", keep_leg_id=leg.pk)
    return True
