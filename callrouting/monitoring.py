"""What an operator watches: /healthz (no login) and /metrics (Prometheus, behind METRICS_TOKEN).

/healthz runs django-health-check's checks: the database, the django-q2 task broker and the worker's heartbeat
(the minute sweeper writes WorkerHeartbeat "sweeper" each time it runs). Any failing check answers 503. Nothing
in the answer names a host, a password or a URL.

/metrics computes its database gauges when it is scraped, in a fixed number of queries (one per family), and adds
the webhook latency histograms measured in the web processes (incidents.metrics).
"""
import datetime as dt
import hmac
import os

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Count, Min
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from incidents.metrics import WEBHOOK_SECONDS
from incidents.models import AlertActionDelivery, Notification, WorkerHeartbeat

from .models import AgentLeg, Call

# The sweeper runs every minute: three missed minutes mean the worker (or its scheduler) is gone.
HEARTBEAT_MAX_AGE = dt.timedelta(minutes=3)
HEARTBEAT = "sweeper"


# --- /healthz -----------------------------------------------------------------------------------------------------


class TaskBroker(HealthCheck):
    """The django-q2 broker answers: Redis answers a ping, the database broker counts its queue."""

    async def run(self):
        from django_q.conf import Conf

        # The database broker queries in the request's thread (its connection is closed with the request); Redis
        # in a worker thread, so that a hung Redis cannot hold the request's thread.
        try:
            await sync_to_async(self._ask, thread_sensitive=bool(Conf.ORM))()
        except Exception as exc:  # redis.ConnectionError, a database error: the message may name a host
            raise ServiceUnavailable(f"the task broker does not answer ({type(exc).__name__})") from exc

    @staticmethod
    def _ask():
        from incidents.tasks import broker

        queue = broker()
        queue.ping()
        queue.queue_size()

    def __repr__(self):
        return "TaskBroker"


class WorkerHeartbeatCheck(HealthCheck):
    """The worker ran the minute sweeper within HEARTBEAT_MAX_AGE."""

    async def run(self):
        at = await WorkerHeartbeat.objects.filter(name=HEARTBEAT).values_list("at", flat=True).afirst()
        if at is None:
            raise ServiceUnavailable("the worker has not run the sweeper yet")
        age = timezone.now() - at
        if age > HEARTBEAT_MAX_AGE:
            raise ServiceUnavailable(f"the worker's last heartbeat is {int(age.total_seconds())} s old")

    def __repr__(self):
        return "WorkerHeartbeat"


class HealthView(HealthCheckView):
    """JSON unless the client asks for HTML (a browser) or another format (?format=text|openmetrics)."""

    checks = [Database, TaskBroker, WorkerHeartbeatCheck]

    async def get(self, request, *args, **kwargs):
        if "format" not in request.GET and "text/html" not in request.headers.get("accept", ""):
            request.GET = request.GET.copy()
            request.GET["format"] = "json"
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:  # django-health-check's "unhealthy"; load balancers expect 503
            response.status_code = 503
        return response


healthz = HealthView.as_view()


# --- /metrics -----------------------------------------------------------------------------------------------------


def _oldest_queued_task_age(now):
    """Seconds the oldest task has waited in the django-q2 broker (0 when the queue is empty)."""
    from django_q.brokers.orm import ORM
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from incidents.tasks import broker

    queue = broker()
    if isinstance(queue, ORM):
        row = OrmQ.objects.filter(key=queue.list_key, lock__lte=now).order_by("id").first()
        task = row.task if row else None
    else:  # Redis: rpush adds on the right, workers pop on the left
        payload = queue.connection.lindex(queue.list_key, 0)
        task = SignedPackage.loads(payload) if payload else None
    if not task or not task.get("started"):
        return 0.0
    return max(0.0, (now - task["started"]).total_seconds())


class DatabaseCollector:
    """Gauges read at scrape time in a fixed number of requests, whatever the data: seven database queries with
    the database broker; six and one Redis request with Redis."""

    def collect(self):
        now = timezone.now()
        calls = GaugeMetricFamily("callrouting_calls_in_progress", "Calls not ended yet, by state.", labels=["state"])
        live = dict(Call.objects.exclude(state=Call.State.ENDED).values_list("state").annotate(n=Count("id")))
        for state in Call.State.values:
            if state != Call.State.ENDED:
                calls.add_metric([state], live.get(state, 0))
        yield calls

        yield self._by_status(
            GaugeMetricFamily("callrouting_agent_legs", "Agent legs by status (their outcome once ended).", labels=["status"]),
            AgentLeg, AgentLeg.Status.values,
        )
        yield self._by_status(
            GaugeMetricFamily("callrouting_notifications", "Notifications to responders, by state.", labels=["status"]),
            Notification, Notification.Status.values,
        )
        yield self._by_status(
            GaugeMetricFamily("callrouting_alert_action_deliveries", "Alert action deliveries, by state.", labels=["status"]),
            AlertActionDelivery, AlertActionDelivery.Status.values,
        )

        oldest = Notification.objects.filter(status=Notification.Status.PENDING, due_at__lte=now).aggregate(at=Min("due_at"))["at"]
        yield GaugeMetricFamily(
            "callrouting_oldest_due_notification_age_seconds", "How long the oldest due, unsent notification has waited.",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "callrouting_oldest_queued_task_age_seconds", "How long the oldest task has waited in the task broker.",
            value=_oldest_queued_task_age(now),
        )
        beat = WorkerHeartbeat.objects.filter(name=HEARTBEAT).values_list("at", flat=True).first()
        yield GaugeMetricFamily(
            "callrouting_worker_heartbeat_age_seconds", "Seconds since the worker last ran the minute sweeper "
            "(-1: never).", value=(now - beat).total_seconds() if beat else -1.0,
        )

    @staticmethod
    def _by_status(family, model, statuses):
        counts = dict(model.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in statuses:
            family.add_metric([status], counts.get(status, 0))
        return family


def _registry():
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # the webhook histograms of every web process
    else:
        registry.register(WEBHOOK_SECONDS)
    registry.register(DatabaseCollector())
    return registry


REGISTRY = _registry()


def metrics(request):
    """The Prometheus text format, for "Authorization: Bearer <METRICS_TOKEN>" only (404 without a token set)."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: set METRICS_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponseForbidden("wrong or missing metrics token", content_type="text/plain; charset=utf-8")
    # The Prometheus text format (0.0.4), or OpenMetrics when the scraper asks for it.
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(REGISTRY), content_type=content_type)

