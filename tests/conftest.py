"""Shared fixtures and personas (settings: tests/settings.py)."""
import pytest

from tests.factories import AccountFactory, UserFactory

# Personas. Acme is the account under test; Globex is the other tenant that must never see Acme's data.
#   alice   - owner of Acme (account admin)
#   bob     - responder at Acme
#   carol   - responder at Acme
#   charlie - admin of Globex: sees nothing of Acme
#   sam     - support staff (Django staff, no account), works across accounts in the admin


@pytest.fixture
def acme(db):
    return AccountFactory(name="Acme", slug="acme")


@pytest.fixture
def globex(db):
    return AccountFactory(name="Globex", slug="globex")


@pytest.fixture
def alice(acme):
    return UserFactory(account=acme, username="alice", first_name="Alice", role="owner", phone="+4915110000001")


@pytest.fixture
def bob(acme):
    return UserFactory(account=acme, username="bob", first_name="Bob", phone="+4915110000002")


@pytest.fixture
def carol(acme):
    return UserFactory(account=acme, username="carol", first_name="Carol", phone="+4915110000003")


@pytest.fixture
def charlie(globex):
    return UserFactory(account=globex, username="charlie", first_name="Charlie", role="admin", phone="+4915110000009")


@pytest.fixture
def sam(db):
    return UserFactory(account=None, username="sam", first_name="Sam", is_staff=True, is_superuser=True)
