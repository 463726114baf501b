"""Factories and fixtures for the call routing tests: routing numbers, and a `phone` that plays Vonage.

`phone` sends the webhooks Vonage would send (signed, shaped as in the Voice API reference) through Django's
test client, to the URLs the product handed out in its NCCOs and create-call requests, and runs the django-q2
tasks they enqueue synchronously once the request's transaction has committed.
"""
import datetime as dt
import itertools
import uuid as uuid_lib
from urllib.parse import urlsplit

import factory
import pytest
from django_q.conf import Conf
from factory.django import DjangoModelFactory

from callrouting import tasks as callrouting_tasks
from callrouting.models import AgentLeg, Call, RoutingNumber, RoutingOption
from incidents import pacing
from tests.factories import AccountFactory, PolicyFactory, RuleFactory

_numbers = itertools.count(1)


class RoutingNumberFactory(DjangoModelFactory):
    class Meta:
        model = RoutingNumber

    account = factory.SubFactory(AccountFactory)
    phone_number = factory.LazyFunction(lambda: f"+4930901{next(_numbers):04d}")
    name = "Acme support"
    language = "en-US"
    greeting = "Welcome to Acme."


class RoutingOptionFactory(DjangoModelFactory):
    class Meta:
        model = RoutingOption

    routing_number = factory.SubFactory(RoutingNumberFactory)
    digit = factory.Sequence(lambda n: n % 9 + 1)
    position = factory.LazyAttribute(lambda o: o.digit)
    label = factory.Sequence(lambda n: f"Topic {n}")
    escalation_policy = factory.SubFactory(PolicyFactory, account=factory.SelfAttribute("..routing_number.account"))


def policy_of(account, *users, name=None):
    """An escalation policy of ACCOUNT whose rules list USERS (one rule each, so timeouts are in between)."""
    policy = PolicyFactory(account=account, **({"name": name} if name else {}))
    for position, user in enumerate(users):
        RuleFactory(policy=policy, position=position, users=[user])
    return policy


def path_of(url):
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def inline_tasks(monkeypatch):
    """django-q2 tasks run synchronously; sleeps (retry backoff, create-call pacing) are recorded, not slept.

    The pacer's clock stands still except for those sleeps, so the recorded list is the same on every run.
    """
    monkeypatch.setattr(Conf, "SYNC", True)
    slept, clock = [], [1_800_000_000.0]

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(callrouting_tasks, "sleep", sleep)
    monkeypatch.setattr(pacing, "sleep", sleep)
    monkeypatch.setattr(pacing, "clock", lambda: clock[0])
    return slept


class Phone:
    """Plays the Vonage side of calls: the caller, the network and the agents' phones."""

    def __init__(self, client, capture, api):
        self.client, self.capture, self.api = client, capture, api
        self.responses = []

    def post(self, url_or_path, payload, *, run_tasks=True):
        path = path_of(url_or_path) if url_or_path.startswith("http") else url_or_path
        if not run_tasks:
            return self.client.post_webhook(path, payload)
        with self.capture(execute=True):
            response = self.client.post_webhook(path, payload)
        self.responses.append(response)
        return response

    def get(self, path, params, *, run_tasks=True):
        if not run_tasks:
            return self.client.get_webhook(path, params)
        with self.capture(execute=True):
            return self.client.get_webhook(path, params)

    # --- the caller -----------------------------------------------------------------------------------------

    def dial(self, number, caller="+4917612345678", *, uuid=None, method="GET", run_tasks=True, region_url=None):
        """An inbound call to NUMBER held by the data centre REGION_URL (default: the fake API's own host): the
        answer webhook. Returns (response, call uuid)."""
        uuid = uuid or str(uuid_lib.uuid4())
        params = {
            "to": number.lstrip("+"),
            "from": caller.lstrip("+"),
            "uuid": uuid,
            "conversation_uuid": f"CON-{uuid_lib.uuid4()}",
            "endpoint_type": "phone",
            "region_url": self.api.base_url if region_url is None else region_url,
        }
        if method == "GET":
            return self.get("/vonage/answer", params, run_tasks=run_tasks), uuid
        return self.post("/vonage/answer", params, run_tasks=run_tasks), uuid

    def input_url(self, ncco):
        return next(action for action in ncco if action["action"] == "input")["eventUrl"][0]

    def press(self, ncco, digit, **kwargs):
        """The caller presses DIGIT ("" = nothing before the timeout) at the input of NCCO."""
        dtmf = {"digits": digit, "timed_out": not digit}
        return self.post(self.input_url(ncco), {"dtmf": dtmf, "speech": {}, **self._ids()}, **kwargs)

    def say(self, ncco, *texts):
        speech = {"results": [{"text": text, "confidence": "0.9"} for text in texts], "timeout_reason": "end_on_silence_timeout"}
        return self.post(self.input_url(ncco), {"dtmf": {"digits": "", "timed_out": False}, "speech": speech, **self._ids()})

    def reach_notify(self, ncco, **kwargs):
        """The caller's NCCO reaches its notify action (in the mailbox: the greeting is over, the recording
        begins). Vonage posts the action's payload to its eventUrl; an empty answer lets the NCCO go on."""
        action = next(action for action in ncco if action["action"] == "notify")
        response = self.post(action["eventUrl"][0], action["payload"], **kwargs)
        assert response.status_code == 204, response.content
        return response

    def hang_up(self, uuid, status="completed"):
        """The caller's leg ends (application event webhook)."""
        return self.post("/vonage/event", {"status": status, "uuid": uuid, "direction": "inbound", **self._ids(uuid)})

    # --- the agents' phones -----------------------------------------------------------------------------------

    def dialled(self):
        """The create-call requests the product made, in order."""
        return self.api.calls_created()

    def leg(self, user):
        return AgentLeg.objects.get(user=user)

    def leg_event(self, leg, status, *, run_tasks=True, **extra):
        """An event of LEG's outbound call, sent to the event_url the product gave Vonage (RUN_TASKS False: the
        tasks it enqueues are lost, as with a killed worker)."""
        leg.refresh_from_db()
        request = next(body for body in self.dialled() if f"/leg/{leg.token}/" in body["event_url"][0])
        key = "call_uuid" if status in ("machine", "human") else "uuid"
        payload = {"status": status, key: leg.vonage_uuid, "direction": "outbound", **self._ids(leg.vonage_uuid), **extra}
        if key == "call_uuid":
            payload.pop("uuid", None)
        return self.post(request["event_url"][0], payload, run_tasks=run_tasks)

    def agent_press(self, leg, digit, **kwargs):
        """LEG's agent answers and presses DIGIT ("" = no key) at the whisper's prompt."""
        leg.refresh_from_db()
        request = next(body for body in self.dialled() if f"/leg/{leg.token}/" in body["event_url"][0])
        url = request["ncco"][-1]["eventUrl"][0]
        dtmf = {"digits": digit, "timed_out": not digit}
        return self.post(url, {"dtmf": dtmf, "uuid": leg.vonage_uuid, **self._ids(leg.vonage_uuid)}, **kwargs)

    def _ids(self, uuid=None):
        ids = {"conversation_uuid": f"CON-{uuid_lib.uuid4()}", "timestamp": dt.datetime.now(dt.timezone.utc).isoformat()}
        if uuid:
            ids["uuid"] = uuid
        return ids


@pytest.fixture
def phone(vonage_client, django_capture_on_commit_callbacks, vonage_api, inline_tasks):
    return Phone(vonage_client, django_capture_on_commit_callbacks, vonage_api)


def the_call(uuid):
    return Call.objects.get(vonage_uuid=uuid)


def set_support_hours(number, *, inside, timezone="Europe/Berlin"):
    """Give NUMBER support hours that are true (every day, all day) or false (09:00-17:00 only on a weekday that
    is neither today nor tomorrow) at the real current time. Returns NUMBER (its cached calendar dropped)."""
    import zoneinfo

    from callrouting.models import SupportHoursRange

    number.support_hours_enabled, number.timezone = True, timezone
    number.save()
    calendar = number.own_calendar()
    SupportHoursRange.objects.filter(calendar=calendar).delete()
    if inside:
        days, start, end = range(7), dt.time(0), dt.time(0)
    else:
        today = dt.datetime.now(zoneinfo.ZoneInfo(timezone)).weekday()
        days, start, end = [(today + 3) % 7], dt.time(9), dt.time(17)
    for day in days:
        SupportHoursRange.objects.create(calendar=calendar, weekday=day, start=start, end=end)
    number.__dict__.pop("_support_calendar", None)
    return number
