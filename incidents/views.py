"""Webhooks of notification calls and the incident link. Thin: verify, parse, call one service, answer."""
import logging

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse

from . import notifications, services, voice
from .webhooks import vonage_webhook

log = logging.getLogger(__name__)

# The settings-page view of one incident (callrouting/web/urls.py), for account users.
ACCOUNT_INCIDENT_URL = "web:incident"


@vonage_webhook(safe_ncco=voice.safe_ncco)
def voice_input(request, payload, token):
    """A key pressed in a notification call: 4 accepts, 6 resolves. Answers with the NCCO to play next."""
    dtmf = payload.get("dtmf")
    digits = dtmf.get("digits") if isinstance(dtmf, dict) else ""
    result = services.answer_notification_keypress(token, digits)
    ncco = voice.keypress_reply_ncco(result.notification, result, repeat=request.GET.get("repeat") == "1")
    return JsonResponse(ncco, safe=False)


@vonage_webhook(on_error_event=lambda payload, token: notifications.record_call_error(token, payload))
def voice_event(request, payload, token):
    """Status events of a notification call (an error event fails the attempt). Unknown tokens get 204 too, so
    Vonage stops retrying."""
    notifications.record_call_status(token, payload)
    return HttpResponse(status=204)


@vonage_webhook
def test_call_event(request, payload):
    """Status events of a test call (the People page's "Send a test call"): logged, nothing to change."""
    log.info("test_call uuid=%s status=%s", payload.get("uuid"), payload.get("status"))
    return HttpResponse(status=204)


def incident_link(request, pk):
    """The link in SMS, email and alert actions: a redirect to the incident's page for whoever opens it.

    Support staff (no account) get the admin page; account users the settings-page incident view, which checks the
    incident is their account's; anonymous visitors sign in first and come back here.
    """
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    admin_url = reverse("admin:incidents_incident_change", args=[pk])
    if user.account_id is None and user.is_staff:
        return redirect(admin_url)
    # By URL name only: incidents must not import callrouting, which serves the settings pages.
    try:
        return redirect(reverse(ACCOUNT_INCIDENT_URL, args=[pk]))
    except NoReverseMatch:
        return redirect(admin_url)
