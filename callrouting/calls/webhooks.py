"""The webhook entry points of the live call (called by callrouting.views): each reads the call, asks the
state machine (callrouting.calls.flow) what happens next, and applies its effects through the verbs of this package.
Nothing here calls Vonage."""
import json
import logging
import re
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.db.models import F, prefetch_related_objects
from django.urls import reverse
from django.utils import timezone

from incidents.telephony import get_telephony
from incidents.voice import notification_fallback_ncco
from incidents.webhooks import MalformedWebhook

from . import dispatch, flow, journal, lookup, steps
from .caller import caller_transferred, end_call, route_call
from .legs import adopt_leg_call, call_about, connect_agent_leg, hang_up_legs, set_leg_status
from .transcripts import transcript_text
from .voicemail import attach_transcript, begin_voicemail_recording, record_voicemail, start_voicemail, voicemail_for
from .. import phrases
from ..flows import engine
from ..flows.cache import load_version
from ..models import AgentLeg, Call, CallTarget, Voicemail

log = logging.getLogger(__name__)

S = Call.State
L = AgentLeg.Status


CALLER_GONE_STATUSES = {"completed", "disconnected", "failed", "rejected", "cancelled", "timeout", "busy", "unanswered"}
TOKEN_IN_URL = re.compile(r"/vonage/(call|leg)/([A-Za-z0-9_-]{16,64})/")
NOTIFICATION_INPUT_URL = re.compile(r"/incidents/voice/([A-Za-z0-9_-]{16,64})/input")
FLATTENED_ORIGINAL_REQUEST = re.compile(r"original_request(?:\.(\w+)|\[(\w+)\])")


def _apply(call, step, *, number, options=()):
    """Carry out STEP's effects for the caller's CALL; return the NCCO to answer with."""
    for effect in step.effects:
        if isinstance(effect, flow.Route):
            option = next(o for o in options if o.pk == effect.option_id)
            route_call(call, option, effect.how, number=number)
        elif isinstance(effect, flow.StartVoicemail):
            option = next((o for o in options if o.pk == effect.option_id), None)
            start_voicemail(call, option, effect.how, number=number)
        elif isinstance(effect, flow.CountTry):
            Call.objects.filter(pk=call.pk, state=S.MENU).update(tries=F("tries") + 1)
            journal.log_decision(call, "menu_repeat", tries=call.tries + 1)
        elif isinstance(effect, flow.EndCall):
            end_call(call, effect.outcome, cancel_legs=effect.cancel_legs, escalate=effect.escalate, resolve=effect.resolve)
    return step.ncco


def _create_call(**fields):
    """(call, True) for a new call; (the stored call, False) when Vonage repeats the answer webhook. Inserting
    first spares the lookup that get_or_create makes for every call, new or not."""
    try:
        with transaction.atomic():
            return Call.objects.create(**fields), True
    except IntegrityError:
        return Call.objects.get(vonage_uuid=fields["vonage_uuid"]), False


def handle_answer(payload):
    """The answer webhook: the NCCO for a new inbound call (never an error for an unknown number).

    A number with a published flow runs it (_flow_answer); one without (its flow not compiled yet) runs the
    state machine of its settings."""
    uuid = payload.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise MalformedWebhook("answer webhook without a uuid")
    number = lookup.find_number(payload.get("to"))
    if number is None:
        log.info("call=%s action=unknown_number to=%s", uuid, payload.get("to"))
        return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "unknown_number")
    version_id = steps.published_version_id(number)
    if version_id is not None:
        return _flow_answer(payload, uuid, number, version_id)
    prefetch_related_objects([number], "audio_files")
    options = lookup.options_of(number)
    target = number.target_at(timezone.now())
    call, created = _create_call(
        vonage_uuid=uuid[:64],
        account_id=number.account_id,
        routing_number=number,
        caller=lookup.caller_number(payload.get("from")),
        called_number=number.phone_number,
        conversation_uuid=str(payload.get("conversation_uuid") or "")[:64],
        region_url=_region_url(payload),
        target=target.kind,
        calling_style=target.calling,
        in_support_hours=target.in_support_hours,
    )
    call.routing_number = number
    if not created:  # a repeated answer webhook: what was decided for the call counts (see flow.on_answer)
        target = CallTarget(call.target, None, call.calling_style, call.in_support_hours)
    journal.log_decision(call, "answer" if created else "answer_again", number=number.phone_number, options=len(options),
                         target=target.kind, hours={None: "none", True: "in", False: "out"}[target.in_support_hours])
    return _apply(call, flow.on_answer(number, options, call, target), number=number, options=options)


def _flow_answer(payload, uuid, number, version_id):
    """A new call on NUMBER's published flow VERSION_ID: the engine decides from the start node, and the call is
    inserted with where it is in one query (the number with its flow, the version once per process, the insert:
    at most three for a flow that starts with messages and a menu). A repeated answer webhook hears where the
    stored call is, on the version it started on."""
    doc = load_version(version_id).data
    call = Call(
        vonage_uuid=uuid[:64], account_id=number.account_id, routing_number=number,
        caller=lookup.caller_number(payload.get("from")), called_number=number.phone_number,
        conversation_uuid=str(payload.get("conversation_uuid") or "")[:64], region_url=_region_url(payload),
        flow_version_id=version_id,
    )
    step = engine.start(doc, steps.context(call, number))
    call.node, call.node_state, call.in_support_hours = step.state.node, step.state.as_json(), steps.hours_of(step)
    try:
        with transaction.atomic():
            call.save(force_insert=True)
    except IntegrityError:
        call = Call.objects.get(vonage_uuid=call.vonage_uuid)
        call.routing_number = number
        journal.log_decision(call, "answer_again", number=number.phone_number, node=call.node)
        return steps.current_ncco(call, number)
    journal.log_decision(call, "answer", number=number.phone_number, version=version_id, node=call.node)
    if step.effects:
        with transaction.atomic():
            # Serialised with the caller's hang-up event, which may already be on its way.
            call = Call.objects.select_for_update(of=("self",)).get(pk=call.pk)
            call.routing_number = number
            steps.apply(call, number, step)
    return step.ncco


def _region_url(payload):
    """The answer webhook's region_url when it names a host the call may be modified on, else ""."""
    url = payload.get("region_url")
    if not isinstance(url, str) or len(url) > Call._meta.get_field("region_url").max_length:
        return ""
    return url if get_telephony().region_host(url) else ""


def _call_by_token(token):
    return (
        Call.objects.select_related("routing_number__alert_source")
        .prefetch_related("routing_number__audio_files")
        .filter(token=token)
        .first()
    )


def _speech_texts(payload):
    speech = payload.get("speech")
    results = speech.get("results") if isinstance(speech, dict) else None
    texts = []
    for result in results if isinstance(results, list) else []:
        if isinstance(result, dict) and isinstance(result.get("text"), str):
            texts.append(result["text"])
    return texts


def _dtmf(payload):
    dtmf = payload.get("dtmf")
    if isinstance(dtmf, dict):
        return str(dtmf.get("digits") or ""), bool(dtmf.get("timed_out"))
    return "", False


def handle_menu_input(token, payload, seq=None):
    """The caller's input webhook (a key, speech or a PIN) at a menu or PIN node: the next NCCO. SEQ (from the
    input URL) names the prompt the input answers."""
    with transaction.atomic():
        # Locked at once: an input at a flow's node is decided under the call's row lock.
        call = (Call.objects.select_for_update(of=("self",)).select_related("routing_number__alert_source", "routing_number__flow")
                .filter(token=token).first())
        if call is not None and call.flow_version_id:
            return _flow_input(call, payload, seq)
    if call is None:
        log.info("action=input_unknown_call")
        return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")
    prefetch_related_objects([call.routing_number], "audio_files")
    number = call.routing_number
    options = lookup.options_of(number)
    digits, _ = _dtmf(payload)
    speech = _speech_texts(payload)
    step = flow.on_menu_input(number, options, call, digits=digits, speech_texts=speech)
    return _apply(call, step, number=number, options=options)


def _prompt_seq(seq):
    """The prompt number of an input URL; None for a URL without one, -1 (stale) for one that is not a number."""
    if seq is None or seq == "":
        return None
    return int(seq) if str(seq).isdigit() and len(str(seq)) < 10 else -1


def _flow_input(call, payload, seq):
    """An input at a menu or PIN node of CALL's flow (the version the call started on); the Call row is locked."""
    digits, _ = _dtmf(payload)
    speech = _speech_texts(payload)
    number = call.routing_number
    doc, state = steps.document(call), steps.state_of(call)
    ctx = steps.context(call, number)
    step = engine.on_input(doc, state, ctx, digits, speech, seq=_prompt_seq(seq))
    journal.log_decision(call, "input", node=state.node, key=digits[:1] or "none", speech=len(speech), moved=step.changed)
    if step.changed:
        steps.save_position(call, step)
        steps.apply(call, number, step)
    return step.ncco or engine.current_ncco(doc, step.state, ctx)


def handle_call_event(payload):
    """The application event webhook: only the end of a caller's leg matters."""
    uuid = payload.get("uuid") or payload.get("call_uuid")
    status = payload.get("status")
    if not isinstance(status, str) or not isinstance(uuid, str):
        raise MalformedWebhook("event webhook without status and uuid")
    if status not in CALLER_GONE_STATUSES:
        return
    with transaction.atomic():
        call = Call.objects.select_for_update(of=("self",)).select_related("routing_number", "connected_leg__user").filter(
            vonage_uuid=uuid
        ).first()
        if call is None:
            return
        journal.log_decision(call, "caller_event", status=status)
        message_left = call.state == S.VOICEMAIL and Voicemail.objects.filter(call=call).exclude(recording_url="").exists()
        _apply(call, flow.on_caller_gone(call, message_left=message_left), number=call.routing_number)
        if call.transfer_due_at is not None:
            caller_transferred(call.pk)  # nobody left to move (end_call clears it too; a NO_AGENT call ended before)


def _locked_leg(token):
    """(call, leg) for a leg token with the Call row locked, or (None, None)."""
    found = AgentLeg.objects.filter(token=token).values_list("pk", "call_id").first()
    if found is None:
        return None, None
    leg_id, call_id = found
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("routing_number", "option", "connected_leg__user")
        .get(pk=call_id)
    )
    leg = AgentLeg.objects.select_related("user").get(pk=leg_id)
    return call, leg


def handle_leg_event(token, payload):
    """An agent leg's event webhook: progress, or the end of the attempt (then the next agent is called)."""
    status = payload.get("status")
    if not isinstance(status, str):
        raise MalformedWebhook("leg event without a status")
    uuid = payload.get("uuid") or payload.get("call_uuid")
    uuid = uuid if isinstance(uuid, str) and uuid else None
    with transaction.atomic():
        call, leg = _locked_leg(token)
        if call is None:
            log.info("action=leg_event_unknown_leg status=%s", status)
            return
        if uuid is not None and leg.vonage_uuid is None and leg.status in flow.LEG_ACTIVE:
            adopt_leg_call(call, leg, uuid)
        # Another call on this leg's URL: a create-call request that timed out but was placed anyway, after the
        # leg adopted another call. Its events say nothing about the leg: a live one is hung up, none is applied
        # (its "completed" would end the leg while the agent's phone still rings).
        orphan = uuid is not None and leg.vonage_uuid is not None and uuid != leg.vonage_uuid
        # A live call we no longer want (an orphan, or a leg given up while it rang) is hung up.
        live = status in ("started", "ringing", "answered")
        stray = uuid if live and (orphan or leg.status in flow.LEG_FINISHED) else None
        if orphan:
            journal.log_decision(call, "leg_event_ignored", leg=leg.pk, uuid=uuid, status=status)
        else:
            step = flow.on_agent_event(call, leg, status, str(payload.get("detail") or ""))
            for effect in step.effects:
                if isinstance(effect, flow.SetLegStatus):
                    set_leg_status(call, leg, effect.status, effect.detail)
                elif isinstance(effect, flow.EndCall):
                    end_call(call, effect.outcome, cancel_legs=effect.cancel_legs, escalate=effect.escalate, resolve=effect.resolve)
        if stray and stray != _connected_uuid(call):
            journal.log_decision(call, "hang_up_stray", leg=leg.pk, uuid=stray)
            dispatch.enqueue("hang_up", [stray], leg.api_host)


def handle_leg_error(token, payload):
    """An error event on an agent leg: Vonage accepted the leg's call (201) but could not place it (over its
    rate), or found an NCCO we gave the leg invalid. A leg still ringing or waiting for a key fails at once, so
    the next agent is called now rather than after the ringing timeout; its call, if it lives, is hung up."""
    reason = str(payload.get("reason") or "")
    with transaction.atomic():
        call, leg = _locked_leg(token)
        if call is None:
            return
        step = flow.on_agent_event(call, leg, "failed", f"Vonage error: {reason}"[:150])
        for effect in step.effects:
            if isinstance(effect, flow.SetLegStatus) and set_leg_status(call, leg, effect.status, effect.detail):
                journal.log_decision(call, "leg_error", leg=leg.pk, agent=leg.user_id)
                hang_up_legs([leg])


def _connected_uuid(call):
    """The Vonage uuid of the call's connected agent leg, or None.

    Read by id, not through a select_related join: the call row is locked with FOR UPDATE OF self, and on
    PostgreSQL a row re-read after waiting for that lock can carry a connected_leg_id whose joined leg columns
    come from the older snapshot (None).
    """
    if not call.connected_leg_id:
        return None
    return AgentLeg.objects.filter(pk=call.connected_leg_id).values_list("vonage_uuid", flat=True).first()


def handle_leg_input(token, payload):
    """The agent's key press: the NCCO that joins them to the caller, says goodbye, or says the call is gone."""
    digits, timed_out = _dtmf(payload)
    with transaction.atomic():
        call, leg = _locked_leg(token)
        if call is None:
            return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")
        number = call.routing_number
        label = call_about(call)
        step = flow.on_agent_input(number, call, leg, label, digits=digits, timed_out=timed_out)
        journal.log_decision(call, "agent_key", agent=leg.user_id, leg=leg.pk, key=digits[:1] or "none")
        for effect in step.effects:
            if isinstance(effect, flow.Connect):
                if not connect_agent_leg(call, leg):
                    call.refresh_from_db(fields=["state"])
                    set_leg_status(call, leg, L.CANCELLED, "call already taken or ended")
                    return flow.talk_ncco(number.language, "call_taken")
            elif isinstance(effect, flow.SetLegStatus):
                set_leg_status(call, leg, effect.status, effect.detail)
        return step.ncco


def handle_recording(token, payload):
    call = Call.objects.select_related("routing_number").filter(token=token).first()
    if call is None:
        log.info("action=recording_unknown_call")
        return
    record_voicemail(call, payload)


def handle_recording_started(token, payload):
    """The notify webhook right before the mailbox's record action (payload flow.RECORDING_STARTED)."""
    call = Call.objects.filter(token=token).first()
    if call is None:
        log.info("action=recording_started_unknown_call")
        return
    begin_voicemail_recording(call)


def handle_transcription(token, payload):
    """The transcription webhook (payload shape unconfirmed: inline text, or a transcription_url to fetch)."""
    # The keys only: the payload may carry the transcript, which is content and stays out of the logs.
    log.info("action=transcription_webhook keys=%s", sorted(payload))
    call = Call.objects.select_related("routing_number").filter(token=token).first()
    if call is None:
        return
    text = transcript_text(payload)
    if text is not None:
        attach_transcript(call, text)
        return
    url = payload.get("transcription_url") or payload.get("url")
    if isinstance(url, str) and url.startswith("https://"):
        with transaction.atomic():
            voicemail_for(call)
            dispatch.enqueue("fetch_transcript", call.pk, url)
        return
    attach_transcript(call, "", source="empty")


def original_request(payload):
    """The fallback's original_request {url, type} as a dict, however Vonage sent it: a JSON object (POST), a
    JSON string, or flattened query parameters ("original_request.url" or "original_request[url]", GET)."""
    value = payload.get("original_request")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            value = None
    if isinstance(value, dict):
        return value
    flattened = {}
    for key, item in payload.items():
        match = FLATTENED_ORIGINAL_REQUEST.fullmatch(str(key))
        if match:
            flattened[match.group(1) or match.group(2)] = item
    return flattened


def handle_fallback(payload):
    """The fallback webhook: a spoken message, and for a known call the place the caller belongs. An agent's
    failed request gets the offer again (or where the call went), a notification call's its key prompt again."""
    url = str(original_request(payload).get("url") or "")
    log.warning("action=fallback reason=%s url=%s", str(payload.get("reason"))[:200], url[:200])
    match = TOKEN_IN_URL.search(url)
    if match and match.group(1) == "leg":
        return _agent_fallback(token=match.group(2)) or flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")
    notification = NOTIFICATION_INPUT_URL.search(url)
    if notification:
        return notification_fallback_ncco(notification.group(1))
    uuid = payload.get("uuid") if isinstance(payload.get("uuid"), str) and payload.get("uuid") else None
    call = _call_by_token(match.group(2)) if match else None
    if call is None and uuid:
        call = Call.objects.select_related("routing_number__alert_source").filter(vonage_uuid=uuid).first()
    if call is None and uuid:
        agent_ncco = _agent_fallback(vonage_uuid=uuid)
        if agent_ncco is not None:
            return agent_ncco
    if call is None:
        # A new caller whose answer request failed (only an inbound call to one of our numbers: never an agent's
        # or a notification call, whose "to" is a person's phone).
        if uuid and payload.get("direction") != "outbound" and lookup.find_number(payload.get("to")) is not None:
            return handle_answer(payload)
        return flow.talk_ncco(phrases.DEFAULT_LANGUAGE, "error_goodbye")
    number = call.routing_number
    if call.flow_version_id:
        return _flow_fallback(call, number, url)
    if call.state == S.VOICEMAIL and urlsplit(url).path == reverse("callrouting:call-recording-started", args=[call.token]):
        # The notify before the recording failed: record without it (asking again could fail the same way, and
        # the caller would hear the greeting over and over).
        begin_voicemail_recording(call)
        return flow.record_ncco(number, call)
    if call.state == S.MENU:
        options = lookup.options_of(number)
        if options:
            _apply(call, flow.Step(effects=(flow.Route(options[0].pk, "fallback"),)), number=number, options=options)
            call.state = S.ROUTING
    sorry = flow.talk_ncco(number.language, "error")
    if call.state in (S.ROUTING, S.CONNECTED):
        return sorry + flow.hold_ncco(number, call, announce=False)
    if call.state == S.VOICEMAIL:
        return flow.voicemail_ncco(number, call)
    return flow.talk_ncco(number.language, "error_goodbye")


def _flow_fallback(call, number, url):
    """The fallback for a call on a flow: the apology and where the caller is (the prompt again at a menu or PIN
    node, hold music while agents are called); in the mailbox the mailbox again, or when the notify before the
    recording failed, the recording without it."""
    ncco = steps.current_ncco(call, number)
    language = next((action["language"] for action in ncco if action.get("language")), number.language)
    if call.state == S.VOICEMAIL:
        if urlsplit(url).path == reverse("callrouting:call-recording-started", args=[call.token]):
            begin_voicemail_recording(call)
            return ncco[next(i for i, action in enumerate(ncco) if action["action"] == "record"):]
        return ncco
    if call.state == S.ENDED:
        return flow.talk_ncco(language, "error_goodbye")
    if call.state == S.MENU:
        # The caller's answer was lost: it counts as no answer, so a failing input URL cannot keep the caller
        # in the menu for ever (after the node's retries its "no input" branch is taken).
        with transaction.atomic():
            call = Call.objects.select_for_update(of=("self",)).get(pk=call.pk)
            call.routing_number = number
            doc, state = steps.document(call), steps.state_of(call)
            step = engine.on_input(doc, state, steps.context(call, number))
            if step.changed:
                steps.save_position(call, step)
                steps.apply(call, number, step)
            ncco = step.ncco or ncco
    return flow.talk_ncco(language, "error") + ncco


def _agent_fallback(**leg):
    """What the agent of the leg found by LEG (token= or vonage_uuid=) hears when their key press could not be
    answered; None when there is no such leg."""
    leg = AgentLeg.objects.select_related("call__routing_number", "call__option", "user").filter(**leg).first()
    if leg is None:
        return None
    call = leg.call
    label = call_about(call)
    journal.log_decision(call, "agent_fallback", agent=leg.user_id, leg=leg.pk, leg_status=leg.status)
    return flow.on_agent_fallback(call.routing_number, call, leg, label).ncco
