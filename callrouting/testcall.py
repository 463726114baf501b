"""The Test call page: call a routing number through the local phone network and play caller and agents.

The browser talks only to these views; they proxy to the phone network's control API (callrouting/emulator), so
the control token never reaches the browser. Scoping: a user may act only on the test calls placed to a routing
number of their account (PlacedTestCall, so any admin of the account can resume or hang up a call another tab
left running), and on the agent legs the product dialled for those calls. Account admins only.

URLs (included under /test-call/ by callrouting/urls.py):
  GET  ""                         the page
  POST "call/"                    {number, flow: "published"|"draft"} -> {"call": uuid, "caller": caller id}
                                  (a call to the draft runs a snapshot of it: flows.draft_calls)
  GET  "calls/"                   the account's test calls still in progress
  POST "calls/<uuid>/hangup/"     hang up every leg of a test call (the caller and the agents)
  GET  "state/?call=<uuid>"       the legs (transcripts, what each waits for), the call log and the incident timeline
  POST "legs/<uuid>/<action>/"    dtmf, say, hangup, voicemail (caller); accept, decline, answer, reject, busy,
                                  no_answer, machine, hangup (agents)
"""
import base64
import datetime as dt
import logging
import os

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from callrouting.emulator.script import DEFAULT_CALLER_ID, EmulatorClient, EmulatorError
from callrouting.web.access import account_view

from .flows import actions as flow_actions, draft_calls
from .models import AgentLeg, Call, PlacedTestCall, RoutingNumber

log = logging.getLogger(__name__)

app_name = "testcall"
# The live calls list looks this far back; a test call rarely lasts minutes, the local phone network keeps the
# last 2,000 ended legs, and a network that restarted has forgotten older calls anyway.
LIVE_CALLS_WINDOW = dt.timedelta(hours=12)
MAX_LIVE_CALLS = 20
# The agent's answers to the product's accept prompt (flow.agent_whisper_ncco): 1 accepts, 2 declines.
ACCEPT_KEY, DECLINE_KEY = "1", "2"
MAX_AUDIO_BYTES = 4 * 1024 * 1024


def emulator_client():
    """A client of the local phone network's control API, or None when the product talks to the real Vonage."""
    if not settings.EMULATOR_URL or not settings.EMULATOR_TOKEN:
        return None
    verify = settings.EMULATOR_CA or os.environ.get("REQUESTS_CA_BUNDLE") or True
    return EmulatorClient(settings.EMULATOR_URL, settings.EMULATOR_TOKEN, verify=verify, timeout=5)


def admin_view(view):
    @account_view
    def wrapper(request, *args, **kwargs):
        if not request.user.is_account_admin:
            raise PermissionDenied("Only the account's owner and admins place test calls.")
        return view(request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _unavailable():
    return JsonResponse(
        {"error": "The Test call needs the local phone network: run `make run` without Vonage credentials."}, status=503
    )


def _emulator_failed(exc):
    log.warning("testcall action=emulator_error error=%s", exc)
    return JsonResponse({"error": f"The local phone network refused: {exc}"}, status=502)


@require_GET
@admin_view
def page(request):
    numbers = RoutingNumber.objects.filter(account=request.account).order_by("name")
    # The flow editor links here with ?number=<id>&flow=draft.
    return render(
        request,
        "callrouting/test_call.html",
        {"numbers": numbers, "available": emulator_client() is not None, "caller_id": DEFAULT_CALLER_ID,
         "chosen_number": request.GET.get("number", ""), "chosen_flow": "draft" if request.GET.get("flow") == "draft" else "published"},
    )


@require_POST
@admin_view
def place_call(request):
    client = emulator_client()
    if client is None:
        return _unavailable()
    number = RoutingNumber.objects.filter(account=request.account, pk=request.POST.get("number") or 0).first()
    if number is None:
        raise Http404("No such routing number in your account.")
    caller = DEFAULT_CALLER_ID
    if request.POST.get("flow") == "draft":
        try:
            version = flow_actions.snapshot_for_test_call(flow_actions.flow_of(number), request.user)
        except flow_actions.InvalidFlow as exc:
            count = len(exc.errors)
            return JsonResponse({"error": f"The draft has {count} problem{'s' if count != 1 else ''}: fix "
                                          f"{'them' if count != 1 else 'it'} in the flow editor first."}, status=400)
        caller = draft_calls.caller_id(version)
    try:
        leg = client.place_call(to=number.phone_number, from_=caller)
    except EmulatorError as exc:
        return _emulator_failed(exc)
    PlacedTestCall.objects.create(
        account=request.account, routing_number=number, placed_by=request.user, vonage_uuid=leg["uuid"]
    )
    log.info("testcall action=call number=%s uuid=%s user=%s caller=%s", number.phone_number, leg["uuid"],
             request.user.pk, caller)
    return JsonResponse({"call": leg["uuid"], "caller": caller}, status=201)


def _scope(request, call_uuid):
    """{leg uuid: AgentLeg or None (the caller)} of a test call placed to a number of the user's account."""
    if not call_uuid or not PlacedTestCall.objects.filter(account=request.account, vonage_uuid=call_uuid).exists():
        raise Http404("No such test call.")
    legs = AgentLeg.objects.filter(
        call__vonage_uuid=call_uuid, call__account=request.account, vonage_uuid__isnull=False
    ).select_related("user")
    return {call_uuid: None, **{leg.vonage_uuid: leg for leg in legs}}


def _time(moment):
    return timezone.localtime(moment).strftime("%H:%M:%S") if moment else ""


def _call_log(call):
    if call is None:
        return None
    legs = [
        {
            "name": str(leg.user) if leg.user_id else leg.phone_number,
            "phone": leg.phone_number,
            "status": leg.status,
            "status_label": leg.get_status_display(),
            "detail": leg.detail,
        }
        for leg in call.legs.select_related("user").order_by("position")
    ]
    voicemail = call.voicemail if hasattr(call, "voicemail") else None  # hasattr: the reverse one-to-one may be missing
    return {
        "id": call.pk,
        "url": _reverse_or_empty("web:call", call_pk=call.pk),
        "state": call.state,
        "state_label": call.get_state_display(),
        "outcome": call.outcome,
        "outcome_label": call.get_outcome_display() if call.outcome else "",
        "option": f"{call.option.digit} {call.option.label}" if call.option_id else "",
        "legs": legs,
        "voicemail": {"transcript": voicemail.transcript, "duration": voicemail.duration} if voicemail else None,
    }


def _incident(call):
    if call is None or call.incident_id is None:
        return None
    incident = call.incident
    return {
        "id": incident.pk,
        "url": _reverse_or_empty("web:incident", incident_pk=incident.pk),
        "summary": incident.summary,
        "status": incident.status,
        "status_label": incident.get_status_display(),
        "timeline": [
            {"time": _time(event.at), "kind": event.kind, "kind_label": event.get_kind_display(), "message": event.message}
            for event in incident.events.order_by("at", "pk")
        ],
    }


def _reverse_or_empty(name, **kwargs):
    try:
        return reverse(name, kwargs=kwargs)
    except Exception:  # the page of another app may not exist in this installation
        return ""


@require_GET
@admin_view
def state(request):
    call_uuid = request.GET.get("call", "")
    scope = _scope(request, call_uuid)
    client = emulator_client()
    if client is None:
        return _unavailable()
    try:
        legs = client.state(uuids=list(scope))["legs"]
    except EmulatorError as exc:
        return _emulator_failed(exc)
    for leg in legs:
        agent = scope.get(leg["uuid"])
        leg["role"] = "caller" if agent is None else "agent"
        leg["name"] = "You (caller)" if agent is None else (str(agent.user) if agent.user_id else agent.phone_number)
    legs.sort(key=lambda leg: (leg["role"] != "caller", leg["created_at"]))
    call = (
        Call.objects.select_related("option", "incident", "voicemail")
        .filter(vonage_uuid=call_uuid, account=request.account)
        .first()
    )
    return JsonResponse({"call": call_uuid, "legs": legs, "call_log": _call_log(call), "incident": _incident(call)})


@require_GET
@admin_view
def live_calls(request):
    """The account's test calls in progress (any leg still live), newest first."""
    client = emulator_client()
    if client is None:
        return _unavailable()
    placed = list(
        PlacedTestCall.objects.filter(account=request.account, placed_at__gte=timezone.now() - LIVE_CALLS_WINDOW)
        .select_related("routing_number", "placed_by")[:MAX_LIVE_CALLS]
    )
    agent_legs = {}
    for leg in AgentLeg.objects.filter(
        call__vonage_uuid__in=[test.vonage_uuid for test in placed], call__account=request.account,
        vonage_uuid__isnull=False,
    ).select_related("call"):
        agent_legs.setdefault(leg.call.vonage_uuid, []).append(leg.vonage_uuid)
    uuids = [test.vonage_uuid for test in placed] + [uuid for legs in agent_legs.values() for uuid in legs]
    try:
        legs = {leg["uuid"]: leg for leg in client.state(uuids=uuids)["legs"]} if uuids else {}
    except EmulatorError as exc:
        return _emulator_failed(exc)
    calls = []
    for test in placed:
        caller = legs.get(test.vonage_uuid)
        own = [legs[uuid] for uuid in agent_legs.get(test.vonage_uuid, []) if uuid in legs]
        if caller is None or all(leg["state"] == "ended" for leg in [caller, *own]):
            continue
        calls.append({
            "call": test.vonage_uuid,
            "number": f"{test.routing_number.name} ({test.routing_number.phone_number})",
            "placed_by": str(test.placed_by) if test.placed_by_id else "",
            "placed_at": _time(test.placed_at),
            "state": caller["state"],
            "agents": sum(1 for leg in own if leg["state"] != "ended"),
        })
    return JsonResponse({"calls": calls})


@require_POST
@admin_view
def hang_up_call(request, uuid):
    """Hang up every live leg of a test call: the caller first (the product then cancels its agents), then any
    agent leg still up."""
    scope = _scope(request, uuid)
    client = emulator_client()
    if client is None:
        return _unavailable()
    try:
        live = [leg["uuid"] for leg in client.state(uuids=list(scope))["legs"] if leg["state"] != "ended"]
        for leg_uuid in sorted(live, key=lambda leg_uuid: leg_uuid != uuid):
            try:
                client.act(leg_uuid, "hangup")
            except EmulatorError as exc:
                if "HTTP 409" not in str(exc):  # ended meanwhile
                    raise
    except EmulatorError as exc:
        return _emulator_failed(exc)
    log.info("testcall action=hangup_call uuid=%s legs=%d user=%s", uuid, len(live), request.user.pk)
    return JsonResponse({"ok": True, "legs": len(live)})


@require_POST
@admin_view
def leg_action(request, uuid, action):
    call_uuid = request.POST.get("call", "")
    scope = _scope(request, call_uuid)
    if uuid not in scope:
        raise Http404("No such leg in this test call.")
    client = emulator_client()
    if client is None:
        return _unavailable()
    role = "caller" if scope[uuid] is None else "agent"
    try:
        leg = client.leg(uuid)
        request_args = _translate(role, action, leg, request)
        if request_args is None:
            return JsonResponse({"error": f"{action} is not possible now"}, status=409)
        result = client.act(uuid, request_args[0], **request_args[1])
    except EmulatorError as exc:
        return _emulator_failed(exc)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    log.info("testcall action=%s role=%s uuid=%s", action, role, uuid)
    return JsonResponse({"ok": True, "status": result.get("status")})


def _translate(role, action, leg, request):
    """(emulator action, body) for the page's ACTION on LEG, or None when it makes no sense now."""
    ringing = leg["state"] == "ringing"
    if action == "hangup":
        return "hangup", {}
    if role == "caller":
        if action == "dtmf":
            digits = request.POST.get("digits", "")
            if not digits or any(ch not in "0123456789*#" for ch in digits) or len(digits) > 20:
                raise ValueError("keys must be 0-9, * or #")
            return "dtmf", {"digits": digits}
        if action == "say":
            text = " ".join(request.POST.get("text", "").split())[:300]
            if not text:
                raise ValueError("type what to say")
            return "say", {"text": text}
        if action == "voicemail":
            body = {"text": " ".join(request.POST.get("text", "").split())[:2000]}
            audio = request.FILES.get("audio")
            if audio is not None:
                if audio.size > MAX_AUDIO_BYTES:
                    raise ValueError("the recording is too long")
                body["audio_base64"] = base64.b64encode(audio.read()).decode()
                body["content_type"] = (audio.content_type or "audio/webm")[:100]
            if not body["text"] and "audio_base64" not in body:
                raise ValueError("type a message or record one")
            return "voicemail", body
        return None
    if action == "accept":
        return ("answer", {"then_press": ACCEPT_KEY}) if ringing else ("dtmf", {"digits": ACCEPT_KEY})
    if action == "decline":
        return ("reject", {}) if ringing else ("dtmf", {"digits": DECLINE_KEY})
    if action == "answer" and ringing:
        return "answer", {}
    if action in ("reject", "busy", "machine") and ringing:
        return action, {}
    if action == "no_answer" and ringing:
        return "unanswered", {}
    if action == "dtmf":
        digits = request.POST.get("digits", "")
        if len(digits) == 1 and digits in "0123456789*#":
            return "dtmf", {"digits": digits}
    return None


urlpatterns = [
    path("", page, name="page"),
    path("call/", place_call, name="call"),
    path("calls/", live_calls, name="calls"),
    path("calls/<str:uuid>/hangup/", hang_up_call, name="hang-up-call"),
    path("state/", state, name="state"),
    path("legs/<str:uuid>/<str:action>/", leg_action, name="leg-action"),
]
