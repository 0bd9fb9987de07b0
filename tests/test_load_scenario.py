"""The load scenario (bench/load) sends what the sync contract accepts, shares the work between
tablets without overlap, asks for the tiles the map page would, and its after-run check finds a
lost or doubled visit when there is one. No timing here: the load's figures belong to bench/."""

import datetime as dt
import json
import random
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench.load import checks, scenario
from maps import tiles
from visits import forms
from visits.models import VisitRecord
from visits.sync.engine import VisitCreate

DEMO_FORM = json.loads((settings.BASE_DIR / "fixtures" / "hokuei" / "survey_form.json").read_text(encoding="utf-8"))


def test_the_tablets_answers_are_complete_for_the_demo_form():
    for seed in range(50):
        answers = scenario.answers_for(DEMO_FORM["definition"], random.Random(seed))
        assert forms.answer_errors(DEMO_FORM["definition"], answers, complete=True) == []


def test_a_visit_op_is_a_valid_visit_create():
    household = {"id": str(uuid.uuid4()), "location": {"type": "Point", "coordinates": [133.75, 35.49]}}
    form = {"key": "household-visit", "version": 1, "definition": DEMO_FORM["definition"]}
    for seed in range(30):
        op = scenario.visit_op(household=household, scheduled_visit_id=str(uuid.uuid4()), form=form,
                               rng=random.Random(seed), now=timezone.now())
        data = VisitCreate.model_validate(op["data"])
        assert data.household_id == uuid.UUID(household["id"])
        assert (data.form_version is not None) == (data.outcome == "met")


def test_the_demo_workers_come_from_the_fixture():
    workers = scenario.worker_accounts()
    assert "demo-worker" in workers and len(workers) == 16
    assert "demo-supervisor" not in workers and "demo-coordinator" not in workers


@pytest.mark.parametrize("tablets", [5, 16, 20, 40, 80])
def test_every_scheduled_visit_is_taken_by_exactly_one_tablet_of_its_worker(tablets):
    dispenser = scenario.Seats(tablets, scenario.worker_accounts())
    seats = [dispenser.take()[1] for _ in range(tablets)]
    assert len({(s.username, s.slot) for s in seats}) == tablets
    visits = [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in range(300)]
    for name in {s.username for s in seats}:
        mine = [s for s in seats if s.username == name]
        assert {s.slots for s in mine} == {len(mine)}
        for visit in visits:
            assert sum(s.takes(visit) for s in mine) == 1


@pytest.mark.parametrize("zoom", scenario.PAN_ZOOMS)
def test_a_pan_asks_for_24_tiles_each_within_its_layers_zoom_range(zoom):
    bounds = [133.70, 35.45, 133.80, 35.52]
    pan = scenario.pan_tiles(bounds, zoom, random.Random(zoom))
    assert len(pan) == 24 and len(set(pan)) == 24
    for layer, z, x, y in pan:
        spec = tiles.layer_for(layer)
        assert spec.min_zoom <= z <= spec.max_zoom
        low_x, high_y = scenario.tile_of(bounds[0], bounds[1], z)
        high_x, low_y = scenario.tile_of(bounds[2], bounds[3], z)
        assert low_x - 3 <= x <= high_x + 3 and low_y - 3 <= y <= high_y + 3
    assert {layer for layer, *_ in pan} == ({"neighborhoods"} if zoom < 14 else {"neighborhoods", "households"})


@pytest.fixture
def tablet(town):
    client = town.client("outreach_worker")
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id, "name": "負荷試験"}).status_code == 201
    published = town.client("coordinator").post("sync/forms", {"title": DEMO_FORM["title"], "definition": DEMO_FORM["definition"]})
    assert published.status_code == 201, published.content
    return client, device_id, {"key": "household-visit", **published.json()}


def _push(client, device_id, ops):
    response = client.post("sync/push", {"device_id": device_id, "ops": ops})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def _check(ledger_path, since):
    connection.ensure_connection()
    return checks.check(connection.connection, checks.read_ledger(ledger_path), since=since,
                        until=timezone.now() + dt.timedelta(seconds=1))


def test_the_check_holds_for_what_was_pushed_and_resent(town, tablet, tmp_path):
    client, device_id, form = tablet
    since = timezone.now()
    household = {"id": str(town.household.pk), "location": {"type": "Point", "coordinates": [town.household.location.x, town.household.location.y]}}
    ledger = scenario.Ledger(str(tmp_path / "ledger.jsonl"))
    ops = [scenario.visit_op(household=household, scheduled_visit_id=str(town.visit.pk) if i == 0 else None, form=form,
                             rng=random.Random(i), now=timezone.now()) for i in range(3)]
    first = _push(client, device_id, ops)
    ledger.push(ops, first, resend=False)
    again = _push(client, device_id, ops)  # the answer was lost: the same batch again
    ledger.push(ops, again, resend=True)
    ledger.close()
    assert [r["status"] for r in first] == ["applied"] * 3 and [r["status"] for r in again] == ["duplicate"] * 3

    verdict = _check(tmp_path / "ledger.jsonl", since)
    assert verdict.acknowledged == 3 and verdict.resends == 3 and verdict.holds
    assert verdict.lost == [] and verdict.doubled_ops == [] and verdict.doubled_visits == []
    assert verdict.unacknowledged == 0


def test_the_check_finds_a_lost_and_a_doubled_visit(town, tablet, tmp_path):
    client, device_id, form = tablet
    since = timezone.now()
    household = {"id": str(town.household.pk), "location": None}
    ledger = scenario.Ledger(str(tmp_path / "ledger.jsonl"))
    op = scenario.visit_op(household=household, scheduled_visit_id=str(town.visit.pk), form=form,
                           rng=random.Random(1), now=timezone.now())
    ledger.push([op], _push(client, device_id, [op]), resend=False)
    # The server said applied for an op it never stored …
    ghost = scenario.visit_op(household=household, scheduled_visit_id=None, form=None, rng=random.Random(2),
                              now=timezone.now())
    ledger.push([ghost], [{"op_id": ghost["op_id"], "status": "applied", "id": ghost["data"]["id"]}], resend=False)
    ledger.close()
    # … and a second record of the same scheduled visit appeared, superseding nothing.
    VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=town.municipality, household=town.household, scheduled_visit=town.visit,
        worker=town.users["outreach_worker"], outcome="met", visited_at=timezone.now(),
    )

    verdict = _check(tmp_path / "ledger.jsonl", since)
    assert verdict.lost == [ghost["op_id"]]
    assert verdict.doubled_visits == [str(town.visit.pk)]
    assert verdict.unacknowledged == 1 and not verdict.holds
