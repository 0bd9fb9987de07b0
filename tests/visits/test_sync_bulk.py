"""The push writes runs of new visits together (visits.sync.bulk) and every other op alone. Each
batch here is pushed twice from the same state, once as the server does and once with the
set-based write switched off (every op in its own savepoint, as before), and both must answer and
leave the database exactly alike."""

import datetime as dt
import logging
import uuid

import pytest
from django.apps import apps
from django.db import transaction
from django.utils import timezone
from pghistory.models import Context

from neighborhoods.models import Household
from tests import factories
from tests.visits.test_sync import push, visit_op
from visits.models import (
    CampaignHousehold,
    Device,
    ScheduledVisit,
    SyncOperation,
    VisitRecord,
)
from visits.sync import engine


def _registered(town, role: str) -> dict:
    client = town.client(role)
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id, "name": role}).status_code == 201
    return {"client": client, "device_id": device_id, "town": town}


@pytest.fixture
def tablet(town):
    """The town's outreach worker with a registered device."""
    return _registered(town, "outreach_worker")


@pytest.fixture
def desk(town):
    """The town's coordinator with a registered device: they may push every kind."""
    return _registered(town, "coordinator")


def _history():
    return apps.get_model("visits", "ScheduledVisitHistory")


def _state(town) -> dict:
    """What a push may change, without timestamps."""
    return {
        "records": sorted(
            VisitRecord.objects.filter(municipality=town.municipality).values_list(
                "pk", "outcome", "scheduled_visit_id", "op_id", "distance_m", "location_implausible", "notes",
                "concerns", "answers", "supersedes_id",
            )
        ),
        "visits": sorted(
            ScheduledVisit.objects.filter(municipality=town.municipality).values_list("pk", "status", "outcome", "version")
        ),
        "states": sorted(
            CampaignHousehold.objects.filter(municipality=town.municipality).values_list(
                "household_id", "state", "attempts", "last_attempt_date", "last_attempt_band"
            )
        ),
        "operations": sorted(
            (str(pk), result) for pk, result in
            SyncOperation.objects.filter(municipality=town.municipality).values_list("pk", "result")
        ),
        "visit_history": _history().objects.filter(municipality_id=town.municipality.pk).count(),
        "households": sorted(Household.objects.filter(municipality=town.municipality).values_list("pk", "version")),
    }


def _both_ways(monkeypatch, pusher, ops) -> tuple[list[dict], dict]:
    """The batch's results and the state it leaves, pushed set-based and then one op at a time
    from the same starting point; both must be identical."""
    outcomes = []
    for one_by_one in (False, True):
        with monkeypatch.context() as patch, transaction.atomic():
            if one_by_one:
                patch.setattr(engine, "_groupable", lambda op: False)
            results = push(pusher, ops)
            outcomes.append((results, _state(pusher["town"])))
            transaction.set_rollback(True)
    (bulk_results, bulk_state), (alone_results, alone_state) = outcomes
    assert bulk_results == alone_results
    assert bulk_state == alone_state
    return bulk_results, bulk_state


def test_a_batch_whose_bulk_write_fails_gives_the_per_op_results(town, tablet, monkeypatch, caplog):
    earlier = visit_op(town)
    assert push(tablet, [earlier])[0]["status"] == "applied"
    taken = visit_op(town)
    taken["data"]["id"] = earlier["data"]["id"]  # another op, a record id that exists already
    ops = [visit_op(town), taken, visit_op(town, scheduled=town.visit, outcome="absent"), visit_op(town)]
    with caplog.at_level(logging.INFO, logger="tsunagu.sync"):
        results, _ = _both_ways(monkeypatch, tablet, ops)
    assert "applied one by one" in caplog.text  # the set-based write did fail and fall back
    assert [r["status"] for r in results] == ["applied", "rejected", "applied", "applied"]
    assert results[1]["error"]["code"] == "id_exists"
    assert [r["op_id"] for r in results] == [op["op_id"] for op in ops]
    # Rolled back both times: pushed for real now, the fallback keeps every guarantee.
    results = push(tablet, ops)
    assert [r["status"] for r in results] == ["applied", "rejected", "applied", "applied"]
    assert not SyncOperation.objects.filter(pk=taken["op_id"]).exists()  # a rejection keeps no claim
    assert [r["status"] for r in push(tablet, ops)] == ["duplicate", "rejected", "duplicate", "duplicate"]
    town.visit.refresh_from_db()
    assert (town.visit.status, town.visit.outcome) == ("absent", "absent")


def test_a_mixed_batch_gives_the_results_of_its_ops_one_by_one(town, desk, monkeypatch):
    town.with_outreach()
    second = factories.household(town.municipality, at=factories.centre(town.neighborhood))
    later = factories.scheduled_visit(
        town.campaign, second, town.users["outreach_worker"], timezone.localdate() + dt.timedelta(days=2)
    )
    first_visit = visit_op(town, scheduled=town.visit)
    first_copy = dict(first_visit)
    ops = [
        first_visit,
        visit_op(town, household=second),
        {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": town.household.version,
         "data": {"id": str(town.household.id), "risk_flags": ["hoarding"]}},
        {"op_id": str(uuid.uuid4()), "kind": "concern.create", "data": {
            "id": str(uuid.uuid4()), "household_id": str(town.household.id), "categories": ["isolation"],
            "visit_record_id": first_visit["data"]["id"]}},
        visit_op(town, scheduled=town.visit, outcome="absent"),  # already recorded in this batch
        visit_op(town, household=second, scheduled=later, outcome="refused"),
        visit_op(town, outcome="teleported"),
        {"op_id": str(uuid.uuid4()), "kind": "case_contact.create", "data": {
            "id": str(uuid.uuid4()), "case_id": str(town.case.id), "kind": "call",
            "contacted_on": str(timezone.localdate()), "reached": True}},
        visit_op(town, household=second, scheduled=later, outcome="refused"),  # the same again: no change
        first_copy,  # the same op twice in one batch
        {"op_id": str(uuid.uuid4()), "kind": "visit.create", "data": {"id": "x"}},
    ]
    results, state = _both_ways(monkeypatch, desk, ops)
    assert [r["status"] for r in results] == [
        "applied", "applied", "applied", "applied", "rejected", "applied", "rejected", "applied", "applied",
        "duplicate", "rejected",
    ]
    assert results[4]["error"]["code"] == "outcome_recorded"
    assert results[6]["error"]["code"] == "invalid"
    later_state = [s for s in state["visits"] if s[0] == later.pk]
    assert later_state == [(later.pk, "done", "refused", later.version + 1)]


def test_first_outcomes_written_together_are_those_of_record_outcome(town, tablet, monkeypatch):
    town.campaign.max_attempts = 2
    town.campaign.save(update_fields=["max_attempts"])
    worker = town.users["outreach_worker"]
    day = timezone.localdate() + dt.timedelta(days=1)
    households = [factories.household(town.municipality, at=factories.centre(town.neighborhood)) for _ in range(3)]
    visits = [
        factories.scheduled_visit(town.campaign, hh, worker, day, route_order=i + 2, time_band="am")
        for i, hh in enumerate(households)
    ]
    # The second household was tried once before: its 不在 now uses the last attempt (チラシ投函予定).
    CampaignHousehold.objects.create(
        municipality=town.municipality, campaign=town.campaign, household=households[1], attempts=1,
        state="scheduled", neighborhood=town.neighborhood,
    )
    ops = [
        visit_op(town, scheduled=town.visit, outcome="met"),
        visit_op(town, household=households[0], scheduled=visits[0], outcome="absent"),
        visit_op(town, household=households[1], scheduled=visits[1], outcome="absent"),
        visit_op(town, household=households[2], scheduled=visits[2], outcome="vacant"),
    ]
    results, state = _both_ways(monkeypatch, tablet, ops)
    assert [r["status"] for r in results] == ["applied"] * 4
    by_household = {s[0]: s[1:3] for s in state["states"]}
    assert by_household == {
        town.household.pk: ("met", 1), households[0].pk: ("pending", 1), households[1].pk: ("leaflet_due", 2),
        households[2].pk: ("vacant", 1),
    }
    push(tablet, ops)
    device = Device.objects.get(user=worker)
    contexts = Context.objects.filter(
        pk__in=_history().objects.filter(pgh_obj_id__in=[v.pk for v in visits], pgh_label="update")
        .values("pgh_context_id")
    )
    [context] = contexts  # one set-based update, one history context naming the device and its ops
    assert context.metadata["device"] == str(device.pk)
    assert set(context.metadata["ops"]) == {op["op_id"] for op in ops}
