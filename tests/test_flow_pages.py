"""The flow pages (callrouting/web/flows.py) through Django's test client: the editor's tree and its changes, the
stale-draft refusal, validation pinned to nodes, publish and restore, the dry run, templates, and the page's
queries on a bigger flow.

Personas: alice owns Acme (edits), bob is an Acme responder (views only). Isolation between accounts is in
test_web_isolation.py, which covers these pages with every other settings page.
"""
import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from callrouting.flows import actions, compiler, editing
from callrouting.flows.models import FlowVersion, SupportCalendar
from callrouting.models import SupportHoursRange
from tests.callrouting_factories import RoutingNumberFactory
from tests.factories import PolicyFactory, RuleFactory


@pytest.fixture
def number(acme):
    return RoutingNumberFactory(account=acme, name="Acme support", greeting="Welcome to Acme.")


@pytest.fixture
def policy(acme, bob):
    policy = PolicyFactory(account=acme, name="Acme on call")
    RuleFactory(policy=policy, position=0, users=[bob])
    return policy


@pytest.fixture
def calendar(acme, number):
    """Monday to Friday 09:00-17:00, Berlin."""
    calendar = SupportCalendar.objects.create(account=acme, name="Office hours", timezone="Europe/Berlin")
    for weekday in range(5):
        SupportHoursRange.objects.create(calendar=calendar, weekday=weekday, start=dt.time(9), end=dt.time(17))
    return calendar


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def url(name, number, **query):
    base = reverse(f"web:{name}", args=[number.pk])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def draft(number):
    return actions.flow_of(number).__class__.objects.get(number=number)


def save(number, document):
    flow = draft(number)
    actions.save_draft(flow, document, flow.draft_revision)
    return draft(number)


def menu_flow(policy, calendar=None):
    """greeting -> main menu: 1 outage -> route (policy) -> nobody answered: voicemail; 2 billing -> voicemail."""
    nodes = {
        "greeting": {"kind": "message", "name": "Greeting", "text": "Welcome.", "next": "main"},
        "main": {"kind": "menu", "name": "Main menu", "prompt": {"text": "", "audio": None},
                 "branches": [{"key": "1", "keyword": "outage", "next": "outage"},
                              {"key": "2", "keyword": "billing", "next": "vm"}]},
        "outage": {"kind": "route", "name": "Outage team", "targets": [{"type": "policy", "id": policy.pk}],
                   "no_answer": "vm"},
        "vm": {"kind": "voicemail", "name": "Voicemail"},
    }
    start = "greeting"
    if calendar is not None:
        nodes["hours"] = {"kind": "hours", "name": "Office hours", "calendar": calendar.pk, "in_hours": "greeting",
                          "out_of_hours": "vm"}
        start = "hours"
    return {"schema": 1, "language": "en-GB", "start": start, "nodes": nodes}


def post(client, number, op, revision=None, **fields):
    revision = draft(number).draft_revision if revision is None else revision
    return client.post(url("flow-edit", number), {"op": op, "revision": revision, **fields})


def test_the_editor_draws_the_tree_with_labelled_branches(as_alice, number, policy, bob):
    save(number, menu_flow(policy))
    page = as_alice.get(url("flow-editor", number)).content.decode()
    for label in ("1 outage", "2 billing", "no input", "nobody answered"):
        assert f'class="branch-label">{label}</summary>' in page, label
    # Voicemail is drawn once, under the route; the menu's "2 billing" leads there with a go-to link.
    assert page.count('id="node-vm"') == 1
    assert re.search(r'go to <a href="#node-vm">Voicemail</a>', page)
    # Who would be called right now, on the route node, from the engine: bob, on call through the policy.
    outage = page[page.index('id="node-outage"'):]
    assert "Who would be called right now" in outage and "+4915110000002" in outage[:outage.index("</article>") + 2000]


def test_a_responder_sees_the_tree_but_no_forms(client, bob, number, policy):
    save(number, menu_flow(policy))
    client.force_login(bob)
    page = client.get(url("flow-editor", number)).content.decode()
    assert 'id="node-main"' in page and 'name="op"' not in page
    assert post(client, number, "add", at=":start", kind="message").status_code == 403


def test_adding_and_configuring_nodes(as_alice, number, policy):
    save(number, menu_flow(policy))
    response = post(as_alice, number, "add", at="main:branches[1].next", kind="pin")
    assert response.status_code == 302 and response.url.endswith("#node-pin-1")
    flow = draft(number)
    assert flow.draft["nodes"]["main"]["branches"][1]["next"] == "pin-1"
    assert flow.draft["nodes"]["pin-1"]["next"] == "vm"  # inserted in between: the old target follows "correct PIN"
    # Field errors: a PIN that is not digits, retries out of range; nothing saved, errors shown in the node's form.
    bad = post(as_alice, number, "configure", node="pin-1", **{
        "n-pin-1-name": "Key customers", "n-pin-1-prompt": "PIN please", "n-pin-1-retries": "12",
        "n-pin-1-code_code_0": "12a4", "n-pin-1-code_label_0": "Globex"})
    assert bad.status_code == 400
    page = bad.content.decode()
    node = page[page.index('id="node-pin-1"'):]
    assert "A PIN is digits only." in node and "less than or equal to 9" in node
    assert draft(number).draft_revision == flow.draft_revision
    good = post(as_alice, number, "configure", node="pin-1", **{
        "n-pin-1-name": "Key customers", "n-pin-1-prompt": "PIN please", "n-pin-1-retries": "3",
        "n-pin-1-code_code_0": "1234", "n-pin-1-code_label_0": "Globex"})
    assert good.status_code == 302
    pin = draft(number).draft["nodes"]["pin-1"]
    assert pin["codes"] == [{"code": "1234", "label": "Globex"}] and pin["name"] == "Key customers"


def test_a_stale_save_is_refused_with_a_reload_link(as_alice, number, policy):
    flow = save(number, menu_flow(policy))
    seen = flow.draft_revision
    # Another admin saves first.
    save(number, {**flow.draft, "nodes": {**flow.draft["nodes"], "greeting": {**flow.draft["nodes"]["greeting"], "text": "Hi!"}}})
    response = post(as_alice, number, "add", revision=seen, at="outage:no_answer", kind="hangup")
    assert response.status_code == 409
    page = response.content.decode()
    assert "someone else changed this flow" in page and f'href="{url("flow-editor", number)}">Reload the flow' in page
    after = draft(number)
    assert after.draft["nodes"]["greeting"]["text"] == "Hi!" and "hangup-1" not in after.draft["nodes"]


def test_move_copy_and_delete_subtrees(as_alice, number, policy):
    save(number, menu_flow(policy))
    assert post(as_alice, number, "add", at="main:no_input", kind="hangup").status_code == 302
    # Move the outage route (with its voicemail) from key 1 to... key 1 is the only place: copy it to a new key.
    document = draft(number).draft
    document["nodes"]["main"]["branches"] += [{"key": "3", "keyword": "sales", "next": None},
                                              {"key": "4", "keyword": "press", "next": None}]
    save(number, document)
    assert post(as_alice, number, "copy", node="outage", to="main:branches[2].next").status_code == 302
    copied = draft(number).draft
    copy_id = copied["nodes"]["main"]["branches"][2]["next"]
    assert copied["nodes"][copy_id]["name"] == "Outage team (copy)"
    refused = post(as_alice, number, "move", node="hangup-1", to="outage:no_answer")
    assert refused.status_code == 302  # the branch is taken by the voicemail: refused with a message, nothing moved
    assert "Choose an empty branch" in as_alice.get(refused.url).content.decode()
    assert draft(number).draft["nodes"]["outage"]["no_answer"] == "vm"
    assert post(as_alice, number, "move", node="hangup-1", to="main:branches[3].next").status_code == 302
    moved = draft(number).draft["nodes"]
    assert moved["main"]["no_input"] is None and moved["main"]["branches"][3]["next"] == "hangup-1"
    # Delete: a confirmation page lists what goes, then the POST removes it.
    page = as_alice.get(url("flow-delete", number, node="outage")).content.decode()
    assert "Outage team" in page and "Voicemail" in page and "Main menu → 2 billing" in page
    assert post(as_alice, number, "delete", node="outage").status_code == 302
    assert "outage" in draft(number).draft["nodes"]  # not without confirmed=yes
    assert post(as_alice, number, "delete", node="outage", confirmed="yes").status_code == 302
    nodes = draft(number).draft["nodes"]
    assert "outage" not in nodes and "vm" not in nodes and nodes["main"]["branches"][1]["next"] is None


def test_validation_errors_are_pinned_and_publishing_waits_for_them(as_alice, number, policy):
    document = menu_flow(policy)
    document["nodes"]["outage"]["targets"] = []
    save(number, document)
    page = as_alice.get(url("flow-editor", number)).content.decode()
    outage = page[page.index('id="node-outage"'):page.index('id="node-vm"')]
    assert "node-problems" in outage and "target" in outage
    versions = FlowVersion.objects.filter(flow__number=number).count()
    refused = as_alice.post(url("flow-publish", number), {"revision": draft(number).draft_revision}, follow=True)
    assert "Not published" in refused.content.decode()
    assert FlowVersion.objects.filter(flow__number=number).count() == versions
    document["nodes"]["outage"]["targets"] = [{"type": "policy", "id": policy.pk}]
    save(number, document)
    assert "No problems" in as_alice.get(url("flow-editor", number)).content.decode()
    published = as_alice.post(url("flow-publish", number), {"revision": draft(number).draft_revision}, follow=True)
    assert "Published version" in published.content.decode()
    version = draft(number).published
    assert version.document["nodes"]["outage"]["targets"] == [{"type": "policy", "id": policy.pk}]


def test_versions_list_and_restore(as_alice, alice, number, policy):
    save(number, menu_flow(policy))
    first = actions.publish(draft(number), alice)
    changed = menu_flow(policy)
    del changed["nodes"]["greeting"]
    changed["start"] = "main"
    save(number, changed)
    second = actions.publish(draft(number), alice)
    page = as_alice.get(url("flow-versions", number)).content.decode()
    assert f'id="version-{first.number}"' in page and f'id="version-{second.number}"' in page
    assert "1 node removed" in page and "Alice" in page
    response = as_alice.post(url("flow-restore", number), {"version": first.pk, "revision": draft(number).draft_revision})
    assert response.status_code == 302
    assert draft(number).draft["nodes"]["greeting"]["text"] == "Welcome."
    assert draft(number).published_id == second.pk  # restoring changes the draft only


def test_dry_run_of_an_out_of_hours_call_and_of_a_version(as_alice, alice, number, policy, calendar):
    save(number, menu_flow(policy, calendar))
    saturday_noon = "2030-06-01T12:00"
    page = as_alice.get(url("flow-dry-run", number, when=saturday_noon, caller="%2B441234567890", inputs="")).content.decode()
    result = page[page.index('id="result"'):page.index("</section>")]
    assert "Office hours" in result and "Voicemail" in result and "Main menu" not in result
    assert re.search(r'class="node kind-voicemail lit', page)
    weekday = as_alice.get(url("flow-dry-run", number, when="2030-06-03T10:00", inputs="1,nobody")).content.decode()
    result = weekday[weekday.index('id="result"'):weekday.index("</section>")]
    assert "The caller presses 1" in result and "Bob" in result and "Nobody answers" in result
    assert result.index("Outage team") < result.index("Voicemail")
    version = actions.publish(draft(number), alice)
    on_version = as_alice.get(url("flow-dry-run", number, version=version.pk, when=saturday_noon)).content.decode()
    assert f"A call to version {version.number}" in on_version
    bad = as_alice.get(url("flow-dry-run", number, when="yesterday"))
    assert bad.status_code == 200 and "Enter a valid date/time" in bad.content.decode()


@pytest.mark.parametrize("template", ["simple", "after_hours", "two_level", "pin", "chain"])
def test_templates_start_a_draft(as_alice, number, policy, template):
    response = post(as_alice, number, "template", template=template)
    assert response.status_code == 302
    document = draft(number).draft
    if template == "simple":
        assert document == actions._normal(compiler.compile_number(number))
    assert editing.build_tree(document).unreachable == []
    assert as_alice.get(url("flow-editor", number)).status_code == 200


def wide_flow(policy, routes):
    """A menu with ROUTES keys, each to a route of the policy, each route's no answer to voicemail."""
    nodes = {"main": {"kind": "menu", "name": "Main", "prompt": {"text": "", "audio": None}, "branches": []},
             "vm": {"kind": "voicemail", "name": "Voicemail"}}
    for i in range(routes):
        key = "1234567890*#"[i]
        nodes["main"]["branches"].append({"key": key, "keyword": f"team {i}", "next": f"r{i}"})
        nodes[f"r{i}"] = {"kind": "route", "name": f"Team {i}", "targets": [{"type": "policy", "id": policy.pk},
                                                                            {"type": "external", "number": "+442071234567"}],
                          "no_answer": "vm"}
    return {"schema": 1, "language": "en-GB", "start": "main", "nodes": nodes}


def test_the_editor_makes_as_many_queries_for_a_bigger_flow(as_alice, number, policy):
    def count(document):
        save(number, document)
        for name in ("flow-editor", "flow-dry-run"):
            as_alice.get(url(name, number))
        with CaptureQueriesContext(connection) as editor:
            assert as_alice.get(url("flow-editor", number)).status_code == 200
        with CaptureQueriesContext(connection) as dry:
            assert as_alice.get(url("flow-dry-run", number, inputs="1,nobody")).status_code == 200
        return len(editor), len(dry)

    small, big = count(wide_flow(policy, 2)), count(wide_flow(policy, 12))
    assert small == big, (small, big)
