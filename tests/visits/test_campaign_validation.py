"""Campaign, availability, days-off and planning input: plausible dates (a campaign lies in its 年度),
local times of day, and closing a campaign while its schedule is being planned."""

import datetime as dt
import threading
import time

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from backend.dates import fiscal_year_of, plan_date_bounds
from tests.api.test_errors import assert_error_body
from tests.conftest import build_town
from visits import services
from visits.models import Campaign, PlanningJob, ScheduledVisit


def locs(err: dict) -> list[list]:
    return [d["loc"] for d in err["details"]]


def fy() -> int:
    return fiscal_year_of(timezone.localdate())


@pytest.mark.parametrize("value", ["09:00:00+09:00", "09:00Z", "25:00", "9am"])
def test_availability_refuses_zoned_and_malformed_times(town, value):
    worker = town.users["outreach_worker"]
    r = town.client("coordinator").put(f"workers/{worker.id}/availability", {"weekdays": [1, 2], "start_time": value})
    assert ["body", "start_time"] in locs(assert_error_body(r, 422, "invalid"))


@pytest.mark.parametrize("value", ["09:00", "09:00:00"])
def test_availability_takes_local_times(town, value):
    worker = town.users["outreach_worker"]
    r = town.client("coordinator").put(f"workers/{worker.id}/availability", {"weekdays": [1, 2], "start_time": value})
    assert r.status_code == 200, r.content
    assert r.json()["start_time"].startswith("09:00")


@pytest.mark.parametrize(("body", "field"), [
    ({"weekdays": [8]}, "weekdays"),
    ({"weekdays": [True]}, "weekdays"),
    ({"weekdays": [1], "start_time": "17:00", "end_time": "09:00"}, "end_time"),
])
def test_availability_ranges(town, body, field):
    worker = town.users["outreach_worker"]
    r = town.client("coordinator").put(f"workers/{worker.id}/availability", body)
    assert ["body", field] in [loc[:2] for loc in locs(assert_error_body(r, 422, "invalid"))]


def _campaign(**overrides) -> dict:
    year = fy()
    return {"fiscal_year": year, "name": "調査", "start_date": f"{year}-10-01", "end_date": f"{year + 1}-03-31", **overrides}


@pytest.mark.parametrize(("overrides", "field"), [
    ({"start_date": "0001-01-01"}, "start_date"),
    ({"end_date": "9999-12-31"}, "end_date"),
    ({"end_date": f"{fy() + 1}-04-01"}, "end_date"),  # the next 年度
    ({"start_date": f"{fy()}-03-31"}, "start_date"),  # the previous 年度
    ({"fiscal_year": fy() + 1}, "start_date"),  # dates of another 年度 than the one named
])
def test_campaign_dates_lie_in_their_fiscal_year(town, overrides, field):
    r = town.client("coordinator").post("campaigns", _campaign(**overrides))
    assert ["body", field] in locs(assert_error_body(r, 422, "invalid"))
    assert not Campaign.objects.filter(name="調査").exists()


def test_campaign_plans_are_bounded_in_the_future(town):
    _, last = plan_date_bounds()
    year = fiscal_year_of(last) + 1
    r = town.client("coordinator").post(
        "campaigns", _campaign(fiscal_year=year, start_date=f"{year}-04-01", end_date=f"{year}-05-01")
    )
    assert ["body", "start_date"] in locs(assert_error_body(r, 422, "invalid"))
    assert town.client("coordinator").post("campaigns", _campaign()).status_code == 201


def test_campaign_patch_keeps_the_fiscal_year_and_refuses_null(town):
    client = town.client("coordinator")
    campaign = client.post("campaigns", _campaign()).json()
    r = client.patch(f"campaigns/{campaign['id']}", {"end_date": f"{fy() + 1}-04-30"})
    assert ["body", "end_date"] in locs(assert_error_body(r, 422, "invalid"))
    r = client.patch(f"campaigns/{campaign['id']}", {"name": None})
    assert ["body", "name"] in locs(assert_error_body(r, 422, "invalid"))
    r = client.patch(f"campaigns/{campaign['id']}", {"end_date": f"{fy() + 1}-02-28"})
    assert r.status_code == 200, r.content
    assert Campaign.objects.get(pk=campaign["id"]).end_date == dt.date(fy() + 1, 2, 28)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_days_off_are_plausible(town, day):
    worker = town.users["outreach_worker"]
    r = town.client("coordinator").post(f"workers/{worker.id}/days-off", {"dates": [day]})
    assert ["body", "dates", "0"] in locs(assert_error_body(r, 422, "invalid"))
    assert not worker.days_off.exists()


def test_a_hearing_is_not_in_the_future(town):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    r = town.client("coordinator").post(f"campaigns/{town.campaign.id}/hearings", {
        "neighborhood_id": town.neighborhood.id, "held_on": str(tomorrow)})
    assert ["body", "held_on"] in locs(assert_error_body(r, 422, "invalid"))


def test_replanning_from_far_away_is_refused(town):
    r = town.client("coordinator").post(f"campaigns/{town.campaign.id}/replan", {"from_date": "9999-12-31"})
    assert ["body", "from_date"] in locs(assert_error_body(r, 422, "invalid"))


def test_closing_cancels_a_queued_planning_job(town):
    job = PlanningJob.objects.create(municipality=town.municipality, campaign=town.campaign, kind="replan",
                                     from_date=timezone.localdate() + dt.timedelta(days=1))
    r = town.client("coordinator").post(f"campaigns/{town.campaign.id}/close")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "closed"
    job.refresh_from_db()
    assert job.status == "failed" and "closed" in job.message
    assert services.run_planning_job(str(job.pk)) == {"skipped": True}
    assert not ScheduledVisit.objects.filter(campaign=town.campaign, status="planned").exists()


def _pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _blocked(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


@pytest.mark.django_db(transaction=True)
def test_closing_while_a_replan_writes_takes_locks_in_one_order():
    """The close holds the campaign row; the re-plan, about to write, waits for that row before it
    touches any visit. When the close commits, the job finds itself cancelled and writes nothing.
    (Before: the job locked the visits first and then waited for the campaign, while the close
    waited for those visits: a deadlock, answered 500.)"""
    town = build_town("940004")
    campaign = town.campaign
    job = PlanningJob.objects.create(municipality=town.municipality, campaign=campaign, kind="replan",
                                     from_date=timezone.localdate() + dt.timedelta(days=1))
    state: dict = {"planner_pid": None}
    go = threading.Event()

    def close() -> None:
        try:
            with transaction.atomic():
                locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
                state["close_locked"] = True
                assert go.wait(60)
                services.close_campaign(campaign=locked)
            state["closed"] = True
        except Exception as exc:  # reported to the test below
            state["close_error"] = exc
        finally:
            connection.close()

    def replan() -> None:
        try:
            state["planner_pid"] = _pid()
            state["result"] = services.run_planning_job(str(job.pk))
        except Exception as exc:
            state["plan_error"] = exc
        finally:
            connection.close()

    closer = threading.Thread(target=close)
    closer.start()
    while "close_locked" not in state and "close_error" not in state:
        time.sleep(0.02)
    planner = threading.Thread(target=replan)
    planner.start()
    deadline = time.monotonic() + 60
    while planner.is_alive() and time.monotonic() < deadline:
        if state["planner_pid"] and _blocked(state["planner_pid"]):
            break
        time.sleep(0.05)
    # The planner waits for the campaign row holding no visit: the close can take them all.
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM visits_scheduledvisit WHERE campaign_id = %s FOR UPDATE NOWAIT", [campaign.pk]
            )
        visits_free = True
    except OperationalError:
        visits_free = False
    go.set()
    closer.join(60)
    planner.join(60)
    assert "close_error" not in state, state.get("close_error")
    assert "plan_error" not in state, state.get("plan_error")
    assert visits_free, "the planner locked visits before the campaign row"
    assert state.get("closed")
    job.refresh_from_db()
    assert job.status == "failed", (job.status, job.message)
    assert Campaign.objects.get(pk=campaign.pk).status == "closed"
    assert not ScheduledVisit.objects.filter(campaign=campaign, status="planned").exists()
