"""Overdue is computed when read, against today in Asia/Tokyo: no read waits for the daily sweep,
and the sweep records exactly what the reads say."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from outreach import services
from outreach.models import OutreachCase, WatchArrangement
from outreach.tasks import sweep_overdue_task

TOKYO = ZoneInfo("Asia/Tokyo")
UTC = dt.UTC


@pytest.fixture
def around(town):
    """Cases and 見守り due the day before D, on D and the day after, plus a closed case and an ended
    見守り long past due. D is today in Tokyo (the fixture's tokens stay valid)."""
    d = timezone.localdate()
    coordinator, worker = town.users["coordinator"], town.users["outreach_worker"]
    cases, watches = {}, {}
    for name, offset in (("before", -1), ("on", 0), ("after", 1), ("closed", -1)):
        cases[name] = services.open_case(
            by=coordinator, household_id=town.household.id, title=f"期限 {name}", cadence_days=14,
            lead_worker=worker, opened_on=d + dt.timedelta(days=offset - 14),
        )
        watches[name] = services.add_watch(
            user=coordinator, household_id=town.household.id, watcher_name=f"見守り {name}", watcher_role="commissioner",
            cadence_days=7, started_on=d + dt.timedelta(days=offset - 7),
        )
    services.close_case(case=cases["closed"], reason="resolved", evaluation="主訴解消", by=coordinator,
                        closed_on=d - dt.timedelta(days=20))
    WatchArrangement.objects.filter(pk=watches["closed"].pk).update(ended_on=d - dt.timedelta(days=20))
    assert cases["on"].next_contact_due == d and watches["on"].next_due == d
    return {"d": d, "cases": {k: str(v.pk) for k, v in cases.items()}, "watches": {k: v.pk for k, v in watches.items()}}


def _at(day: dt.date, hour: int, minute: int = 0, tz=TOKYO) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def _reads(town, ids) -> dict:
    """What every read says is overdue: names of the fixture's cases and 見守り, per read."""
    case_names = {v: k for k, v in ids["cases"].items()}
    watch_names = {v: k for k, v in ids["watches"].items()}
    coordinator = town.client("coordinator")

    def cases(items):
        return {case_names[i["id"]] for i in items if i["id"] in case_names}

    def watches(items):
        return {watch_names[i["id"]] for i in items if i["id"] in watch_names}

    listed = coordinator.get("cases", query={"limit": 100}).json()["items"]
    listed_watches = coordinator.get("watches", query={"limit": 100}).json()["items"]
    everything = coordinator.get("overdue").json()
    mine = town.client("outreach_worker").get("me/overdue").json()
    commissioners = town.client("commissioner").get("me/overdue").json()
    on_map = coordinator.get("maps/overdue").json()["items"]
    return {
        "case flags": cases(i for i in listed if i["overdue"]),
        "case filter": cases(coordinator.get("cases", query={"overdue": "true"}).json()["items"]),
        "case filter false": {case_names[i["id"]] for i in coordinator.get("cases", query={"overdue": "false"}).json()["items"]},
        "case details": {name for name, pk in ids["cases"].items() if coordinator.get(f"cases/{pk}").json()["overdue"]},
        "/overdue cases": cases(everything["cases"]),
        "/me/overdue cases": cases(mine["cases"]),
        "map cases": {case_names[i["id"]] for i in on_map if i["kind"] == "case"},
        "watch flags": watches(i for i in listed_watches if i["overdue"]),
        "watch filter": watches(coordinator.get("watches", query={"overdue": "true"}).json()["items"]),
        "/overdue watches": watches(everything["watches"]),
        "/me/overdue watches": watches(commissioners["watches"]),
        "map watches": {watch_names[int(i["id"])] for i in on_map if i["kind"] == "watch"},
    }


def _expect(cases: set, watches: set) -> dict:
    open_cases = {"before", "on", "after", "closed"}
    return {
        "case flags": cases, "case filter": cases, "case filter false": open_cases - cases, "case details": cases,
        "/overdue cases": cases, "/me/overdue cases": cases, "map cases": cases,
        "watch flags": watches, "watch filter": watches, "/overdue watches": watches, "/me/overdue watches": watches,
        "map watches": watches,
    }


def test_due_on_d_is_not_overdue_on_d_and_overdue_on_d_plus_1_before_any_sweep(town, around):
    d = around["d"]
    assert not OutreachCase.objects.filter(overdue=True).exists()  # no sweep ran
    with time_machine.travel(_at(d, 12), tick=False):
        assert _reads(town, around) == _expect({"before"}, {"before"})
    with time_machine.travel(_at(d + dt.timedelta(days=1), 9), tick=False):
        assert _reads(town, around) == _expect({"before", "on"}, {"before", "on"})
    assert not OutreachCase.objects.filter(overdue=True).exists()  # still no sweep: the reads computed it


def test_tokyo_midnight_decides_not_utc(town, around):
    """15:00 UTC is midnight in Tokyo: D 14:59Z is still D there, D 15:30Z is already D+1."""
    d = around["d"]
    with time_machine.travel(dt.datetime(d.year, d.month, d.day, 14, 59, tzinfo=UTC), tick=False):
        assert _reads(town, around) == _expect({"before"}, {"before"})
    with time_machine.travel(dt.datetime(d.year, d.month, d.day, 15, 30, tzinfo=UTC), tick=False):
        assert timezone.localdate() == d + dt.timedelta(days=1)
        assert _reads(town, around) == _expect({"before", "on"}, {"before", "on"})


def test_the_sweep_records_exactly_what_the_reads_say(town, around):
    d1 = around["d"] + dt.timedelta(days=1)
    with time_machine.travel(_at(d1, 5), tick=False):
        read = _reads(town, around)
        assert sweep_overdue_task() == {"cases_changed": 2, "watches_changed": 2}
        stored_cases = {k for k, pk in around["cases"].items() if OutreachCase.objects.get(pk=pk).overdue}
        stored_watches = {k for k, pk in around["watches"].items() if WatchArrangement.objects.get(pk=pk).overdue}
        assert stored_cases == read["case filter"] == {"before", "on"}
        assert stored_watches == read["watch filter"] == {"before", "on"}
        assert services.sweep_overdue() == {"cases_changed": 0, "watches_changed": 0}  # idempotent


def test_a_contact_clears_overdue_at_once(town, around):
    d1 = around["d"] + dt.timedelta(days=1)
    with time_machine.travel(_at(d1, 10), tick=False):
        worker = town.client("outreach_worker")
        case_id = around["cases"]["on"]
        assert worker.get(f"cases/{case_id}").json()["overdue"] is True
        r = worker.post(f"cases/{case_id}/contacts", {"kind": "call", "contacted_on": str(d1), "reached": True})
        assert r.status_code == 201, r.content
        assert worker.get(f"cases/{case_id}").json()["overdue"] is False
        assert case_id not in {c["id"] for c in worker.get("me/overdue").json()["cases"]}


def test_the_pulled_case_carries_overdue_as_of_the_pull(town, around):
    import uuid

    worker = town.client("outreach_worker")
    device_id = str(uuid.uuid4())
    assert worker.post("sync/devices", {"device_id": device_id}).status_code == 201
    d1 = around["d"] + dt.timedelta(days=1)
    with time_machine.travel(_at(d1, 10), tick=False):
        changes = worker.get("sync/pull", query={"device_id": device_id, "limit": 500}).json()["changes"]
    pulled = {c["id"]: c["data"]["overdue"] for c in changes if c["kind"] == "case"}
    assert pulled[around["cases"]["on"]] is True and pulled[around["cases"]["after"]] is False
