"""voicemail: the mailbox greeting (text or audio; none: the recording starts at once), a notify that the
recording begins (RECORDING_STARTED: it tells a caller who hung up during the greeting from one whose message is
on its way), the recording (transcribed when switched on), and a thank-you. The incident (created here unless
the call has one) is escalated once the message is in."""
from ... import ncco, phrases
from ..steps import CreateIncident, StartVoicemail
from .common import Wait, say_part

RECORDING_STARTED = {"mailbox": "recording"}
DEFAULT_MAX_LENGTH = 120


def mailbox_ncco(flow, node_id, ctx):
    node = flow.node(node_id)
    language = flow.language_of(node)
    actions = say_part(ctx, language, node.get("greeting"))
    actions.append(ncco.notify(ctx.urls.recording_started(), RECORDING_STARTED))
    actions.append(ncco.record(
        ctx.urls.recording(),
        max_seconds=int(node.get("max_length") or DEFAULT_MAX_LENGTH),
        transcription_language=language if node.get("transcription", True) else None,
        transcription_event_url=ctx.urls.transcription(),
    ))
    actions.append(ncco.talk(phrases.phrase(language, "voicemail_thanks"), language))
    return actions


def enter(flow, node_id, call, ctx, came_from):
    node = flow.node(node_id)
    how = came_from[1] if came_from else "voicemail"
    effects = []
    if not call.incident:
        caller = ctx.caller or "an unknown number"
        label = f" ({call.pin_label})" if call.pin_label else ""
        effects.append(CreateIncident(
            node_id,
            title=f"Voicemail for {ctx.number_name} from {caller}{label}",
            details=f"{caller} called {ctx.number_name} and was sent to voicemail: {flow.name_of(node_id)}.",
            pin_label=call.pin_label,
        ))
    effects.append(StartVoicemail(
        node_id, int(node.get("max_length") or DEFAULT_MAX_LENGTH), node.get("transcription", True) is not False,
        how or "voicemail",
    ))
    return Wait(tuple(mailbox_ncco(flow, node_id, ctx)), tuple(effects), {})


def resume(flow, node_id, call, ctx):
    return mailbox_ncco(flow, node_id, ctx)
