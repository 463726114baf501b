"""The incident link (/incidents/<pk>, in SMS, emails and alert-action payloads): each reader lands on a page
they can open.

Personas: sam (support staff, no account) gets the admin page; bob (Acme responder) and charlie (Globex) get the
settings-page incident view, which shows Acme's incident to bob and a 404 to charlie; anonymous readers sign in
first and come back to the link.
"""
import pytest
from django.urls import NoReverseMatch

from incidents import views
from tests.settings_world import world


@pytest.fixture
def incident(acme, alice, bob):
    return world(acme, alice, bob).incident


def test_support_staff_go_to_the_admin(client, sam, incident):
    client.force_login(sam)
    response = client.get(f"/incidents/{incident.pk}")
    assert response.status_code == 302 and response["Location"] == f"/admin/incidents/incident/{incident.pk}/change/"
    assert client.get(response["Location"]).status_code == 200


def test_account_users_go_to_the_settings_page(client, bob, incident):
    client.force_login(bob)
    response = client.get(f"/incidents/{incident.pk}")
    assert response.status_code == 302 and response["Location"] == f"/incidents/{incident.pk}/"
    page = client.get(response["Location"])
    assert page.status_code == 200 and incident.summary in page.content.decode()


def test_another_accounts_user_gets_no_incident(client, charlie, incident):
    client.force_login(charlie)
    response = client.get(f"/incidents/{incident.pk}", follow=True)
    assert response.redirect_chain == [(f"/incidents/{incident.pk}/", 302)] and response.status_code == 404


def test_anonymous_readers_sign_in_first(client, incident):
    response = client.get(f"/incidents/{incident.pk}")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/incidents/{incident.pk}"


def test_without_the_settings_pages_account_users_go_to_the_admin_url(client, bob, incident, monkeypatch):
    monkeypatch.setattr(views, "ACCOUNT_INCIDENT_URL", "web:no-such-page")
    with pytest.raises(NoReverseMatch):
        views.reverse("web:no-such-page", args=[incident.pk])
    client.force_login(bob)
    response = client.get(f"/incidents/{incident.pk}")
    assert response.status_code == 302 and response["Location"] == f"/admin/incidents/incident/{incident.pk}/change/"
