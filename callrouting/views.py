"""Vonage webhooks of the live call flow. Each verifies the signature (vonage_webhook), calls one service
function and answers with an NCCO (or 204 for events). Per-call URLs also carry an unguessable token."""
import logging
from functools import wraps

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from incidents.webhooks import MalformedWebhook, vonage_webhook

from . import flow, phrases, services

log = logging.getLogger(__name__)
webhook_methods = require_http_methods(["GET", "POST"])


def goodbye_ncco(request=None):
    """What a caller hears when we cannot help them (an error, a refused or unreadable request)."""
    return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")


def refuse_malformed(view):
    """Answer a payload the view cannot use (MalformedWebhook) with 400 and the safe NCCO."""

    @wraps(view)
    def wrapper(request, payload, *args, **kwargs):
        try:
            return view(request, payload, *args, **kwargs)
        except MalformedWebhook as exc:
            log.warning("webhook refused path=%s status=400 reason=%s", request.path, exc)
            return JsonResponse(goodbye_ncco(), status=400, safe=False)

    return wrapper


def no_content():
    return HttpResponse(status=204)


@webhook_methods
@vonage_webhook(safe_ncco=goodbye_ncco)
@refuse_malformed
def answer(request, payload):
    return JsonResponse(services.handle_answer(payload), safe=False)


@webhook_methods
@vonage_webhook(safe_ncco=goodbye_ncco)
@refuse_malformed
def call_input(request, payload, token):
    return JsonResponse(services.handle_menu_input(token, payload), safe=False)


@webhook_methods
@vonage_webhook
@refuse_malformed
def event(request, payload):
    services.handle_call_event(payload)
    return no_content()


@webhook_methods
@vonage_webhook
@refuse_malformed
def call_recording(request, payload, token):
    services.handle_recording(token, payload)
    return no_content()


@webhook_methods
@vonage_webhook
@refuse_malformed
def call_transcription(request, payload, token):
    services.handle_transcription(token, payload)
    return no_content()


@webhook_methods
@vonage_webhook
@refuse_malformed
def leg_event(request, payload, token):
    services.handle_leg_event(token, payload)
    return no_content()


@webhook_methods
@vonage_webhook(safe_ncco=goodbye_ncco)
@refuse_malformed
def leg_input(request, payload, token):
    return JsonResponse(services.handle_leg_input(token, payload), safe=False)


@webhook_methods
@vonage_webhook(safe_ncco=goodbye_ncco)
def fallback(request, payload):
    try:
        ncco = services.handle_fallback(payload)
    except Exception:  # the last line of defence: whatever broke, the caller hears a message
        log.exception("fallback failed")
        ncco = goodbye_ncco()
    return JsonResponse(ncco, safe=False)
