"""The per-corporation report against a hand-counted fixture, built through the field sync (the way
visit records really arrive). Every expected number is counted by hand from the fixture, with the
reason beside it."""

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reports.corporations import METRICS, corporation_report, corporation_tables
from tests import factories
from tests.api.test_errors import assert_error_body
from tests.conftest import ApiClient
from visits.models import ScheduledVisit

JST = ZoneInfo("Asia/Tokyo")
pytestmark = pytest.mark.django_db


class Tablet:
    """A worker's registered device pushing visit records."""

    def __init__(self, worker):
        self.client = ApiClient(factories.token_for(worker))
        self.device_id = str(uuid.uuid4())
        r = self.client.post("sync/devices", {"device_id": self.device_id})
        assert r.status_code == 201, r.content

    def visit(self, sv, outcome, when, *, supersedes=None) -> str:
        record_id = str(uuid.uuid4())
        data = {"id": record_id, "household_id": str(sv.household_id), "outcome": outcome, "visited_at": when.isoformat()}
        if supersedes:
            data["supersedes"] = supersedes  # a correction, sent without its scheduled visit
        else:
            data["scheduled_visit_id"] = str(sv.id)
        r = self.client.post("sync/push", {"device_id": self.device_id, "ops": [
            {"op_id": str(uuid.uuid4()), "kind": "visit.create", "data": data},
        ]})
        assert r.status_code == 200, r.content
        assert r.json()["results"][0]["status"] == "applied", r.json()
        return record_id


def _at(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=JST)


@pytest.fixture
def work(town, other_town):
    """Corporation A (the town's partner: workers a1 = the town's worker, a2) and B (worker b1) in the
    town's running campaign C (令和8年度), a second campaign C2 of the same 年度 and a closed C3 of
    令和7年度. Day 1 is the day before yesterday, day 2 yesterday (Asia/Tokyo)."""
    m = town.municipality
    day1 = timezone.localdate() - dt.timedelta(days=2)
    day2 = day1 + dt.timedelta(days=1)
    corp_a = town.partner
    corp_b = factories.partner(m, code="zz-b")  # codes order A before B
    a1 = town.users["outreach_worker"]
    a2 = factories.user(m, "outreach_worker", partner_org=corp_a)
    b1 = factories.user(m, "outreach_worker", partner_org=corp_b)
    c = town.campaign
    hood_b = factories.neighborhood(m)
    factories.target(c, hood_b)
    factories.allocate(hood_b, corp_b, c)
    h1, h2, h3 = (factories.household(m, at=factories.centre(town.neighborhood)) for _ in range(3))
    h4, h5 = (factories.household(m, at=factories.centre(hood_b)) for _ in range(2))

    def plan(camp, hh, worker, day, leg_m, **fields):
        return factories.scheduled_visit(camp, hh, worker, day, leg_m=leg_m, **fields)

    ta1, ta2, tb1 = Tablet(a1), Tablet(a2), Tablet(b1)
    # town.visit: a1's planned visit to the town's household tomorrow, leg 0 m, nothing recorded yet.
    ta1.visit(plan(c, h1, a1, day1, 1200), "met", _at(day1, 10))
    sv2 = plan(c, h2, a1, day1, 800)
    ta1.visit(sv2, "absent", _at(day1, 8, 30))  # 08:30 JST is the day before in UTC
    sv3 = plan(c, h3, a1, day2, 500)
    first = ta1.visit(sv3, "absent", _at(day2, 9))
    ta1.visit(sv3, "met", _at(day2, 14), supersedes=first)  # corrected: counts once, as 面談
    ta2.visit(plan(c, h2, a2, day2, 650, attempt=2), "leaflet_left", _at(day2, 15))
    plan(c, h3, a2, day2, 9999, status=ScheduledVisit.Status.CANCELLED)  # cancelled: not planned, no distance
    tb1.visit(plan(c, h4, b1, day1, 2000), "refused", _at(day1, 11))
    tb1.visit(plan(c, h5, b1, day1, 300), "absent", _at(day1, 11, 30))

    c2 = factories.campaign(m, fiscal_year=c.fiscal_year)  # the same 年度, in preparation
    tb1.visit(plan(c2, h4, b1, day2, 400), "met", _at(day2, 10))
    c3 = factories.campaign(m, fiscal_year=c.fiscal_year - 1, start_date=dt.date(c.fiscal_year - 1, 12, 1),
                            end_date=dt.date(c.fiscal_year, 3, 31), status="closed")
    tb1.visit(plan(c3, h5, b1, day1, 700), "met", _at(day1, 13))

    # Another municipality's work in a campaign of the same 年度: never counted.
    Tablet(other_town.users["outreach_worker"]).visit(other_town.visit, "absent", _at(day1, 10))
    return {"town": town, "corp_a": corp_a, "corp_b": corp_b, "a1": a1, "a2": a2, "b1": b1, "c": c, "c2": c2, "c3": c3}


def _row(**metrics):
    return {k: metrics[k] for k in METRICS}


def _metrics(row: dict) -> dict:
    return {k: row[k] for k in METRICS}


# Campaign C, counted by hand:
A1 = _row(planned_visits=4,            # town.visit, h1, h2, h3
          planned_distance_km=2.5,     # 0 + 1200 + 800 + 500 m
          visits=3,                    # h1 met, h2 absent, h3 corrected absent → met (once)
          households_completed=2,      # h1, h3 (h2 was finished by a2)
          absent=1, absent_rate_pct=33.3, leaflets=0,
          worker_days=2,               # day 1 (08:30 and 10:00 JST), day 2
          stops_per_worker_day=1.5)    # 3 / 2
A2 = _row(planned_visits=1, planned_distance_km=0.7,  # 650 m (the cancelled 9999 m is not planned), half up
          visits=1, households_completed=1, absent=0, absent_rate_pct=0.0, leaflets=1,
          worker_days=1, stops_per_worker_day=1.0)
CORP_A = _row(planned_visits=5, planned_distance_km=3.2,  # 3150 m
              visits=4, households_completed=3, absent=1, absent_rate_pct=25.0, leaflets=1,
              worker_days=3, stops_per_worker_day=1.3)   # 4 / 3
CORP_B = _row(planned_visits=2, planned_distance_km=2.3, visits=2, households_completed=1,  # h4 refused; h5 absent
              absent=1, absent_rate_pct=50.0, leaflets=0, worker_days=1, stops_per_worker_day=2.0)
TOTAL = _row(planned_visits=7, planned_distance_km=5.5,  # 5450 m
             visits=6, households_completed=4, absent=2, absent_rate_pct=33.3, leaflets=1,
             worker_days=4, stops_per_worker_day=1.5)


def test_a_campaign_counted_by_hand(work):
    town = work["town"]
    report = corporation_report(municipality_id=town.municipality.id, campaign_id=work["c"].id)
    c = work["c"]
    assert report["scope"] == {
        "campaign": {"id": c.id, "name": c.name, "fiscal_year": c.fiscal_year}, "fiscal_year": c.fiscal_year,
        "label": "令和8年度",
    }
    a, b = report["corporations"]
    assert (a["id"], a["code"], a["name"]) == (work["corp_a"].id, work["corp_a"].code, work["corp_a"].name)
    assert b["id"] == work["corp_b"].id
    assert _metrics(a) == CORP_A
    assert _metrics(b) == CORP_B
    assert {w["id"]: _metrics(w) for w in a["workers"]} == {work["a1"].id: A1, work["a2"].id: A2}
    assert [w["id"] for w in b["workers"]] == [work["b1"].id]
    assert _metrics(report["total"]) == TOTAL
    assert report["without_visit_record"] == {"visits": 0, "households_completed": 0}


def test_a_fiscal_year_takes_every_campaign_of_that_year_only(work):
    town = work["town"]
    report = corporation_report(municipality_id=town.municipality.id, fiscal_year=work["c"].fiscal_year)
    assert report["scope"] == {"campaign": None, "fiscal_year": work["c"].fiscal_year, "label": "令和8年度"}
    a, b = report["corporations"]
    assert _metrics(a) == CORP_A  # C2 and C3 hold nothing of A
    # B adds C2's visit to h4 (met, day 2, 400 m): a household finished in two campaigns counts in each.
    assert _metrics(b) == _row(planned_visits=3, planned_distance_km=2.7, visits=3, households_completed=2,
                               absent=1, absent_rate_pct=33.3, leaflets=0, worker_days=2, stops_per_worker_day=1.5)
    assert report["total"]["visits"] == 7 and report["total"]["worker_days"] == 5

    last_year = corporation_report(municipality_id=town.municipality.id, fiscal_year=work["c"].fiscal_year - 1)
    assert last_year["scope"]["label"] == "令和7年度"
    [only] = last_year["corporations"]  # C3: b1's visit to h5, met
    assert only["id"] == work["corp_b"].id
    assert _metrics(only) == _row(planned_visits=1, planned_distance_km=0.7, visits=1, households_completed=1,
                                  absent=0, absent_rate_pct=0.0, leaflets=0, worker_days=1, stops_per_worker_day=1.0)


def test_another_municipalitys_work_is_never_counted(work, other_town):
    town = work["town"]
    report = corporation_report(municipality_id=town.municipality.id, fiscal_year=work["c"].fiscal_year)
    assert other_town.partner.id not in {c["id"] for c in report["corporations"]}
    theirs = corporation_report(municipality_id=other_town.municipality.id, fiscal_year=work["c"].fiscal_year)
    [corp] = theirs["corporations"]
    assert corp["id"] == other_town.partner.id
    assert (corp["visits"], corp["absent"], corp["planned_visits"]) == (1, 1, 1)
    assert [w["id"] for w in corp["workers"]] == [other_town.users["outreach_worker"].id]


def test_a_year_without_campaigns_is_empty_not_an_error(town):
    report = corporation_report(municipality_id=town.municipality.id, fiscal_year=2010)
    assert report["scope"]["label"] == "平成22年度"
    assert report["corporations"] == []
    assert report["total"]["visits"] == 0 and report["total"]["absent_rate_pct"] is None
    assert report["total"]["stops_per_worker_day"] is None


def test_an_allocated_corporation_that_has_not_worked_has_a_row_of_zeros(town):
    report = corporation_report(municipality_id=town.municipality.id, campaign_id=town.campaign.id)
    [corp] = report["corporations"]
    assert corp["id"] == town.partner.id
    assert (corp["planned_visits"], corp["visits"], corp["absent_rate_pct"]) == (1, 0, None)  # town.visit, planned
    assert [w["id"] for w in corp["workers"]] == [town.users["outreach_worker"].id]


def test_an_outcome_entered_without_a_visit_record_is_counted_apart(work):
    town = work["town"]
    r = town.client("coordinator").post(f"scheduled-visits/{town.visit.id}/outcome", {"outcome": "met"})
    assert r.status_code == 200, r.content
    report = corporation_report(municipality_id=town.municipality.id, campaign_id=work["c"].id)
    assert report["without_visit_record"] == {"visits": 1, "households_completed": 1}
    assert _metrics(report["total"]) == TOTAL  # the rows count records only; town.visit stays planned


def test_the_report_is_a_few_statements_whatever_the_number_of_workers(work):
    town = work["town"]
    with CaptureQueriesContext(connection) as queries:
        corporation_report(municipality_id=town.municipality.id, fiscal_year=work["c"].fiscal_year)
    assert len(queries) == 3  # the campaigns in scope, the rows, what has no visit record


def test_the_tables_for_exports(work):
    town = work["town"]
    report = corporation_report(municipality_id=town.municipality.id, campaign_id=work["c"].id)
    by_corp, by_worker, about = corporation_tables(report)
    assert by_corp.title == "法人別" and by_corp.headers[:4] == ["法人コード", "法人名", "予定件数", "計画移動距離(km)"]
    rows = list(by_corp.rows)
    assert [r[:2] for r in rows] == [[work["corp_a"].code, work["corp_a"].name], [work["corp_b"].code, work["corp_b"].name],
                                     ["", "合計"]]
    assert rows[-1][2:] == [TOTAL[k] for k in METRICS]
    assert len(by_corp.headers) == len(rows[0])
    workers = list(by_worker.rows)
    assert len(workers) == 3 and all(len(r) == len(by_worker.headers) for r in workers)
    assert {r[2] for r in workers} == {str(work["a1"]), str(work["a2"]), str(work["b1"])}
    texts = dict((r[0], r[1]) for r in about.rows)
    assert texts["年度"] == "令和8年度" and texts["調査"] == work["c"].name
    assert "戻る区間" in texts["計画移動距離(km)"]
    assert all(len(t.title) <= 31 for t in (by_corp, by_worker, about))


# --- the endpoint ------------------------------------------------------------------------------------


def test_coordinators_and_supervisors_read_the_same_report(work):
    town = work["town"]
    answers = [town.client(role).get("reports/corporations", query={"campaign": work["c"].id}) for role in
               ("coordinator", "supervisor")]
    for r in answers:
        assert r.status_code == 200, r.content
    assert answers[0].json() == answers[1].json()
    body = answers[0].json()
    assert _metrics(body["total"]) == TOTAL  # no small cells suppressed: 1s and 2s stand
    assert body["corporations"][0]["workers"][0]["name"]
    fy = town.client("supervisor").get("reports/corporations", query={"fiscal_year": work["c"].fiscal_year})
    assert fy.status_code == 200 and fy.json()["total"]["visits"] == 7


@pytest.mark.parametrize("role", ["outreach_worker", "commissioner", "admin"])
def test_other_roles_are_refused(town, role):
    r = town.client(role).get("reports/corporations", query={"campaign": town.campaign.id})
    assert_error_body(r, 403, "forbidden")


def test_another_municipalitys_campaign_is_not_found(town, other_town):
    r = town.client("coordinator").get("reports/corporations", query={"campaign": other_town.campaign.id})
    assert_error_body(r, 404, "not_found")


@pytest.mark.parametrize(
    ("query", "locs"),
    [
        ({}, [["query", "campaign"], ["query", "fiscal_year"]]),
        ({"campaign": 1, "fiscal_year": 2026}, [["query", "campaign"], ["query", "fiscal_year"]]),
        ({"fiscal_year": 1999}, [["query", "fiscal_year"]]),
        ({"fiscal_year": 2099}, [["query", "fiscal_year"]]),  # within the schema's range, beyond next 年度
        ({"campaign": 0}, [["query", "campaign"]]),
        ({"campaign": "one"}, [["query", "campaign"]]),
        ({"campaign": 2**63}, [["query", "campaign"]]),
    ],
)
def test_exactly_one_plausible_scope_or_422(town, query, locs):
    r = town.client("coordinator").get("reports/corporations", query=query)
    err = assert_error_body(r, 422)
    assert [d["loc"] for d in err["details"]] == locs
