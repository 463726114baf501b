from django.apps import AppConfig


class CallRoutingConfig(AppConfig):
    name = "callrouting"
    verbose_name = "Call routing"
