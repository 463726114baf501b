"""caller_list: is the caller on a list of numbers, prefixes ("+4420*") and "anonymous" (a withheld number)?
Branches "listed" and "not listed"; a hang-up on "listed" blocks the caller (a line in the call log, no incident)."""
import re

from ..steps import LogLine
from .common import Go

ANONYMOUS = "anonymous"
_NUMBER = re.compile(r"\+?\d{3,16}")


def caller_digits(caller):
    """The caller as "+digits", or "" for a withheld, unknown or non-phone caller (a SIP URI, "Unknown")."""
    raw = re.sub(r"[\s().-]", "", str(caller or ""))
    return "+" + raw.lstrip("+") if _NUMBER.fullmatch(raw) else ""


def matching_entry(entries, caller):
    """The first entry of ENTRIES that CALLER matches, or None."""
    number = caller_digits(caller)
    for entry in entries or ():
        entry = str(entry).strip()
        if entry.lower() == ANONYMOUS:
            if not number:
                return entry
        elif entry.endswith("*"):
            prefix = caller_digits(entry[:-1]) or ("+" if entry.strip("+*") == "" else "")
            if number and prefix and number.startswith(prefix):
                return entry
        elif number and caller_digits(entry) == number:
            return entry
    return None


def enter(flow, node_id, call, ctx, came_from):
    node = flow.node(node_id)
    entry = matching_entry(node.get("entries"), ctx.caller)
    if entry is None:
        return Go(node.get("not_listed"), "not_listed")
    who = caller_digits(ctx.caller) or ANONYMOUS
    text = f"Caller {who} is on the list “{flow.name_of(node_id)}” ({entry})."
    return Go(node.get("listed"), "listed", effects=(LogLine(node_id, text),))


def resume(flow, node_id, call, ctx):
    return []
