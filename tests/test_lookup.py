"""Searchable inputs for people, schedules, policies and time zones (callrouting/web/lookup.py): the JSON endpoint
is account-scoped, for signed-in users, and capped; the forms read a typed name without the script; and no page
of a large account ships an <option> per person, schedule or policy.

Personas: alice owns Acme; charlie is an admin of Globex and must never see Acme's people or policies.
"""
import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from callrouting.benchmark.large_account import Size, account_urls, seed_large_account
from callrouting.web.lookup import MAX_RESULTS, LookupChoiceField
from escalation.models import User
from tests.factories import PolicyFactory, UserFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def results(client, kind, q=""):
    response = client.get(reverse(f"web:lookup-{kind}"), {"q": q})
    assert response.status_code == 200
    return [row["label"] for row in response.json()["results"]]


def test_the_endpoint_answers_only_the_own_accounts_rows(client, alice, charlie, acme):
    PolicyFactory(account=acme, name="Acme night shift")
    client.force_login(charlie)
    assert results(client, "policies", "night") == []
    assert not any("Alice" in label for label in results(client, "people", "a"))
    client.force_login(alice)
    assert results(client, "policies", "night") == ["Acme night shift"]
    assert any(label.startswith("Alice") for label in results(client, "people", "ali"))


def test_the_endpoint_needs_a_login_and_caps_its_answer(client, alice, acme):
    assert client.get(reverse("web:lookup-people")).status_code == 302
    for i in range(MAX_RESULTS + 5):
        UserFactory(account=acme, username=f"agent{i}", first_name="Agent", last_name=f"No {i}")
    client.force_login(alice)
    assert len(results(client, "people", "agent")) == MAX_RESULTS
    assert results(client, "timezones", "berl") == ["Europe/Berlin"]
    assert len(results(client, "timezones", "")) == MAX_RESULTS


def test_a_typed_name_is_read_without_the_script(acme, alice, bob):
    bob.first_name, bob.last_name = "Bob", "Builder"
    bob.save()
    UserFactory(account=acme, username="bob2", first_name="Bob", last_name="Builder")
    field = LookupChoiceField(User.objects.filter(account=acme))
    assert field.clean("Bob Builder (bob)") == bob
    assert field.clean("bob") == bob
    assert field.clean(str(bob.pk)) == bob
    assert field.clean(bob.email) == bob
    with pytest.raises(ValidationError, match="Several match"):
        field.clean("Bob Builder")
    with pytest.raises(ValidationError, match="Nothing of that name"):
        field.clean("Nobody Here")


def test_no_page_of_a_large_account_lists_every_person_schedule_or_policy(client, db):
    small = seed_large_account("Few", Size(people=4, schedules=2, policies=2, numbers=2, options=2, incidents=2, calls=2), number_prefix="5005")
    many = seed_large_account("Many", Size(people=40, schedules=25, policies=25, numbers=2, options=2, incidents=2, calls=2), number_prefix="6006")

    def options(seeded):
        client.force_login(seeded.owner)
        return {name: len(re.findall(r"<option\b", client.get(url).content.decode()))
                for name, url in account_urls(seeded) if name.startswith("web:")}

    at_small, at_many = options(small), options(many)
    growing = {name: (at_small[name], at_many[name]) for name in at_small if at_many[name] > at_small[name]}
    assert not growing, growing
