"""Browser tests of the settings pages in headless Chromium, against a live server.

Personas: alice (Acme owner) configures a number end to end and watches the preview change, then its advanced
settings (options, voicemail, where calls go, support hours, a greeting recording she hears in the page); bob (Acme
responder) accepts and resolves an incident; sam (support staff) provisions a number in the admin and alice
then sees it on her numbers page. SCREENSHOT_DIR=<dir> saves screenshots of the pages along the way.
"""
import os
import re

import pytest
from playwright.sync_api import expect

from callrouting.models import NumberAudio, RoutingNumber, SupportHoursRange
from incidents.models import Incident
from tests.browser import browser, log_in, page  # noqa: F401 (fixtures)
from tests.settings_world import wav_bytes, world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def screenshot(page, name):
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def test_admin_configures_a_number_and_sees_the_preview_change(live_server, page, acme, alice, bob):  # noqa: F811
    w = world(acme, alice, bob)
    log_in(page, live_server, "alice")
    page.click("text=Numbers")
    page.click("text=Acme support")
    preview = page.locator("#preview")
    expect(preview).to_have_text("Welcome to Acme. Press 1 or say Outage for Outage. Press 2 or say Billing for Billing.")

    # General settings: the preview follows the typing, before anything is saved.
    page.fill("#id_general-greeting", "Thanks for calling Acme.")
    expect(preview).to_have_text(re.compile(r"^Thanks for calling Acme\. Press 1 or say Outage"))
    page.check("#id_general-greeting_only")
    expect(preview).to_have_text("Thanks for calling Acme.")
    page.uncheck("#id_general-greeting_only")
    page.select_option("#id_general-language", "de-DE")
    expect(preview).to_contain_text("Drücken Sie die 1")
    page.click("text=Save general settings")
    expect(page.locator(".msg.success")).to_have_text("General saved.")
    number = RoutingNumber.objects.get(pk=w.number.pk)
    assert (number.greeting, number.language) == ("Thanks for calling Acme.", "de-DE")

    # Routing options: add a third one in the "new" row, then move it to the top.
    page.fill("#id_options-2-digit", "3")
    page.fill("#id_options-2-label", "Sales")
    page.fill("#id_options-2-escalation_policy", w.policy.name)
    page.check("#id_options-2-simultaneous")
    page.click("text=Save routing options")
    expect(page.locator(".msg.success")).to_have_text("Routing options saved.")
    expect(preview).to_contain_text("Drücken Sie die 3 oder sagen Sie Sales für Sales.")
    sales = number.options.get(digit=3)
    page.click(f"button[form=move-{sales.pk}][value=up]")
    page.click(f"button[form=move-{sales.pk}][value=up]")
    expect(preview).to_have_text(re.compile(r"^Thanks for calling Acme\. Drücken Sie die 3 oder sagen Sie Sales"))
    assert list(number.options.order_by("position").values_list("digit", flat=True)) == [3, 1, 2]

    # A bad value shows the field's error and saves nothing.
    page.fill("#id_options-0-digit", "1")
    page.click("text=Save routing options")
    expect(page.locator("#options .errorlist").first).to_be_visible()
    assert number.options.get(pk=sales.pk).digit == 3

    # Voicemail.
    page.goto(f"{live_server.url}/numbers/{number.pk}/")
    page.check("#id_voicemail-voicemail_enabled")
    page.fill("#id_voicemail-voicemail_greeting", "Please leave a message.")
    page.fill("#id_voicemail-voicemail_max_length", "90")
    page.click("text=Save voicemail")
    expect(page.locator(".msg.success")).to_have_text("Voicemail saved.")
    number.refresh_from_db()
    assert (number.voicemail_enabled, number.voicemail_greeting, number.voicemail_max_length) == (
        True, "Please leave a message.", 90)

    # Deleting an option asks first.
    page.click(f"a[href='/numbers/{number.pk}/options/{sales.pk}/delete/']")
    expect(page.locator("h1")).to_contain_text("Delete the routing option")
    page.click("text=Yes, delete")
    expect(preview).not_to_contain_text("Sales")
    screenshot(page, "number-settings")

    # The two-week timeline of the schedule the option's policy uses.
    page.goto(f"{live_server.url}/schedules/{w.schedule.pk}/")
    expect(page.locator(".tl-row")).to_have_count(14)
    expect(page.locator(".tl-bar").first).to_be_visible()
    screenshot(page, "schedule")


def test_admin_configures_advanced_settings_and_uploads_a_greeting(live_server, page, acme, alice, bob):  # noqa: F811
    w = world(acme, alice, bob)
    number = w.number
    log_in(page, live_server, "alice", next_path=f"/numbers/{number.pk}/")
    preview = page.locator("#preview")
    expect(preview).to_have_text("Welcome to Acme. Press 1 or say Outage for Outage. Press 2 or say Billing for Billing.")

    # A third routing option: the preview reads it out.
    page.fill("#id_options-2-digit", "3")
    page.fill("#id_options-2-label", "Sales")
    page.fill("#id_options-2-escalation_policy", w.policy.name)
    page.click("text=Save routing options")
    expect(page.locator(".msg.success")).to_have_text("Routing options saved.")
    expect(preview).to_have_text(re.compile(r"Press 3 or say Sales for Sales\.$"))
    sales = number.options.get(digit=3)

    # Support hours first (where calls go is offered once they are on): on, in Berlin, with a second range
    # (Tuesday) next to the world's Monday 09-17.
    page.check("#id_hours-support_hours_enabled")
    page.fill("#id_hours-timezone", "Europe/Berlin")
    page.select_option("#id_ranges-1-weekday", "1")
    page.fill("#id_ranges-1-start", "08:30")
    page.fill("#id_ranges-1-end", "12:00")
    page.click("text=Save support hours")
    expect(page.locator(".msg.success")).to_have_text("Support hours saved.")

    # Calls outside support hours go to voicemail: refused while voicemail is off, accepted once it is on.
    page.select_option("#id_targets-out_of_hours_target", "voicemail")
    page.click("#targets-form button[type=submit]")
    expect(page.locator(".msg.error")).to_contain_text("Where calls go not saved")
    expect(page.locator("#targets .errorlist")).to_contain_text("turn voicemail on")
    page.check("#id_voicemail-voicemail_enabled")
    page.fill("#id_voicemail-voicemail_greeting", "Please leave a message.")
    page.click("text=Save voicemail")
    expect(page.locator(".msg.success")).to_have_text("Voicemail saved.")
    page.select_option("#id_targets-in_hours_target", "option")
    page.select_option("#id_targets-in_hours_option", str(sales.pk))
    page.select_option("#id_targets-out_of_hours_target", "voicemail")
    page.click("#targets-form button[type=submit]")
    expect(page.locator(".msg.success")).to_have_text("Where calls go saved.")

    number.refresh_from_db()
    assert (number.support_hours_enabled, number.timezone, number.voicemail_enabled) == (True, "Europe/Berlin", True)
    assert (number.in_hours_target, number.in_hours_option_id, number.out_of_hours_target) == ("option", sales.pk, "voicemail")
    ranges = SupportHoursRange.objects.filter(calendar__numbers=number)
    assert [str(r) for r in ranges] == ["Monday 09:00-17:00", "Tuesday 08:30-12:00"]

    # A greeting recording: uploaded, then played back from its public URL in the page's audio player.
    greeting_field = page.locator("#audio .field", has=page.locator("#id_audio-greeting"))
    expect(greeting_field.locator("audio")).to_have_count(0)
    page.set_input_files("#id_audio-greeting", files=[{"name": "welcome.wav", "mimeType": "audio/wav", "buffer": wav_bytes()}])
    page.click("text=Save audio")
    expect(page.locator(".msg.success")).to_have_text("Custom audio saved.")
    player = greeting_field.locator("audio")
    expect(player).to_be_visible()
    expect(greeting_field).to_contain_text("welcome.wav")
    recording = NumberAudio.objects.get(routing_number=number, kind=NumberAudio.Kind.GREETING)
    assert player.get_attribute("src") == recording.get_absolute_url()
    served = page.request.get(live_server.url + recording.get_absolute_url())
    assert served.status == 200 and served.headers["content-type"] == "audio/wav" and served.body()[:4] == b"RIFF"
    # The preview is a dry run of a call arriving now: in support hours the recording, then Sales's route; outside
    # them the mailbox (its recording, then the beep).
    expect(preview).to_have_text(re.compile(r"^audio: (welcome\.wav Connecting you, please hold\.|mailbox\.wav \(beep)"))
    screenshot(page, "number-advanced-settings")


def test_responder_accepts_and_resolves_an_incident(live_server, page, acme, alice, bob):  # noqa: F811
    w = world(acme, alice, bob)
    log_in(page, live_server, "bob")
    page.click("text=Incidents")
    page.click(f"a:has-text(\"{w.incident.summary}\")")
    expect(page.locator("#incident-status")).to_have_text("Pending")
    expect(page.locator(".transcript")).to_have_text("Please call me back.")
    screenshot(page, "incident")
    page.click("button:has-text('Accept')")
    expect(page.locator("#incident-status")).to_have_text("Accepted")
    expect(page.locator(".timeline")).to_contain_text("Accepted by Bob (web).")
    page.click("button:has-text('Resolve')")
    expect(page.locator("#incident-status")).to_have_text("Resolved")
    expect(page.locator("button:has-text('Resolve')")).to_have_count(0)
    incident = Incident.objects.get(pk=w.incident.pk)
    assert incident.status == Incident.Status.RESOLVED and incident.assigned_to == bob


def test_support_staff_provision_a_number_that_appears_on_the_accounts_page(live_server, browser, acme, alice, sam):  # noqa: F811
    staff = browser.new_context().new_page()
    log_in(staff, live_server, "sam", next_path="/admin/callrouting/routingnumber/")
    staff.click("text=Provision a number")
    staff.select_option("#id_account", label="Acme")
    staff.fill("#id_phone_number", "030 1234")  # not E.164: refused with the field's error
    staff.fill("#id_name", "Acme night line")
    staff.click("input[type=submit]")
    expect(staff.locator(".errorlist")).to_contain_text("is not a")
    staff.fill("#id_phone_number", "+49 30 901 8277")
    staff.click("input[type=submit]")
    expect(staff.locator(".messagelist")).to_contain_text("Provisioned Acme night line (+49309018277) for Acme.")
    staff.context.close()

    owner = browser.new_context().new_page()
    log_in(owner, live_server, "alice", next_path="/numbers/")
    expect(owner.locator("table")).to_contain_text("Acme night line")
    expect(owner.locator("table")).to_contain_text("+49309018277")
    owner.context.close()
