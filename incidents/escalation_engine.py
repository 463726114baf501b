"""The escalation engine: walk a pending incident through its frozen escalation policy.

When escalation (re)starts the policy is frozen into Incident.escalation_snapshot, so editing the policy
mid-escalation cannot derail it:

    {"policy_id": 3, "policy_name": "Ops", "repeat_count": 1, "frozen_at": "...",
     "rules": [{"position": 0, "timeout_minutes": 10, "user_ids": [4, 5], "schedule_ids": [2]}, ...]}

Steps are numbered across repeats: step k runs rule k % len(rules). Running a step notifies that rule's users
(schedules are resolved to whoever is on call at the time of the step), then sets escalation_due_at to now plus
the rule's timeout; the sweeper runs the next step when that time has passed. After the last step of the last
repeat the incident waits one more timeout and the engine records that the policy is exhausted.

Every step is guarded by (escalation_generation, escalation_step) and a conditional update, so a duplicated or
late task, or two sweepers, never notify anybody twice. Accepting or resolving the incident clears the due time.
"""
import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from escalation.models import OnCallSchedule, User

from .models import Incident, IncidentEvent

log = logging.getLogger(__name__)


def freeze_policy(policy, now):
    """The escalation snapshot of POLICY (an EscalationPolicy or None) as a JSON-able dict."""
    if policy is None:
        return {"policy_id": None, "policy_name": "", "repeat_count": 0, "rules": [], "frozen_at": now.isoformat()}
    rules = policy.rules.prefetch_related("rule_users", "rule_schedules")
    return {
        "policy_id": policy.pk,
        "policy_name": policy.name,
        "repeat_count": policy.repeat_count,
        "frozen_at": now.isoformat(),
        "rules": [
            {
                "position": rule.position,
                "timeout_minutes": rule.escalation_timeout_minutes,
                "user_ids": [ru.user_id for ru in rule.rule_users.all()],
                "schedule_ids": [rs.schedule_id for rs in rule.rule_schedules.all()],
            }
            for rule in rules
        ],
    }


def total_steps(snapshot):
    """How many steps the snapshot has: its rules times (1 + repeat_count)."""
    return len(snapshot.get("rules") or []) * (1 + int(snapshot.get("repeat_count") or 0))


def start_escalation(incident, now=None):
    """(Re)start escalation of INCIDENT (locked by the caller, or just created) from the first rule.

    Freezes the policy, bumps the generation, cancels notifications still pending from an earlier run and
    enqueues the first step on commit. Returns the new generation.
    """
    from .notifications import cancel_pending_notifications
    from .tasks import enqueue

    now = now or timezone.now()
    policy = incident.escalation_policy
    snapshot = freeze_policy(policy, now)
    generation = incident.escalation_generation + 1
    cancel_pending_notifications(incident.pk, "Escalation restarted.")
    Incident.objects.filter(pk=incident.pk).update(
        escalation_snapshot=snapshot, escalation_generation=generation, escalation_step=0, escalation_due_at=now
    )
    incident.escalation_snapshot, incident.escalation_generation = snapshot, generation
    incident.escalation_step, incident.escalation_due_at = 0, now
    log.info(
        "incident=%s action=start_escalation generation=%s policy=%s rules=%s repeat=%s",
        incident.pk, generation, snapshot["policy_id"], len(snapshot["rules"]), snapshot["repeat_count"],
    )
    enqueue("escalation_step", incident.pk, generation, 0)
    return generation


def stop_escalation(incident_id, reason):
    """Stop escalating (the incident was accepted or resolved): no due step, no pending notifications."""
    from .notifications import cancel_pending_notifications

    Incident.objects.filter(pk=incident_id).update(escalation_due_at=None)
    cancel_pending_notifications(incident_id, reason)


def rule_users(rule, at):
    """The distinct active users a snapshot RULE notifies at AT: its users, then whoever its schedules have on call.

    Users come with their notification rules and contact methods prefetched.
    """
    wanted = list(rule.get("user_ids") or [])
    schedule_ids = list(rule.get("schedule_ids") or [])
    schedules = OnCallSchedule.objects.with_oncall(at).in_bulk(schedule_ids)
    for schedule_id in schedule_ids:
        schedule = schedules.get(schedule_id)
        on_call = schedule.on_call_at(at) if schedule else None
        if on_call is not None:
            wanted.append(on_call.pk)
    users = User.objects.filter(pk__in=wanted, is_active=True).prefetch_related(
        "notification_rules__contact_method"
    ).in_bulk()
    ordered = []
    for user_id in wanted:
        user = users.get(user_id)
        if user is not None and user not in ordered:
            ordered.append(user)
    return ordered


def run_escalation_step(incident_id, generation, step, now=None):
    """Run STEP of GENERATION if it is what the incident has due at NOW. Returns True when it ran.

    Returns False (and changes nothing) when the incident is gone, no longer pending, suppressed, restarted,
    already past this step, or not due yet.
    """
    from .notifications import plan_notifications

    now = now or timezone.now()
    with transaction.atomic():
        # No select_related: on PostgreSQL that would lock the source's and the account's rows as well.
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        reason = _skip_reason(incident, generation, step, now)
        if reason:
            log.info("incident=%s action=skip_step generation=%s step=%s reason=%s", incident_id, generation, step, reason)
            return False
        snapshot = incident.escalation_snapshot or {}
        rules = snapshot.get("rules") or []
        if step >= total_steps(snapshot):
            return _finish(incident, generation, step, snapshot)

        repeat, rule_index = divmod(step, len(rules))
        rule = rules[rule_index]
        users = rule_users(rule, now)
        # Nobody to tell: move on to the next rule at once instead of waiting out the timeout.
        next_due = now + timedelta(minutes=rule["timeout_minutes"]) if users else now
        changed = Incident.objects.filter(
            pk=incident.pk, escalation_generation=generation, escalation_step=step, status=Incident.Status.PENDING
        ).update(escalation_step=step + 1, escalation_due_at=next_due)
        if changed != 1:
            log.info("incident=%s action=skip_step generation=%s step=%s reason=lost_race", incident_id, generation, step)
            return False

        from .services import add_event

        label = f"Escalated to rule {rule_index + 1}"
        if repeat:
            label += f" (repeat {repeat} of {snapshot.get('repeat_count', 0)})"
        names = ", ".join(str(user) for user in users) or "nobody"
        add_event(
            incident,
            IncidentEvent.Kind.ESCALATED,
            f"{label}: {names}." if users else f"{label}: nobody to notify, moving on.",
            data={"generation": generation, "step": step, "rule": rule_index, "user_ids": [u.pk for u in users]},
        )
        log.info(
            "incident=%s action=escalate generation=%s step=%s rule=%s repeat=%s users=%s next_due=%s",
            incident.pk, generation, step, rule_index, repeat, ",".join(str(u.pk) for u in users), next_due.isoformat(),
        )
        for user in users:
            plan_notifications(incident, user, generation=generation, step=step, now=now)
        if not users:
            from .tasks import enqueue

            enqueue("escalation_step", incident.pk, generation, step + 1)
        return True


def _skip_reason(incident, generation, step, now):
    if incident is None:
        return "gone"
    if incident.status != Incident.Status.PENDING:
        return incident.status
    if incident.escalation_suppressed:
        return "suppressed"
    if incident.escalation_generation != generation:
        return f"generation_is_{incident.escalation_generation}"
    if incident.escalation_step != step:
        return f"step_is_{incident.escalation_step}"
    if incident.escalation_due_at is None:
        return "not_escalating"
    if incident.escalation_due_at > now:
        return "not_due"
    return ""


def _finish(incident, generation, step, snapshot):
    from .services import add_event

    changed = Incident.objects.filter(
        pk=incident.pk, escalation_generation=generation, escalation_step=step
    ).update(escalation_due_at=None)
    if changed != 1:
        return False
    if snapshot.get("rules"):
        message = "Escalation policy exhausted: nobody accepted the incident."
    else:
        message = "No escalation policy with rules: nobody is notified."
    add_event(incident, IncidentEvent.Kind.ESCALATED, message, data={"generation": generation, "step": step})
    log.info("incident=%s action=escalation_finished generation=%s step=%s", incident.pk, generation, step)
    return True


def sweep_escalations(now):
    """Run every escalation step due at NOW, each in its own transaction. Returns how many ran."""
    from .sweeper import BATCH, locked

    due = Incident.objects.filter(
        status=Incident.Status.PENDING, escalation_suppressed=False, escalation_due_at__lte=now
    ).order_by("escalation_due_at")
    ran = 0
    for incident_id in list(due.values_list("pk", flat=True)[:BATCH]):
        with transaction.atomic():
            incident = locked(due.filter(pk=incident_id)).first()
            if incident is None:
                continue  # another sweeper or a task holds or already moved it
            if run_escalation_step(incident.pk, incident.escalation_generation, incident.escalation_step, now=now):
                ran += 1
    return ran

