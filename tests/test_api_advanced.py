"""REST API of a number's advanced settings: targets, voicemail-only mode, incident behaviour and support hours on
the number; support-hours ranges, holidays (and the iCalendar import) and custom audio as their own resources.
Errors name the field, as everywhere in the API.

Personas: alice owns Acme (writes), bob is an Acme responder (reads only). Isolation between accounts is in
test_api_isolation.py (generated over the router, so these endpoints are covered there too).
"""
import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from callrouting.models import Holiday, NumberAudio, RoutingNumber, SupportHoursRange
from tests.callrouting_factories import RoutingNumberFactory, RoutingOptionFactory
from tests.test_api_resources import api_as
from tests.settings_world import wav_bytes, world

ICS = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:1@test
DTSTART;VALUE=DATE:20301225
DTEND;VALUE=DATE:20301227
SUMMARY:Christmas
END:VEVENT
BEGIN:VEVENT
UID:2@test
DTSTART;VALUE=DATE:20310101
SUMMARY:New Year
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def acme_world(acme, alice, bob):
    return world(acme, alice, bob)


@pytest.fixture
def alice_api(alice):
    return api_as(alice)


@pytest.fixture
def bob_api(bob):
    return api_as(bob)


# --- Targets, voicemail-only mode, incident behaviour, support hours on the number -------------------------------


def test_number_targets_and_support_hours(alice_api, acme_world):
    w = acme_world
    url = f"/api/numbers/{w.number.pk}/"
    body = {
        "support_hours_enabled": True, "timezone": "Europe/Berlin", "voicemail_enabled": True,
        "in_hours_target": "option", "in_hours_option": w.second_option.pk, "in_hours_calling": "simultaneous",
        "out_of_hours_target": "voicemail", "auto_raise": True, "keep_incident_open": True,
    }
    changed = alice_api.patch(url, body, format="json")
    assert changed.status_code == 200, changed.json()
    for name, value in body.items():
        assert changed.json()[name] == value, name
    number = RoutingNumber.objects.get(pk=w.number.pk)
    assert (number.in_hours_option, number.out_of_hours_target, number.auto_raise) == (w.second_option, "voicemail", True)
    only = alice_api.patch(url, {"voicemail_only": True}, format="json")
    assert only.status_code == 200 and only.json()["voicemail_only"] is True
    assert alice_api.get("/api/numbers/", {"support_hours_enabled": True}).json()["count"] == 1


def test_voicemail_target_with_voicemail_off_is_a_field_error(alice_api, acme_world):
    url = f"/api/numbers/{acme_world.number.pk}/"
    bad = alice_api.patch(url, {"out_of_hours_target": "voicemail"}, format="json")
    assert bad.status_code == 400 and list(bad.json()) == ["out_of_hours_target"]
    only = alice_api.patch(url, {"voicemail_only": True}, format="json")
    assert only.status_code == 400 and list(only.json()) == ["voicemail_only"]
    no_option = alice_api.patch(url, {"in_hours_target": "option"}, format="json")
    assert no_option.status_code == 400 and list(no_option.json()) == ["in_hours_option"]
    bad_tz = alice_api.patch(url, {"timezone": "Mars/Base", "in_hours_calling": "loudly"}, format="json")
    assert bad_tz.status_code == 400 and set(bad_tz.json()) == {"timezone", "in_hours_calling"}
    assert RoutingNumber.objects.get(pk=acme_world.number.pk).out_of_hours_target == "menu"


def test_option_of_another_number_is_a_field_error(alice_api, acme_world, acme, globex, charlie):
    w = acme_world
    other = RoutingNumberFactory(account=acme, name="Acme sales")
    foreign = RoutingOptionFactory(routing_number=other, digit=1, label="Sales", escalation_policy=w.policy)
    bad = alice_api.patch(f"/api/numbers/{w.number.pk}/", {"in_hours_target": "option", "in_hours_option": foreign.pk},
                          format="json")
    assert bad.status_code == 400 and list(bad.json()) == ["in_hours_option"]
    assert "this number's routing options" in bad.json()["in_hours_option"][0]
    # Another account's option does not exist for alice at all.
    globex_number = RoutingNumberFactory(account=globex, name="Globex support")
    theirs = RoutingOptionFactory(routing_number=globex_number, digit=1, label="X",
                                  escalation_policy=world(globex, charlie, charlie).policy)
    leak = alice_api.patch(f"/api/numbers/{w.number.pk}/", {"out_of_hours_target": "option", "out_of_hours_option": theirs.pk},
                           format="json")
    assert leak.status_code == 400 and list(leak.json()) == ["out_of_hours_option"]
    assert "does not exist" in leak.json()["out_of_hours_option"][0]


# --- Support-hours ranges and holidays ------------------------------------------------------------------------------


def test_support_hours_ranges(alice_api, bob_api, acme_world):
    w = acme_world
    url = "/api/support-hours-ranges/"
    made = alice_api.post(url, {"calendar": w.number.support_calendar_id, "weekday": 0, "start": "17:00", "end": "00:00"}, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["end"] == "00:00:00"
    overlap = alice_api.post(url, {"calendar": w.number.support_calendar_id, "weekday": 0, "start": "16:00", "end": "18:00"}, format="json")
    assert overlap.status_code == 400 and list(overlap.json()) == ["start"]
    backwards = alice_api.post(url, {"calendar": w.number.support_calendar_id, "weekday": 1, "start": "18:00", "end": "09:00"}, format="json")
    assert backwards.status_code == 400 and list(backwards.json()) == ["end"]
    seconds = alice_api.post(url, {"calendar": w.number.support_calendar_id, "weekday": 1, "start": "09:00:30", "end": "10:00"}, format="json")
    assert seconds.status_code == 400 and list(seconds.json()) == ["start"]
    bad_day = alice_api.post(url, {"calendar": w.number.support_calendar_id, "weekday": 7, "start": "09:00", "end": "10:00"}, format="json")
    assert bad_day.status_code == 400 and list(bad_day.json()) == ["weekday"]
    # Moving the existing 09-17 range onto the new 17-24 one overlaps too; moving it to another day does not.
    range_url = f"{url}{w.support_range.pk}/"
    assert alice_api.patch(range_url, {"end": "18:00"}, format="json").status_code == 400
    moved = alice_api.patch(range_url, {"weekday": 2}, format="json")
    assert moved.status_code == 200 and moved.json()["weekday"] == 2
    listed = bob_api.get(url, {"calendar": w.number.support_calendar_id}).json()
    assert [(r["weekday"], r["start"]) for r in listed["results"]] == [(0, "17:00:00"), (2, "09:00:00")]
    assert bob_api.post(url, {"calendar": w.number.support_calendar_id, "weekday": 3, "start": "09:00", "end": "10:00"},
                        format="json").status_code == 403
    assert alice_api.delete(range_url).status_code == 204
    assert SupportHoursRange.objects.filter(calendar__numbers=w.number).count() == 1


def test_holidays(alice_api, acme_world):
    w = acme_world
    made = alice_api.post("/api/holidays/", {"calendar": w.number.support_calendar_id, "date": "2030-05-01", "name": "Labour Day"},
                          format="json")
    assert made.status_code == 201, made.json()
    again = alice_api.post("/api/holidays/", {"calendar": w.number.support_calendar_id, "date": "2030-05-01"}, format="json")
    assert again.status_code == 400 and list(again.json()) == ["date"]
    renamed = alice_api.patch(f"/api/holidays/{made.json()['id']}/", {"name": "May Day"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "May Day"
    assert alice_api.delete(f"/api/holidays/{made.json()['id']}/").status_code == 204


def test_import_holidays_from_ical(alice_api, bob_api, acme_world):
    w = acme_world
    url = f"/api/numbers/{w.number.pk}/import-ical/"
    upload = SimpleUploadedFile("holidays.ics", ICS, content_type="text/calendar")
    done = alice_api.post(url, {"file": upload}, format="multipart")
    assert done.status_code == 200, done.json()
    # Christmas (already there: renamed), the 26th and New Year added.
    assert done.json() == {"added": 2, "updated": 1, "removed": 0}
    dates = list(Holiday.objects.filter(calendar__numbers=w.number).values_list("date", flat=True))
    assert dates == [dt.date(2030, 12, 25), dt.date(2030, 12, 26), dt.date(2031, 1, 1)]
    replaced = alice_api.post(url, {"file": SimpleUploadedFile("h.ics", ICS.replace(b"20310101", b"20310102")),
                                    "replace": True}, format="multipart")
    assert replaced.json() == {"added": 1, "updated": 0, "removed": 1}
    bad = alice_api.post(url, {"file": SimpleUploadedFile("h.ics", b"this is not a calendar")}, format="multipart")
    assert bad.status_code == 400 and list(bad.json()) == ["file"]
    missing = alice_api.post(url, {}, format="multipart")
    assert missing.status_code == 400 and list(missing.json()) == ["file"]
    assert bob_api.post(url, {"file": SimpleUploadedFile("h.ics", ICS)}, format="multipart").status_code == 403


# --- Custom audio ---------------------------------------------------------------------------------------------------


def test_upload_list_serve_and_remove_audio(alice_api, client, acme_world, django_capture_on_commit_callbacks):
    w = acme_world
    upload = SimpleUploadedFile("welcome.wav", wav_bytes(), content_type="audio/wav")
    made = alice_api.post("/api/audio/", {"routing_number": w.number.pk, "kind": "greeting", "file": upload},
                          format="multipart")
    assert made.status_code == 201, made.json()
    data = made.json()
    assert (data["kind"], data["format"], data["original_name"]) == ("greeting", "wav", "welcome.wav")
    assert data["url"].startswith("https://callrouting.test/audio/") and data["url"].endswith(".wav")
    served = client.get(urlsplit(data["url"]).path)
    assert served.status_code == 200 and served["Content-Type"] == "audio/wav"
    assert b"".join(served.streaming_content)[:4] == b"RIFF"

    listed = alice_api.get("/api/audio/", {"routing_number": w.number.pk}).json()["results"]
    assert {(a["kind"], a["url"]) for a in listed} >= {("greeting", data["url"])}
    # A second greeting replaces the first, with a new URL.
    again = alice_api.post("/api/audio/", {"routing_number": w.number.pk, "kind": "greeting",
                                           "file": SimpleUploadedFile("again.wav", wav_bytes())}, format="multipart")
    assert again.status_code == 201 and again.json()["id"] == data["id"] and again.json()["url"] != data["url"]
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_api.delete(f"/api/audio/{data['id']}/").status_code == 204
    assert not NumberAudio.objects.filter(routing_number=w.number, kind="greeting").exists()
    assert client.get(urlsplit(again.json()["url"]).path).status_code == 404


def test_audio_validation_errors_name_the_file(alice_api, bob_api, acme_world):
    w = acme_world
    renamed = SimpleUploadedFile("greeting.wav", b"Hello, this is just text pretending to be audio.\n" * 5)
    bad = alice_api.post("/api/audio/", {"routing_number": w.number.pk, "kind": "greeting", "file": renamed},
                         format="multipart")
    assert bad.status_code == 400 and list(bad.json()) == ["file"]
    assert "not an MP3 or WAV" in bad.json()["file"][0]
    bad_kind = alice_api.post("/api/audio/", {"routing_number": w.number.pk, "kind": "ringtone",
                                              "file": SimpleUploadedFile("a.wav", wav_bytes())}, format="multipart")
    assert bad_kind.status_code == 400 and list(bad_kind.json()) == ["kind"]
    assert bob_api.post("/api/audio/", {"routing_number": w.number.pk, "kind": "greeting",
                                        "file": SimpleUploadedFile("a.wav", wav_bytes())}, format="multipart").status_code == 403
    assert bob_api.delete(f"/api/audio/{w.number_audio.pk}/").status_code == 403
    assert alice_api.patch(f"/api/audio/{w.number_audio.pk}/", {"kind": "greeting"}).status_code == 405
    assert not NumberAudio.objects.filter(routing_number=w.number, kind="greeting").exists()
