"""Vonage webhooks of the live call flow. Each verifies the signature (vonage_webhook), calls one service
function and answers with an NCCO (or 204 for events). Per-call URLs also carry an unguessable token.

A refused or unreadable request on a URL that answers with an NCCO gets 200 and the spoken goodbye (Vonage
plays no body of a non-2xx answer); on an event URL 401 or 400 (see incidents.webhooks)."""
import logging
from functools import wraps

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import DatabaseError
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods, require_safe

from incidents.webhooks import vonage_webhook

from . import phrases, recordings, spool
from .calls import flow, lookup, webhooks
from .models import NumberAudio, RoutingNumber

log = logging.getLogger(__name__)
webhook_methods = require_http_methods(["GET", "POST"])


def goodbye_ncco(request=None):
    """What a caller hears when we cannot help them (an error, a refused or unreadable request)."""
    return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")


def answer_when_database_down(spool_as=None):
    """Decorate an NCCO-returning webhook view: when the database fails (DatabaseError), answer at once with
    HTTP 200 and a spoken apology in the number's language (when this process knows it), and with SPOOL_AS
    ("answer", "fallback") keep the payload in callrouting.spool so the call is recorded once the database is back.

    Why 200 and not 503: a 503 sends Vonage to retry the answer URL and then the fallback URL, which need the
    same database; the caller waits through up to four attempts (seconds each when the database hangs) in
    silence and may be dropped without a word. A 200 with a talk action is heard immediately, and the spool
    makes sure the on-call team still learns about the call.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, payload, *args, **kwargs):
            try:
                return view(request, payload, *args, **kwargs)
            except DatabaseError as exc:
                log.error("webhook database_down path=%s error=%s: %s", request.path, type(exc).__name__, exc)
                if spool_as:
                    spool.spool_call(spool_as, payload)
                language = lookup.known_language(payload.get("to"), payload.get("from"))
                return JsonResponse(flow.talk_ncco(language, "error_goodbye"), safe=False)

        return wrapper

    return decorator


def no_content():
    return HttpResponse(status=204)


@webhook_methods
@vonage_webhook(safe_ncco=goodbye_ncco)
@answer_when_database_down(spool_as="answer")
def answer(request, payload):
    return JsonResponse(webhooks.handle_answer(payload), safe=False)


@webhook_methods
@vonage_webhook(safe_ncco=goodbye_ncco)
@answer_when_database_down()
def call_input(request, payload, token):
    return JsonResponse(webhooks.handle_menu_input(token, payload, seq=request.GET.get("seq")), safe=False)


@webhook_methods
@vonage_webhook
def event(request, payload):
    webhooks.handle_call_event(payload)
    return no_content()


@webhook_methods
@vonage_webhook
def call_recording_started(request, payload, token):
    """The notify action right before the mailbox's record action. An empty answer lets the NCCO go on to the
    recording; a refusal would send Vonage to the fallback URL (which records the message all the same)."""
    try:
        webhooks.handle_recording_started(token, payload)
    except DatabaseError as exc:
        # The caller still gets to leave the message; its record webhook, once the database answers again,
        # turns the call into a voicemail (flow.on_recording).
        log.error("webhook database_down path=%s error=%s: %s", request.path, type(exc).__name__, exc)
    return no_content()


@webhook_methods
@vonage_webhook
def call_recording(request, payload, token):
    webhooks.handle_recording(token, payload)
    return no_content()


@webhook_methods
@vonage_webhook
def call_transcription(request, payload, token):
    webhooks.handle_transcription(token, payload)
    return no_content()


@webhook_methods
@vonage_webhook(on_error_event=lambda payload, token: webhooks.handle_leg_error(token, payload))
def leg_event(request, payload, token):
    webhooks.handle_leg_event(token, payload)
    return no_content()


@webhook_methods
@vonage_webhook(safe_ncco=goodbye_ncco)
@answer_when_database_down()
def leg_input(request, payload, token):
    return JsonResponse(webhooks.handle_leg_input(token, payload), safe=False)


@webhook_methods
@vonage_webhook(safe_ncco=goodbye_ncco)
@answer_when_database_down(spool_as="fallback")
def fallback(request, payload):
    try:
        ncco = webhooks.handle_fallback(payload)
    except DatabaseError:
        raise  # answer_when_database_down: the apology, and the call is kept for when the database is back
    except Exception:  # the last line of defence: whatever broke, the caller hears a message
        log.exception("fallback failed")
        ncco = goodbye_ncco()
    return JsonResponse(ncco, safe=False)


# --- Public media, addressed by unguessable tokens (no login: Vonage and alert-action readers fetch them) ------

AUDIO_CACHE = "public, max-age=86400, immutable"  # a new upload gets a new token, so a URL never changes content


def _file_response(field, content_type, cache_control, filename):
    try:
        handle = field.open("rb")
    except (FileNotFoundError, ValueError) as exc:
        raise Http404("no such file") from exc
    response = FileResponse(handle, content_type=content_type, as_attachment=False, filename=filename)
    response["Cache-Control"] = cache_control
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
def audio_file(request, token, ext):
    """A number's custom audio (greeting, hold music, mailbox greeting) for Vonage's stream and hold music."""
    audio = NumberAudio.objects.filter(token=token, format=ext).first()
    if audio is None or not audio.file:
        raise Http404("no such audio")
    return _file_response(audio.file, audio.content_type, AUDIO_CACHE, f"{audio.kind}.{audio.format}")


@require_safe
def voicemail_recording(request, signed):
    """A stored voicemail recording, linked from alert action payloads by a signed link that expires
    (callrouting.recordings); in the product it plays through the account-checked call pages."""
    voicemail, problem = recordings.voicemail_for_link(signed)
    if problem == "expired":
        return HttpResponse("This voicemail link has expired. Open the incident to play the recording.",
                            status=410, content_type="text/plain; charset=utf-8")
    if voicemail is None or not voicemail.is_stored:
        raise Http404("no such voicemail")
    return _file_response(voicemail.recording, "audio/mpeg", "private, max-age=3600", f"voicemail-{voicemail.call_id}.mp3")


@require_safe
def favicon(request):
    """The icon the pages link (static/img/favicon.ico), also at /favicon.ico where browsers look unasked."""
    response = FileResponse(open(finders.find("img/favicon.ico"), "rb"), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


# What the benchmark's floor answers: a fixed NCCO (a greeting and a one-key input back to the floor, then goodbye).
FLOOR_GOODBYE = [{"action": "talk", "text": "Goodbye.", "language": phrases.DEFAULT_LANGUAGE}]


@webhook_methods
@vonage_webhook(safe_ncco=goodbye_ncco)
def benchmark_floor(request, payload):
    """The benchmark's floor (settings.BENCHMARK_FLOOR_WEBHOOK, else 404): a signed webhook that makes one indexed
    query and answers with a fixed NCCO, measured beside the answer and menu webhooks under the same load."""
    if not settings.BENCHMARK_FLOOR_WEBHOOK:
        raise Http404()
    RoutingNumber.objects.filter(phone_number="+" + str(payload.get("to") or "").lstrip("+")).values_list(
        "language", flat=True).first()
    if request.method == "POST":
        return JsonResponse(FLOOR_GOODBYE, safe=False)
    url = settings.PUBLIC_BASE_URL + request.path
    return JsonResponse([{"action": "talk", "text": "Floor.", "language": phrases.DEFAULT_LANGUAGE, "bargeIn": True},
                         {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1, "timeOut": 5},
                          "eventUrl": [url]}], safe=False)
