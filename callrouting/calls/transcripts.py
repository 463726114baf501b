"""The text of a voicemail transcript, however Vonage delivered it (payload shape unconfirmed)."""
import json


def transcript_text(payload):
    """The transcript carried inline by a transcription webhook, or None (payload shape unconfirmed)."""
    for key in ("transcript", "transcription", "text"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, (list, dict)):
            text = _collect_text(value)
            if text:
                return text
    return None


def transcript_from_document(content):
    """The text of a fetched transcription document (JSON of Vonage's shape, or plain text)."""
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return content.decode("utf-8", errors="replace").strip()
    if isinstance(document, str):
        return document.strip()
    return _collect_text(document)


def _collect_text(value):
    """Sentences found under 'sentence', 'text' or 'transcript' keys anywhere in a JSON value, in order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, item in node.items():
                if key in ("sentence", "text", "transcript") and isinstance(item, str):
                    found.append(item.strip())
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return " ".join(part for part in found if part)
