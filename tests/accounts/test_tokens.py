"""Device tokens: log in, use, revoke; refused the very next request once revoked or disabled."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import DeviceToken
from accounts.services import hash_token
from tests import factories
from tests.api.test_errors import assert_error_body
from tests.conftest import ApiClient


def login(client: ApiClient, username: str, password: str = factories.PASSWORD, device: str = "iPad 1", **kw):
    return client.post("auth/token", {"username": username, "password": password, "device_name": device}, **kw)


def test_login_returns_a_token_that_is_stored_only_as_a_hash(town, anon):
    user = town.users["outreach_worker"]
    r = login(anon, user.username)
    assert r.status_code == 201, r.content
    body = r.json()
    raw = body["token"]
    token = DeviceToken.objects.get(pk=body["token_id"])
    assert token.token_hash == hash_token(raw)
    assert raw not in {token.token_hash, token.prefix}
    assert not DeviceToken.objects.filter(token_hash=raw).exists()
    assert token.name == "iPad 1"
    assert token.expires_at > timezone.now() + timedelta(days=29)

    me = ApiClient(raw).get("me")
    assert me.status_code == 200
    data = me.json()
    assert data["username"] == user.username
    assert data["role"] == "outreach_worker"
    assert data["municipality"]["code"] == town.municipality.code
    assert data["scope"]["kind"] == "partner_organization"
    assert data["scope"]["partner_organization"]["id"] == town.partner.id
    assert data["device_token_id"] == body["token_id"]


def test_me_shows_a_commissioners_neighborhoods(town):
    data = town.client("commissioner").get("me").json()
    assert data["scope"]["kind"] == "neighborhoods"
    assert [n["id"] for n in data["scope"]["neighborhoods"]] == [town.neighborhood.id]
    assert town.client("supervisor").get("me").json()["scope"]["kind"] == "municipality"


def test_wrong_password_is_401(town, anon):
    assert_error_body(login(anon, town.users["coordinator"].username, "nope"), 401, "invalid_credentials")
    assert_error_body(login(anon, "nobody-at-all", "nope"), 401, "invalid_credentials")


def test_logout_revokes_the_token_for_the_very_next_request(town):
    client = town.client("outreach_worker")
    assert client.get("me").status_code == 200
    r = client.delete("auth/token")
    assert r.status_code == 204
    assert_error_body(client.get("me"), 401, "token_revoked")


def test_a_deactivated_user_is_refused_on_the_next_request(town):
    client = town.client("commissioner")
    assert client.get("me").status_code == 200
    user = town.users["commissioner"]
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_error_body(client.get("me"), 401, "account_disabled")


def test_an_expired_token_is_refused(town):
    client = town.client("supervisor")
    DeviceToken.objects.filter(user=town.users["supervisor"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error_body(client.get("me"), 401, "token_expired")


def test_five_failures_then_cool_off_429_per_user_and_address(town, anon):
    username = town.users["coordinator"].username
    for _ in range(5):
        assert login(anon, username, "wrong", REMOTE_ADDR="10.0.0.5").status_code == 401
    r = login(anon, username, REMOTE_ADDR="10.0.0.5")  # even the right password now
    err = assert_error_body(r, 429, "login_locked")
    assert int(r["Retry-After"]) > 0
    assert "minutes" in err["message"]
    # another address, or another user from the same address, is not locked out
    assert login(anon, username, REMOTE_ADDR="10.0.0.6").status_code == 201
    assert login(anon, town.users["supervisor"].username, REMOTE_ADDR="10.0.0.5").status_code == 201


def test_coordinator_lists_and_revokes_a_users_devices(town):
    worker = town.users["outreach_worker"]
    worker_client = town.client("outreach_worker")
    coordinator = town.client("coordinator")
    r = coordinator.get(f"users/{worker.id}/devices")
    assert r.status_code == 200
    devices = r.json()["items"]
    assert len(devices) == 1 and devices[0]["active"] is True
    assert "token_hash" not in devices[0]

    r = coordinator.delete(f"users/{worker.id}/devices/{devices[0]['id']}")
    assert r.status_code == 204
    assert_error_body(worker_client.get("me"), 401, "token_revoked")
    after = coordinator.get(f"users/{worker.id}/devices").json()["items"]
    assert after[0]["active"] is False and after[0]["revoked_at"]


@pytest.mark.parametrize("role", ["supervisor", "outreach_worker", "commissioner"])
def test_other_roles_may_not_manage_devices(town, role):
    target = town.users["coordinator"]
    client = town.client(role)
    assert_error_body(client.get(f"users/{target.id}/devices"), 403, "forbidden")
    token = DeviceToken.objects.filter(user=target).first()
    assert_error_body(client.delete(f"users/{target.id}/devices/{token.id}"), 403, "forbidden")
    assert DeviceToken.objects.get(pk=token.pk).revoked_at is None


def test_my_devices_lists_only_mine(town):
    worker = town.users["outreach_worker"]
    factories.token_for(worker, "second tablet")
    names = {d["name"] for d in town.client("outreach_worker").get("me/devices").json()["items"]}
    assert names == {"test tablet", "second tablet"}


def test_empty_device_name_is_refused(town, anon):
    r = login(anon, town.users["coordinator"].username, device="   ")
    assert_error_body(r, 422)
    assert not DeviceToken.objects.filter(name="").exists()
