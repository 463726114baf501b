"""The advanced sections of a number's settings page (callrouting/advanced_sections.py): support hours with ranges,
holidays with iCalendar import, targets, auto raise and custom audio. Alice (Acme owner) saves them and sees field
errors on bad input; Bob (responder) cannot change them."""
import datetime as dt
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from callrouting.models import Holiday, NumberAudio, RoutingNumber, SupportHoursRange, Target
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory, policy_of
from tests.test_callrouting_audio import wav_bytes
from tests.test_callrouting_support_hours import ICS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def number(acme, alice):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", voicemail_enabled=False)
    number.outage = RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice))
    return number


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def section(response, slug):
    return next(s for s in response.context["sections"] if s["section"].slug == slug)


def ranges_data(rows):
    data = {"ranges-TOTAL_FORMS": str(len(rows)), "ranges-INITIAL_FORMS": "0"}
    for i, (weekday, start, end) in enumerate(rows):
        data.update({f"ranges-{i}-weekday": weekday, f"ranges-{i}-start": start, f"ranges-{i}-end": end})
    return data


def test_page_shows_the_advanced_sections(as_alice, number):
    page = as_alice.get(reverse("web:number", args=[number.pk])).content.decode()
    for slug in ("targets", "support-hours", "holidays", "incident-behaviour", "audio"):
        assert f'id="{slug}"' in page
    assert 'enctype="multipart/form-data"' in page


def test_support_hours_are_typed_in_24_hour_form_on_the_page_and_in_the_admin(client, as_alice, number, sam):
    """A type="time" input follows the browser's locale (AM/PM in en-US): support hours take HH:MM text, as the
    schedules do."""
    SupportHoursRange.objects.create(calendar=number.own_calendar(), weekday=0, start=dt.time(9), end=dt.time(17, 30))
    page = as_alice.get(reverse("web:number", args=[number.pk])).content.decode()
    admin_client = type(client)()
    admin_client.force_login(sam)
    admin = admin_client.get(reverse("admin:callrouting_supportcalendar_change", args=[number.support_calendar_id])).content.decode()
    for html in (page, admin):
        assert 'type="time"' not in html
        assert re.search(r'<input type="text" name="(support_)?ranges-0-end" value="17:30"[^>]*pattern="\(\[01\]', html)
    response = as_alice.post(reverse("web:number-support-hours", args=[number.pk]), {
        "hours-support_hours_enabled": "on", "hours-timezone": "Europe/Berlin",
        "ranges-TOTAL_FORMS": "1", "ranges-INITIAL_FORMS": "0",
        "ranges-0-weekday": 1, "ranges-0-start": "5:30 PM", "ranges-0-end": "18:00"})
    assert response.status_code == 400
    assert section(response, "support-hours")["formset"].forms[0].errors["start"] == ["Enter a valid time."]


def test_owner_saves_support_hours_and_sees_overlap_errors(as_alice, number):
    url = reverse("web:number-support-hours", args=[number.pk])
    data = {"hours-support_hours_enabled": "on", "hours-timezone": "Europe/Berlin",
            **ranges_data([(0, "09:00", "12:00"), (0, "11:00", "17:00")])}
    response = as_alice.post(url, data)
    assert response.status_code == 400
    formset = section(response, "support-hours")["formset"]
    assert formset.forms[1].errors["start"] == ["Overlaps 09:00-12:00 on the same day."]
    assert not SupportHoursRange.objects.exists()
    data.update(ranges_data([(0, "09:00", "12:00"), (0, "13:00", "00:00")]))
    response = as_alice.post(url, data)
    assert response.status_code == 302 and response["Location"].endswith("#support-hours")
    number.refresh_from_db()
    assert number.support_hours_enabled and number.timezone == "Europe/Berlin"
    assert [str(r) for r in SupportHoursRange.objects.all()] == ["Monday 09:00-12:00", "Monday 13:00-24:00"]


def test_owner_imports_holidays_and_sees_clear_errors(as_alice, number):
    url = reverse("web:number-holidays", args=[number.pk])
    management = {"holidays-TOTAL_FORMS": "0", "holidays-INITIAL_FORMS": "0"}
    bad = SimpleUploadedFile("holidays.ics", b"Christmas: 25 December\n")
    response = as_alice.post(url, {**management, "ical-calendar": bad})
    assert response.status_code == 400
    assert "not an iCalendar file" in section(response, "holidays")["import_form"].errors["calendar"][0]
    response = as_alice.post(url, {**management, "ical-calendar": SimpleUploadedFile("holidays.ics", ICS)})
    assert response.status_code == 302
    assert Holiday.objects.filter(calendar__numbers=number, date=dt.date(2026, 12, 25), name="Christmas").exists()


def test_targets_refuse_voicemail_without_voicemail_and_other_numbers_options(as_alice, number, acme):
    url = reverse("web:number-targets", args=[number.pk])
    other = RoutingOptionFactory(routing_number=RoutingNumberFactory(account=acme), digit=1, label="Other")
    data = {"targets-in_hours_target": "option", "targets-in_hours_option": other.pk, "targets-in_hours_calling": "option",
            "targets-out_of_hours_target": "voicemail", "targets-out_of_hours_calling": "sequential"}
    response = as_alice.post(url, data)
    assert response.status_code == 400
    form = section(response, "targets")["form"]
    assert "in_hours_option" in form.errors and "turn voicemail on" in form.errors["out_of_hours_target"][0]
    number.voicemail_enabled = True
    number.save()
    data["targets-in_hours_option"] = number.outage.pk
    assert as_alice.post(url, data).status_code == 302
    saved = RoutingNumber.objects.get(pk=number.pk)
    assert (saved.in_hours_target, saved.in_hours_option, saved.out_of_hours_target) == (Target.OPTION, number.outage, Target.VOICEMAIL)


def test_owner_uploads_audio_and_sees_errors_for_a_renamed_text_file(as_alice, number):
    url = reverse("web:number-audio", args=[number.pk])
    response = as_alice.post(url, {"audio-greeting": SimpleUploadedFile("hello.wav", b"hello there\n")})
    assert response.status_code == 400
    assert "is not an MP3 or WAV file" in section(response, "audio")["form"].errors["greeting"][0]
    response = as_alice.post(url, {"audio-hold_music": SimpleUploadedFile("music.wav", wav_bytes(channels=2, seconds=1))})
    assert response.status_code == 302
    stored = NumberAudio.objects.get(routing_number=number)
    assert stored.kind == "hold_music" and stored.format == "mp3"
    page = as_alice.get(reverse("web:number", args=[number.pk])).content.decode()
    assert f'src="/audio/{stored.token}.mp3"' in page
    assert as_alice.post(url, {"audio-remove_hold_music": "on"}).status_code == 302
    assert not NumberAudio.objects.exists()


def test_owner_turns_auto_raise_on(as_alice, number):
    response = as_alice.post(reverse("web:number-incident-behaviour", args=[number.pk]), {"behaviour-auto_raise": "on"})
    assert response.status_code == 302
    number.refresh_from_db()
    assert number.auto_raise


def test_responder_cannot_change_advanced_settings(client, bob, number):
    client.force_login(bob)
    response = client.post(reverse("web:number-incident-behaviour", args=[number.pk]), {"behaviour-auto_raise": "on"})
    assert response.status_code == 403
    number.refresh_from_db()
    assert not number.auto_raise
