"""Concerns, case contacts and 見守り check-ins made offline go through the field sync."""

import uuid

from django.utils import timezone

from outreach.models import CaseContact, Concern


def device(client):
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id}).status_code == 201
    return device_id


def push(client, device_id, *ops):
    r = client.post("sync/push", {"device_id": device_id, "ops": list(ops)})
    assert r.status_code == 200, r.content
    return r.json()["results"]


def test_a_commissioners_offline_concern_is_applied_once_and_its_status_comes_back(town):
    client = town.client("commissioner")
    device_id = device(client)
    concern_id = str(uuid.uuid4())
    op = {"op_id": str(uuid.uuid4()), "kind": "concern.create", "data": {
        "id": concern_id, "household_id": str(town.household.id), "categories": ["isolation"], "description": "会話がない"}}
    assert push(client, device_id, op)[0]["status"] == "applied"
    assert push(client, device_id, op)[0]["status"] == "duplicate"
    assert Concern.objects.filter(pk=concern_id).count() == 1

    page = client.get("sync/pull", query={"device_id": device_id}).json()
    mine = [c for c in page["changes"] if c["kind"] == "concern"]
    assert [(c["id"], c["data"]["status"]) for c in mine] == [(concern_id, "new")]
    town.client("coordinator").post(f"concerns/{concern_id}/transitions", {"to": "triaged", "reason": "確認"})
    later = client.get("sync/pull", query={"device_id": device_id, "cursor": page["next_cursor"]}).json()
    assert [(c["kind"], c["data"]["status"]) for c in later["changes"]] == [("concern", "triaged")]
    town.client("coordinator").post(f"concerns/{concern_id}/transitions", {"to": "closed", "reason": "終了"})
    closed = client.get("sync/pull", query={"device_id": device_id, "cursor": later["next_cursor"]}).json()
    assert closed["purge"] == [{"kind": "concern", "id": concern_id}]


def test_an_offline_concern_about_an_unknown_household_is_rejected(town, other_town):
    client = town.client("commissioner")
    device_id = device(client)
    op = {"op_id": str(uuid.uuid4()), "kind": "concern.create", "data": {
        "id": str(uuid.uuid4()), "household_id": str(other_town.household.id), "categories": ["isolation"]}}
    result = push(client, device_id, op)[0]
    assert result["status"] == "rejected" and result["error"]["code"] == "household_unknown"


def test_a_workers_case_and_offline_contacts(town):
    town.with_outreach()
    town.case.lead_worker = town.users["outreach_worker"]
    town.case.save()
    client = town.client("outreach_worker")
    device_id = device(client)
    page = client.get("sync/pull", query={"device_id": device_id}).json()
    cases = [c for c in page["changes"] if c["kind"] == "case"]
    assert [c["id"] for c in cases] == [str(town.case.id)]
    assert "notes" not in cases[0]["data"]
    contact_id = str(uuid.uuid4())
    op = {"op_id": str(uuid.uuid4()), "kind": "case_contact.create", "data": {
        "id": contact_id, "case_id": str(town.case.id), "kind": "visit", "contacted_on": str(timezone.localdate()),
        "reached": True, "note": "玄関で5分話せた"}}
    results = push(client, device_id, op, op)
    assert [r["status"] for r in results] == ["applied", "duplicate"]
    assert CaseContact.objects.filter(pk=contact_id).count() == 1


def test_a_commissioners_offline_check_in(town):
    town.with_outreach()
    client = town.client("commissioner")
    device_id = device(client)
    op = {"op_id": str(uuid.uuid4()), "kind": "watch_check_in.create", "data": {
        "watch_id": town.watch.id, "checked_on": str(timezone.localdate()), "ok": False, "note": "灯りがついていない"}}
    assert push(client, device_id, op)[0]["status"] == "applied"
    town.watch.refresh_from_db()
    assert town.watch.last_check_in == timezone.localdate()
