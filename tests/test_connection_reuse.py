"""A reused database connection never carries one request's tenant or role into the next.

Connections persist between requests (CONN_MAX_AGE; the test client never closes them either), so
requests of two municipalities and an anonymous one run here one after another on one connection,
the failing ones too (a 404 inside a tenant scope, a 500 raised after a query in it). After each,
the connection's raw session settings, read past the tenancy layer, are the outside ones: the
login role, no tenant, no platform flag; and each request saw only its own municipality."""

import pytest
from django.db import connection

import accounts.api
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def persistent(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
    connection.close()  # opened by the fixtures with the test profile's CONN_MAX_AGE=0
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def raw_settings() -> tuple:
    """What the session holds now, read on the raw connection (tenancy's wrapper would first make
    the settings right, which is what this must not rely on)."""
    return connection.connection.execute(
        "SELECT coalesce(current_setting('tsunagu.municipality_id', true), ''), "
        "coalesce(current_setting('tsunagu.platform', true), ''), current_user::text, session_user::text"
    ).fetchone()


def assert_outside(pid: int) -> None:
    assert connection.connection.info.backend_pid == pid, "the same connection, reused"
    tenant, platform, role, login = raw_settings()
    assert (tenant, platform) == ("", "")
    assert role == login


def household_ids(response) -> set[str]:
    assert response.status_code == 200, response.content[:300]
    return {item["id"] for item in response.json()["items"]}


def test_requests_of_two_municipalities_and_anonymous_on_one_connection(town, other_town, persistent, monkeypatch):
    a, b = town.client("coordinator"), other_town.client("coordinator")

    assert household_ids(a.get("households")) == {str(town.household.pk)}
    assert_outside(persistent)
    assert household_ids(b.get("households")) == {str(other_town.household.pk)}
    assert_outside(persistent)

    anonymous = ApiClient()
    assert anonymous.get("households").status_code == 401
    assert_outside(persistent)
    assert anonymous.get("health").status_code == 200
    assert_outside(persistent)

    # 4xx after queries in a tenant scope: the other municipality's household is not found.
    assert a.get(f"households/{other_town.household.pk}").status_code == 404
    assert_outside(persistent)

    # 500 raised by a handler after a query in its tenant scope.
    def failing_scope(user):
        list(user.neighborhoods.all())
        raise RuntimeError("boom")

    monkeypatch.setattr(accounts.api, "_scope", failing_scope)
    failed = b.get("me")
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "server_error"
    assert_outside(persistent)
    monkeypatch.undo()

    # The next requests still see only their own municipality.
    assert household_ids(a.get("households")) == {str(town.household.pk)}
    assert_outside(persistent)
    assert b.get("me").json()["municipality"]["code"] == other_town.municipality.code
    assert_outside(persistent)

    # A token that is no one's, right after a tenant's request: 401, and nothing set.
    response = ApiClient("tsn_not-a-token").get("households")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert_outside(persistent)

