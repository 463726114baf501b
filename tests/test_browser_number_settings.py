"""How a routing number's settings page behaves, in headless Chromium against a live server: a save lands on the
saved section with its confirmation or its errors inside it; leaving with unsaved changes asks first; fields
appear only where they apply; the routing options are reordered with arrows, without position numbers.

Personas: alice (Acme owner) edits Acme's support number (the world's, with options Outage and Billing).
"""
import pytest
from playwright.sync_api import expect

from callrouting.models import RoutingNumber
from tests.browser import browser, log_in, page  # noqa: F401 (fixtures)
from tests.settings_world import world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def number_page(live_server, page, acme, alice, bob):  # noqa: F811
    """alice on the number's page, on a phone-sized screen (where landing on a section matters most)."""
    w = world(acme, alice, bob)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "alice", next_path=f"/numbers/{w.number.pk}/")
    return w


def test_a_saved_section_shows_its_confirmation_inside_it_and_the_page_lands_there(page, number_page):  # noqa: F811
    number = number_page.number
    page.fill("#id_voicemail-voicemail_greeting", "Please leave a message.")
    page.click("text=Save voicemail")
    page.wait_for_url(f"**/numbers/{number.pk}/#voicemail")
    note = page.locator("#voicemail .msg.success")
    expect(note).to_have_text("Voicemail saved.")
    expect(note).to_be_in_viewport()
    expect(page.locator("ul.messages")).to_have_count(0)  # not at the top of the page, out of sight
    assert RoutingNumber.objects.get(pk=number.pk).voicemail_greeting == "Please leave a message."


def test_a_section_with_errors_shows_them_inside_it_and_the_page_lands_there(page, number_page):  # noqa: F811
    number = number_page.number
    page.fill("#id_options-1-digit", "1")  # Billing on Outage's digit
    page.click("text=Save routing options")
    page.wait_for_url(f"**/numbers/{number.pk}/options/#options")
    note = page.locator("#options .msg.error")
    expect(note).to_have_text("Routing options not saved: please correct the errors below.")
    expect(note).to_be_in_viewport()
    expect(page.locator("#options .errorlist").first).to_be_visible()
    expect(page.locator("#general .msg")).to_have_count(0)
    assert sorted(number.options.values_list("digit", flat=True)) == [1, 2]


def test_leaving_with_unsaved_changes_asks_first(live_server, page, number_page):  # noqa: F811
    number = number_page.number
    dialogs = []

    def stay(dialog):
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    # Nothing changed: leaving asks nothing.
    page.click("nav.mainnav >> text=Incidents")
    page.wait_for_url(f"{live_server.url}/incidents/")
    assert dialogs == []

    page.goto(f"{live_server.url}/numbers/{number.pk}/")
    page.click("#id_general-greeting")
    page.keyboard.type(" We are here.")
    page.click("nav.mainnav >> text=Incidents")
    expect(page.locator("#general-form")).to_be_visible()
    assert dialogs == ["beforeunload"]
    assert page.url.startswith(f"{live_server.url}/numbers/{number.pk}/")

    # Saving that section is not leaving it unsaved; a change in another section still counts.
    page.click("#id_voicemail-voicemail_greeting")
    page.keyboard.type("Leave a message.")
    page.click("text=Save general settings")
    expect(page.locator("#general-form")).to_be_visible()
    assert dialogs == ["beforeunload", "beforeunload"]
    page.fill("#id_voicemail-voicemail_greeting", "")
    page.click("text=Save general settings")
    expect(page.locator("#general .msg.success")).to_have_text("General saved.")
    assert dialogs == ["beforeunload", "beforeunload"]
    assert RoutingNumber.objects.get(pk=number.pk).greeting.endswith("We are here.")


def test_fields_appear_only_where_they_apply(page, number_page):  # noqa: F811
    in_hours = page.locator("#id_targets-in_hours_target")
    in_hours_option = page.locator("#id_targets-in_hours_option")
    in_hours_calling = page.locator("#id_targets-in_hours_calling")
    voicemail_only = page.locator("#id_targets-voicemail_only")

    # Support hours off: no targets to choose (every call hears the menu), voicemail-only mode stays.
    expect(in_hours).to_be_hidden()
    expect(in_hours_calling).to_be_hidden()
    expect(page.locator("#id_hours-timezone")).to_be_hidden()
    expect(page.locator("#targets .note")).to_be_visible()
    expect(voicemail_only).to_be_visible()

    page.check("#id_hours-support_hours_enabled")
    expect(in_hours).to_be_visible()
    expect(page.locator("#id_hours-timezone")).to_be_visible()
    expect(page.locator("#targets .note")).to_be_hidden()
    # The option only when the target is an option; the calling style unless the target is voicemail.
    expect(in_hours_option).to_be_hidden()
    expect(in_hours_calling).to_be_visible()
    in_hours.select_option("option")
    expect(in_hours_option).to_be_visible()
    in_hours.select_option("voicemail")
    expect(in_hours_option).to_be_hidden()
    expect(in_hours_calling).to_be_hidden()
    expect(page.locator("#id_targets-out_of_hours_option")).to_be_hidden()

    page.uncheck("#id_hours-support_hours_enabled")
    expect(in_hours).to_be_hidden()


def test_options_are_reordered_with_arrows_and_show_no_position_numbers(page, number_page):  # noqa: F811
    number, outage, billing = number_page.number, number_page.option, number_page.second_option
    order = page.locator("#options td.order")
    expect(order).to_have_count(3)  # Outage, Billing and the new row
    # Arrows beside the saved options, and the row to add one marked "new" where a phone shows it (first column).
    assert [cell.inner_text().strip() for cell in order.all()] == ["↑↓", "↑↓", "new"]
    positions = page.locator("#options input[name$=-position]")
    assert positions.evaluate_all("inputs => inputs.map(i => i.type)") == ["hidden"] * 3
    expect(page.locator(f"button[form=move-{outage.pk}][value=up]")).to_be_disabled()
    expect(page.locator(f"button[form=move-{billing.pk}][value=down]")).to_be_disabled()
    page.click(f"button[form=move-{billing.pk}][value=up]")
    page.wait_for_url(f"**/numbers/{number.pk}/#options")
    assert list(number.options.order_by("position").values_list("label", flat=True)) == ["Billing", "Outage"]
    expect(page.locator(f"button[form=move-{billing.pk}][value=up]")).to_be_disabled()


def test_who_would_be_called_is_filled_in_after_the_page(page, number_page):  # noqa: F811
    card = page.locator("#on-call")
    expect(card.locator(".oncall-option")).to_have_count(2)
    expect(card.locator(".oncall-option").first).to_contain_text("Outage")
    expect(card.locator("ol.people li").first).to_have_text("Alice")
    expect(card.locator("[data-loading]")).to_have_count(0)
