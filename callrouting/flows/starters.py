"""Flows to start from in the editor: today's settings ("simple menu") and four common shapes.

Each is a complete document; where it needs an escalation policy or a support calendar it takes the account's
first one (by name), and leaves the field empty when there is none, so validation points at what to fill in.
"""
from escalation.models import EscalationPolicy

from . import compiler
from .models import SupportCalendar

TEMPLATES = {
    "simple": "Simple menu (today's settings)",
    "after_hours": "After-hours voicemail",
    "two_level": "Two-level menu",
    "pin": "PIN-protected line",
    "chain": "Chain to an external number",
}


def _sound(text=""):
    return {"text": text, "audio": None}


def _route(name, targets, no_answer=None, style="sequential"):
    return {"kind": "route", "name": name, "targets": targets, "style": style, "ring_timeout": 30, "repeat": 1,
            "hold_music": None, "no_answer": no_answer}


def _voicemail(name="Voicemail"):
    return {"kind": "voicemail", "name": name, "greeting": _sound(), "max_length": 120, "transcription": True}


def _menu(name, text, branches, no_input=None):
    return {"kind": "menu", "name": name, "prompt": _sound(text), "prompt_alone": False, "retries": 3,
            "language": None, "branches": [{"key": k, "keyword": w, "next": n} for k, w, n in branches],
            "no_input": no_input}


def _message(name, text, next_):
    return {"kind": "message", "name": name, "text": text, "audio": None, "language": None, "next": next_}


def _policy_targets(account):
    policy = EscalationPolicy.objects.filter(account=account).order_by("name", "pk").first()
    return [{"type": "policy", "id": policy.pk}] if policy else []


def build(name, number):
    """The document of template NAME (a key of TEMPLATES) for NUMBER."""
    if name == "simple":
        return compiler.compile_number(number)
    language = number.language or "en-GB"
    targets = _policy_targets(number.account)
    greeting = number.greeting or f"Welcome to {number.name}."
    if name == "after_hours":
        calendar = number.support_calendar_id or SupportCalendar.objects.filter(
            account=number.account).order_by("name", "pk").values_list("pk", flat=True).first()
        nodes = {
            "greeting": _message("Greeting", greeting, "hours"),
            "hours": {"kind": "hours", "name": "Support hours", "calendar": calendar, "in_hours": "team",
                      "out_of_hours": "vm", "holiday": None},
            "team": _route("Support team", targets, no_answer="vm"),
            "vm": _voicemail(),
        }
    elif name == "two_level":
        nodes = {
            "greeting": _message("Greeting", greeting, "main"),
            "main": _menu("Main menu", "", [("1", "outage", "outage"), ("2", "billing", "billing")]),
            "outage": _menu("Outage: region", "", [("1", "Europe", "europe"), ("2", "America", "america")]),
            "europe": _route("Europe on call", targets, no_answer="vm"),
            "america": _route("America on call", targets, no_answer="vm"),
            "billing": _route("Billing", targets, no_answer="vm"),
            "vm": _voicemail(),
        }
    elif name == "pin":
        nodes = {
            "pin": {"kind": "pin", "name": "Key customers", "prompt": _sound("Please enter your customer PIN."),
                    "codes": [], "retries": 3, "next": "team", "wrong": "bye"},
            "team": _route("Priority team", targets, no_answer="vm"),
            "vm": _voicemail(),
            "bye": {"kind": "hangup", "name": "Goodbye", "text": "Sorry, that PIN is not valid. Goodbye.",
                    "audio": None},
        }
    elif name == "chain":
        nodes = {
            "greeting": _message("Greeting", greeting, "oncall"),
            "oncall": _route("On-call engineer", targets, no_answer="lead"),
            # The lead's number is the admin's to fill in: validation shows the empty route until then.
            "lead": _route("Team lead's mobile", [], no_answer="vm"),
            "vm": _voicemail(),
        }
    else:
        raise KeyError(name)
    start = next(iter(nodes))
    return {"schema": 1, "language": language, "start": start, "nodes": nodes}
