"""What a push costs the database: a batch of new visits takes the same statements whatever its
size, and each op's result is written once, with its claim, when the op ends as expected
(visits.sync.engine._expected_result); any other result is written after the op is applied."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.visits.test_sync import push, visit_op
from visits.models import Device, SyncOperation


@pytest.fixture
def tablet(town):
    """The town's outreach worker with a registered device."""
    client = town.client("outreach_worker")
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id, "name": "iPad"}).status_code == 201
    return {"client": client, "device_id": device_id}


def _pushed(tablet, ops) -> tuple[list[dict], list[str]]:
    with CaptureQueriesContext(connection) as captured:
        results = push(tablet, ops)
    return results, [q["sql"] for q in captured.captured_queries]


def _stored(results: list[dict]) -> dict[str, dict]:
    rows = SyncOperation.objects.filter(pk__in=[r["op_id"] for r in results]).values_list("pk", "result")
    return {str(pk): result for pk, result in rows}


def _answered(results: list[dict]) -> dict[str, dict]:
    return {r["op_id"]: {k: v for k, v in r.items() if k != "op_id"} for r in results if r["status"] != "rejected"}


def test_new_visits_take_the_same_statements_at_any_batch_size(town, tablet):
    small, small_sql = _pushed(tablet, [visit_op(town) for _ in range(2)])
    ops = [visit_op(town) for _ in range(40)]
    large, large_sql = _pushed(tablet, ops)
    assert {r["status"] for r in small + large} == {"applied"}
    assert len(large_sql) == len(small_sql)
    # The results went in with the claims: no second write of them.
    assert not [sql for sql in large_sql if sql.startswith("UPDATE visits_syncoperation")]
    assert _stored(large) == _answered(large)
    assert Device.objects.get(user=town.users["outreach_worker"]).last_push_at is not None
    retried = push(tablet, ops)  # a retry answers from the stored results
    assert [{**r, "status": "applied"} for r in retried] == large
    assert {r["status"] for r in retried} == {"duplicate"}


def test_a_result_other_than_the_expected_one_is_written_after(town, tablet):
    hh = town.household
    edit = {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": hh.version,
            "data": {"id": str(hh.id), "risk_flags": ["hoarding"]}}
    bad = visit_op(town, outcome="teleported")
    ops = [visit_op(town), edit, bad, visit_op(town)]
    results, statements = _pushed(tablet, ops)
    assert [r["status"] for r in results] == ["applied", "applied", "rejected", "applied"]
    assert results[1]["version"] == hh.version + 1
    assert [sql for sql in statements if sql.startswith("UPDATE visits_syncoperation")]
    assert _stored(results) == _answered(results)  # the edit's result too; the rejection keeps no claim
    assert not SyncOperation.objects.filter(pk=bad["op_id"]).exists()
    retried = push(tablet, ops)
    assert [r["status"] for r in retried] == ["duplicate", "duplicate", "rejected", "duplicate"]
    assert [r.get("id") for r in retried] == [r.get("id") for r in results]
    assert retried[1]["version"] == results[1]["version"]
