"""編集の競合: a household edit pushed from a stale version is kept with both versions; coordinators
see them side by side and decide, and the decision reaches the tablets on their next pull."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from audit.models import AuditEvent
from neighborhoods.models import Household
from tests.api.test_errors import assert_error_body
from tests.conftest import build_town
from visits.models import EditConflict
from visits.sync.conflicts import FIELDS
from visits.sync.engine import HouseholdUpdate

LIST_ITEM = {
    "id", "kind", "object_id", "household", "pushed_by", "device", "created_at", "base_version", "server_version",
    "current_version", "differing_fields", "state", "resolved_at", "resolved_by", "resolution", "resolution_note",
    "applied_fields", "resolved_version",
}


# --- a tablet, a coordinator and a stale edit ---------------------------------------------------------


@pytest.fixture
def tablet(town):
    """The town's outreach worker with a registered device (its schedule holds the town's household)."""
    client = town.client("outreach_worker")
    device_id = str(uuid.uuid4())
    r = client.post("sync/devices", {"device_id": device_id, "name": "iPad 1", "platform": "iPadOS"})
    assert r.status_code == 201, r.content
    return {"client": client, "device_id": device_id, "cursor": ""}


def pull(tablet) -> dict[str, dict]:
    """One pull from the tablet's cursor (confirming the previous page): the households it received."""
    r = tablet["client"].get("sync/pull", query={"device_id": tablet["device_id"], "cursor": tablet["cursor"]})
    assert r.status_code == 200, r.content
    page = r.json()
    tablet["cursor"] = page["next_cursor"]
    return {c["id"]: c for c in page["changes"] if c["kind"] == "household"}


def push_update(tablet, household, base_version: int, **data) -> dict:
    op = {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": base_version,
          "data": {"id": str(household.id), **data}}
    r = tablet["client"].post("sync/push", {"device_id": tablet["device_id"], "ops": [op]})
    assert r.status_code == 200, r.content
    return r.json()["results"][0]


def coordinator_edits(town, **changes) -> int:
    """The coordinator edits the household in the office; its new version."""
    version = Household.objects.get(pk=town.household.pk).version
    r = town.client("coordinator").patch(f"households/{town.household.id}", {"version": version, **changes})
    assert r.status_code == 200, r.content
    return r.json()["version"]


def stale_edit(town, tablet, *, office=None, device=None) -> EditConflict:
    """The tablet holds the household at v, the office moves it to v+1, the tablet pushes its edit
    based on v: a conflict."""
    held = pull(tablet)[str(town.household.id)]
    coordinator_edits(town, **(office or {"risk_flags": ["hoarding"]}))
    result = push_update(tablet, town.household, held["version"], **(device or {"status": "vacant"}))
    assert result["status"] == "conflict", result
    return EditConflict.objects.get(op_id=result["op_id"])


def resolve(town, conflict, role="coordinator", **body):
    body.setdefault("household_version", Household.objects.get(pk=town.household.pk).version)
    return town.client(role).post(f"conflicts/{conflict.pk}/resolve", body)


def household(town) -> Household:
    return Household.objects.get(pk=town.household.pk)


# --- the flow, end to end -----------------------------------------------------------------------------


def test_taking_the_devices_edit_reaches_the_device_on_its_next_pull(town, tablet):
    v = pull(tablet)[str(town.household.id)]["version"]
    assert coordinator_edits(town, risk_flags=["hoarding"]) == v + 1
    result = push_update(tablet, town.household, v, status="vacant")
    assert (result["status"], result["error"]["code"]) == ("conflict", "stale_version")
    conflict = EditConflict.objects.get(op_id=result["op_id"])

    r = resolve(town, conflict, resolution="take_device", household_version=v + 1, note="現地で空き家を確認")
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["state"], body["resolution"], body["applied_fields"]) == ("resolved", "applied_device", ["status"])
    assert (body["resolved_version"], body["current_version"], body["differing_fields"]) == (v + 2, v + 2, [])
    assert body["resolved_by"]["id"] == town.users["coordinator"].id
    assert body["resolution_note"] == "現地で空き家を確認"
    now = household(town)
    assert (now.version, now.status, now.risk_flags) == (v + 2, "vacant", ["hoarding"])

    received = pull(tablet)[str(town.household.id)]
    assert received["version"] == v + 2
    assert received["data"]["status"] == "vacant" and received["data"]["risk_flags"] == ["hoarding"]
    assert str(town.household.id) not in pull(tablet)  # and only once


def test_keeping_the_server_sends_nothing_new_to_a_device_that_holds_it(town, tablet):
    v = pull(tablet)[str(town.household.id)]["version"]
    coordinator_edits(town, risk_flags=["hoarding"])
    assert pull(tablet)[str(town.household.id)]["version"] == v + 1  # the tablet now holds the server's
    result = push_update(tablet, town.household, v, status="vacant")  # an edit made offline on v
    assert result["status"] == "conflict"
    conflict = EditConflict.objects.get(op_id=result["op_id"])

    r = resolve(town, conflict, resolution="keep_server", household_version=v + 1)
    assert r.status_code == 200, r.content
    assert (r.json()["resolution"], r.json()["applied_fields"], r.json()["resolved_version"]) == ("kept_server", [], v + 1)
    now = household(town)
    assert (now.version, now.status) == (v + 1, "occupied")  # nothing changed on the household
    assert str(town.household.id) not in pull(tablet)  # the device already holds the server's version


def test_keeping_the_server_gives_a_device_still_on_the_old_version_the_servers(town, tablet):
    conflict = stale_edit(town, tablet)
    version = household(town).version
    assert resolve(town, conflict, resolution="keep_server").status_code == 200
    received = pull(tablet)[str(town.household.id)]
    assert (received["version"], received["data"]["status"]) == (version, "occupied")


def test_merge_takes_each_field_from_the_side_chosen(town, tablet):
    conflict = stale_edit(
        town, tablet, office={"risk_flags": ["hoarding"], "status": "moved"},
        device={"status": "vacant", "risk_flags": ["multi_pet"], "living_arrangement": "elderly_only"},
    )
    r = town.client("coordinator").get(f"conflicts/{conflict.pk}")
    assert sorted(r.json()["differing_fields"]) == ["living_arrangement", "risk_flags", "status"]
    r = resolve(town, conflict, resolution="merge",
                fields={"status": "device", "risk_flags": "server", "living_arrangement": "device"})
    assert r.status_code == 200, r.content
    assert r.json()["resolution"] == "merged"
    assert sorted(r.json()["applied_fields"]) == ["living_arrangement", "status"]
    assert r.json()["differing_fields"] == ["risk_flags"]
    now = household(town)
    assert (now.status, now.living_arrangement, now.risk_flags) == ("vacant", "elderly_only", ["hoarding"])
    received = pull(tablet)[str(town.household.id)]
    assert received["version"] == now.version and received["data"]["status"] == "vacant"


def test_merge_keeping_every_server_field_changes_nothing(town, tablet):
    conflict = stale_edit(town, tablet)
    before = household(town)
    r = resolve(town, conflict, resolution="merge", fields={"status": "server"})
    assert r.status_code == 200, r.content
    assert (r.json()["resolution"], r.json()["applied_fields"]) == ("merged", [])
    assert household(town).version == before.version


# --- reading ------------------------------------------------------------------------------------------


def test_the_list_says_who_pushed_what_and_what_differs(town, tablet):
    conflict = stale_edit(town, tablet)
    r = town.client("coordinator").get("conflicts")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["count"] == 1
    [item] = body["items"]
    assert set(item) == LIST_ITEM
    worker = town.users["outreach_worker"]
    assert item["id"] == conflict.pk and item["kind"] == "household" and item["object_id"] == str(town.household.id)
    assert item["household"] == {"id": str(town.household.id), "external_id": town.household.external_id,
                                 "address": town.household.address, "version": household(town).version}
    assert item["pushed_by"] == {"id": worker.id, "username": worker.username, "display_name": worker.display_name}
    assert (item["device"]["name"], item["device"]["platform"]) == ("iPad 1", "iPadOS")
    assert (item["base_version"], item["server_version"]) == (conflict.base_version, conflict.server_version)
    assert item["server_version"] == conflict.base_version + 1
    assert item["current_version"] == household(town).version
    assert item["differing_fields"] == ["status"]
    assert (item["state"], item["resolved_at"], item["resolved_by"], item["resolution"]) == ("open", None, None, None)


def test_the_list_filters_by_state_and_household_newest_first(town, tablet):
    first = stale_edit(town, tablet)
    second = stale_edit(town, tablet, office={"risk_flags": []}, device={"living_arrangement": "family"})
    client = town.client("supervisor")

    def ids(**query):
        r = client.get("conflicts", query=query)
        assert r.status_code == 200, r.content
        return [item["id"] for item in r.json()["items"]], r.json()["count"]

    assert ids() == ([second.pk, first.pk], 2)
    assert ids(limit=1, offset=1) == ([first.pk], 2)
    assert resolve(town, first, resolution="keep_server").status_code == 200
    assert ids() == ([second.pk], 1)
    assert ids(state="resolved") == ([first.pk], 1)
    assert ids(state="all") == ([second.pk, first.pk], 2)
    assert ids(state="all", household_id=str(town.household.id)) == ([second.pk, first.pk], 2)
    assert ids(state="all", household_id=str(uuid.uuid4())) == ([], 0)
    assert_error_body(client.get("conflicts", query={"state": "closed"}), 422)


def test_the_detail_shows_both_versions_side_by_side_and_is_audited(town, tablet):
    location = {"type": "Point", "coordinates": [town.household.location.x + 0.001, town.household.location.y]}
    conflict = stale_edit(town, tablet, office={"status": "moved"}, device={"status": "vacant", "location": location})
    r = town.client("coordinator").get(f"conflicts/{conflict.pk}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == LIST_ITEM | {"fields"}
    by_field = {f["field"]: f for f in body["fields"]}
    assert set(by_field) == {"status", "location"}
    status = by_field["status"]
    assert (status["base"], status["base_known"], status["server_copy"], status["server_now"], status["device"],
            status["differs"]) == ("occupied", True, "moved", "moved", "vacant", True)
    point = by_field["location"]
    assert point["device"] == {"type": "Point", "coordinates": [round(c, 7) for c in location["coordinates"]]}
    assert point["server_now"] == point["server_copy"] == point["base"]
    assert point["differs"] is True

    # the office then moves the household further: server_now follows, server_copy stays
    coordinator_edits(town, status="vacant")
    status = {f["field"]: f for f in town.client("coordinator").get(f"conflicts/{conflict.pk}").json()["fields"]}["status"]
    assert (status["server_copy"], status["server_now"], status["differs"]) == ("moved", "vacant", False)

    reads = AuditEvent.objects.filter(object_type="neighborhoods.household", object_id=str(town.household.id),
                                      detail__edit_conflict=conflict.pk)
    assert reads.count() == 2
    event = reads.first()
    assert (event.action, event.actor_id, event.basis) == ("read", town.users["coordinator"].id, "role:coordinator")


def test_the_resolve_body_offers_exactly_the_fields_a_device_may_propose():
    assert set(FIELDS) == set(HouseholdUpdate.model_fields) - {"id"}


# --- who may -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "reads", "resolves"),
    [
        ("coordinator", 200, 200),
        ("supervisor", 200, 403),
        ("outreach_worker", 403, 403),
        ("commissioner", 403, 403),
        ("admin", 403, 403),
    ],
)
def test_coordinators_resolve_supervisors_read_nobody_else(town, tablet, role, reads, resolves):
    conflict = stale_edit(town, tablet)
    client = town.client(role)
    assert client.get("conflicts").status_code == reads
    assert client.get(f"conflicts/{conflict.pk}").status_code == reads
    r = resolve(town, conflict, role=role, resolution="keep_server")
    assert r.status_code == resolves, r.content
    if resolves == 403:
        assert_error_body(r, 403, "forbidden")
        conflict.refresh_from_db()
        assert conflict.resolved_at is None
    if reads == 403:
        assert_error_body(client.get("conflicts"), 403, "forbidden")


def test_another_municipalitys_conflict_is_never_visible(town, tablet, other_town):
    theirs = stale_edit(town, tablet)
    mine_before = household(town).version
    client = other_town.client("coordinator")
    assert client.get("conflicts", query={"state": "all"}).json() == {"items": [], "count": 0, "count_capped": False}
    assert_error_body(client.get(f"conflicts/{theirs.pk}"), 404, "not_found")
    r = client.post(f"conflicts/{theirs.pk}/resolve", {"resolution": "take_device", "household_version": mine_before})
    assert_error_body(r, 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.resolved_at is None and household(town).version == mine_before
    assert_error_body(other_town.client("supervisor").get(f"conflicts/{theirs.pk}"), 404, "not_found")


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"resolution": "overwrite"}, "resolution"),
        ({"resolution": "merge", "fields": {"address": "device"}}, "address"),
        ({"resolution": "merge", "fields": {"status": "both"}}, "status"),
        ({"resolution": "merge", "fields": {"status": None}}, "status"),
        ({"resolution": "take_device", "household_version": 0}, "household_version"),
        ({"resolution": "take_device", "household_version": True}, "household_version"),
        ({"resolution": "take_device", "note": "理由\u202e"}, "note"),
        ({"resolution": "take_device", "extra": 1}, "extra"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(town, tablet, body, loc):
    conflict = stale_edit(town, tablet)
    r = resolve(town, conflict, **body)
    err = assert_error_body(r, 422)
    assert any(loc in map(str, d["loc"]) for d in err["details"]), err
    conflict.refresh_from_db()
    assert conflict.resolved_at is None


def test_a_missing_household_version_is_422(town, tablet):
    conflict = stale_edit(town, tablet)
    r = town.client("coordinator").post(f"conflicts/{conflict.pk}/resolve", {"resolution": "keep_server"})
    err = assert_error_body(r, 422)
    assert any(d["loc"][-1] == "household_version" for d in err["details"])


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"resolution": "merge"}, ["body", "fields", "status"], "choose server or device"),
        ({"resolution": "merge", "fields": {"location": "device"}}, ["body", "fields", "location"], "did not propose"),
        ({"resolution": "keep_server", "fields": {"status": "server"}}, ["body", "fields"], "only when merging"),
    ],
)
def test_choices_that_do_not_fit_the_conflict_are_422(town, tablet, body, loc, words):
    conflict = stale_edit(town, tablet)
    err = assert_error_body(resolve(town, conflict, **body), 422, "invalid")
    assert err["details"][0]["loc"] == loc
    assert words in err["message"]
    conflict.refresh_from_db()
    assert conflict.resolved_at is None


def test_a_device_location_outside_the_municipality_is_422_and_nothing_is_written(town, tablet):
    far = {"type": "Point", "coordinates": [town.household.location.x + 1.0, town.household.location.y]}
    conflict = stale_edit(town, tablet, device={"status": "vacant", "location": far})
    before = household(town)
    err = assert_error_body(resolve(town, conflict, resolution="take_device"), 422, "outside_municipality")
    assert err["details"][0]["loc"] == ["body", "fields", "location"]
    assert "位置" in err["message"]
    after = household(town)
    assert (after.version, after.status) == (before.version, before.status)
    conflict.refresh_from_db()
    assert conflict.resolved_at is None
    assert not AuditEvent.objects.filter(object_type="visits.editconflict").exists()
    # the other field alone can still be taken
    r = resolve(town, conflict, resolution="merge", fields={"status": "device", "location": "server"})
    assert r.status_code == 200, r.content
    assert household(town).status == "vacant"


def test_a_resolved_conflict_is_not_resolved_again(town, tablet):
    conflict = stale_edit(town, tablet)
    assert resolve(town, conflict, resolution="take_device").status_code == 200
    version = household(town).version
    err = assert_error_body(resolve(town, conflict, resolution="keep_server"), 409, "already_resolved")
    assert err["details"]["resolution"] == "applied_device"
    conflict.refresh_from_db()
    assert conflict.resolution == "applied_device" and household(town).version == version


def test_a_household_that_moved_on_since_the_coordinator_looked_is_409(town, tablet):
    conflict = stale_edit(town, tablet)
    looked_at = household(town).version
    coordinator_edits(town, living_arrangement="family")
    err = assert_error_body(
        resolve(town, conflict, resolution="take_device", household_version=looked_at), 409, "stale_version"
    )
    assert err["details"] == {"version": looked_at + 1}
    assert household(town).status == "occupied"
    conflict.refresh_from_db()
    assert conflict.resolved_at is None
    assert resolve(town, conflict, resolution="take_device", household_version=looked_at + 1).status_code == 200


# --- the record of the decision -----------------------------------------------------------------------


def test_the_resolution_is_an_audit_event(town, tablet):
    conflict = stale_edit(town, tablet, device={"status": "vacant", "living_arrangement": "elderly_only"})
    version = household(town).version
    r = resolve(town, conflict, resolution="merge", fields={"status": "device", "living_arrangement": "server"},
                note="家族に確認")
    assert r.status_code == 200, r.content
    event = AuditEvent.objects.get(object_type="visits.editconflict", object_id=str(conflict.pk))
    coordinator = town.users["coordinator"]
    assert (event.action, event.actor_id, event.actor_role, event.municipality_id) == (
        "change", coordinator.id, "coordinator", town.municipality.id)
    assert event.device_token_id is not None
    assert event.detail == {
        "household_id": str(town.household.id), "resolution": "merged", "fields_taken": ["status"],
        "fields_kept": ["living_arrangement"], "household_version": {"before": version, "after": version + 1},
    }
    conflict.refresh_from_db()
    assert (conflict.resolved_by_id, conflict.resolution, conflict.resolution_note) == (coordinator.id, "merged", "家族に確認")


# --- two coordinators at once -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_coordinators_resolving_at_once_get_one_answer_each():
    town = build_town("940004")
    from accounts.roles import Role
    from tests import factories

    second = factories.user(town.municipality, Role.COORDINATOR)
    clients = [town.client("coordinator"), type(town.client("coordinator"))(factories.token_for(second))]
    tablet = {"client": town.client("outreach_worker"), "device_id": str(uuid.uuid4()), "cursor": ""}
    assert tablet["client"].post("sync/devices", {"device_id": tablet["device_id"]}).status_code == 201
    conflict = stale_edit(town, tablet)
    version = household(town).version
    start = threading.Barrier(2)

    def decide(client) -> int:
        try:
            start.wait(timeout=30)
            r = client.post(f"conflicts/{conflict.pk}/resolve", {"resolution": "take_device", "household_version": version})
            return r.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(decide, clients))
    assert statuses == [200, 409]
    assert household(town).version == version + 1
    assert AuditEvent.objects.filter(object_type="visits.editconflict", object_id=str(conflict.pk)).count() == 1


def test_a_location_proposed_in_the_first_contracts_shape_compares_as_the_same_point():
    from visits.sync.conflicts import as_change, same, shown

    geojson = {"type": "Point", "coordinates": [133.7512345, 35.4912345]}
    first_contract = {"lon": 133.7512345, "lat": 35.4912345}
    assert shown("location", first_contract) == shown("location", geojson)
    assert same("location", shown("location", first_contract), shown("location", geojson))
    assert as_change("location", first_contract).coords == as_change("location", geojson).coords
    assert as_change("location", None) is None and as_change("living_arrangement", None) == ""
