"""NCCO actions as plain dicts (Vonage Call Control Objects, as in the Voice API reference).

Built here and nowhere else, as JSON: the SDK's pydantic models drop fields they do not model. eventUrl and
streamUrl are always lists.
"""


# Vonage cuts the text of a talk action after this many characters.
TALK_MAX_CHARS = 1500
SENTENCE_ENDS = (". ", "! ", "? ", "; ")


def talk(text, language, *, barge_in=False, loop=None):
    action = {"action": "talk", "text": text[:TALK_MAX_CHARS], "language": language}
    if barge_in:
        action["bargeIn"] = True
    if loop is not None:
        action["loop"] = loop
    return action


def talks(text, language, *, barge_in=False):
    """TEXT spoken whole: as many talk actions as it takes (see talk_parts), each with BARGE_IN."""
    return [talk(part, language, barge_in=barge_in) for part in talk_parts(text)]


def talk_parts(text, limit=TALK_MAX_CHARS):
    """TEXT in parts of at most LIMIT characters, split after a sentence where possible, else between words
    (else, for one word longer than LIMIT, inside it). Joined with single spaces, parts split between words or
    sentences are TEXT again, so a preview of TEXT shows exactly the words a call speaks."""
    parts = []
    while len(text) > limit:
        head = text[: limit + 1]
        end = max(head.rfind(mark, 0, limit) for mark in SENTENCE_ENDS)
        space = end + 1 if end > 0 else head.rfind(" ")
        if space <= 0:
            parts.append(text[:limit])
            text = text[limit:]
        else:
            parts.append(text[:space])
            text = text[space + 1:]
    parts.append(text)
    return parts


def stream(url, *, barge_in=False, loop=None):
    action = {"action": "stream", "streamUrl": [url]}
    if barge_in:
        action["bargeIn"] = True
    if loop is not None:
        action["loop"] = loop
    return action


def menu_input(event_url, language, *, speech_hints=(), timeout=5):
    """An input that takes one DTMF key and, when SPEECH_HINTS are given, speech with those hints."""
    action = {
        "action": "input",
        "type": ["dtmf"],
        "dtmf": {"maxDigits": 1, "timeOut": timeout},
        "eventUrl": [event_url],
    }
    if speech_hints:
        action["type"] = ["dtmf", "speech"]
        action["speech"] = {
            "language": language,
            "context": list(speech_hints),
            "endOnSilence": 1,
            "startTimeout": timeout,
            "maxDuration": 10,
        }
    return action


def pin_input(event_url, *, max_digits, timeout=5):
    """A DTMF input for a code of up to MAX_DIGITS digits, ended early by '#' (a PIN)."""
    return {
        "action": "input",
        "type": ["dtmf"],
        "dtmf": {"maxDigits": max(1, min(int(max_digits), 20)), "timeOut": timeout, "submitOnHash": True},
        "eventUrl": [event_url],
    }


def keypress_input(event_url, *, timeout=10):
    """A one-key DTMF input (the agent's accept/decline prompt)."""
    return {
        "action": "input",
        "type": ["dtmf"],
        "dtmf": {"maxDigits": 1, "timeOut": timeout},
        "eventUrl": [event_url],
    }


def conversation(name, *, start_on_enter=True, end_on_exit=False, music_on_hold_url=None):
    action = {"action": "conversation", "name": name, "startOnEnter": start_on_enter, "endOnExit": end_on_exit}
    if music_on_hold_url and not start_on_enter:
        action["musicOnHoldUrl"] = [music_on_hold_url]
    return action


def notify(event_url, payload):
    """Send PAYLOAD to EVENT_URL when the NCCO reaches this action; an empty answer lets the NCCO go on."""
    return {"action": "notify", "payload": dict(payload), "eventUrl": [event_url], "eventMethod": "POST"}


def record(event_url, *, max_seconds, transcription_language=None, transcription_event_url=None):
    """Record up to MAX_SECONDS in mp3, ending on '#', with a beep first; transcribed when a language is given."""
    action = {
        "action": "record",
        "format": "mp3",
        "endOnKey": "#",
        "timeOut": max(3, min(int(max_seconds), 7200)),
        "beepStart": True,
        "eventUrl": [event_url],
    }
    if transcription_language:
        transcription = {"language": transcription_language}
        if transcription_event_url:
            transcription["eventUrl"] = [transcription_event_url]
        action["transcription"] = transcription
    return action
