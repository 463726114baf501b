"""Metrics measured in the web processes (exposed at /metrics by callrouting.monitoring).

With several web processes (gunicorn -w N) set PROMETHEUS_MULTIPROC_DIR to an empty directory that every process
can write: prometheus_client then keeps each process's values in files there and /metrics adds them up.
"""
from prometheus_client import Histogram

# Vonage webhooks answer within a few hundred milliseconds or callers hear silence; the buckets resolve that range.
WEBHOOK_SECONDS = Histogram(
    "callrouting_webhook_duration_seconds",
    "Time to answer a Vonage webhook (signature check included), by kind (the view: answer, call_input, leg_event, ...).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=None,  # registered by callrouting.monitoring, into its own registry
)
