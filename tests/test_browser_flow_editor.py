"""The flow editor in headless Chromium against a live server.

alice (Acme's owner) clears the draft and builds a two-level menu: 1 outage -> 1 Europe -> Bob, then a chain to
the team lead's external number, then voicemail; 2 key customers -> a PIN -> Bob, a wrong PIN hangs up. The chain's
route has no target at first: the error shows on that node and Publish is refused until she adds the number. She
publishes, puts support hours in front (out of hours: voicemail), publishes again, dry-runs a Saturday call (the
path lit up ends in voicemail), and restores the first version. On a 390 px screen the tree fits the width and its
deeper branches start collapsed. The test saves a picture of the editor: into its temporary folder, or, with
UPDATE_DOCS_SCREENSHOTS=1, over the README's docs/flow-editor.png (so a plain run leaves the checkout clean).
"""
import datetime as dt
import os
import pathlib

import pytest
from playwright.sync_api import expect

from callrouting.flows.models import CallFlow, FlowVersion, SupportCalendar
from callrouting.models import SupportHoursRange
from tests.browser import browser, log_in, page  # noqa: F401 (fixtures)
from tests.callrouting_factories import RoutingNumberFactory
from tests.factories import PolicyFactory, RuleFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DOCS_SCREENSHOT = pathlib.Path(__file__).resolve().parent.parent / "docs" / "flow-editor.png"
LEAD = "+442071234567"


@pytest.fixture
def number(acme):
    number = RoutingNumberFactory(account=acme, name="Acme support", greeting="Welcome to Acme.")
    calendar = SupportCalendar.objects.create(account=acme, name="Office hours", timezone="Europe/London")
    for weekday in range(5):
        SupportHoursRange.objects.create(calendar=calendar, weekday=weekday, start=dt.time(9), end=dt.time(17))
    return number


def draft(number):
    return CallFlow.objects.get(number=number).draft


def branch(page, position):
    return page.locator(f'li.branch[data-branch="{position}"]').first


def add(page, position, kind_label):
    """Add a node of KIND_LABEL on the branch at POSITION; returns after the page reloaded."""
    item = branch(page, position)
    control = item.locator(":scope > details > details.add-node")
    control.locator("summary").click()
    with page.expect_navigation():
        control.locator(".palette button", has_text=kind_label).click()


def configure(page, node_id, fields, checks=()):
    card = page.locator(f"#node-{node_id}")
    details = card.locator("details.configure").first
    if not details.evaluate("d => d.open"):  # a form with errors is shown open
        details.locator("summary").click()
    for name, value in fields.items():
        control = card.locator(f'[name="n-{node_id}-{name}"]')
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    for name in checks:
        card.locator(f'[name="n-{node_id}-{name}"]').check()
    with page.expect_navigation():
        card.locator("form.node-form button[type=submit]").first.click()


def test_build_validate_publish_dry_run_and_restore(live_server, page, number, alice, bob, tmp_path):  # noqa: F811
    base = live_server.url
    screenshot = DOCS_SCREENSHOT if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1" else tmp_path / "flow-editor.png"
    log_in(page, live_server, "alice", next_path=f"/numbers/{number.pk}/flow/")
    # Start from nothing: delete the start node (today's settings) and everything below it.
    start = draft(number)["start"]
    page.locator(f"#node-{start} a.delete-node").first.click()
    expect(page.locator("h1")).to_contain_text("from the draft?")
    page.click("text=Yes, delete")
    expect(page.locator("li.branch[data-branch=':start'] .empty-branch")).to_be_visible()

    add(page, ":start", "Menu")
    configure(page, "menu-1", {"name": "Main menu", "key_key_0": "1", "key_keyword_0": "outage"})
    configure(page, "menu-1", {"key_key_1": "2", "key_keyword_1": "key customers"})
    expect(branch(page, "menu-1:branches[1].next").locator("summary.branch-label")).to_have_text("2 key customers")

    add(page, "menu-1:branches[0].next", "Menu")
    configure(page, "menu-2", {"name": "Outage region", "key_key_0": "1", "key_keyword_0": "Europe"})
    add(page, "menu-2:branches[0].next", "Route call")
    configure(page, "route-1", {"name": "Europe on call", "add_user": "Bob (bob)"})
    expect(page.locator("#node-route-1 .calling")).to_contain_text("+4915110000002")
    add(page, "route-1:no_answer", "Route call")
    configure(page, "route-2", {"name": "Team lead's mobile"})
    add(page, "route-2:no_answer", "Voicemail")
    add(page, "menu-1:branches[1].next", "PIN")
    configure(page, "pin-1", {"name": "Key customers", "code_code_0": "1234", "code_label_0": "Globex"})
    add(page, "pin-1:next", "Route call")
    configure(page, "route-3", {"name": "Priority line", "add_user": "Bob (bob)"})
    add(page, "pin-1:wrong", "Hang up")

    # The chain's second route has no target yet: the error is on that node, and Publish is refused.
    problems = page.locator("#node-route-2 > .node-problems")
    expect(problems).to_contain_text("target")
    with page.expect_navigation():
        page.click("#publish")
    expect(page.locator(".messages .msg.error")).to_contain_text("Not published")
    assert not FlowVersion.objects.filter(flow__number=number, published_by=alice).exists()
    # A bad number is a field error in the node's form; a good one fixes the node.
    configure(page, "route-2", {"add_number": "12345", "add_label": "Team lead"})
    expect(page.locator("#node-route-2 form.node-form .errorlist").first).to_contain_text("is not a phone number")
    configure(page, "route-2", {"add_number": LEAD, "add_label": "Team lead"})
    expect(problems).to_have_count(0)
    expect(page.locator("#problems")).to_contain_text("No problems")
    page.set_viewport_size({"width": 1280, "height": 1500})
    screenshot.parent.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshot), full_page=False)

    with page.expect_navigation():
        page.click("#publish")
    expect(page.locator(".messages .msg.success")).to_contain_text("Published version")
    first = FlowVersion.objects.filter(flow__number=number).order_by("-number").first()
    nodes = first.document["nodes"]
    assert nodes["menu-1"]["branches"][0]["next"] == "menu-2" and nodes["route-1"]["no_answer"] == "route-2"
    assert nodes["route-2"]["targets"] == [{"type": "external", "number": LEAD, "label": "Team lead"}]
    assert nodes["route-2"]["no_answer"] == "voicemail-1" and nodes["pin-1"]["wrong"] == "hangup-1"

    # Support hours in front of the menu: out of hours goes to a voicemail of its own.
    page.goto(f"{base}/numbers/{number.pk}/flow/")
    add(page, ":start", "Support hours")
    configure(page, "hours-1", {"name": "Office hours", "calendar": str(SupportCalendar.objects.get().pk)})
    add(page, "hours-1:out_of_hours", "Voicemail")
    configure(page, "voicemail-2", {"name": "After-hours voicemail", "greeting": "We are closed."})
    with page.expect_navigation():
        page.click("#publish")
    second = FlowVersion.objects.filter(flow__number=number).order_by("-number").first()
    assert second.number == first.number + 1 and second.document["start"] == "hours-1"
    expect(page.locator(f"#version-{second.number}")).to_contain_text("2 nodes added")

    # Dry run: a Saturday noon call ends in the after-hours voicemail; the path is lit in the tree.
    page.goto(f"{base}/numbers/{number.pk}/flow/dry-run/")
    page.fill("#id_when", "2030-06-01T12:00")
    page.fill("#id_caller", "+441234567890")
    page.click("#run")
    result = page.locator("#result")
    expect(result).to_contain_text("Office hours")
    expect(result).to_contain_text("We are closed.")
    expect(page.locator("#node-voicemail-2.lit")).to_be_visible()
    expect(page.locator("#node-menu-1.lit")).to_have_count(0)
    # A weekday call pressing 1, 1, with nobody answering: Bob, then the lead's number, then voicemail.
    page.fill("#id_when", "2030-06-03T10:00")
    page.fill("#id_inputs", "1, 1, nobody, nobody")
    page.click("#run")
    dialled = page.locator("#result ol.dialled")
    expect(dialled.first).to_contain_text("Bob")
    expect(dialled.nth(1)).to_contain_text("Team lead")
    expect(page.locator("#node-voicemail-1.lit")).to_be_visible()

    # Restore the first version as the draft: support hours are gone from the draft, version 2 stays live.
    page.goto(f"{base}/numbers/{number.pk}/flow/versions/")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.locator(f"#version-{first.number} button.restore").click()
    expect(page.locator(".messages .msg.success")).to_contain_text(f"Version {first.number} is now the draft")
    expect(page.locator("#node-hours-1")).to_have_count(0)
    assert draft(number)["start"] == "menu-1"
    assert CallFlow.objects.get(number=number).published_id == second.pk


def test_a_second_admins_stale_save_is_refused(live_server, page, number, alice, carol):  # noqa: F811
    carol.role = "admin"
    carol.save()
    log_in(page, live_server, "alice", next_path=f"/numbers/{number.pk}/flow/")
    start = draft(number)["start"]
    # Carol saves from another browser while alice's page is open.
    other = page.context.browser.new_context()
    other_page = other.new_page()
    log_in(other_page, live_server, "carol", next_path=f"/numbers/{number.pk}/flow/")
    configure(other_page, start, {"name": "Carol's greeting"})
    other.close()
    configure(page, start, {"name": "Alice's greeting"})
    expect(page.locator(".conflict")).to_contain_text("someone else changed this flow")
    page.click("text=Reload the flow")
    expect(page.locator(f"#node-{start} .node-name")).to_have_text("Carol's greeting")
    assert draft(number)["nodes"][start]["name"] == "Carol's greeting"


def test_the_editor_at_390_px(live_server, page, number, alice, bob):  # noqa: F811
    RuleFactory(policy=PolicyFactory(account=number.account, name="Acme on call"), position=0, users=[bob])
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "alice", next_path=f"/numbers/{number.pk}/flow/")
    page.locator("details.starters > summary").click()
    page.select_option("#id_template", "two_level")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("text=Use this template")
    expect(page.locator("#node-main")).to_be_visible()
    expect(page.locator("#problems")).to_contain_text("No problems")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    # Deeper branches start collapsed; a tap on a branch's label opens it.
    europe = page.locator("#node-europe")
    expect(europe).to_be_hidden()
    page.locator('li.branch[data-branch="outage:branches[0].next"] > details > summary').click()
    expect(europe).to_be_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    # Adding a node works at this width too.
    billing = page.locator('li.branch[data-branch="billing:no_answer"]')
    expect(billing.locator(".goto")).to_contain_text("Voicemail")
    billing.locator(":scope > details > summary").click()
    # The go-to link opens the collapsed branches on the way to the node it names.
    billing.locator(".goto a").click()
    expect(page.locator("#node-vm")).to_be_in_viewport()
    page.locator("#node-vm a.delete-node").click()
    with page.expect_navigation():
        page.click("text=Yes, delete")
    # Back at the deleted node's parent, with its branches open.
    expect(page.locator('li.branch[data-branch="europe:no_answer"] .empty-branch')).to_be_in_viewport()
    billing.locator(":scope > details > summary").click()
    add(page, "billing:no_answer", "Hang up")
    assert draft(number)["nodes"]["billing"]["no_answer"] == "hangup-1"
    # The dry run fits the width too, and opens the collapsed branches on the call's path.
    page.goto(f"{live_server.url}/numbers/{number.pk}/flow/dry-run/?inputs=1,1,nobody")
    expect(page.locator("#node-europe.lit")).to_be_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    page.goto(f"{live_server.url}/numbers/{number.pk}/flow/versions/")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
