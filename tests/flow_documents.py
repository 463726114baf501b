"""Flow documents (the contract's JSON, schema 1) for the engine's tests, and a fixed world to run them in."""
import datetime as dt

from callrouting.flows.dryrun import DryRunUrls, StaticWorld
from callrouting.flows.steps import Context, DialTarget

AT = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone.utc)
CALLER = "+4915550000100"

ALICE = DialTarget("user", 1, "+4915110000001", "Alice")
BOB = DialTarget("user", 2, "+4915110000002", "Bob")
CAROL = DialTarget("user", 3, "+4915110000003", "Carol")
DAVE = DialTarget("user", 4, "+4915110000004", "Dave")

# Policy 3 rings Alice then Bob; user 2 is Bob; schedule 4 has Carol on call; policy 5 has nobody on call.
WORLD_TARGETS = {
    ("policy", 3): [ALICE, BOB],
    ("policy", 5): [],
    ("user", 1): [ALICE],
    ("user", 2): [BOB],
    ("user", 3): [CAROL],
    ("user", 4): [DAVE],
    ("schedule", 4): [CAROL],
}


def world():
    """A StaticWorld with calendar 7 in hours; audio 11 is "welcome.mp3"."""
    return StaticWorld(calendars={7: "in_hours"}, targets=dict(WORLD_TARGETS), audio={11: "welcome.mp3"})


def context(*, caller=CALLER, call_uuid="call-1", at=AT, the_world=None):
    return Context(now=at, caller=caller, call_uuid=call_uuid, world=the_world or world(), urls=DryRunUrls(),
                   number_name="Acme support", conversation="conv-1")


def message(next_id, text="Welcome to Acme support.", audio=None, language=None, name="Greeting"):
    return {"kind": "message", "name": name, "text": text, "audio": audio, "language": language, "next": next_id}


def menu(branches, *, text="", audio=None, prompt_alone=False, retries=3, no_input=None, language=None, name="Menu"):
    return {"kind": "menu", "name": name, "prompt": {"text": text, "audio": audio}, "prompt_alone": prompt_alone,
            "retries": retries, "language": language, "no_input": no_input,
            "branches": [{"key": key, "keyword": keyword, "next": next_id} for key, keyword, next_id in branches]}


def hours(in_hours, out_of_hours, holiday=None, calendar=7, name="Office hours"):
    return {"kind": "hours", "name": name, "calendar": calendar, "in_hours": in_hours, "out_of_hours": out_of_hours,
            "holiday": holiday}


def route(targets, *, style="sequential", ring_timeout=30, repeat=1, hold_music=None, no_answer=None, name="Outage team"):
    return {"kind": "route", "name": name, "targets": targets, "style": style, "ring_timeout": ring_timeout,
            "repeat": repeat, "hold_music": hold_music, "no_answer": no_answer}


def voicemail(text="Please leave a message.", audio=None, max_length=120, transcription=True, name="Voicemail"):
    return {"kind": "voicemail", "name": name, "greeting": {"text": text, "audio": audio}, "max_length": max_length,
            "transcription": transcription}


def pin(next_id, wrong, codes=(("1234", "Globex"),), *, text="Enter your PIN", retries=3, name="Key customers"):
    return {"kind": "pin", "name": name, "prompt": {"text": text, "audio": None},
            "codes": [{"code": code, "label": label} for code, label in codes], "retries": retries,
            "next": next_id, "wrong": wrong}


def caller_list(entries, listed, not_listed, name="Blocked"):
    return {"kind": "caller_list", "name": name, "entries": list(entries), "listed": listed, "not_listed": not_listed}


def incident(next_id, *, alert_source=2, priority="high", policy=3, accept=True, name="Create incident"):
    return {"kind": "incident", "name": name, "alert_source": alert_source, "priority": priority, "policy": policy,
            "accept_when_answered": accept, "next": next_id}


def hangup(text="Goodbye.", audio=None, name="Goodbye"):
    return {"kind": "hangup", "name": name, "text": text, "audio": audio}


def document(start, language="en-GB", **nodes):
    return {"schema": 1, "language": language, "start": start, "nodes": nodes}


POLICY_3 = {"type": "policy", "id": 3}
EXTERNAL = {"type": "external", "number": "+441234567890", "label": "Team lead mobile"}
