"""Field sync: push applies each operation at most once; pull sends changes and purges."""

import datetime as dt
import uuid

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from tests import factories
from tests.api.test_errors import assert_error_body
from tests.conftest import ApiClient
from visits.models import (
    CampaignHousehold,
    EditConflict,
    ScheduledVisit,
    SurveyForm,
    SyncOperation,
    VisitRecord,
)
from visits.sync.engine import holdings_digest

FORM = {"questions": [
    {"id": "talked", "type": "boolean", "label": "話ができた", "required": True},
    {"id": "worries", "type": "multi_choice", "label": "困りごと", "choices": ["health", "money", "loneliness"]},
    {"id": "note", "type": "text", "label": "メモ"},
]}


@pytest.fixture
def tablet(town):
    """The town's outreach worker with a registered device and a published form."""
    client = town.client("outreach_worker")
    device_id = str(uuid.uuid4())
    r = client.post("sync/devices", {"device_id": device_id, "name": "iPad 1", "platform": "iPadOS"})
    assert r.status_code == 201, r.content
    form = town.client("coordinator").post("sync/forms", {"title": "世帯訪問調査票", "definition": FORM})
    assert form.status_code == 201, form.content
    return {"client": client, "device_id": device_id, "form_version": form.json()["version"]}


def visit_op(town, *, household=None, scheduled=None, outcome="met", **data):
    household = household or town.household
    body = {
        "id": str(uuid.uuid4()), "household_id": str(household.id),
        "scheduled_visit_id": str(scheduled.id) if scheduled else None, "outcome": outcome,
        "visited_at": "2026-11-22T10:15:00+09:00", "notes": "玄関先で話した",
        "location": {"type": "Point", "coordinates": [household.location.x, household.location.y], "accuracy_m": 12},
        **data,
    }
    return {"op_id": str(uuid.uuid4()), "kind": "visit.create", "data": body}


def push(tablet, ops, client=None):
    r = (client or tablet["client"]).post("sync/push", {"device_id": tablet["device_id"], "ops": ops})
    assert r.status_code == 200, r.content
    return r.json()["results"]


def test_a_visit_is_applied_once_and_a_retry_is_a_duplicate(town, tablet):
    op = visit_op(town, scheduled=town.visit, form_version=tablet["form_version"], answers={"talked": True, "worries": ["loneliness"]})
    first = push(tablet, [op])[0]
    assert first["status"] == "applied" and first["id"] == op["data"]["id"]
    again = push(tablet, [op])[0]
    assert again["status"] == "duplicate" and again["id"] == op["data"]["id"]
    assert VisitRecord.objects.filter(pk=op["data"]["id"]).count() == 1
    record = VisitRecord.objects.get(pk=op["data"]["id"])
    assert record.visited_at == dt.datetime(2026, 11, 22, 1, 15, tzinfo=dt.UTC)
    assert record.received_at > record.visited_at
    assert record.distance_m < 1 and not record.location_implausible
    # the outcome drives the campaign
    town.visit.refresh_from_db()
    assert town.visit.status == "done"
    assert CampaignHousehold.objects.get(campaign=town.campaign, household=town.household).state == "met"


def test_the_same_op_id_with_other_content_is_refused(town, tablet):
    op = visit_op(town)
    push(tablet, [op])
    changed = {**op, "data": {**op["data"], "notes": "別の内容"}}
    result = push(tablet, [changed])[0]
    assert result["status"] == "rejected" and result["error"]["code"] == "op_id_reused"
    assert VisitRecord.objects.get(pk=op["data"]["id"]).notes == "玄関先で話した"


def test_one_ops_failure_does_not_undo_another(town, tablet, other_town):
    good, bad = visit_op(town), visit_op(town, household=other_town.household)
    bad_answers = visit_op(town, form_version=tablet["form_version"], answers={"talked": "yes"})
    results = push(tablet, [good, bad, bad_answers])
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected"]
    assert results[1]["error"]["code"] == "not_assigned"
    assert results[2]["error"]["code"] == "invalid_answers"
    assert results[2]["error"]["details"][0]["loc"] == ["answers", "talked"]
    assert [r["op_id"] for r in results] == [good["op_id"], bad["op_id"], bad_answers["op_id"]]
    assert VisitRecord.objects.filter(pk=good["data"]["id"]).exists()
    assert not SyncOperation.objects.filter(pk=bad["op_id"]).exists()


def test_required_answers_only_when_someone_was_met(town, tablet):
    met = visit_op(town, form_version=tablet["form_version"], answers={"worries": ["money"]})
    absent = visit_op(town, outcome="absent", form_version=tablet["form_version"], answers={})
    results = push(tablet, [met, absent])
    assert results[0]["status"] == "rejected" and "talked" in results[0]["error"]["message"]
    assert results[1]["status"] == "applied"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"visited_at": "2026-11-22T10:15:00"}, "invalid"),
        ({"outcome": "partied"}, "invalid"),
        ({"concerns": ["not-a-category"]}, "invalid"),
        ({"extra_field": 1}, "invalid"),
        ({"form_version": 99, "answers": {}}, "unknown_form"),
        ({"answers": {"talked": True}}, "invalid_answers"),
    ],
)
def test_bad_visits_are_rejected_with_a_reason(town, tablet, change, code):
    op = visit_op(town)
    op["data"].update(change)
    result = push(tablet, [op])[0]
    assert result["status"] == "rejected" and result["error"]["code"] == code, result
    assert not VisitRecord.objects.filter(pk=op["data"]["id"]).exists()


def test_a_far_away_location_is_flagged(town, tablet):
    op = visit_op(town)
    op["data"]["location"] = {"type": "Point", "coordinates": [town.household.location.x + 0.01, town.household.location.y],
                              "accuracy_m": 20}
    result = push(tablet, [op])[0]
    assert result["flags"]["location_implausible"] is True
    assert 800 < result["flags"]["distance_m"] < 1000


def test_a_correction_supersedes_and_records_are_append_only(town, tablet):
    original = visit_op(town, outcome="absent")
    push(tablet, [original])
    fix = visit_op(town, outcome="met", supersedes=original["data"]["id"])
    assert push(tablet, [fix])[0]["status"] == "applied"
    twice = visit_op(town, outcome="refused", supersedes=original["data"]["id"])
    assert push(tablet, [twice])[0]["error"]["code"] == "already_superseded"
    record = VisitRecord.objects.get(pk=original["data"]["id"])
    assert record.superseded_by.pk == uuid.UUID(fix["data"]["id"])
    with pytest.raises(DatabaseError), transaction.atomic():
        VisitRecord.objects.filter(pk=record.pk).update(outcome="met")


def test_absent_then_next_attempt(town, tablet):
    push(tablet, [visit_op(town, scheduled=town.visit, outcome="absent")])
    state = CampaignHousehold.objects.get(campaign=town.campaign, household=town.household)
    assert (state.state, state.attempts) == ("pending", 1)


def test_household_edit_with_a_stale_base_keeps_both_versions(town, tablet):
    hh = town.household
    op = {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": hh.version,
          "data": {"id": str(hh.id), "risk_flags": ["hoarding"]}}
    applied = push(tablet, [op])[0]
    assert applied["status"] == "applied" and applied["version"] == hh.version + 1
    stale = {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": hh.version,
             "data": {"id": str(hh.id), "status": "vacant"}}
    result = push(tablet, [stale])[0]
    assert result["status"] == "conflict" and result["error"]["code"] == "stale_version"
    assert result["server"]["version"] == hh.version + 1
    assert result["server"]["data"]["risk_flags"] == ["hoarding"]
    hh.refresh_from_db()
    assert hh.status == "occupied"  # nothing overwritten
    conflict = EditConflict.objects.get(object_id=str(hh.id))
    assert conflict.proposed["status"] == "vacant" and conflict.server_copy["version"] == hh.version
    assert push(tablet, [stale])[0]["status"] == "conflict"  # a retry: same answer, no second conflict row
    assert EditConflict.objects.filter(object_id=str(hh.id)).count() == 1


def test_whole_request_errors(town, tablet, settings):
    client = tablet["client"]
    too_many = [visit_op(town) for _ in range(501)]
    err = assert_error_body(client.post("sync/push", {"device_id": tablet["device_id"], "ops": too_many}), 413, "too_many_ops")
    assert "500" in err["message"]
    assert_error_body(client.post("sync/push", {"device_id": tablet["device_id"], "ops": "nope"}), 422)
    assert_error_body(client.post("sync/push", {"device_id": str(uuid.uuid4()), "ops": []}), 422, "device_not_registered")
    assert_error_body(ApiClient().post("sync/push", {"device_id": tablet["device_id"], "ops": []}), 401)
    assert not VisitRecord.objects.exists()


def pull(tablet, cursor="", limit=200, client=None):
    r = (client or tablet["client"]).get("sync/pull", query={"device_id": tablet["device_id"], "cursor": cursor, "limit": limit})
    assert r.status_code == 200, r.content
    return r.json()


def test_pull_from_scratch_then_only_changes(town, tablet):
    page = pull(tablet)
    kinds = {(c["kind"], c["id"]) for c in page["changes"]}
    assert ("scheduled_visit", str(town.visit.id)) in kinds
    assert ("household", str(town.household.id)) in kinds
    assert any(k == "form" for k, _ in kinds)
    assert page["purge"] == [] and page["has_more"] is False
    visit = next(c for c in page["changes"] if c["kind"] == "scheduled_visit")
    assert visit["data"]["status"] == "planned"  # tomorrow's: not handed out yet

    quiet = pull(tablet, page["next_cursor"])
    assert quiet["changes"] == []
    town.client("coordinator").patch(f"households/{town.household.id}", {"version": town.household.version, "status": "unknown"})
    changed = pull(tablet, quiet["next_cursor"])
    assert [(c["kind"], c["data"]["status"]) for c in changed["changes"]] == [("household", "unknown")]


def test_reassignment_and_closing_purge(town, tablet):
    page = pull(tablet)
    from accounts.roles import Role

    colleague = factories.user(town.municipality, Role.OUTREACH_WORKER, partner_org=town.partner)
    r = town.client("coordinator").post(f"scheduled-visits/{town.visit.id}/reassign", {"worker_id": colleague.id})
    assert r.status_code == 200
    after = pull(tablet, page["next_cursor"])
    assert {(p["kind"], p["id"]) for p in after["purge"]} == {
        ("scheduled_visit", str(town.visit.id)), ("household", str(town.household.id))}
    again = pull(tablet, after["next_cursor"])
    assert again["purge"] == []


def test_a_lost_page_is_pulled_again_with_the_same_cursor(town, tablet):
    for _ in range(4):
        factories.scheduled_visit(town.campaign, factories.household(town.municipality, at=factories.centre(town.neighborhood)),
                                  town.users["outreach_worker"], timezone.localdate() + dt.timedelta(days=2))
    first = pull(tablet, limit=3)
    assert first["has_more"] is True and len(first["changes"]) == 3
    second = pull(tablet, first["next_cursor"], limit=3)
    repeat = pull(tablet, first["next_cursor"], limit=3)  # the response was lost; same request
    assert repeat == second
    ids = [c["id"] for p in (first, second) for c in p["changes"]]
    rest = pull(tablet, second["next_cursor"], limit=100)
    ids += [c["id"] for c in rest["changes"]]
    assert len(ids) == len(set(ids)) == 1 + 5 + 5  # the form, 5 visits, 5 households
    assert rest["has_more"] is False


def test_todays_visits_count_as_handed_out(town, tablet):
    ScheduledVisit.objects.filter(pk=town.visit.pk).update(date=timezone.localdate())
    pull(tablet)
    town.visit.refresh_from_db()
    assert town.visit.status == "issued"


def test_check_digest(town, tablet):
    page = pull(tablet)
    pull(tablet, page["next_cursor"])
    held = {}
    for c in page["changes"]:
        held.setdefault(c["kind"], []).append(c["id"])
    digests = {k: holdings_digest(v) for k, v in held.items()}
    ok = tablet["client"].post("sync/check", {"device_id": tablet["device_id"], "holdings": digests})
    assert ok.status_code == 200 and ok.json() == {"ok": True}
    digests["household"] = holdings_digest([])
    err = assert_error_body(tablet["client"].post("sync/check", {"device_id": tablet["device_id"], "holdings": digests}), 409, "resync_required")
    assert err["details"]["kinds"] == ["household"]


def test_unknown_cursor_means_resync(town, tablet):
    r = tablet["client"].get("sync/pull", query={"device_id": tablet["device_id"], "cursor": "garbage"})
    assert_error_body(r, 409, "resync_required")


def test_a_commissioner_pulls_their_neighborhood_and_no_schedules(town):
    client = town.client("commissioner")
    device_id = str(uuid.uuid4())
    client.post("sync/devices", {"device_id": device_id})
    page = client.get("sync/pull", query={"device_id": device_id}).json()
    assert {c["kind"] for c in page["changes"]} == {"household"}


def test_a_device_id_of_another_user_registers_for_you_alone(town, tablet):
    """SYNC.md: registering an id that is not yours tells nothing (tests/visits/test_sync_privacy.py)."""
    r = town.client("coordinator").post("sync/devices", {"device_id": tablet["device_id"]})
    assert r.status_code == 201 and r.json()["user_id"] == town.users["coordinator"].id


def test_forms_are_versioned_and_validated(town):
    client = town.client("coordinator")
    v2 = client.post("sync/forms", {"title": "t", "definition": FORM}).json()
    v3 = client.post("sync/forms", {"title": "t", "definition": FORM}).json()
    assert v3["version"] == v2["version"] + 1
    bad = client.post("sync/forms", {"title": "t", "definition": {"questions": [{"id": "a", "type": "colour"}]}})
    assert_error_body(bad, 422)
    assert SurveyForm.objects.filter(municipality=town.municipality).count() == 2
    assert_error_body(town.client("outreach_worker").post("sync/forms", {"title": "t", "definition": FORM}), 403)


def test_the_same_op_twice_in_one_batch(town, tablet):
    op = visit_op(town)
    reused = {**op, "data": {**op["data"], "notes": "別"}}
    results = push(tablet, [op, op, reused])
    assert [r["status"] for r in results] == ["applied", "duplicate", "rejected"]
    assert results[2]["error"]["code"] == "op_id_reused"
    assert VisitRecord.objects.filter(pk=op["data"]["id"]).count() == 1
    rejected_twice = visit_op(town, outcome="partied")
    results = push(tablet, [rejected_twice, rejected_twice])
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert not SyncOperation.objects.filter(pk=rejected_twice["op_id"]).exists()
