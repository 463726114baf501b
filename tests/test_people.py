"""The People page and "My contact methods": who may change whom, invitations, contact methods with test calls
and SMS through the real Vonage SDK (against the fake API), and deactivated people never on call, dialled,
previewed or notified.

Personas: alice owns Acme, bob and carol are Acme responders, charlie is an admin of Globex (sees nothing of Acme).
"""
import datetime as dt
import re

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from escalation import people
from escalation.models import ContactMethod, NotificationRule, User
from incidents import services
from incidents.models import Notification
from tests.callrouting_factories import (  # noqa: F401 - fixtures
    RoutingNumberFactory,
    RoutingOptionFactory,
    inline_tasks,
    phone,
    policy_of,
    the_call,
)
from tests.factories import LayerFactory, ScheduleFactory, UserFactory
from tests.incidents_factories import AlertSourceFactory, committed, make_policy, worker  # noqa: F401

pytestmark = pytest.mark.django_db


def as_user(client, user):
    client.force_login(user)
    return client


def logs_in(client, username, password):
    """Whether the login form accepts USERNAME and PASSWORD (through the form, as django-axes needs a request)."""
    return client.post(reverse("login"), {"username": username, "password": password}).status_code == 302


def person_url(user):
    return reverse("web:person", args=[user.pk])


def on_call_schedule(account, *users):
    """A schedule whose one layer (daily shifts from long ago, in USERS' order) has USERS[0] on call today."""
    schedule = ScheduleFactory(account=account, timezone="UTC")
    today = timezone.now().date()
    LayerFactory(schedule=schedule, shift_unit="days", shift_length=10_000, start_date=today - dt.timedelta(days=1),
                 users=list(users))
    return schedule


# --- The list -----------------------------------------------------------------------------------------------------


def test_the_list_shows_role_contact_methods_and_who_is_on_call(client, acme, alice, bob, carol):
    on_call_schedule(acme, bob)
    page = as_user(client, alice).get(reverse("web:people"))
    assert page.status_code == 200
    rows = {person.username: schedules for person, schedules in page.context["rows"]}
    assert rows == {"alice": [], "bob": [on_call_schedule_name(acme)], "carol": []}
    html = page.content.decode()
    assert "+4915110000002" in html and "Responder" in html and "Owner" in html


def on_call_schedule_name(account):
    return account.schedules.get().name


def test_the_list_takes_a_fixed_number_of_queries(client, acme, alice, bob):
    as_user(client, alice)
    on_call_schedule(acme, bob)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("web:people"))
    for n in range(6):
        extra = UserFactory(account=acme, username=f"extra{n}", phone=f"+491511000010{n}")
        ContactMethod.objects.create(user=extra, kind="email", value=f"extra{n}@example.com")
        on_call_schedule(acme, extra)
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("web:people"))
    assert len(page.context["rows"]) == 8
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_another_account_sees_none_of_the_people(client, acme, alice, bob, charlie):
    page = as_user(client, charlie).get(reverse("web:people")).content.decode()
    assert "Charlie" in page and "Alice" not in page and "Bob" not in page
    assert client.get(person_url(bob)).status_code == 404
    assert client.post(reverse("web:person-deactivate", args=[bob.pk])).status_code == 404
    assert User.objects.get(pk=bob.pk).is_active


# --- Responders ---------------------------------------------------------------------------------------------------


def test_a_responder_edits_only_their_own_contact_methods_and_rules(client, acme, alice, bob):
    as_user(client, bob)
    assert client.get(reverse("web:people")).status_code == 403
    assert client.get(person_url(alice)).status_code == 403
    alice_phone = alice.contact_methods.get()
    for url, data in [
        (reverse("web:contact-method-new", args=[alice.pk]), {"kind": "phone", "value": "+4915199999999"}),
        (reverse("web:contact-method", args=[alice.pk, alice_phone.pk]), {"kind": "phone", "value": "+4915199999999"}),
        (reverse("web:contact-method-delete", args=[alice.pk, alice_phone.pk]), {}),
        (reverse("web:notification-rule-new", args=[alice.pk]), {"channel": "sms", "contact_method": alice_phone.pk}),
        (reverse("web:person-role", args=[bob.pk]), {"role": "owner"}),
        (reverse("web:person-role", args=[alice.pk]), {"role": "responder"}),
        (reverse("web:person-deactivate", args=[alice.pk]), {}),
        (reverse("web:person-invite", args=[alice.pk]), {}),
        (reverse("web:person-new"), {"first_name": "Eve", "email": "eve@example.com", "role": "owner"}),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert alice.contact_methods.get().value == "+4915110000001"
    assert User.objects.get(pk=bob.pk).role == "responder" and User.objects.get(pk=alice.pk).role == "owner"
    assert not User.objects.filter(username="eve@example.com").exists()

    # Their own page: a phone (stored in E.164) and a rule for it.
    mine = client.get(reverse("web:me"))
    assert mine.status_code == 200 and "My contact methods" in mine.content.decode()
    assert "Change role" not in mine.content.decode() and "Deactivate" not in mine.content.decode()
    added = client.post(reverse("web:contact-method-new", args=[bob.pk]), {"kind": "phone", "value": "+49 151 2345 6789", "label": "mobile"})
    assert added.status_code == 302 and added["Location"] == reverse("web:me")
    phone_method = bob.contact_methods.get(value="+4915123456789")
    rule = client.post(reverse("web:notification-rule-new", args=[bob.pk]),
                       {"channel": "sms", "contact_method": phone_method.pk, "delay_minutes": 5})
    assert rule.status_code == 302
    assert bob.notification_rules.filter(channel="sms", contact_method=phone_method, delay_minutes=5).exists()


def test_a_bad_phone_number_is_a_field_error_with_an_example(client, alice, bob):
    response = as_user(client, bob).post(reverse("web:contact-method-new", args=[bob.pk]), {"kind": "phone", "value": "0151 12"})
    assert response.status_code == 400
    errors = response.context["contact_form"].errors["value"]
    assert "for example +49 30 1234567" in errors[0]
    assert bob.contact_methods.count() == 1


def test_a_rule_must_use_a_matching_contact_method_of_the_person(client, alice, bob):
    as_user(client, alice)
    response = client.post(reverse("web:notification-rule-new", args=[bob.pk]),
                           {"channel": "voice", "contact_method": alice.contact_methods.get().pk, "delay_minutes": 0})
    assert response.status_code == 400 and "contact_method" in response.context["rule_form"].errors
    email = ContactMethod.objects.create(user=bob, kind="email", value="bob@example.com")
    response = client.post(reverse("web:notification-rule-new", args=[bob.pk]),
                           {"channel": "voice", "contact_method": email.pk, "delay_minutes": 0})
    assert response.status_code == 400
    assert "needs a phone contact method" in str(response.context["rule_form"].errors["contact_method"])


# --- Adding, inviting, roles, deactivation ---------------------------------------------------------------------------


def invitation_link(response):
    return re.search(r'id="invitation-url">([^<]+)<', response.content.decode()).group(1)


def test_an_admin_adds_and_invites_a_responder_who_sets_a_password_once(client, settings, acme, alice):
    settings.PUBLIC_BASE_URL = "http://testserver"
    as_user(client, alice)
    added = client.post(reverse("web:person-new"), {"first_name": "Dana", "last_name": "Lee", "email": "Dana@Example.com", "role": "responder"})
    dana = User.objects.get(username="Dana@example.com")
    assert added.status_code == 302 and added["Location"] == person_url(dana)
    assert dana.account == acme and dana.role == "responder" and not dana.has_usable_password()
    assert list(dana.contact_methods.values_list("kind", "value")) == [("email", "Dana@example.com")]
    again = client.post(reverse("web:person-new"), {"first_name": "D", "email": "dana@example.com", "role": "responder"})
    assert again.status_code == 400 and "email" in again.context["form"].errors

    invited = client.post(reverse("web:person-invite", args=[dana.pk]))
    link = invitation_link(invited)
    assert link.startswith("http://testserver/accounts/invitation/") and not mail.outbox
    client.logout()
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and form_page.context["validlink"]
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": "a long new secret 42", "new_password2": "a long new secret 42"})
    assert done.status_code == 302 and done["Location"] == reverse("web:me")
    assert client.get(reverse("web:me")).context["person"] == dana  # signed in as Dana
    client.logout()
    assert not client.get(link, follow=True).context["validlink"]  # the link worked once
    assert logs_in(client, "Dana@example.com", "a long new secret 42")


def test_the_invitation_is_emailed_when_email_is_configured(client, settings, alice, bob):
    settings.EMAIL_CONFIGURED = True
    invited = as_user(client, alice).post(reverse("web:person-invite", args=[bob.pk]))
    (message,) = mail.outbox
    assert message.to == [bob.email] and invitation_link(invited) in message.body
    assert "also emailed" in invited.content.decode()


def test_roles_owners_and_admins(client, acme, alice, bob, carol):
    as_user(client, alice)
    assert client.post(reverse("web:person-role", args=[bob.pk]), {"role": "admin"}).status_code == 302
    assert User.objects.get(pk=bob.pk).role == "admin"
    # Nobody changes their own role (the last owner cannot lock the account out).
    assert client.post(reverse("web:person-role", args=[alice.pk]), {"role": "responder"}).status_code == 403
    # An admin manages responders and admins, but neither makes owners nor touches one.
    as_user(client, User.objects.get(pk=bob.pk))
    assert client.post(reverse("web:person-role", args=[carol.pk]), {"role": "owner"}).status_code == 400
    assert client.post(reverse("web:person-role", args=[carol.pk]), {"role": "admin"}).status_code == 302
    assert client.post(reverse("web:person-role", args=[alice.pk]), {"role": "responder"}).status_code == 403
    assert client.post(reverse("web:person-deactivate", args=[alice.pk])).status_code == 403
    assert dict(User.objects.values_list("username", "role")) == {"alice": "owner", "bob": "admin", "carol": "admin"}


def test_a_deactivated_person_cannot_log_in_or_use_an_invitation(client, settings, alice, bob):
    settings.PUBLIC_BASE_URL = "http://testserver"
    as_user(client, alice)
    link = invitation_link(client.post(reverse("web:person-invite", args=[bob.pk])))
    assert client.post(reverse("web:person-deactivate", args=[bob.pk])).status_code == 302
    assert not User.objects.get(pk=bob.pk).is_active
    assert client.post(reverse("web:person-invite", args=[bob.pk])).status_code == 302  # refused with a message
    client.logout()
    assert not client.get(link, follow=True).context["validlink"]
    assert not logs_in(client, "bob", "correct horse battery staple")
    as_user(client, alice).post(reverse("web:person-reactivate", args=[bob.pk]))
    assert logs_in(client, "bob", "correct horse battery staple")


# --- Test call and test SMS -------------------------------------------------------------------------------------------


def test_test_call_and_sms_go_through_vonage(client, settings, alice, bob, vonage_api):
    settings.PUBLIC_BASE_URL = "https://callrouting.test"
    bob_phone = bob.contact_methods.get()
    as_user(client, bob)
    response = client.post(reverse("web:contact-method-test-call", args=[bob.pk, bob_phone.pk]), follow=True)
    assert "Sent a test call to +4915110000002" in response.content.decode()
    (call,) = vonage_api.calls_created()
    assert call["to"] == [{"type": "phone", "number": "4915110000002"}]
    assert call["event_url"] == ["https://callrouting.test/incidents/voice/test-call/event"]
    assert call["ncco"][0]["action"] == "talk" and "test call" in call["ncco"][0]["text"] and "Bob" in call["ncco"][0]["text"]
    client.post(reverse("web:contact-method-test-sms", args=[bob.pk, bob_phone.pk]))
    (sms,) = vonage_api.sms_sent()
    assert sms["to"] == "4915110000002" and "test message" in sms["text"]
    # A second test call moments later is refused, not placed.
    again = client.post(reverse("web:contact-method-test-call", args=[bob.pk, bob_phone.pk]), follow=True)
    assert "try again shortly" in again.content.decode() and len(vonage_api.calls_created()) == 1
    # Nobody tests another person's phone but the account's admins.
    alice_phone = alice.contact_methods.get()
    assert client.post(reverse("web:contact-method-test-call", args=[alice.pk, alice_phone.pk])).status_code == 403
    assert len(vonage_api.calls_created()) == 1


def test_a_vonage_error_is_shown_not_raised(client, alice, bob, vonage_api):
    vonage_api.fail_next("POST", r"^/v1/calls$", 401)
    bob_phone = bob.contact_methods.get()
    response = as_user(client, alice).post(reverse("web:contact-method-test-call", args=[bob.pk, bob_phone.pk]), follow=True)
    assert response.status_code == 200 and "The test call to +4915110000002 failed" in response.content.decode()


def test_the_test_call_event_url_is_signed(client, vonage_client):
    # No signature at all: 503, so that Vonage sends it again, signed; a forged one: 401 (an event URL).
    assert client.post("/incidents/voice/test-call/event", {"status": "ringing"}, content_type="application/json").status_code == 503
    forged = client.post("/incidents/voice/test-call/event", {"status": "ringing"}, content_type="application/json",
                         HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert forged.status_code == 401
    assert vonage_client.post_webhook("/incidents/voice/test-call/event", {"uuid": "abc", "status": "answered"}).status_code == 204


# --- Deactivated people are never on call, previewed, dialled or notified -------------------------------------


def test_a_deactivated_person_is_not_on_call_nor_in_the_previews(client, acme, alice, bob, carol):
    schedule = on_call_schedule(acme, bob)
    policy = policy_of(acme, carol)
    policy.rules.get().rule_schedules.create(schedule=schedule, position=0)
    now = timezone.now()
    assert schedule.on_call_at(now) == bob and policy.users_at(now) == [carol, bob]
    people.set_active(bob, False, changed_by=alice)
    carol.is_active = False
    carol.save()
    schedule = type(schedule).objects.with_oncall(now).get(pk=schedule.pk)
    assert schedule.on_call_at(now) is None and schedule.shifts_between(now, now + dt.timedelta(days=1)) == []
    assert type(policy).objects.with_oncall(now).get(pk=policy.pk).users_at(now) == []
    assert people.on_call_now(acme, now) == {}
    number = RoutingNumberFactory(account=acme)
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy)
    as_user(client, alice)
    # The "who would be called" previews of the number and policy pages, the schedules' "on call now", the API.
    assert [row["people"] for row in client.get(reverse("web:number-on-call", args=[number.pk])).context["on_call"]] == [[]]
    assert client.get(reverse("web:policy", args=[policy.pk])).context["on_call"] == []
    assert "Bob" not in client.get(reverse("web:schedules")).content.decode()
    from tests.test_api_resources import api_as

    assert api_as(alice).get(f"/api/escalation-policies/{policy.pk}/on-call/").json() == []


def test_a_deactivated_person_is_offered_for_no_new_row_but_keeps_their_place(client, acme, alice, bob, carol):
    schedule = on_call_schedule(acme, bob, carol)
    layer = schedule.layers.get()
    people.set_active(bob, False, changed_by=alice)
    as_user(client, alice)
    offered = client.get(reverse("web:schedule", args=[schedule.pk])).context["override_form"].fields["user"].queryset
    assert bob not in offered and {alice, carol} <= set(offered)
    members = client.get(reverse("web:layer", args=[schedule.pk, layer.pk])).context["members"]
    bobs_row, carols_row, new_row = members.forms[:3]  # the saved members, then the empty rows to add one
    assert not new_row.instance.pk
    assert bob in bobs_row.fields["user"].queryset and bob not in carols_row.fields["user"].queryset
    assert bob not in new_row.fields["user"].queryset
    refused = client.post(reverse("web:override-new", args=[schedule.pk]), {
        "override-user": bob.pk, "override-start_0": "2031-03-04", "override-start_1": "09:00",
        "override-end_0": "2031-03-05", "override-end_1": "09:00"})
    assert refused.status_code == 400 and "user" in refused.context["override_form"].errors
    assert not schedule.overrides.exists()


def test_a_deactivated_override_falls_through_to_the_rotation(acme, alice, bob):
    schedule = on_call_schedule(acme, alice)
    now = timezone.now()
    schedule.overrides.create(user=bob, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=1))
    assert type(schedule).objects.with_oncall(now).get(pk=schedule.pk).on_call_at(now) == bob
    User.objects.filter(pk=bob.pk).update(is_active=False)
    assert type(schedule).objects.with_oncall(now).get(pk=schedule.pk).on_call_at(now) == alice


def test_a_deactivated_agent_is_never_dialled(phone, acme, alice, bob):
    number = RoutingNumberFactory(account=acme, phone_number="+4930901820", name="Acme support", greeting="Hi.")
    RoutingOptionFactory(routing_number=number, digit=1, label="Outage", escalation_policy=policy_of(acme, alice, bob),
                         simultaneous=True)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    _, uuid = phone.dial(number.phone_number)  # one option: routed at once, no menu
    call = the_call(uuid)
    assert [leg.user for leg in call.legs.all()] == [bob]
    assert [body["to"][0]["number"] for body in phone.dialled()] == ["4915110000002"]


def test_a_deactivated_person_is_not_notified(acme, alice, bob, worker, vonage_api):
    source = AlertSourceFactory(account=acme, name="Monitoring", escalation_policy=make_policy(acme, [([alice, bob], 10)]))
    User.objects.filter(pk=alice.pk).update(is_active=False)
    with committed():
        incident = services.create_incident(alert_source=source, summary="Disk full")
    worker.run()
    assert [n.user for n in incident.notifications.all()] == [bob]
    assert [body["to"][0]["number"] for body in vonage_api.calls_created()] == ["4915110000002"]


def test_a_notification_planned_before_deactivation_is_cancelled(acme, alice, bob, worker, vonage_api):
    rule = bob.notification_rules.get()
    rule.delay_minutes = 5
    rule.save()
    source = AlertSourceFactory(account=acme, name="Monitoring", escalation_policy=make_policy(acme, [([bob], 10)]))
    with committed():
        incident = services.create_incident(alert_source=source, summary="Disk full")
    worker.run()
    (notification,) = incident.notifications.all()
    assert notification.status == Notification.Status.PENDING
    people.set_active(bob, False, changed_by=alice)
    from incidents.notifications import deliver_notification

    assert deliver_notification(notification.pk, 1) == "cancelled"
    notification.refresh_from_db()
    assert notification.status == Notification.Status.CANCELLED and vonage_api.calls_created() == []


def test_a_key_pressed_by_a_deactivated_person_changes_nothing(acme, alice, bob, worker, vonage_client):
    source = AlertSourceFactory(account=acme, name="Monitoring", escalation_policy=make_policy(acme, [([bob], 10)]))
    with committed():
        incident = services.create_incident(alert_source=source, summary="Disk full")
    worker.run()
    notification = incident.notifications.get()
    people.set_active(bob, False, changed_by=alice)
    response = vonage_client.post_webhook(f"/incidents/voice/{notification.token}/input", {"dtmf": {"digits": "4"}})
    assert response.status_code == 200 and "no longer available" in response.json()[0]["text"]
    incident.refresh_from_db()
    assert incident.status == incident.Status.PENDING and incident.assigned_to is None


def test_deleting_a_contact_method_names_its_rules_in_good_english(client, alice, bob):
    phone = bob.contact_methods.get(kind=ContactMethod.Kind.PHONE)
    assert phone.notification_rules.count() == 1
    as_user(client, alice)
    page = client.get(reverse("web:contact-method-delete", args=[bob.pk, phone.pk])).content.decode()
    assert "Its notification rule is deleted with it." in page and "(s)" not in page
    NotificationRule.objects.create(user=bob, channel="sms", contact_method=phone, delay_minutes=5)
    page = client.get(reverse("web:contact-method-delete", args=[bob.pk, phone.pk])).content.decode()
    assert "Its 2 notification rules are deleted with it." in page
