"""The support-staff admin extras (callrouting/admin_support.py): provisioning a number for an account with the
model's E.164 and uniqueness checks, linking numbers to the Vonage application, search and filters across
accounts, live calls and recent failures.

Personas: sam is support staff; alice owns Acme and must see a number sam provisions on her numbers page;
charlie (Globex) must not.
"""
import pytest
from django.urls import reverse
from django.utils import timezone

from callrouting.models import AgentLeg, Call, RoutingNumber
from incidents import telephony
from incidents.models import Notification
from tests.settings_world import world

PROVISION = "/admin/callrouting/routingnumber/provision/"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def as_sam(client, sam):
    client.force_login(sam)
    return client


def test_provisioned_number_appears_on_the_accounts_page(as_sam, acme, alice, globex, charlie, client):
    page = as_sam.get(PROVISION)
    assert page.status_code == 200 and b"Provision" in page.content
    response = as_sam.post(PROVISION, {"account": acme.pk, "phone_number": "+49 30 901 8299", "name": "Acme sales",
                                       "language": "en-US"})
    number = RoutingNumber.objects.get(phone_number="+49309018299")
    assert response.status_code == 302 and response["Location"].endswith(f"/{number.pk}/change/")
    assert number.account == acme and number.alert_source.name == "Acme sales"
    client.force_login(alice)
    assert "Acme sales" in client.get("/numbers/").content.decode()
    client.force_login(charlie)
    assert "Acme sales" not in client.get("/numbers/").content.decode()


def test_provisioning_checks_e164_and_uniqueness(as_sam, acme, globex):
    bad = as_sam.post(PROVISION, {"account": acme.pk, "phone_number": "0301234", "name": "X", "language": "en-US"})
    assert bad.status_code == 400 and "is not a" in bad.content.decode()
    as_sam.post(PROVISION, {"account": acme.pk, "phone_number": "+4930901830", "name": "A", "language": "en-US"})
    # The same number written differently, for another account: refused.
    again = as_sam.post(PROVISION, {"account": globex.pk, "phone_number": "+49 30 901830", "name": "B", "language": "en-US"})
    assert again.status_code == 400 and "already exists" in again.content.decode()
    assert RoutingNumber.objects.filter(phone_number="+4930901830").count() == 1


def test_account_users_cannot_provision(client, alice):
    client.force_login(alice)
    response = client.get(PROVISION)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_link_to_vonage_needs_credentials(as_sam, acme, settings):
    settings.VONAGE_APPLICATION_ID = ""
    page = as_sam.get(PROVISION).content.decode()
    assert "Vonage credentials are not set" in page
    response = as_sam.post(PROVISION, {"account": acme.pk, "phone_number": "+4930901831", "name": "A", "language": "en-US",
                                       "link_to_vonage": "on"}, follow=True)
    assert response.status_code == 200 and RoutingNumber.objects.filter(phone_number="+4930901831").exists()
    number = RoutingNumber.objects.get(phone_number="+4930901831")
    listing = as_sam.post("/admin/callrouting/routingnumber/", {"action": "link_to_vonage", "_selected_action": [number.pk]},
                          follow=True)
    assert "Vonage credentials are not set" in listing.content.decode()


def test_link_to_vonage_calls_the_telephony_client(as_sam, acme, monkeypatch):
    linked = []
    monkeypatch.setattr(telephony.Telephony, "link_number", lambda self, number: linked.append(number), raising=False)
    response = as_sam.post(PROVISION, {"account": acme.pk, "phone_number": "+4930901832", "name": "A", "language": "en-US",
                                       "link_to_vonage": "on"}, follow=True)
    assert linked == ["+4930901832"] and "Linked to the Vonage application." in response.content.decode()

    def refuse(self, number):
        raise telephony.TelephonyError("Vonage update_number failed with HTTP 401", permanent=True)

    monkeypatch.setattr(telephony.Telephony, "link_number", refuse, raising=False)
    number = RoutingNumber.objects.get(phone_number="+4930901832")
    listing = as_sam.post("/admin/callrouting/routingnumber/", {"action": "link_to_vonage", "_selected_action": [number.pk]},
                          follow=True)
    assert "not linked: Vonage update_number failed with HTTP 401" in listing.content.decode()


def test_link_without_the_telephony_operation_says_so(as_sam, acme, monkeypatch):
    monkeypatch.delattr(telephony.Telephony, "link_number", raising=False)
    response = as_sam.post(PROVISION, {"account": acme.pk, "phone_number": "+4930901833", "name": "A", "language": "en-US",
                                       "link_to_vonage": "on"}, follow=True)
    assert "cannot link numbers yet" in response.content.decode()
    assert RoutingNumber.objects.filter(phone_number="+4930901833").exists()


def test_search_and_filter_across_accounts(as_sam, acme, alice, bob, globex, charlie):
    from tests.factories import UserFactory

    world(acme, alice, bob)
    world(globex, charlie, UserFactory(account=globex, username="dave", phone="+4915110000008"))
    found = as_sam.get("/admin/callrouting/routingnumber/", {"q": "globex"}).content.decode()
    assert "Globex support" in found and "Acme support" not in found
    by_option = as_sam.get("/admin/callrouting/routingnumber/", {"q": "Billing"}).content.decode()
    assert "Globex support" in by_option and "Acme support" in by_option
    by_account = as_sam.get("/admin/callrouting/call/", {"account__id__exact": acme.pk})
    assert [call.account for call in by_account.context["cl"].result_list] == [acme]
    by_name = as_sam.get("/admin/callrouting/call/", {"q": "Globex"})
    assert [call.account for call in by_name.context["cl"].result_list] == [globex]
    assert list(as_sam.get("/admin/callrouting/call/", {"live": "yes"}).context["cl"].result_list) == []


def test_live_calls_and_recent_failures(as_sam, acme, alice, bob):
    w = world(acme, alice, bob)
    live = Call.objects.create(account=acme, routing_number=w.number, vonage_uuid="live-1", caller="+4917600000001",
                               called_number=w.number.phone_number, state=Call.State.ROUTING, option=w.option)
    AgentLeg.objects.create(call=live, position=0, user=bob, phone_number="+4915110000002", status="failed",
                            detail="Vonage create_call failed with HTTP 500")
    Notification.objects.create(incident=w.incident, user=bob, channel="sms", contact="+4915110000002",
                                status=Notification.Status.FAILED, due_at=timezone.now(), error="Vonage send_sms failed")
    page = as_sam.get("/admin/callrouting/call/live/").content.decode()
    assert "+4917600000001" in page and "+4917612345678" not in page  # the ended call is not live
    failures = as_sam.get("/admin/callrouting/call/failures/").content.decode()
    assert "create_call failed with HTTP 500" in failures and "send_sms failed" in failures
    changelist = as_sam.get("/admin/callrouting/call/").content.decode()
    assert reverse("admin:callrouting_call_live") in changelist and reverse("admin:callrouting_call_failures") in changelist


def test_account_users_do_not_see_support_pages(client, alice):
    client.force_login(alice)
    for url in ("/admin/callrouting/call/live/", "/admin/callrouting/call/failures/"):
        assert client.get(url).status_code in (302, 403)
