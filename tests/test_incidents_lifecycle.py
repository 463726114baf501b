"""The incident state machine (pending -> accepted -> resolved, never reopened) and the admin.

sam (support staff) uses the admin; alice and bob accept and resolve.
"""
import pytest

from incidents import services
from incidents.models import Incident, IncidentEvent
from tests.incidents_factories import AlertSourceFactory, committed, make_policy, worker  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(acme, bob, worker):
    source = AlertSourceFactory(account=acme, name="Monitoring", escalation_policy=make_policy(acme, [([bob], 5)]))
    with committed():
        return services.create_incident(alert_source=source, summary="Database down")


def test_created_pending_with_the_sources_priority_and_a_frozen_policy(incident, bob):
    assert incident.status == Incident.Status.PENDING and incident.priority == "high"
    incident.refresh_from_db()
    assert incident.escalation_generation == 1 and incident.escalation_step == 0
    assert incident.escalation_snapshot["rules"] == [
        {"position": 0, "timeout_minutes": 5, "user_ids": [bob.pk], "schedule_ids": []}
    ]
    assert incident.events.get().message == "Incident created from Monitoring."


def test_pending_accepted_resolved(incident, alice, bob):
    assert services.accept_incident(incident.pk, alice, via="web")
    assert not services.accept_incident(incident.pk, bob, via="phone")  # first one wins
    incident.refresh_from_db()
    assert (incident.status, incident.assigned_to) == (Incident.Status.ACCEPTED, alice)
    assert services.resolve_incident(incident.pk, bob, via="web", reason="Disk replaced.")
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.resolved_at
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds[-2:] == [IncidentEvent.Kind.ACCEPTED, IncidentEvent.Kind.RESOLVED]
    assert incident.events.last().message == "Resolved by Bob (web). Disk replaced."


def test_resolved_never_reopens(incident, alice):
    assert services.resolve_incident(incident.pk, alice)
    assert not services.resolve_incident(incident.pk, alice)
    assert not services.accept_incident(incident.pk, alice)
    assert not services.escalate_incident(incident.pk)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.assigned_to is None
    assert incident.events.filter(kind=IncidentEvent.Kind.RESOLVED).count() == 1


def test_conditional_update_ignores_a_stale_instance(incident, alice, bob):
    stale = Incident.objects.get(pk=incident.pk)
    services.accept_incident(incident.pk, alice)
    # A caller holding an old copy cannot make the transition twice.
    assert not services.accept_incident(stale.pk, bob)
    assert Incident.objects.get(pk=incident.pk).assigned_to == alice


def test_set_priority(incident):
    assert services.set_priority(incident.pk, "low", reason="Weekend.")
    assert not services.set_priority(incident.pk, "low")
    assert incident.events.last().message == "Priority set to Low. Weekend."


def test_admin_lists_and_shows_the_timeline(incident, worker, sam, client):
    worker.run()
    client.force_login(sam)
    listing = client.get("/admin/incidents/incident/?q=Database")
    assert listing.status_code == 200 and b"Database down" in listing.content
    page = client.get(f"/admin/incidents/incident/{incident.pk}/change/")
    assert page.status_code == 200
    assert b"Incident created from Monitoring." in page.content
    assert b"Escalated to rule 1: Bob." in page.content
    assert b"notification attempts" in page.content.lower()
    assert client.get("/admin/incidents/alertsource/").status_code == 200
    assert client.get(f"/admin/incidents/alertsource/{incident.alert_source_id}/change/").status_code == 200
    assert client.get("/admin/incidents/alertactiondelivery/").status_code == 200


def test_admin_actions_call_the_services(incident, sam, client):
    client.force_login(sam)
    response = client.post(
        "/admin/incidents/incident/", {"action": "accept_selected", "_selected_action": [incident.pk]}
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.status, incident.assigned_to) == (Incident.Status.ACCEPTED, sam)
    assert incident.events.get(kind=IncidentEvent.Kind.ACCEPTED).data == {"via": "admin"}
    client.post("/admin/incidents/incident/", {"action": "resolve_selected", "_selected_action": [incident.pk]})
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED


def test_incident_link_asks_anonymous_visitors_to_log_in_first(incident, client):
    response = client.get(f"/incidents/{incident.pk}")
    assert response.status_code == 302 and response.url == f"/accounts/login/?next=/incidents/{incident.pk}"
