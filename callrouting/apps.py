from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CallRoutingConfig(AppConfig):
    name = "callrouting"
    verbose_name = "Call routing"

    def ready(self):
        from . import log_privacy

        log_privacy.install()
        # Support-staff admin extras, registered over callrouting/admin.py once the admin has autodiscovered it.
        from . import admin_support  # noqa: F401
        from incidents.actions import register_payload_extension

        from .payload import call_payload

        # Alert actions of a number's incidents carry the call's details under "extra" -> "call".
        register_payload_extension(call_payload)
        # Simple mode: saved settings recompile the number's flow.
        from .flows import signals  # noqa: F401
        post_migrate.connect(ensure_sweep_schedule, sender=self, dispatch_uid="callrouting.ensure_sweep_schedule")


def ensure_sweep_schedule(using="default", **kwargs):
    """Schedule callrouting.tasks.sweep every minute (idempotent: runs after every migrate)."""
    from incidents.apps import ensure_every_minute

    from .tasks import SWEEP_FUNC

    ensure_every_minute(SWEEP_FUNC, "Call routing: stuck calls, voicemail deadlines and auto raise", using=using)
