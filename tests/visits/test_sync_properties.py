"""Sync under bad networks: duplicates, reordering, retries after timeouts, partial failures, and
the same batch sent in parallel. Exactly the unique valid operations are applied, each once."""

import threading
import uuid

import pytest
from django.db import connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.roles import Role
from tests import factories
from tests.conftest import ApiClient, build_town
from visits.models import Device, SyncOperation, VisitRecord
from visits.sync import engine as sync


def _op(household, *, valid: bool = True) -> dict:
    return {
        "op_id": str(uuid.uuid4()),
        "kind": "visit.create",
        "base_version": None,
        "data": {
            "id": str(uuid.uuid4()),
            "household_id": str(household.id),
            "outcome": "met" if valid else "teleported",
            "visited_at": "2026-11-22T10:15:00+09:00",
        },
    }


@pytest.fixture
def crew(town):
    """Two workers of the town's corporation, each with a registered device."""
    second = factories.user(town.municipality, Role.OUTREACH_WORKER, partner_org=town.partner)
    members = []
    for user in (town.users["outreach_worker"], second):
        device = Device.objects.create(id=uuid.uuid4(), municipality=town.municipality, user=user)
        members.append((user, device))
    return members


sends = st.lists(  # (device index, [op index …]) per send; responses of some sends are "lost"
    st.tuples(st.integers(0, 1), st.lists(st.integers(0, 11), min_size=1, max_size=8), st.booleans()),
    min_size=1, max_size=10,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=sends, invalid=st.sets(st.integers(0, 11), max_size=4))
def test_exactly_the_unique_valid_operations_are_applied_once(town, crew, plan, invalid):
    # 12 operations, 6 made on each device; some are invalid (they must be rejected every time).
    ops = [(i % 2, _op(town.household, valid=i not in invalid)) for i in range(12)]
    applied_count: dict[str, int] = {}
    answered: set[str] = set()
    for device_index, indexes, response_lost in plan:
        user, device = crew[device_index]
        batch = [ops[i][1] for i in indexes if ops[i][0] == device_index]  # a device sends its own ops
        if not batch:
            continue
        results = sync.push(user=user, device=device, ops=batch)
        assert [r["op_id"] for r in results] == [op["op_id"] for op in batch]
        for r in results:
            applied_count[r["op_id"]] = applied_count.get(r["op_id"], 0) + (r["status"] == "applied")
        if not response_lost:
            answered.update(r["op_id"] for r in results)
    # The devices retry everything never answered (and, for good measure, everything else too).
    for device_index, (user, device) in enumerate(crew):
        mine = [op for d, op in ops if d == device_index]
        for r in sync.push(user=user, device=device, ops=mine):
            applied_count[r["op_id"]] = applied_count.get(r["op_id"], 0) + (r["status"] == "applied")
            expected = {"rejected"} if r["op_id"] in {ops[i][1]["op_id"] for i in invalid} else {"duplicate", "applied"}
            assert r["status"] in expected, r

    valid_ops = [op for i, (_d, op) in enumerate(ops) if i not in invalid]
    records = set(VisitRecord.objects.filter(pk__in=[op["data"]["id"] for _d, op in ops]).values_list("pk", flat=True))
    assert records == {uuid.UUID(op["data"]["id"]) for op in valid_ops}
    assert all(applied_count[op["op_id"]] == 1 for op in valid_ops)
    assert all(applied_count.get(ops[i][1]["op_id"], 0) == 0 for i in invalid)
    assert SyncOperation.objects.filter(pk__in=[op["op_id"] for _d, op in ops]).count() == len(valid_ops)


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_sent_ten_times_in_parallel_creates_nothing_twice():
    town = build_town("930003")
    worker = town.users["outreach_worker"]
    device_id = str(uuid.uuid4())
    Device.objects.create(id=device_id, municipality=town.municipality, user=worker)
    batch = [_op(town.household) for _ in range(20)]
    token = town.tokens["outreach_worker"]
    answers: list[list[dict]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(10)

    def send():
        try:
            client = ApiClient(token)
            barrier.wait()
            r = client.post("sync/push", {"device_id": device_id, "ops": batch})
            assert r.status_code == 200, r.content
            answers.append(r.json()["results"])
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(answers) == 10
    for i, op in enumerate(batch):
        statuses = sorted(a[i]["status"] for a in answers)
        assert statuses == ["applied"] + ["duplicate"] * 9, (op["op_id"], statuses)
    assert VisitRecord.objects.filter(pk__in=[op["data"]["id"] for op in batch]).count() == 20
    assert SyncOperation.objects.filter(pk__in=[op["op_id"] for op in batch]).count() == 20
