"""menu: a prompt (text or audio) with "Press 1 or say <keyword> ..." generated from the branches (unless the
prompt is used alone), an input for one key or a spoken keyword, retries, and a "no input" branch (None: the
first branch) announced to the caller before it is taken."""
import re
import unicodedata

from ... import ncco, phrases
from .common import Go, Wait, say_part

DEFAULT_RETRIES = 3
KEY_WORDS = {"*": "key_star", "#": "key_hash"}


def _normalise(text):
    text = unicodedata.normalize("NFKD", str(text or "").lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.findall(r"\w+", text))


def spoken_key(language, key):
    return phrases.phrase(language, KEY_WORDS[key]) if key in KEY_WORDS else key


def menu_text(language, branches):
    """The generated part of the prompt: one sentence per branch, in order."""
    sentences = []
    for branch in branches:
        key, keyword = spoken_key(language, branch.get("key", "")), (branch.get("keyword") or "").strip()
        if keyword:
            sentences.append(phrases.phrase(language, "menu_item", digit=key, label=keyword))
        else:
            sentences.append(phrases.phrase(language, "menu_key", digit=key))
    return " ".join(sentences)


def match_branch(branches, language, digits="", speech_texts=()):
    """(branch, how) for a pressed key DIGITS or the first recognised text naming a keyword or a key; else (None, "").

    Keywords are matched longest first, so "billing support" wins over "billing"; "one" or "eins" chooses key 1."""
    by_key = {str(b.get("key")): b for b in branches}
    digits = str(digits or "").strip()
    if digits:
        return (by_key[digits[:1]], "key") if digits[:1] in by_key else (None, "")
    words = phrases.digit_words(language)
    for text in speech_texts or ():
        said = f" {_normalise(text)} "
        if not said.strip():
            continue
        for branch in sorted(branches, key=lambda b: -len(b.get("keyword") or "")):
            keyword = _normalise(branch.get("keyword"))
            if keyword and f" {keyword} " in said:
                return branch, "speech"
        for branch in branches:
            key = str(branch.get("key"))
            if key.isdigit() and (f" {key} " in said or f" {words[int(key)]} " in said):
                return branch, "speech"
    return None, ""


def prompt_ncco(flow, node_id, call, ctx):
    node = flow.node(node_id)
    language = flow.language_of(node)
    branches = node.get("branches") or []
    actions = say_part(ctx, language, node.get("prompt"))
    if not node.get("prompt_alone"):
        actions += ncco.talks(menu_text(language, branches), language) if branches else []
    hints = [b["keyword"] for b in branches if (b.get("keyword") or "").strip()]
    actions.append(ncco.menu_input(ctx.urls.input(call.seq), language, speech_hints=hints))
    return actions


def enter(flow, node_id, call, ctx, came_from):
    return Wait(tuple(prompt_ncco(flow, node_id, call, ctx)), (), {"tries": 0})


def _no_input(flow, node_id, ctx):
    """Where a caller who never chose goes, and what they are told first."""
    node = flow.node(node_id)
    language = flow.language_of(node)
    branches = node.get("branches") or []
    target = node.get("no_input") or (branches[0].get("next") if branches else None)
    kind = (flow.node(target) or {}).get("kind")
    said = next((b for b in branches if b.get("next") == target and (b.get("keyword") or "").strip()), None)
    label = said["keyword"] if said else flow.name_of(target)
    if kind == "route":
        words = phrases.phrase(language, "no_choice", label=label)
    elif kind == "voicemail":
        words = phrases.phrase(language, "no_choice_voicemail")
    else:
        words = ""  # the next node speaks for itself
    return Go(target, "no_input", (ncco.talk(words, language),) if words else ())


def on_input(flow, node_id, call, ctx, digits, speech):
    node = flow.node(node_id)
    branches = node.get("branches") or []
    branch, how = match_branch(branches, flow.language_of(node), digits, speech)
    if branch is not None:
        return Go(branch.get("next"), f"{branch.get('key')} {branch.get('keyword') or ''}".strip() + f" ({how})")
    tries = int(call.data.get("tries") or 0) + 1
    if tries < int(node.get("retries") or DEFAULT_RETRIES):
        return Wait(tuple(prompt_ncco(flow, node_id, call, ctx)), (), {"tries": tries})
    return _no_input(flow, node_id, ctx)


def resume(flow, node_id, call, ctx):
    return prompt_ncco(flow, node_id, call, ctx)
