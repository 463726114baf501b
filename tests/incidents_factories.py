"""Factories and helpers for the incidents tests.

`worker` stands in for the django-q2 cluster: incidents.tasks enqueues into it (on commit, as in production)
and worker.run() executes what was queued, in order, committing each task's on_commit callbacks. Tests wrap
service calls in `committed()` so their on_commit callbacks (the enqueues) run.
"""
import threading

import factory
import pytest
from django.db import connections
from django.test import TestCase
from django.utils.module_loading import import_string
from factory.django import DjangoModelFactory

from escalation.models import ContactMethod, NotificationRule
from incidents import models, tasks
from tests.factories import AccountFactory, PolicyFactory, RuleFactory


def at_once(func, times=2, timeout=30):
    """Run FUNC in TIMES threads that start together (each with its own database connection, as separate
    processes would have). Returns the results of those that finished."""
    barrier = threading.Barrier(times)
    results = []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(func())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results


def committed():
    """Run the on_commit callbacks registered inside the block when it ends (as a real commit would)."""
    return TestCase.captureOnCommitCallbacks(execute=True)


class AlertSourceFactory(DjangoModelFactory):
    class Meta:
        model = models.AlertSource

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Source {n}")


class IncidentFactory(DjangoModelFactory):
    """A bare incident row (no escalation, no actions); use services.create_incident to test behaviour."""

    class Meta:
        model = models.Incident

    alert_source = factory.SubFactory(AlertSourceFactory)
    account = factory.SelfAttribute("alert_source.account")
    summary = factory.Sequence(lambda n: f"Disk full on db{n}")


class AlertActionFactory(DjangoModelFactory):
    class Meta:
        model = models.AlertAction

    alert_source = factory.SubFactory(AlertSourceFactory)
    name = factory.Sequence(lambda n: f"Action {n}")
    kind = models.AlertAction.Kind.WEBHOOK
    url = "https://hooks.example.invalid/hook"  # .invalid never resolves: no test reaches the internet


def make_policy(account, rules, *, repeat_count=0, name=None):
    """A policy with RULES = [(users, timeout_minutes), ...] or [(users, timeout, schedules), ...], in order."""
    policy = PolicyFactory(account=account, repeat_count=repeat_count, **({"name": name} if name else {}))
    for position, rule in enumerate(rules):
        users, timeout, *rest = rule
        RuleFactory(
            policy=policy,
            position=position,
            escalation_timeout_minutes=timeout,
            users=list(users),
            schedules=list(rest[0]) if rest else [],
        )
    return policy


def add_notification_rule(user, channel, *, delay=0, value=None):
    """Give USER a notification rule on CHANNEL (reusing or creating the matching contact method)."""
    kind = ContactMethod.Kind.EMAIL if channel == NotificationRule.Channel.EMAIL else ContactMethod.Kind.PHONE
    value = value or (user.email if kind == ContactMethod.Kind.EMAIL else user.primary_phone())
    method, _ = ContactMethod.objects.get_or_create(user=user, kind=kind, value=value)
    return NotificationRule.objects.create(user=user, channel=channel, contact_method=method, delay_minutes=delay)


class Worker:
    """Collects tasks enqueued by incidents.tasks and runs them on demand."""

    def __init__(self):
        self.queue = []
        self.history = []

    def push(self, func, *args):
        self.queue.append((func, args))

    def run(self, limit=200):
        """Run queued tasks (and those they enqueue) in order; returns [(func, args, result), ...]."""
        ran = []
        while self.queue:
            assert len(ran) < limit, "runaway task loop"
            func, args = self.queue.pop(0)
            with committed():
                result = import_string(func)(*args)
            ran.append((func, args, result))
        self.history += ran
        return ran

    def names(self):
        return [func.rsplit(".", 1)[-1] for func, _ in self.queue]


@pytest.fixture
def worker(monkeypatch):
    w = Worker()
    monkeypatch.setattr(tasks, "_async_task", w.push)
    return w
