"""The per-request floor (issue 15): what a token-authenticated API request no longer does, and
what it must still do.

- The token check is one statement (accounts.services.resolve_token) and beats any cache: a token
  revoked, an account deactivated or a token expired is refused on the very next request.
- A request with a device token loads no session, sets no cookie and leaves no CSRF token; the
  browser pages' API calls (session and CSRF) work as before.
- The JSON renderer (orjson) writes what ninja's renderer wrote: the same values for dates, times,
  UUIDs, Decimals and enums."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder

from accounts.models import DeviceToken, User
from accounts.roles import Role
from accounts.services import hash_token, revoke_device_token
from api.renderers import dumps

pytestmark = pytest.mark.django_db


def token_row(raw: str) -> DeviceToken:
    return DeviceToken.objects.get(token_hash=hash_token(raw))


def test_me_answers_with_the_holder_and_no_orm_query(town, django_assert_num_queries):
    client = town.client("outreach_worker")
    assert client.get("me").status_code == 200  # last_used_at is fresh from here on
    with django_assert_num_queries(0):  # the token check is one raw statement, not ORM queries
        body = client.get("me").json()
    user = town.users["outreach_worker"]
    assert body["id"] == user.pk
    assert body["municipality"]["code"] == town.municipality.code
    assert body["scope"]["kind"] == "partner_organization"
    assert body["scope"]["partner_organization"]["id"] == town.partner.pk  # read with the token
    assert body["device_token_id"] == str(token_row(town.tokens["outreach_worker"]).pk)


def test_revoked_disabled_and_expired_are_refused_on_the_next_request(town):
    client = town.client("coordinator")
    assert client.get("me").status_code == 200
    revoke_device_token(token=token_row(town.tokens["coordinator"]), by=None)
    response = client.get("me")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "token_revoked")

    supervisor = town.client("supervisor")
    assert supervisor.get("me").status_code == 200
    User.objects.filter(pk=town.users["supervisor"].pk).update(is_active=False)
    response = supervisor.get("me")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "account_disabled")

    worker = town.client("outreach_worker")
    assert worker.get("me").status_code == 200
    DeviceToken.objects.filter(token_hash=hash_token(town.tokens["outreach_worker"])).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    response = worker.get("me")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "token_expired")


def test_the_last_use_is_recorded_in_the_holders_scope(town):
    DeviceToken.objects.filter(token_hash=hash_token(town.tokens["admin"])).update(last_used_at=None)
    assert town.client("admin").get("me").status_code == 200
    assert token_row(town.tokens["admin"]).last_used_at is not None


def test_a_token_request_loads_no_session_and_sets_no_cookie(town, other_town):
    browser = Client()
    browser.force_login(other_town.users["coordinator"])
    response = browser.get("/api/v1/me", headers={"Authorization": f"Bearer {town.tokens['coordinator']}"})
    assert response.status_code == 200
    assert response.json()["municipality"]["code"] == town.municipality.code  # the token, not the session
    assert not response.cookies
    assert "Vary" not in response or "Cookie" not in response["Vary"]


def test_the_browser_session_still_reaches_the_api_with_csrf(town):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(town.users["coordinator"])
    assert browser.get("/api/v1/me").json()["username"] == town.users["coordinator"].username
    body = json.dumps({"name": "x"})
    refused = browser.post("/api/v1/exports", data=body, content_type="application/json")
    assert refused.status_code == 403  # no CSRF token: ninja's SessionAuth refuses
    assert "csrf" in refused.json()["error"]["message"].lower()


def test_a_bearer_word_alone_is_a_token_request_and_refused(town):
    browser = Client()
    browser.force_login(town.users["coordinator"])
    response = browser.get("/api/v1/me", headers={"Authorization": "Bearer"})
    assert response.status_code == 401  # ninja's bearer check, not the session's user


def test_a_commissioners_scope_is_read_in_their_tenant(town):
    body = town.client("commissioner").get("me").json()
    assert body["scope"]["kind"] == "neighborhoods"
    assert [n["id"] for n in body["scope"]["neighborhoods"]] == [town.neighborhood.pk]


@pytest.mark.parametrize("value", [
    dt.datetime(2026, 4, 1, 9, 30, 15, 123456, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=9))),
    dt.date(2026, 4, 1),
    dt.time(9, 30, 15, 500000),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("12.50"),
    Role.COMMISSIONER,
    {"nested": [1, 2.5, None, True, "民生委員"], 3: "int key"},
])
def test_the_renderer_writes_what_ninjas_renderer_wrote(value):
    data = {"value": value}
    expected = json.dumps(data, cls=NinjaJSONEncoder, ensure_ascii=False, separators=(",", ":"))
    assert dumps(data).decode() == expected


def test_api_answers_are_utf8_json(town):
    response = town.client("coordinator").get("me")
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(response.content.decode("utf-8"))["municipality"]["name"] == town.municipality.name


def test_the_user_of_a_token_request_is_anonymous_to_django(town):
    response = town.client("coordinator").get("me")
    assert response.wsgi_request.user.is_anonymous
    assert response.wsgi_request.auth == town.users["coordinator"]
