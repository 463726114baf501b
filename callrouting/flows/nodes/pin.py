"""pin: a prompt and a DTMF input for a code (ended by '#' or the longest code's length); a correct code's label
goes into the incident; after RETRIES wrong codes (or none) the "wrong PIN" branch (None: goodbye)."""
from ... import ncco
from ..steps import FLOW_ENDED, EndCall, LogLine, PinAccepted
from .common import Go, Wait, phrase_talk, say_part

DEFAULT_RETRIES = 3


def prompt_ncco(flow, node_id, call, ctx, *, wrong=False):
    node = flow.node(node_id)
    language = flow.language_of(node)
    actions = phrase_talk(language, "pin_wrong") if wrong else []
    actions += say_part(ctx, language, node.get("prompt")) or phrase_talk(language, "pin_prompt")
    longest = max((len(str(c.get("code") or "")) for c in node.get("codes") or ()), default=4)
    actions.append(ncco.pin_input(ctx.urls.input(call.seq), max_digits=longest))
    return actions


def enter(flow, node_id, call, ctx, came_from):
    return Wait(tuple(prompt_ncco(flow, node_id, call, ctx)), (), {"tries": 0})


def on_input(flow, node_id, call, ctx, digits, speech):
    node = flow.node(node_id)
    entered = "".join(ch for ch in str(digits or "") if ch.isdigit())
    code = next((c for c in node.get("codes") or () if entered and str(c.get("code")) == entered), None)
    if code is not None:
        label = str(code.get("label") or "")
        return Go(node.get("next"), "correct PIN", effects=(PinAccepted(node_id, label),))
    tries = int(call.data.get("tries") or 0) + 1
    if tries < int(node.get("retries") or DEFAULT_RETRIES):
        return Wait(tuple(prompt_ncco(flow, node_id, call, ctx, wrong=True)), (), {"tries": tries})
    note = LogLine(node_id, f"No valid PIN after {tries} tries.")
    language = flow.language_of(node)
    if node.get("wrong"):
        return Go(node["wrong"], "wrong PIN", tuple(phrase_talk(language, "pin_wrong")), (note,))
    escalate = "the call flow ended the call" if call.incident else ""
    return Wait(tuple(phrase_talk(language, "pin_refused")), (note, EndCall(FLOW_ENDED, escalate=escalate)),
                {"tries": tries})


def resume(flow, node_id, call, ctx):
    return prompt_ncco(flow, node_id, call, ctx)
