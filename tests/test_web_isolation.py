"""Isolation of the settings pages, generated over every URL pattern (not hand-picked).

Personas: charlie is an admin of Globex, so role checks never stop him: only account scoping can. Every page
with an id in its path, filled with Acme's rows, must answer him 404 for GET and POST, as for an id that does
not exist. Nested pages are also tried with Globex's own parent and Acme's child.
"""
import itertools

import pytest
from django.urls import reverse

from callrouting.models import RoutingNumber
from incidents.models import Incident
from tests.factories import UserFactory
from tests.settings_world import world
from tests.test_web_pages import web_patterns


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def worlds(acme, alice, bob, globex, charlie):
    dave = UserFactory(account=globex, username="dave", first_name="Dave", phone="+4915110000008")
    return world(acme, alice, bob), world(globex, charlie, dave)


def patterns_with_ids():
    found = [(route, pattern) for route, pattern in web_patterns() if pattern.pattern.converters]
    assert found, "no settings URL with an id: the generator found nothing"
    return found


def test_every_id_in_the_url_map_is_known(worlds):
    acme_world, _ = worlds
    names = {name for _, pattern in patterns_with_ids() for name in pattern.pattern.converters}
    # A new URL kwarg needs a row in tests/settings_world.py, or the isolation test below would not cover it.
    assert names <= set(acme_world.ids), names - set(acme_world.ids)


def test_another_accounts_rows_are_404_on_every_page(client, charlie, worlds):
    acme_world, globex_world = worlds
    client.force_login(charlie)
    tried = []
    for route, pattern in patterns_with_ids():
        names = list(pattern.pattern.converters)
        # Every mix of Acme's and Globex's ids in which at least one id is Acme's.
        for owners in itertools.product((acme_world, globex_world), repeat=len(names)):
            if acme_world not in owners:
                continue
            kwargs = {name: owner.ids[name] for name, owner in zip(names, owners)}
            url = reverse(f"web:{pattern.name}", kwargs=kwargs)
            for method in ("get", "post"):
                response = getattr(client, method)(url, {"direction": "up", "general-name": "Hacked"})
                assert response.status_code == 404, (method, route, kwargs, response.status_code)
                assert b"Acme" not in response.content
            tried.append(route)
    assert set(tried) == {route for route, _ in patterns_with_ids()}
    # Nothing changed at Acme.
    assert RoutingNumber.objects.get(pk=acme_world.number.pk).name == "Acme support"
    assert Incident.objects.get(pk=acme_world.incident.pk).status == Incident.Status.PENDING
    assert acme_world.number.options.count() == 2


def test_lists_show_only_the_own_account(client, charlie, worlds):
    acme_world, globex_world = worlds
    client.force_login(charlie)
    for name in ("home", "numbers", "incidents", "calls", "policies", "schedules", "people", "me"):
        page = client.get(reverse(f"web:{name}")).content.decode()
        assert "Acme" not in page, name
    assert "Globex support" in client.get(reverse("web:numbers")).content.decode()
    # Filters with another account's number are a form error, not a leak.
    response = client.get(reverse("web:incidents"), {"number": acme_world.number.pk})
    assert response.context["form"].errors and [i.pk for i in response.context["page"]] == [globex_world.incident.pk]


def test_forms_offer_only_the_own_accounts_choices(client, charlie, worlds):
    acme_world, globex_world = worlds
    client.force_login(charlie)
    page = client.get(reverse("web:number", args=[globex_world.number.pk])).content.decode()
    assert "Acme on call" not in page and "Globex on call" in page
    layer_page = client.get(reverse("web:layer", args=[globex_world.schedule.pk, globex_world.layer.pk])).content.decode()
    assert "Alice" not in layer_page and "Bob" not in layer_page and "Dave" in layer_page


def test_another_accounts_test_calls_are_404_on_every_test_call_route(client, charlie, worlds):
    """Generated over the Test call page's routes: Acme's call uuid, as a path argument or as the "call" parameter,
    answers Globex's admin 404 (a GET on a POST-only route 405)."""
    from callrouting import testcall
    from callrouting.models import PlacedTestCall

    acme_world, _ = worlds
    uuid = "acme-test-call-uuid"
    PlacedTestCall.objects.create(account=acme_world.number.account, routing_number=acme_world.number,
                                  placed_by=acme_world.admin, vonage_uuid=uuid)
    client.force_login(charlie)
    tried = []
    for pattern in testcall.urlpatterns:
        names = set(pattern.pattern.converters)
        kwargs = {name: (uuid if name == "uuid" else "hangup") for name in names}
        url = reverse(f"testcall:{pattern.name}", kwargs=kwargs)
        if not names and pattern.name != "state":
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(url, {"call": uuid})
            takes = "get" if pattern.name == "state" else "post"
            assert response.status_code == (404 if method == takes else 405), (method, url, response.status_code)
            assert b"acme" not in response.content.lower()
        tried.append(pattern.name)
    assert set(tried) == {"hang-up-call", "leg-action", "state"}
    assert uuid not in client.get(reverse("testcall:calls")).content.decode()
    assert PlacedTestCall.objects.filter(vonage_uuid=uuid).exists()
