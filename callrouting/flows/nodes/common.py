"""What every node module shares: the results it returns and how a node's text or audio is spoken."""
from dataclasses import dataclass, field

from ... import ncco, phrases


@dataclass(frozen=True)
class Go:
    """Continue at node NEXT (taking BRANCH, e.g. "listed"), after NCCO actions and EFFECTS of this node."""

    next: str
    branch: str = ""
    ncco: tuple = ()
    effects: tuple = ()


@dataclass(frozen=True)
class Wait:
    """The caller stays at this node (an input, hold, the mailbox, or the end of the call) with node state DATA.
    NCCO None: nothing new is sent to the caller."""

    ncco: tuple | None
    effects: tuple = ()
    data: dict = field(default_factory=dict)


class Flow:
    """A document (the contract's JSON, schema 1) with the questions node modules ask of it."""

    def __init__(self, document):
        self.document = document
        self.nodes = document.get("nodes") or {}
        self.language = document.get("language") or phrases.DEFAULT_LANGUAGE
        self.start = document.get("start")

    def node(self, node_id):
        return self.nodes.get(node_id) if isinstance(node_id, str) else None

    def language_of(self, node):
        return node.get("language") or self.language

    def name_of(self, node_id):
        node = self.node(node_id) or {}
        return node.get("name") or node_id or ""


def say(ctx, language, text="", audio=None):
    """The actions speaking TEXT in LANGUAGE (split into talks of at most 1,500 characters), or playing AUDIO
    (a NumberAudio id) when its URL is known; nothing for neither."""
    url = ctx.urls.audio(audio) if audio else None
    if url:
        return [ncco.stream(url)]
    text = (text or "").strip()
    return ncco.talks(text, language) if text else []


def say_part(ctx, language, part):
    """say() for a {"text", "audio"} part of a node (a prompt, a greeting)."""
    part = part if isinstance(part, dict) else {}
    return say(ctx, language, part.get("text") or "", part.get("audio"))


def phrase_talk(language, key, **values):
    return [ncco.talk(phrases.phrase(language, key, **values), language)]
