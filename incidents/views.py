"""Webhooks of notification calls and the incident link. Thin: verify, parse, call one service, answer."""
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from . import notifications, services, voice
from .webhooks import vonage_webhook


@vonage_webhook(safe_ncco=voice.safe_ncco)
def voice_input(request, payload, token):
    """A key pressed in a notification call: 4 accepts, 6 resolves. Answers with the NCCO to play next."""
    dtmf = payload.get("dtmf")
    digits = dtmf.get("digits") if isinstance(dtmf, dict) else ""
    result = services.answer_notification_keypress(token, digits)
    ncco = voice.keypress_reply_ncco(result.notification, result, repeat=request.GET.get("repeat") == "1")
    return JsonResponse(ncco, safe=False)


@vonage_webhook
def voice_event(request, payload, token):
    """Status events of a notification call. Unknown tokens get 200 too, so Vonage stops retrying."""
    notifications.record_call_status(token, payload)
    return HttpResponse(status=204)


def incident_link(request, pk):
    """The link in SMS, email and alert actions; the incident's page is its admin page for now."""
    return redirect(reverse("admin:incidents_incident_change", args=[pk]))
