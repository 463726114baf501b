"""A routed call's agents: chosen once (frozen as QUEUED legs), dialled one after another or all at once, and
the caller moved on when nobody is left; a route that went quiet is moved on by the sweeper."""
import datetime as dt

from django.db import transaction
from django.utils import timezone

from escalation.models import User
from escalation.oncall import prefetch_policy
from incidents.models import IncidentEvent

from . import dispatch, flow, journal
from .caller import end_call
from .legs import ROUTING_GRACE, bump_routing_due, hang_up_legs, routing_due, set_leg_status
from .steps import route_round_over
from .voicemail import VOICEMAIL_GRACE
from ..models import AgentLeg, Call

S = Call.State
L = AgentLeg.Status


def _policy_users(policy, at):
    """The users to dial for POLICY at AT (escalation timeouts skipped), in a fixed number of queries."""
    return list(prefetch_policy(policy.pk, at).users_at(at))


@transaction.atomic
def prepare_agent_legs(call_id):
    """Freeze the agents to call for a routed call: one QUEUED leg per user of the incident's policy, in order.

    Users without a phone number are skipped (and said so on the timeline). Returns the number of legs.
    """
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("incident__escalation_policy", "option__escalation_policy")
        .filter(pk=call_id)
        .first()
    )
    if call is None or call.state != S.ROUTING:
        return 0
    existing = call.legs.count()
    if existing:
        return existing  # a repeated task: the agents are chosen already
    policy = (call.incident.escalation_policy if call.incident_id else None) or (
        call.option.escalation_policy if call.option_id else None
    )
    users = _policy_users(policy, timezone.now()) if policy else []
    # Phone numbers of every agent in one query, whatever the policy helper loaded; a user deactivated since the
    # policy was read is not dialled.
    by_pk = User.objects.filter(is_active=True).prefetch_related("contact_methods").in_bulk([user.pk for user in users])
    users = [by_pk[user.pk] for user in users if user.pk in by_pk]
    legs, skipped = [], []
    for user in users:
        phone = user.primary_phone()
        if phone:
            legs.append(AgentLeg(call=call, position=len(legs), user=user, phone_number=phone))
        else:
            skipped.append(str(user))
    AgentLeg.objects.bulk_create(legs)
    names = ", ".join(f"{leg.user} ({leg.phone_number})" for leg in legs) or "nobody"
    journal.timeline(call, f"Agents to call: {names}." + (f" No phone number: {', '.join(skipped)}." if skipped else ""))
    journal.log_decision(call, "agents", count=len(legs), skipped=len(skipped), policy=policy.pk if policy else None)
    return len(legs)


@transaction.atomic
def claim_next_legs(call_id):
    """The ids of the legs to dial now (marked DIALLING): the next agent (sequential) or all waiting agents
    (simultaneous). Empty while a leg is still ringing, or when the call has moved on; when every agent has
    been tried the caller goes to voicemail or hears that nobody is available."""
    call = Call.objects.select_for_update(of=("self",)).select_related("routing_number").filter(pk=call_id).first()
    if call is None:
        return []
    statuses = list(call.legs.values_list("status", flat=True))
    step = flow.next_dial(call, statuses, call.routing_number.voicemail_enabled)
    for effect in step.effects:
        if isinstance(effect, flow.NobodyLeft):
            if call.flow_version_id:
                route_round_over(call)  # the route node's next round or its "nobody answered" branch
            else:
                send_to_nobody_left(call.pk)
            return []
        if isinstance(effect, flow.DialNext):
            queued = call.legs.filter(status=L.QUEUED).order_by("position")
            legs = list(queued if call.simultaneous else queued[:1])
            AgentLeg.objects.filter(pk__in=[leg.pk for leg in legs], status=L.QUEUED).update(status=L.DIALLING)
            bump_routing_due(call, call.routing_number)
            for leg in legs:
                journal.log_decision(call, "dial", option=call.option.digit if call.option_id else None, agent=leg.user_id, leg=leg.pk)
                journal.timeline(call, f"Calling {journal.agent_name(leg)} at {leg.phone_number}.", user=leg.user)
            return [leg.pk for leg in legs]
    return []


def dial_each_in_its_own_task(leg_ids):
    """Hand each of LEG_IDS (claimed DIALLING legs) to a dial task of its own."""
    for leg_id in leg_ids:
        dispatch.enqueue("place_agent_call", leg_id)


@transaction.atomic
def send_to_nobody_left(call_id):
    """Every agent was tried: voicemail when the number has it, else 'nobody available' and the end."""
    call = Call.objects.select_for_update(of=("self",)).select_related("routing_number").get(pk=call_id)
    number = call.routing_number
    now = timezone.now()
    # The transfer task must have moved the caller by transfer_due_at, or the sweeper sends them again.
    transfer_due = now + dispatch.TASK_GRACE
    if number.voicemail_enabled:
        # If no recording or transcription ever arrives, the sweeper escalates at voicemail_due_at anyway.
        deadline = now + dt.timedelta(seconds=number.voicemail_max_length) + VOICEMAIL_GRACE
        if not Call.objects.filter(pk=call.pk, state=S.ROUTING).update(
            state=S.VOICEMAIL, voicemail_due_at=deadline, routing_due_at=None, transfer_due_at=transfer_due
        ):
            return False
        call.state = S.VOICEMAIL
        journal.log_decision(call, "voicemail")
        journal.timeline(call, "Nobody took the call: the caller is sent to voicemail.", kind=IncidentEvent.Kind.VOICEMAIL)
        dispatch.enqueue("transfer_caller", call.pk, "voicemail", transfer_due)
        return True
    if not end_call(call, Call.Outcome.NO_AGENT, escalate="nobody took the call"):
        return False
    Call.objects.filter(pk=call.pk).update(transfer_due_at=transfer_due)
    dispatch.enqueue("transfer_caller", call.pk, "nobody_available", transfer_due)
    return True


@transaction.atomic
def move_on_stuck_call(call_id, now):
    """A routed call whose routing_due_at passed at NOW: no agent-leg event moved it on for the ringing timeout
    plus ROUTING_GRACE (a lost webhook, or a worker killed while dialling). Give up the legs still ringing and
    call the next agent, or choose and call the agents if that never happened. Returns True when it acted."""
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("routing_number")
        .filter(pk=call_id, state=S.ROUTING, routing_due_at__lte=now)
        .first()
    )
    if call is None:
        return False
    number = call.routing_number
    Call.objects.filter(pk=call.pk).update(routing_due_at=routing_due(call, number))
    waited = number.ringing_timeout + int(ROUTING_GRACE.total_seconds())
    active = list(call.legs.select_related("user").filter(status__in=flow.LEG_ACTIVE))
    journal.log_decision(call, "stuck", active_legs=len(active), waited=waited)
    if not active:
        # Nobody rings: the task that should call the next agent (or move the caller on) was lost.
        Call.objects.filter(pk=call.pk).update(routing_due_at=now + dispatch.TASK_GRACE)
        journal.timeline(call, "No agent is being called: calling the next agent.")
        dispatch.enqueue("start_dialling", call.pk)
        return True
    for leg in active:
        set_leg_status(call, leg, L.NO_ANSWER, f"no word from the phone network for {waited} s")
    hang_up_legs(active)
    return True
