"""Simple mode stays in step with the settings: a saved number, routing option or custom recording recompiles the
number's flow (flows.actions.sync_simple_flow), whichever page, API call or admin action saved it."""
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import actions


def _number_of(instance):
    from ..models import RoutingNumber

    return instance if isinstance(instance, RoutingNumber) else instance.routing_number


@receiver(post_save, sender="callrouting.RoutingNumber", dispatch_uid="flows.number_saved")
@receiver(post_save, sender="callrouting.RoutingOption", dispatch_uid="flows.option_saved")
@receiver(post_save, sender="callrouting.NumberAudio", dispatch_uid="flows.audio_saved")
def settings_saved(sender, instance, raw=False, **kwargs):
    if raw:
        return
    actions.settings_changed(_number_of(instance))


@receiver(post_delete, sender="callrouting.RoutingOption", dispatch_uid="flows.option_deleted")
@receiver(post_delete, sender="callrouting.NumberAudio", dispatch_uid="flows.audio_deleted")
def settings_deleted(sender, instance, origin=None, **kwargs):
    if origin is not None and origin is not instance and not hasattr(origin, "model"):
        return  # deleted along with its number (or account): there is no flow left to change
    if origin is not None and hasattr(origin, "model") and origin.model is not sender:
        return
    from ..models import RoutingNumber

    try:
        number = RoutingNumber.objects.get(pk=instance.routing_number_id)
    except RoutingNumber.DoesNotExist:
        return
    actions.settings_changed(number)
