"""Exploit-style tests of an account user attacking the deployment: privilege and tenant isolation on the People
endpoints and pages, invitation links, API tokens, test calls, voicemail playback, server-side request forgery by
URL spelling, hostile iCalendar structure, request sizes of anonymous requests, Content-Security-Policy on error
pages, and secrets in the logs of the people flow.

Personas: alice owns Acme, bob and carol are Acme responders, charlie is an admin of Globex, sam is support staff.
"""
import logging
import re

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from callrouting import advanced, configuration, hours, log_privacy
from callrouting.models import Holiday
from escalation.models import ApiToken, ContactMethod, NotificationRule, User
from incidents import outbound
from tests.callrouting_factories import RoutingNumberFactory
from tests.factories import UserFactory
from tests.test_api_resources import api_as

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def session_as(user):
    client = Client()
    client.force_login(user)
    return client


# --- Privilege: a responder never becomes an admin or owner ------------------------------------------------------------


def test_a_responder_cannot_raise_their_own_role_or_anyone_elses(bob, carol, alice):
    api = api_as(bob)
    for role in ("owner", "admin"):
        assert api.post(f"/api/users/{bob.pk}/role/", {"role": role}, format="json").status_code == 403
        assert api.post(f"/api/users/{carol.pk}/role/", {"role": role}, format="json").status_code == 403
    # The user resource has no update: a PATCH or PUT carrying a role or staff flags is not allowed at all.
    for method in ("patch", "put"):
        response = getattr(api, method)(
            f"/api/users/{bob.pk}/", {"role": "owner", "is_staff": True, "is_superuser": True}, format="json"
        )
        assert response.status_code == 403
        assert getattr(api_as(alice), method)(f"/api/users/{bob.pk}/", {"role": "owner"}, format="json").status_code == 405
    page = session_as(bob)
    assert page.post(reverse("web:person-role", args=[bob.pk]), {"role": "owner"}).status_code == 403
    assert page.post(reverse("web:person-invite", args=[carol.pk])).status_code == 403
    assert dict(User.objects.values_list("username", "role")) == {"alice": "owner", "bob": "responder", "carol": "responder"}
    assert not User.objects.filter(is_staff=True).exists()


def test_mass_assignment_of_account_and_staff_flags_is_ignored(acme, globex, alice, charlie):
    made = api_as(alice).post("/api/users/", {
        "first_name": "Mallory", "email": "mallory@example.com", "role": "responder",
        "account": globex.pk, "is_staff": True, "is_superuser": True, "password": "x", "is_active": False,
    }, format="json")
    assert made.status_code == 201, made.json()
    mallory = User.objects.get(pk=made.json()["id"])
    assert mallory.account == acme and not mallory.is_staff and not mallory.is_superuser
    assert mallory.is_active and not mallory.has_usable_password()
    # A contact method or rule given an "account" or another user's id stays with its own user.
    phone = api_as(alice).post("/api/contact-methods/", {
        "user": mallory.pk, "kind": "phone", "value": "+4915123456780", "account": globex.pk,
    }, format="json")
    assert phone.status_code == 201 and ContactMethod.objects.get(pk=phone.json()["id"]).user == mallory
    # An admin of Globex cannot add a person with an email of Acme's to take over their login.
    again = api_as(charlie).post("/api/users/", {"first_name": "M", "email": "MALLORY@example.com"}, format="json")
    assert again.status_code == 400 and "email" in again.json()


def test_an_admin_cannot_make_an_owner_or_touch_one(alice, bob, carol):
    User.objects.filter(pk=bob.pk).update(role="admin")
    api = api_as(User.objects.get(pk=bob.pk))
    assert api.post(f"/api/users/{carol.pk}/role/", {"role": "owner"}, format="json").status_code == 400
    assert api.post(f"/api/users/{alice.pk}/role/", {"role": "responder"}, format="json").status_code == 403
    assert api.post(f"/api/users/{alice.pk}/invite/").status_code == 403
    assert api.post(f"/api/users/{alice.pk}/deactivate/").status_code == 403
    made = api.post("/api/users/", {"first_name": "O", "email": "o@example.com", "role": "owner"}, format="json")
    assert made.status_code == 400 and "role" in made.json()
    assert User.objects.get(pk=alice.pk).role == "owner" and User.objects.filter(role="owner").count() == 1


def test_a_responder_reads_only_their_own_contact_methods_and_rules(alice, bob, carol):
    api = api_as(bob)
    alice_phone = alice.contact_methods.get()
    alice_rule = alice.notification_rules.get()
    listed = api.get("/api/contact-methods/").json()["results"]
    assert listed and {row["user"] for row in listed} == {bob.pk}
    assert "+4915110000001" not in str(api.get("/api/contact-methods/", {"user": alice.pk}).json())
    assert api.get(f"/api/contact-methods/{alice_phone.pk}/").status_code == 404
    rules = api.get("/api/notification-rules/").json()["results"]
    assert rules and {row["user"] for row in rules} == {bob.pk}
    assert api.get(f"/api/notification-rules/{alice_rule.pk}/").status_code == 404
    people = api.get("/api/users/").json()["results"]
    assert {row["username"] for row in people} == {"alice", "bob", "carol"}
    assert "+4915110000001" not in str(people) and "+4915110000003" not in str(people)
    assert "+4915110000002" in str(people)
    # Writes to another's row stay refused; the owner still reads everyone's.
    assert api.patch(f"/api/contact-methods/{alice_phone.pk}/", {"value": "+4915199999999"}, format="json").status_code == 403
    assert api.post(f"/api/contact-methods/{alice_phone.pk}/test-sms/").status_code == 403
    assert "+4915110000002" in str(api_as(alice).get("/api/contact-methods/").json())
    # The pages: a responder reaches only their own.
    page = session_as(bob)
    assert page.get(reverse("web:person", args=[alice.pk])).status_code == 403
    assert page.get(reverse("web:contact-method", args=[alice.pk, alice_phone.pk])).status_code == 403


def test_test_calls_and_sms_to_another_accounts_number_reach_nobody(alice, charlie, vonage_api):
    acme_phone = alice.contact_methods.get()
    api = api_as(charlie)
    for action in ("test-call", "test-sms"):
        assert api.post(f"/api/contact-methods/{acme_phone.pk}/{action}/").status_code == 404
    page = session_as(charlie)
    for name in ("contact-method-test-call", "contact-method-test-sms"):
        assert page.post(reverse(f"web:{name}", args=[alice.pk, acme_phone.pk])).status_code == 404
        # Globex's own person with Acme's contact method id is a 404 too.
        assert page.post(reverse(f"web:{name}", args=[charlie.pk, acme_phone.pk])).status_code == 404
    assert vonage_api.calls_created() == [] and vonage_api.sms_sent() == []


# --- Invitations --------------------------------------------------------------------------------------------------------


def test_an_invitation_link_works_once_and_only_for_its_own_person(acme, alice, charlie, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    assert api_as(charlie).post(f"/api/users/{alice.pk}/invite/").status_code == 404
    dana = User.objects.get(pk=api_as(alice).post(
        "/api/users/", {"first_name": "Dana", "email": "dana@example.com"}, format="json").json()["id"])
    link = api_as(alice).post(f"/api/users/{dana.pk}/invite/").json()["url"]
    # The link with another person's id (alice's, the owner) is not a valid link.
    uid, token = re.search(r"/invitation/([^/]+)/([^/]+)/", link).groups()
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode
    forged = link.replace(f"/{uid}/", f"/{urlsafe_base64_encode(force_bytes(alice.pk))}/")
    anonymous = Client()
    assert not anonymous.get(forged, follow=True).context["validlink"]
    form = anonymous.get(link, follow=True)
    assert form.context["validlink"]
    done = anonymous.post(form.redirect_chain[-1][0], {"new_password1": "a long new pass phrase", "new_password2": "a long new pass phrase"})
    assert done.status_code == 302
    # Used once: a second visitor with the same link gets nothing.
    again = Client()
    assert not again.get(link, follow=True).context["validlink"]
    assert User.objects.get(pk=alice.pk).check_password(PASSWORD)


# --- API tokens -----------------------------------------------------------------------------------------------------------


def test_another_users_token_cannot_be_seen_or_revoked(alice, bob, charlie):
    token, value = configuration.create_api_token(bob, "bob's script")
    for attacker in (alice, charlie):  # the owner of bob's account too: tokens are their user's own
        api = api_as(attacker)
        assert api.get(f"/api/tokens/{token.pk}/").status_code == 404
        assert api.delete(f"/api/tokens/{token.pk}/").status_code == 404
        assert token.pk not in [row["id"] for row in api.get("/api/tokens/").json()["results"]]
        assert session_as(attacker).post(reverse("web:api-token-revoke", args=[token.pk])).status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {value}")
    assert client.get("/api/users/").status_code == 200
    # Revoked by its user: refused on the very next request.
    assert api_as(bob).delete(f"/api/tokens/{token.pk}/").status_code == 204
    assert client.get("/api/users/").status_code == 401


def test_an_invitation_answer_is_not_cached(alice, bob, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    assert api_as(alice).post(f"/api/users/{bob.pk}/invite/")["Cache-Control"] == "no-store"
    assert session_as(alice).post(reverse("web:person-invite", args=[bob.pk]))["Cache-Control"] == "no-store"


def test_a_deactivated_persons_session_ends_at_once(alice, bob):
    page = session_as(bob)
    assert page.get(reverse("web:me")).status_code == 200
    assert api_as(alice).post(f"/api/users/{bob.pk}/deactivate/").status_code == 200
    assert page.get(reverse("web:me")).status_code == 302
    assert page.get("/api/contact-methods/").status_code in (401, 403)


def test_a_deactivated_persons_token_stops_working(alice, bob):
    _, value = configuration.create_api_token(bob, "script")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {value}")
    assert client.get("/api/users/").status_code == 200
    assert api_as(alice).post(f"/api/users/{bob.pk}/deactivate/").status_code == 200
    assert client.get("/api/users/").status_code == 401


# --- Test calls: another account's call uuid ------------------------------------------------------------------------------


def test_another_accounts_test_call_cannot_be_watched_or_hung_up(alice, charlie, settings):
    from callrouting.models import PlacedTestCall

    number = RoutingNumberFactory(account=alice.account)
    PlacedTestCall.objects.create(account=alice.account, routing_number=number, placed_by=alice, vonage_uuid="acme-call-1")
    page = session_as(charlie)
    assert page.post(reverse("testcall:hang-up-call", args=["acme-call-1"])).status_code == 404
    assert page.get(reverse("testcall:state"), {"call": "acme-call-1"}).status_code == 404
    assert page.post(reverse("testcall:leg-action", args=["acme-call-1", "hangup"]), {"call": "acme-call-1"}).status_code == 404
    listed = page.get(reverse("testcall:calls"))
    assert "acme-call-1" not in listed.content.decode()


# --- Server-side request forgery: spellings of internal hosts ------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, url",
    [
        ("webhook", "https://[0:0:0:0:0:ffff:7f00:1]/hook"),
        ("webhook", "https://[::ffff:7f00:1]/hook"),
        ("webhook", "https://127.1/hook"),
        ("webhook", "https://0x7f000001/hook"),
        ("webhook", "https://017700000001/hook"),
        ("webhook", "https://[fe80::1%25eth0]/hook"),
        ("webhook", "https://[::]/hook"),
        ("webhook", "https://user:pass@example.com/hook"),
        ("slack", "https://hooks.slack.com@127.0.0.1/services/x"),
        ("slack", "https://hooks.slack.com.evil.example/services/x"),
        ("slack", "https://evilhooks.slack.com/services/x"),
        ("teams", "https://webhook.office.com@10.0.0.1/x"),
        ("teams", "https://evilwebhook.office.com/x"),
        ("teams", "https://127.0.0.1\\.webhook.office.com/x"),
        ("webhook", "https://127.0.0.1\\@example.com/x"),
        ("webhook", "https://exa mple.com/x"),
    ],
)
def test_spellings_of_internal_or_foreign_hosts_are_refused(kind, url):
    assert outbound.url_problem(url, kind) is not None
    with pytest.raises(outbound.Refused):
        outbound.post_json(url, {}, timeout=1, kind=kind)


@pytest.mark.parametrize("url", ["https://127.0.0.1./hook", "https://rebound.example.test./hook"])
def test_a_trailing_dot_name_of_loopback_is_refused_when_saved_and_sent(url, monkeypatch):
    import socket

    resolve = socket.getaddrinfo

    def rebound(host, *args, **kwargs):
        if host and host.rstrip(".") == "rebound.example.test":
            return resolve("127.0.0.1", *args, **kwargs)
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    assert (outbound.url_problem(url) or outbound.address_problem(url)).startswith(outbound.NOT_PUBLIC)
    with pytest.raises(outbound.Refused, match="not a public address"):
        outbound.post_json(url, {}, timeout=1)


def test_a_recording_download_never_follows_a_redirect(settings, monkeypatch):
    """A Vonage URL answering with a redirect to an internal host: nothing is fetched from there."""
    from incidents import telephony

    fetched = []

    class Redirecting:
        status_code = 302
        headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
        text = ""

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def iter_content(self, chunk_size):
            yield b"internal"

    def get(session, url, **kwargs):
        fetched.append((url, kwargs.get("allow_redirects", True)))
        return Redirecting()

    monkeypatch.setattr(requests.Session, "get", get)
    client = telephony.get_telephony()
    with pytest.raises(telephony.TelephonyError) as refused:
        client.download_recording("https://api.nexmo.com/v1/files/abc")
    assert refused.value.permanent
    assert fetched == [("https://api.nexmo.com/v1/files/abc", False)]


# --- iCalendar: structure the parser would spend long on -------------------------------------------------------------------


HEAD = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
EVENT = b"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270101\r\nSUMMARY:x\r\nEND:VEVENT\r\n"


@pytest.mark.parametrize(
    "content, message",
    [
        (HEAD + b"BEGIN:X\r\n" * 50 + b"END:X\r\n" * 50 + EVENT + b"END:VCALENDAR\r\n", "nests components"),
        (HEAD + EVENT * 12_000 + b"END:VCALENDAR\r\n", "lines"),
        (HEAD + b"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270101\r\nSUMMARY:x" + b"\r\n x" * 50_000 + b"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "lines"),
        (HEAD + b"BEGIN:VALARM\r\nEND:VALARM\r\n" * 6_500 + EVENT + b"END:VCALENDAR\r\n", "components"),
    ],
)
def test_hostile_calendar_structure_is_refused_before_parsing(content, message, monkeypatch):
    import icalendar

    parsed = []
    monkeypatch.setattr(icalendar.Calendar, "from_ical", lambda *a, **k: parsed.append(1))
    with pytest.raises(hours.CalendarError, match=message):
        hours.holidays_from_ical(content)
    assert parsed == []


def test_the_hostile_file_is_refused_in_the_admin(client, sam, acme):
    number = RoutingNumberFactory(account=acme)
    client.force_login(sam)
    url = reverse("admin:callrouting_routingnumber_change", args=[number.pk])
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and not isinstance(value, (list, dict))}
    hostile = SimpleUploadedFile("x.ics", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:19000101T000000\r\n"
                                 b"RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    response = client.post(url, {**data, "holiday_calendar": hostile})
    assert response.status_code == 200
    assert "holiday_calendar" in response.context["adminform"].form.errors
    assert not Holiday.objects.filter(calendar__numbers=number).exists()


def test_an_oversized_calendar_is_refused_without_reading_it(acme):
    class Upload:
        size = advanced.MAX_CALENDAR_BYTES + 1

        def read(self, *args):  # pragma: no cover - reading it is the failure
            raise AssertionError("read")

    with pytest.raises(hours.CalendarError, match="larger than"):
        advanced.read_holiday_calendar(Upload())


# --- Request sizes for anonymous requests on every kind of path ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/vonage/answer", "/vonage/event", "/api/users/",
                                  "/accounts/invitation/MQ/x-y/", "/no/such/page"])
def test_anonymous_oversized_bodies_are_413_everywhere(path, settings):
    response = Client().generic("POST", path, b"", CONTENT_LENGTH=str(settings.MAX_REQUEST_BODY_SIZE + 1),
                                content_type="application/octet-stream")
    assert response.status_code == 413


def test_many_small_multipart_parts_are_refused(client, settings):
    fields = {f"f{n}": "x" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = client.post("/accounts/login/", fields)
    assert response.status_code == 400


# --- Content-Security-Policy on error and lockout pages ----------------------------------------------------------------------


def test_error_pages_send_the_content_security_policy(client, alice, bob, settings):
    settings.AXES_FAILURE_LIMIT = 3
    assert "script-src 'self'" in client.get("/no/such/page")["Content-Security-Policy"]
    assert "script-src 'self'" in client.get("/admin/no/such/page")["Content-Security-Policy"]
    client.force_login(bob)
    forbidden = client.get(reverse("web:person", args=[alice.pk]))
    assert forbidden.status_code == 403 and "script-src 'self'" in forbidden["Content-Security-Policy"]
    client.logout()
    for _ in range(3):
        client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
    locked = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
    assert locked.status_code == 429 and "script-src 'self'" in locked["Content-Security-Policy"]
    csrf = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "x", "password": "y"})
    assert csrf.status_code == 403 and "script-src 'self'" in csrf["Content-Security-Policy"]


def test_a_server_error_page_sends_the_content_security_policy(alice, monkeypatch):
    from callrouting.web import calls

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(calls, "render", broken)
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    response = client.get(reverse("web:calls"))
    assert response.status_code == 500 and "script-src 'self'" in response["Content-Security-Policy"]


# --- Logs of the people flow ---------------------------------------------------------------------------------------------


def test_the_people_flow_logs_no_invitation_token_password_or_number(acme, alice, settings, caplog, vonage_api):
    settings.PUBLIC_BASE_URL = "http://testserver"
    settings.EMAIL_CONFIGURED = True
    caplog.set_level(logging.DEBUG)
    api = api_as(alice)
    dana = api.post("/api/users/", {"first_name": "Dana", "email": "dana@example.com"}, format="json").json()
    link = api.post(f"/api/users/{dana['id']}/invite/").json()["url"]
    token = link.rstrip("/").rsplit("/", 1)[-1]
    anonymous = Client()
    form = anonymous.get(link, follow=True)
    anonymous.post(form.redirect_chain[-1][0], {"new_password1": "a long new pass phrase", "new_password2": "a long new pass phrase"})
    anonymous.get(link, follow=True)
    # A password reset, logged through Django's own request logging of a bad link too.
    Client().post("/accounts/password_reset/", {"email": "dana@example.com"})
    Client().get(f"/accounts/reset/MQ/{token}/")
    phone = api.post("/api/contact-methods/", {"user": dana["id"], "kind": "phone", "value": "+4917612345678"}, format="json").json()
    api.post(f"/api/contact-methods/{phone['id']}/test-sms/")
    logging.getLogger("callrouting.test").info("path %s", link)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "action=invite" in text
    assert token not in text and "a long new pass phrase" not in text and "4917612345678" not in text
    assert "***5678" in text


def test_api_tokens_in_headers_are_scrubbed():
    value = "0123456789abcdef" * 4
    assert value not in log_privacy.scrub(f"Authorization: Token {value}")
    assert log_privacy.scrub("Token authentication failed") == "Token authentication failed"


@pytest.mark.parametrize("length", ["-1", "abc", "1e9"])
def test_a_malformed_content_length_is_400(length):
    response = Client().generic("POST", "/vonage/answer", b"", CONTENT_LENGTH=length, content_type="application/json")
    assert response.status_code == 400


def test_stored_recordings_are_not_served_from_the_media_url(client, settings, tmp_path, alice):
    from callrouting.models import Voicemail
    from tests.settings_world import world

    settings.MEDIA_ROOT = tmp_path
    w = world(alice.account, alice, UserFactory(account=alice.account, username="resp", phone="+4915110000004"))
    path = Voicemail.objects.get(pk=w.voicemail.pk).recording.name
    assert client.get(f"{settings.MEDIA_URL}{path}").status_code == 404
    client.force_login(alice)
    assert client.get(f"{settings.MEDIA_URL}{path}").status_code == 404
