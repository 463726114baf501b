"""Call flows through the REST API and the number's settings page (simple mode).

Personas: alice owns Acme (writes), bob is an Acme responder (reads only), charlie is Globex's admin: Acme's flows
are 404 for him (and test_api_isolation.py covers every flow endpoint, generated over the router).
"""
import copy
import datetime as dt

import pytest
from django.urls import reverse

from callrouting.flows import actions, compiler
from callrouting.flows.models import CallFlow, FlowVersion, SupportCalendar
from callrouting.models import NumberAudio, RoutingNumber
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory, policy_of
from tests.test_api_resources import alice_api, bob_api  # noqa: F401 (fixtures)


@pytest.fixture
def number(acme, alice, bob):
    number = RoutingNumberFactory(account=acme, name="Acme support", greeting="Welcome to Acme.")
    RoutingOptionFactory(routing_number=number, digit=1, position=0, label="Outage",
                         escalation_policy=policy_of(acme, alice, name="Outage"))
    RoutingOptionFactory(routing_number=number, digit=2, position=1, label="Billing",
                         escalation_policy=policy_of(acme, bob, name="Billing"))
    number.refresh_from_db()
    return number


def flow_url(number, action=""):
    return f"/api/flows/{number.flow.pk}/" + (f"{action}/" if action else "")


def two_level(number):
    """The number's compiled flow with a second-level menu under key 1 (not simple any more)."""
    data = compiler.compile_number(number)
    data["nodes"]["europe-or-us"] = {
        "kind": "menu", "name": "Region", "prompt": {"text": "Which region?", "audio": None},
        "branches": [{"key": "1", "keyword": "Europe", "next": "option-1"},
                     {"key": "2", "keyword": "America", "next": "option-2"}],
    }
    data["nodes"]["menu"]["branches"][0]["next"] = "europe-or-us"
    return data


# --- Simple mode: settings compile into published versions ---------------------------------------------------------


def test_every_number_runs_a_published_flow_of_its_settings(number):
    flow = CallFlow.objects.get(number=number)
    assert flow.published.document == compiler.compile_number(number)
    assert flow.draft == flow.published.document
    assert compiler.is_simple(flow.published.document)


def test_a_settings_change_publishes_a_new_version_with_a_summary(number):
    before = number.flow.published.number
    number.greeting = "Hello from Acme."
    number.save()
    flow = CallFlow.objects.get(number=number)
    assert flow.published.number == before + 1
    assert flow.published.summary == "1 node changed."
    number.save()  # nothing changed: no new version
    assert CallFlow.objects.get(number=number).published.number == before + 1


def test_settings_saved_together_publish_once(number, alice):
    before = FlowVersion.objects.filter(flow__number=number).count()
    with actions.settings_change(alice):
        number.greeting = "One."
        number.save()
        number.options.first().delete()
    versions = FlowVersion.objects.filter(flow__number=number)
    assert versions.count() == before + 1
    assert versions.first().published_by == alice


def test_a_flow_beyond_simple_mode_is_not_overwritten_by_settings(number, alice):
    flow = number.flow
    actions.save_draft(flow, two_level(number), flow.draft_revision, alice)
    version = actions.publish(flow, alice)
    number.greeting = "Changed on the settings page."
    number.save()
    assert CallFlow.objects.get(number=number).published == version


def test_versions_are_immutable(number):
    version = number.flow.published
    version.summary = "rewritten"
    with pytest.raises(Exception, match="never changes"):
        version.save()


# --- The settings page -------------------------------------------------------------------------------------------


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def test_the_page_links_to_the_flow_and_warns_when_it_is_not_simple(as_alice, number, alice):
    page = as_alice.get(reverse("web:number", args=[number.pk])).content.decode()
    assert "simple mode of the number" in page and "Open the call flow" not in page
    flow = number.flow
    actions.save_draft(flow, two_level(number), flow.draft_revision, alice)
    actions.publish(flow, alice)
    page = as_alice.get(reverse("web:number", args=[number.pk])).content.decode()
    assert "This number runs a call flow that these settings cannot show" in page
    assert "Open the call flow" in page


def test_saving_a_section_publishes_as_the_admin(as_alice, number, alice):
    response = as_alice.post(reverse("web:number-general", args=[number.pk]), {
        "general-name": "Acme support", "general-language": "en-US", "general-greeting": "New greeting.",
        "general-ringing_timeout": 30})
    assert response.status_code == 302
    flow = CallFlow.objects.get(number=number)
    assert flow.published.published_by == alice
    assert flow.published.document["nodes"]["menu"]["prompt"]["text"] == "New greeting."


def test_greeting_only_needs_a_greeting_or_a_recording(as_alice, alice_api, number):
    response = as_alice.post(reverse("web:number-general", args=[number.pk]), {
        "general-name": "Acme support", "general-language": "en-US", "general-greeting": "",
        "general-greeting_only": "on", "general-ringing_timeout": 30})
    assert response.status_code == 400
    form = next(s for s in response.context["sections"] if s["section"].slug == "general")["form"]
    assert "write a greeting or upload a greeting recording" in form.errors["greeting"][0]
    api = alice_api.patch(f"/api/numbers/{number.pk}/", {"greeting": "", "greeting_only": True}, format="json")
    assert api.status_code == 400 and "greeting recording" in str(api.json())
    # With a recording, the greeting may stay empty.
    NumberAudio.objects.create(routing_number=number, kind="greeting", file="audio/x.mp3", format="mp3")
    api = alice_api.patch(f"/api/numbers/{number.pk}/", {"greeting": "", "greeting_only": True}, format="json")
    assert api.status_code == 200, api.json()


# --- The REST API ------------------------------------------------------------------------------------------------


def test_draft_save_validate_publish_and_restore(alice_api, number, alice):
    draft = alice_api.get(flow_url(number, "draft")).json()
    assert draft["errors"] == [] and draft["document"] == number.flow.published.document
    first_version = number.flow.published
    data = two_level(number)
    saved = alice_api.put(flow_url(number, "draft"), {"revision": draft["revision"], "document": data}, format="json")
    assert saved.status_code == 200, saved.json()
    assert saved.json()["revision"] == draft["revision"] + 1 and saved.json()["errors"] == []
    published = alice_api.post(flow_url(number, "publish"))
    assert published.status_code == 201, published.json()
    assert published.json()["number"] == first_version.number + 1
    assert published.json()["summary"] == "1 node added, 1 node changed."
    versions = alice_api.get(flow_url(number, "versions")).json()
    assert [v["number"] for v in versions][:2] == [first_version.number + 1, first_version.number]
    detail = alice_api.get(f"/api/flow-versions/{published.json()['id']}/").json()
    assert detail["document"]["nodes"]["europe-or-us"]["kind"] == "menu"
    restored = alice_api.post(flow_url(number, "restore"), {"version": first_version.pk}, format="json")
    assert restored.status_code == 200 and restored.json()["document"] == first_version.document
    assert CallFlow.objects.get(number=number).published_id == published.json()["id"]  # restore is a draft


def test_a_stale_revision_is_refused_with_the_current_one(alice_api, number):
    revision = alice_api.get(flow_url(number, "draft")).json()["revision"]
    data = two_level(number)
    assert alice_api.put(flow_url(number, "draft"), {"revision": revision, "document": data},
                         format="json").status_code == 200
    stale = alice_api.put(flow_url(number, "draft"), {"revision": revision, "document": data}, format="json")
    assert stale.status_code == 409
    assert stale.json()["revision"] == revision + 1 and "reload" in stale.json()["detail"]


def test_errors_are_pinned_to_nodes_and_refuse_publishing(alice_api, number, charlie):
    data = copy.deepcopy(number.flow.draft)
    data["nodes"]["menu"]["branches"][1]["key"] = "1"
    foreign = policy_of(charlie.account, charlie)
    data["nodes"]["option-1"]["targets"] = [{"type": "policy", "id": foreign.pk}]
    revision = number.flow.draft_revision
    saved = alice_api.put(flow_url(number, "draft"), {"revision": revision, "document": data}, format="json")
    assert saved.status_code == 200
    assert {(e["node"], e["field"]) for e in saved.json()["errors"]} == {
        ("menu", "branches[1].key"), ("option-1", "targets[0].id")}
    checked = alice_api.post(flow_url(number, "validate"), {}, format="json").json()
    assert checked["valid"] is False and len(checked["errors"]) == 2
    refused = alice_api.post(flow_url(number, "publish"))
    assert refused.status_code == 400
    assert {(e["node"], e["field"]) for e in refused.json()["errors"]} == {
        ("menu", "branches[1].key"), ("option-1", "targets[0].id")}
    assert alice_api.put(flow_url(number, "draft"), {"revision": revision + 1, "document": [1]},
                         format="json").json() == {"document": ["A flow document is a JSON object."]}


def test_export_and_import(alice_api, number):
    exported = alice_api.get(flow_url(number, "export"))
    assert exported.status_code == 200 and "attachment" in exported["Content-Disposition"]
    other = RoutingNumberFactory(account=number.account, name="Second line")
    imported = alice_api.post(f"/api/flows/{other.flow.pk}/import/",
                              {"revision": other.flow.draft_revision, "document": exported.json()}, format="json")
    assert imported.status_code == 200 and imported.json()["errors"] == []
    assert CallFlow.objects.get(number=other).draft == exported.json()


def test_dry_run_of_the_draft(alice_api, number, alice):
    answer = alice_api.post(flow_url(number, "dry-run"), {
        "at": "2030-01-07T10:00:00Z", "caller": "+441234567890", "inputs": ["2"]}, format="json")
    assert answer.status_code == 200, answer.json()
    nodes = [step["node"] for step in answer.json()["steps"]]
    assert nodes[0] == "menu" and "option-2" in nodes


def test_responders_read_and_admins_write(bob_api, number):
    assert bob_api.get(flow_url(number, "draft")).status_code == 200
    assert bob_api.put(flow_url(number, "draft"), {"revision": 0, "document": {}}, format="json").status_code == 403
    assert bob_api.post(flow_url(number, "publish")).status_code == 403


def test_calendars_crud_and_status(alice_api, acme):
    made = alice_api.post("/api/calendars/", {"name": "Office", "timezone": "Europe/Berlin"}, format="json")
    assert made.status_code == 201, made.json()
    pk = made.json()["id"]
    assert alice_api.post("/api/support-hours-ranges/", {"calendar": pk, "weekday": 0, "start": "09:00", "end": "17:00"},
                          format="json").status_code == 201
    assert alice_api.post("/api/holidays/", {"calendar": pk, "date": "2030-01-14"}, format="json").status_code == 201
    calendar = SupportCalendar.objects.get(pk=pk)
    berlin = calendar.tzinfo
    assert calendar.status_at(dt.datetime(2030, 1, 7, 10, tzinfo=berlin)) == "in_hours"
    assert calendar.status_at(dt.datetime(2030, 1, 7, 18, tzinfo=berlin)) == "out_of_hours"
    assert calendar.status_at(dt.datetime(2030, 1, 14, 10, tzinfo=berlin)) == "holiday"
    bad = alice_api.post("/api/calendars/", {"name": "X", "timezone": "Mars/Olympus"}, format="json")
    assert bad.status_code == 400 and list(bad.json()) == ["timezone"]
    assert alice_api.delete(f"/api/calendars/{pk}/").status_code == 204


def test_a_calendar_is_shared_by_the_numbers_that_use_it(number, acme):
    calendar = number.own_calendar()
    second = RoutingNumberFactory(account=acme, name="Second line", support_calendar=calendar)
    assert set(calendar.numbers.values_list("pk", flat=True)) == {number.pk, second.pk}
    second.timezone = "America/New_York"
    second.save()
    assert SupportCalendar.objects.get(pk=calendar.pk).timezone == "America/New_York"
    assert RoutingNumber.objects.get(pk=number.pk).tzinfo.key == "America/New_York"


def test_the_lookup_costs_the_same_whatever_the_flow_names(number, acme, alice, django_assert_max_num_queries):
    from callrouting.flows.document import Lookup, validate

    data = two_level(number)
    for i in range(30):  # many routes naming many objects: still one query per kind of object
        data["nodes"][f"extra-{i}"] = {"kind": "route", "targets": [
            {"type": "policy", "id": 1000 + i}, {"type": "user", "id": alice.pk}, {"type": "schedule", "id": 2000 + i}],
            "hold_music": 3000 + i}
    with django_assert_max_num_queries(6):
        lookup = Lookup.load(acme, number, data)
    errors = validate(data, lookup)
    messages = {e.message for e in errors}
    assert f"The user {alice.pk} does not exist." not in messages
    assert {"The escalation policy 1000 does not exist.", "The on-call schedule 2000 does not exist.",
            "The audio file of this number 3000 does not exist."} <= messages


def test_published_versions_are_loaded_once_per_process(number, django_assert_num_queries):
    from callrouting.flows import cache

    version_id = number.flow.published_id
    with django_assert_num_queries(1):
        first = cache.load_version(version_id)
    with django_assert_num_queries(0):
        assert cache.load_version(version_id) is first
    assert first.start == "menu" and first.kind("option-1") == "route"
