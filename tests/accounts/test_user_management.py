"""The user management API: who manages whom (the rank), no lock-out, another municipality's users
and objects, what each role needs, and every change audited."""

import uuid

import pytest

from accounts.models import DeviceToken, User
from accounts.roles import RANK, Role
from audit.models import AuditEvent
from tests import factories
from tests.api.test_errors import assert_error_body
from tests.conftest import ApiClient

ROLES = [r.value for r in Role]
MANAGERS = ["coordinator", "admin"]



def _name() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"


def _new_user_body(town, role: str, **extra) -> dict:
    body: dict[str, object] = {"username": _name(), "display_name": "山田 花子", "role": role}
    if role == "outreach_worker":
        body["partner_organization"] = town.partner.id
    if role == "commissioner":
        body["neighborhoods"] = [town.neighborhood.id]
    return {**body, **extra}


def _target(town, role: str) -> User:
    """A fresh user of the town with `role` (never the manager themselves), with a device."""
    user = factories.user(
        town.municipality, role, partner_org=town.partner if role == "outreach_worker" else None,
        neighborhoods=[town.neighborhood] if role == "commissioner" else (),
    )
    factories.token_for(user)
    return user


def _allowed(manager: str, role: str) -> bool:
    return RANK[role] <= RANK[manager]


# --- the rank ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("manager", MANAGERS)
def test_create_follows_the_rank(town, manager, role):
    body = _new_user_body(town, role)
    r = town.client(manager).post("users", body)
    if _allowed(manager, role):
        assert r.status_code == 201, r.content
        created = User.objects.get(username=body["username"])
        assert (created.role, created.municipality_id, created.has_usable_password()) == (role, town.municipality.id, False)
        assert r.json()["set_password_url"].startswith("http://127.0.0.1:8000/account/set-password/")
    else:
        assert_error_body(r, 403, "role_above_own")
        assert r.json()["error"]["details"][0]["loc"] == ["body", "role"]
        assert not User.objects.filter(username=body["username"]).exists()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("manager", MANAGERS)
def test_change_follows_the_rank(town, manager, role):
    target = _target(town, role)
    r = town.client(manager).patch(f"users/{target.id}", {"display_name": "新しい 名前"})
    target.refresh_from_db()
    if _allowed(manager, role):
        assert r.status_code == 200, r.content
        assert r.json()["changed"] == ["display_name"]
        assert target.display_name == "新しい 名前"
    else:
        assert_error_body(r, 403, "role_above_own")
        assert target.display_name != "新しい 名前"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("manager", MANAGERS)
def test_deactivate_follows_the_rank_and_revokes_devices_at_once(town, manager, role):
    target = _target(town, role)
    raw = factories.token_for(target, device="second tablet")
    assert ApiClient(raw).get("me").status_code == 200
    r = town.client(manager).patch(f"users/{target.id}", {"is_active": False})
    target.refresh_from_db()
    if _allowed(manager, role):
        assert r.status_code == 200, r.content
        assert (r.json()["is_active"], r.json()["revoked_devices"]) == (False, 2)
        assert not target.is_active
        assert not DeviceToken.objects.active().filter(user=target).exists()
        assert_error_body(ApiClient(raw).get("me"), 401, "token_revoked")
    else:
        assert_error_body(r, 403, "role_above_own")
        assert target.is_active
        assert DeviceToken.objects.active().filter(user=target).count() == 2


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("manager", MANAGERS)
def test_nobody_gives_a_role_above_their_own(town, manager, role):
    target = _target(town, "supervisor")
    body = {k: v for k, v in _new_user_body(town, role).items() if k not in ("username", "display_name")}
    r = town.client(manager).patch(f"users/{target.id}", body)
    target.refresh_from_db()
    if _allowed(manager, role):
        assert r.status_code == 200, r.content
        assert target.role == role
    else:
        assert_error_body(r, 403, "role_above_own")
        assert target.role == "supervisor"


@pytest.mark.parametrize("role", ["supervisor", "outreach_worker", "commissioner"])
def test_other_roles_manage_no_one(town, role):
    client = town.client(role)
    assert_error_body(client.post("users", _new_user_body(town, "supervisor")), 403, "forbidden")
    target = _target(town, "supervisor")
    assert_error_body(client.patch(f"users/{target.id}", {"display_name": "x"}), 403, "forbidden")
    assert_error_body(client.post(f"users/{target.id}/set-password-link"), 403, "forbidden")
    assert User.objects.filter(municipality=town.municipality).count() == len(Role) + 1  # + the target


# --- no lock-out ------------------------------------------------------------------------------------


@pytest.mark.parametrize("manager", MANAGERS)
def test_nobody_demotes_or_deactivates_themselves(town, manager):
    me = town.users[manager]
    client = town.client(manager)
    assert_error_body(client.patch(f"users/{me.id}", {"role": "supervisor"}), 403, "own_account")
    assert_error_body(client.patch(f"users/{me.id}", {"is_active": False}), 403, "own_account")
    me.refresh_from_db()
    assert (me.role, me.is_active) == (manager, True)
    assert client.get("me").status_code == 200
    # their own name is theirs to change, and repeating their own role changes nothing
    r = client.patch(f"users/{me.id}", {"display_name": "自分", "role": manager})
    assert r.status_code == 200, r.content
    assert r.json()["changed"] == ["display_name"]


def test_an_admin_may_demote_another_admin_but_a_coordinator_may_not(town):
    other_admin = _target(town, "admin")
    assert_error_body(town.client("coordinator").patch(f"users/{other_admin.id}", {"role": "supervisor"}),
                      403, "role_above_own")
    r = town.client("admin").patch(f"users/{other_admin.id}", {"role": "coordinator"})
    assert r.status_code == 200, r.content
    assert r.json()["role"] == "coordinator"


# --- another municipality ----------------------------------------------------------------------------


@pytest.mark.parametrize("manager", MANAGERS)
def test_another_municipalitys_user_is_404(town, other_town, manager):
    target = other_town.users["supervisor"]
    client = town.client(manager)
    assert_error_body(client.patch(f"users/{target.id}", {"display_name": "乗っ取り"}), 404, "not_found")
    assert_error_body(client.patch(f"users/{target.id}", {"is_active": False}), 404, "not_found")
    assert_error_body(client.post(f"users/{target.id}/set-password-link"), 404, "not_found")
    assert_error_body(client.get(f"users/{target.id}"), 404, "not_found")
    target.refresh_from_db()
    assert (target.display_name, target.is_active) == ("", True)
    assert not AuditEvent.objects.filter(object_type="accounts.user", object_id=str(target.id)).exists()


def test_another_municipalitys_corporation_or_neighborhood_is_refused_where_it_is_named(town, other_town):
    client = town.client("coordinator")
    r = client.post("users", _new_user_body(town, "outreach_worker", partner_organization=other_town.partner.id))
    assert_error_body(r, 422, "invalid")
    assert [d["loc"] for d in r.json()["error"]["details"]] == [["body", "partner_organization"]]
    r = client.post("users", _new_user_body(town, "commissioner",
                                            neighborhoods=[town.neighborhood.id, other_town.neighborhood.id]))
    assert_error_body(r, 422, "invalid")
    assert [d["loc"] for d in r.json()["error"]["details"]] == [["body", "neighborhoods", 1]]
    # the same answer as for an id that exists nowhere: nothing tells the other town's ids apart
    r_missing = client.post("users", _new_user_body(town, "commissioner", neighborhoods=[town.neighborhood.id, 2**40]))
    assert r_missing.json()["error"]["details"][0]["loc"] == ["body", "neighborhoods", 1]
    commissioner = town.users["commissioner"]
    r = client.patch(f"users/{commissioner.id}", {"neighborhoods": [other_town.neighborhood.id]})
    assert r.json()["error"]["details"][0]["loc"] == ["body", "neighborhoods", 0]
    assert list(commissioner.neighborhoods.all()) == [town.neighborhood]


# --- what a role needs --------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "loc"), [
    ({"role": "boss"}, ["body", "role"]),
    ({"role": "outreach_worker", "partner_organization": None}, ["body", "partner_organization"]),
    ({"role": "commissioner", "neighborhoods": []}, ["body", "neighborhoods"]),
    ({"role": "supervisor", "partner_organization": "PARTNER"}, ["body", "partner_organization"]),
    ({"role": "coordinator", "neighborhoods": ["HOOD"]}, ["body", "neighborhoods"]),
    ({"email": "not-an-address"}, ["body", "email"]),
    ({"username": "山田 太郎"}, ["body", "username"]),
    ({"display_name": "山田\u202e太郎"}, ["body", "display_name"]),
    ({"display_name": ""}, ["body", "display_name"]),
    ({"neighborhoods": ["HOOD", "HOOD"], "role": "commissioner"}, ["body", "neighborhoods", 1]),
])
def test_bad_input_is_422_where_it_is(town, body, loc):
    ids = {"PARTNER": town.partner.id, "HOOD": town.neighborhood.id}
    body = {k: ([ids.get(x, x) for x in v] if isinstance(v, list) else ids.get(v, v)) for k, v in body.items()}
    full = _new_user_body(town, "supervisor") | body
    r = town.client("admin").post("users", full)
    assert_error_body(r, 422, "invalid")
    assert loc in [d["loc"] for d in r.json()["error"]["details"]], r.json()
    assert not User.objects.filter(username=full["username"]).exists()


def test_leaving_a_role_drops_what_only_that_role_has(town):
    client = town.client("coordinator")
    worker = _target(town, "outreach_worker")
    r = client.patch(f"users/{worker.id}", {"role": "coordinator"})
    assert r.status_code == 200, r.content
    assert (r.json()["role"], r.json()["partner_organization_id"]) == ("coordinator", None)
    assert r.json()["changed"] == ["partner_organization", "role"]
    # becoming a commissioner needs 自治会
    r = client.patch(f"users/{worker.id}", {"role": "commissioner"})
    assert r.json()["error"]["details"][0]["loc"] == ["body", "neighborhoods"]
    r = client.patch(f"users/{worker.id}", {"role": "commissioner", "neighborhoods": [town.neighborhood.id]})
    assert r.json()["neighborhood_ids"] == [town.neighborhood.id]
    r = client.patch(f"users/{worker.id}", {"role": "supervisor"})
    assert r.json()["neighborhood_ids"] == []
    assert list(User.objects.get(pk=worker.pk).neighborhoods.all()) == []


def test_a_username_is_unique_across_the_service(town, other_town):
    client = town.client("admin")
    taken_here = town.users["supervisor"].username
    taken_elsewhere = other_town.users["supervisor"].username
    inactive_elsewhere = other_town.users["commissioner"]
    inactive_elsewhere.is_active = False
    inactive_elsewhere.save(update_fields=["is_active"])
    for name in (taken_here, taken_elsewhere, inactive_elsewhere.username):
        r = client.post("users", _new_user_body(town, "supervisor", username=name))
        assert_error_body(r, 409, "username_taken")
        assert r.json()["error"]["details"][0]["loc"] == ["body", "username"]
    assert User.objects.filter(municipality=town.municipality).count() == len(Role)


# --- audit, history, lists ------------------------------------------------------------------------------


def test_every_change_is_audited_without_the_link(town):
    client = town.client("admin")
    r = client.post("users", _new_user_body(town, "commissioner", email="hanako@example.jp"))
    assert r.status_code == 201, r.content
    created = r.json()
    url = created["set_password_url"]
    token = url.rstrip("/").rsplit("/", 1)[1]
    r = client.patch(f"users/{created['id']}", {"role": "supervisor", "email": ""})
    assert r.status_code == 200, r.content
    link = client.post(f"users/{created['id']}/set-password-link")
    assert link.status_code == 201, link.content
    assert set(link.json()) == {"url", "expires_at"}
    events = list(AuditEvent.objects.filter(object_type="accounts.user", object_id=str(created["id"])).order_by("pk"))
    assert [e.action for e in events] == ["change", "change", "change"]
    assert {e.actor_id for e in events} == {town.users["admin"].id}
    assert events[0].detail["created"] == {"username": created["username"], "role": "commissioner",
                                           "partner_organization": None, "neighborhoods": [town.neighborhood.id]}
    assert events[1].detail["role"] == ["commissioner", "supervisor"]
    assert events[1].detail["email"] == ["hanako@example.jp", ""]
    assert events[1].detail["neighborhoods"] == [[town.neighborhood.id], []]
    assert "expires_at" in events[2].detail["set_password_link"]
    for event in events:
        assert token not in str(event.detail) and "set-password/" not in str(event.detail)


def test_tracked_writes_name_the_manager(town):
    from accounts.models import UserHistory

    target = _target(town, "supervisor")
    r = town.client("coordinator").patch(f"users/{target.id}", {"display_name": "履歴"})
    assert r.status_code == 200
    event = UserHistory.objects.filter(pgh_obj=target).order_by("pgh_id").last()
    assert event.display_name == "履歴"
    assert event.pgh_context.metadata["user"] == town.users["coordinator"].id


def test_a_patch_that_changes_nothing_writes_nothing(town):
    target = _target(town, "supervisor")
    r = town.client("admin").patch(f"users/{target.id}", {"role": "supervisor", "is_active": True, "email": ""})
    assert r.status_code == 200
    assert r.json()["changed"] == []
    assert not AuditEvent.objects.filter(object_type="accounts.user", object_id=str(target.id)).exists()


def test_the_list_filters_by_role_and_activity(town):
    gone = _target(town, "supervisor")
    town.client("admin").patch(f"users/{gone.id}", {"is_active": False})
    client = town.client("coordinator")
    inactive = client.get("users", query={"active": "false"}).json()
    assert [u["username"] for u in inactive["items"]] == [gone.username]
    supervisors = client.get("users", query={"role": "supervisor", "active": "true"}).json()
    assert [u["username"] for u in supervisors["items"]] == [town.users["supervisor"].username]
    commissioner = next(u for u in client.get("users").json()["items"] if u["role"] == "commissioner")
    assert commissioner["neighborhood_ids"] == [town.neighborhood.id]
    assert commissioner["password_set"] is True


def test_a_link_for_a_deactivated_user_is_refused(town):
    target = _target(town, "supervisor")
    town.client("admin").patch(f"users/{target.id}", {"is_active": False})
    assert_error_body(town.client("admin").post(f"users/{target.id}/set-password-link"), 409, "account_disabled")


def test_a_coordinator_issues_no_link_for_an_admin(town):
    admin = town.users["admin"]
    assert_error_body(town.client("coordinator").post(f"users/{admin.id}/set-password-link"), 403, "role_above_own")
    assert town.client("admin").post(f"users/{town.users['coordinator'].id}/set-password-link").status_code == 201
