"""The 年度 report against a hand-counted fixture (令和7年度 = 2025-04-01 … 2026-03-31).

Every expected number below was counted by hand from the fixture, with the reason beside it, so a
change in a definition (README: "What the 年度 report counts") shows here as a changed number."""

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from neighborhoods.models import DailyLifeArea, District
from outreach.models import CaseContact, CaseMeeting, Concern, ConcernTransition, Meeting, OutreachCase
from reports.fiscal import fiscal_year_report, fiscal_year_tables, months_of, wareki_fiscal_year
from tests import factories
from visits.models import CampaignHousehold, VisitRecord

JST = ZoneInfo("Asia/Tokyo")
pytestmark = pytest.mark.django_db


def at(y, m, d, hh=10, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=JST)


def _record(town, hh, outcome, when, supersedes=None):
    return VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=town.municipality, household=hh, worker=town.users["outreach_worker"],
        outcome=outcome, visited_at=when, supersedes=supersedes,
    )


def _concern(town, *, source, categories, hood, created, transitions=(), referred_to="", household=None):
    c = Concern.objects.create(
        municipality=town.municipality, source=source, categories=categories, neighborhood=hood,
        household=household or town.household, reported_by=town.users["coordinator"], referred_to=referred_to,
    )
    Concern.objects.filter(pk=c.pk).update(created_at=created)
    for to_status, when in transitions:
        t = ConcernTransition.objects.create(concern=c, to_status=to_status, reason="確認", by=town.users["coordinator"])
        ConcernTransition.objects.filter(pk=t.pk).update(at=when)
    return c


def _case(town, hh, *, opened, resident=None, **fields):
    return OutreachCase.objects.create(
        municipality=town.municipality, household=hh, resident=resident, title="継続支援", opened_on=opened,
        next_contact_due=opened + dt.timedelta(days=14), **fields,
    )


def _contact(case, kind, on, by, **fields):
    return CaseContact.objects.create(case=case, kind=kind, contacted_on=on, by=by, **fields)


@pytest.fixture
def year(town, other_town):
    """Two 日常生活圏域 (東部: 自治会 h1, 西部: h2), one 地区 (北: h1 only), a 令和7年度 campaign over both."""
    m = town.municipality
    east = DailyLifeArea.objects.create(municipality=m, name="東部圏域")
    west = DailyLifeArea.objects.create(municipality=m, name="西部圏域")
    north = District.objects.create(municipality=m, name="北地区")
    h1 = factories.neighborhood(m, name="東一区")
    h2 = factories.neighborhood(m, name="西二区")
    h1.daily_life_area, h1.district = east, north
    h1.save()
    h2.daily_life_area = west
    h2.save()
    hh = {i: factories.household(m, at=factories.centre(h1 if i in (1, 2, 3, 4, 7) else h2)) for i in range(1, 8)}
    # H5: the campaign found it moved (still in scope); H7 was vacant before the campaign (out of scope).
    type(hh[5]).objects.filter(pk=hh[5].pk).update(status="moved")
    type(hh[7]).objects.filter(pk=hh[7].pk).update(status="vacant")
    camp = factories.campaign(m, fiscal_year=2025, start_date=dt.date(2025, 5, 1), end_date=dt.date(2026, 3, 31),
                              status="closed")
    factories.target(camp, h1, h2)
    states = {1: ("met", 2), 2: ("refused", 1), 3: ("leaflet_due", 3), 4: ("leaflet_left", 2), 5: ("moved", 1),
              6: ("pending", 1)}
    for i, (state, attempts) in states.items():
        CampaignHousehold.objects.create(
            municipality=m, campaign=camp, household=hh[i], neighborhood=hh[i].neighborhood, state=state,
            attempts=attempts,
        )

    # Visit records: 10 stand in the year.
    _record(town, hh[1], "absent", at(2025, 3, 31, 23, 30))  # the day before the year: not counted
    _record(town, hh[1], "absent", at(2025, 5, 10))
    _record(town, hh[1], "met", at(2025, 6, 2))
    _record(town, hh[2], "refused", at(2025, 5, 10))
    for day in (at(2025, 5, 10), at(2025, 6, 2), at(2025, 7, 1)):
        _record(town, hh[3], "absent", day)
    _record(town, hh[4], "absent", at(2025, 5, 11))
    wrong = _record(town, hh[4], "met", at(2025, 6, 3))
    _record(town, hh[4], "leaflet_left", at(2025, 6, 3), supersedes=wrong)  # the correction stands, once
    _record(town, hh[5], "moved", at(2025, 5, 12))
    _record(town, hh[6], "absent", at(2026, 3, 31, 23, 30))  # the year's last evening: counted
    _record(town, hh[6], "absent", at(2026, 4, 1, 0, 10))  # the next 年度

    # Another municipality's campaign and visit in the same year never count.
    o = other_town
    ocamp = factories.campaign(o.municipality, fiscal_year=2025, start_date=dt.date(2025, 5, 1),
                               end_date=dt.date(2026, 3, 31))
    factories.target(ocamp, o.neighborhood)
    CampaignHousehold.objects.create(municipality=o.municipality, campaign=ocamp, household=o.household,
                                     neighborhood=o.neighborhood, state="met", attempts=1)
    VisitRecord.objects.create(id=uuid.uuid4(), municipality=o.municipality, household=o.household,
                               worker=o.users["outreach_worker"], outcome="met", visited_at=at(2025, 6, 1))
    Concern.objects.create(municipality=o.municipality, source="commissioner", categories=["poverty"],
                           household=o.household, reported_by=o.users["coordinator"])

    # 気づき
    _concern(town, source="commissioner", categories=["hikikomori", "8050"], hood=h1, created=at(2025, 4, 1, 0, 5),
             transitions=[("triaged", at(2025, 4, 10)), ("referred", at(2025, 4, 20))], referred_to="elderly")
    _concern(town, source="meeting", categories=["living_alone"], hood=h2, created=at(2025, 8, 1),
             transitions=[("triaged", at(2025, 8, 2)), ("case_opened", at(2025, 9, 1))])
    _concern(town, source="visit", categories=["hikikomori"], hood=h1, created=at(2025, 3, 31, 23, 55),
             transitions=[("triaged", at(2025, 4, 2))])  # raised the year before, triaged in this one
    _concern(town, source="counter", categories=["poverty"], hood=None, created=at(2026, 3, 31, 12),
             transitions=[("referred", at(2026, 4, 1, 0, 30))], referred_to="poverty")  # referred next year

    # 継続的支援
    worker = town.users["outreach_worker"]
    r1 = factories.resident(hh[1])
    k1 = _case(town, hh[1], opened=dt.date(2025, 2, 1), resident=r1, stage="no_contact")
    k1.stage = "conversation"
    k1.save()
    k1.stage = "trust"
    k1.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pgh_id FROM outreach_outreachcasehistory WHERE pgh_obj_id = %s ORDER BY pgh_id", [k1.pk])
        history = [row[0] for row in cursor.fetchall()]
        for pgh_id, when in zip(history, (at(2025, 2, 1), at(2025, 12, 1), at(2026, 5, 1)), strict=True):
            cursor.execute("UPDATE outreach_outreachcasehistory SET pgh_created_at = %s WHERE pgh_id = %s", [when, pgh_id])
    k2 = _case(town, hh[1], opened=dt.date(2025, 6, 1), resident=r1, status="closed", closed_on=dt.date(2025, 10, 1),
               closure_reason="resolved")
    k3 = _case(town, hh[5], opened=dt.date(2025, 5, 1), stage="contact", consent="consented",
               consent_date=dt.date(2025, 7, 1))
    _case(town, hh[6], opened=dt.date(2026, 4, 5))  # next 年度
    _case(town, hh[3], opened=dt.date(2024, 5, 1), status="closed", closed_on=dt.date(2025, 3, 20),
          closure_reason="moved")  # closed before the year

    _contact(k1, "call", dt.date(2025, 3, 30), worker)  # before the year
    _contact(k1, "visit", dt.date(2025, 4, 15), worker, reached=True)
    _contact(k1, "call", dt.date(2025, 5, 1), worker)
    wrong_call = _contact(k1, "call", dt.date(2025, 5, 20), worker)
    _contact(k1, "call", dt.date(2025, 5, 21), worker, supersedes=wrong_call, correction_reason="日付の誤り")
    letter = _contact(k1, "letter", dt.date(2025, 6, 1), worker)
    _contact(k1, "letter", dt.date(2025, 6, 1), worker, supersedes=letter, correction_reason="別の方の記録",
             retracted=True)
    _contact(k3, "visit", dt.date(2025, 7, 1), worker, reached=True)
    _contact(k2, "no_answer", dt.date(2025, 9, 15), worker)

    # 会議
    coordinator = town.users["coordinator"]
    for hood, day in ((h1, dt.date(2025, 5, 15)), (h2, dt.date(2025, 5, 20)), (h1, dt.date(2026, 4, 2))):
        Meeting.objects.create(municipality=m, neighborhood=hood, held_on=day, recorded_by=coordinator)
    for case, kind, day in ((k1, "support", dt.date(2025, 6, 10)), (k3, "support", dt.date(2025, 6, 10)),
                            (k1, "support", dt.date(2025, 11, 1)), (k3, "multi_agency", dt.date(2025, 7, 1))):
        CaseMeeting.objects.create(case=case, kind=kind, held_on=day, recorded_by=coordinator)
    return {"town": town, "east": east, "west": west, "north": north, "h1": h1, "h2": h2}


def _report(town, **kw):
    return fiscal_year_report(municipality_id=town.municipality.pk, year=2025, **kw)


def test_wareki_labels():
    assert wareki_fiscal_year(2025) == "令和7年度"
    assert wareki_fiscal_year(2019) == "令和元年度"
    assert wareki_fiscal_year(2020) == "令和2年度"
    assert wareki_fiscal_year(2018) == "平成30年度"
    assert wareki_fiscal_year(1989) == "平成元年度"
    assert months_of(2025)[0] == "2025-04" and months_of(2025)[-1] == "2026-03" and len(months_of(2025)) == 12


def test_household_visits_as_counted_by_hand(year):
    v = _report(year["town"])["visits"]
    assert v["total"] == {
        "households_in_scope": 6,  # H1–H4 in 東一区, H5 (found moved by the campaign) and H6; H7 vacant before
        "visits": 10,  # H1 2, H2 1, H3 3, H4 2 (the correction, not the corrected), H5 1, H6 1 (31 March evening)
        "households_visited": 6,
        "met": 1, "refused": 1, "leaflet_left": 1, "moved_or_vacant": 1,
        "absent_final": 2,  # H3 due a leaflet, H4 left one
    }
    months = {r["month"]: r for r in v["by_month"]}
    assert list(months) == months_of(2025)
    assert months["2025-05"] == {"month": "2025-05", "visits": 5, "households_visited": 5, "met": 0, "absent": 3,
                                 "leaflet_left": 0, "refused": 1, "moved_or_vacant": 1}
    assert months["2025-06"]["visits"] == 3 and months["2025-06"]["met"] == 1 and months["2025-06"]["leaflet_left"] == 1
    assert months["2025-07"]["visits"] == 1 and months["2026-03"]["visits"] == 1 and months["2025-04"]["visits"] == 0
    assert sum(r["visits"] for r in v["by_month"]) == v["total"]["visits"]


def test_by_area_and_district(year):
    v = _report(year["town"])["visits"]
    areas = {r["name"]: r for r in v["by_area"]}
    assert areas["東部圏域"]["id"] == year["east"].pk
    assert (areas["東部圏域"]["households_in_scope"], areas["東部圏域"]["visits"], areas["東部圏域"]["households_visited"]) == (4, 8, 4)
    assert (areas["東部圏域"]["met"], areas["東部圏域"]["absent_final"], areas["東部圏域"]["moved_or_vacant"]) == (1, 2, 0)
    assert (areas["西部圏域"]["households_in_scope"], areas["西部圏域"]["visits"], areas["西部圏域"]["moved_or_vacant"]) == (2, 2, 1)
    districts = {r["name"]: r for r in v["by_district"]}
    assert districts["北地区"]["visits"] == 8
    assert districts["（未設定）"]["id"] is None and districts["（未設定）"]["visits"] == 2  # 西二区 has no 地区
    coverage = {r["name"]: r for r in v["coverage"]}
    assert coverage["東一区"]["in_scope"] == 4 and coverage["東一区"]["finished"] == 3
    assert coverage["東一区"]["coverage_pct"] == 75.0 and coverage["東一区"]["state"] == "in_progress"
    assert coverage["西二区"]["coverage_pct"] == 50.0


def test_concerns_as_counted_by_hand(year):
    c = _report(year["town"])["concerns"]
    assert c["total"] == {"raised": 3, "triaged": 3, "referred": 1, "case_opened": 1}
    sources = {r["key"]: r["count"] for r in c["by_source"]}
    assert sources == {"meeting": 1, "commissioner": 1, "visit": 0, "counter": 1, "other": 0}
    assert {r["key"]: r["label"] for r in c["by_source"]}["commissioner"] == "民生委員"
    categories = {r["key"]: r["count"] for r in c["by_category"] if r["count"]}
    assert categories == {"hikikomori": 1, "8050": 1, "living_alone": 1, "poverty": 1}
    assert {r["key"]: r["count"] for r in c["referred_to"] if r["count"]} == {"elderly": 1}
    assert {r["month"]: r["raised"] for r in c["by_month"] if r["raised"]} == {"2025-04": 1, "2025-08": 1, "2026-03": 1}
    assert {r["name"]: r["raised"] for r in c["by_area"]} == {"東部圏域": 1, "西部圏域": 1, "（未設定）": 1}


def test_outreach_as_counted_by_hand(year):
    o = _report(year["town"])["outreach"]
    assert o["people"] == 2  # r1 (two cases) and K3's unnamed person
    assert o["contacts"] == 5  # K1: visit, call, the corrected call; K3 visit; K2 no answer
    assert {r["key"]: r["count"] for r in o["contacts_by_kind"]} == {
        "visit": 2, "call": 2, "letter": 0, "no_answer": 1, "meeting": 0,
    }
    assert o["cases"] == {"opened": 2, "closed": 1, "continuing": 2}
    stages = {r["key"]: r["count"] for r in o["continuing_by_stage"] if r["count"]}
    assert stages == {"conversation": 1, "contact": 1}  # K1 became 信頼関係 only after the year ended
    assert o["consent_obtained"] == 1
    months = {r["month"]: (r["contacts"], r["people"]) for r in o["by_month"] if r["contacts"]}
    assert months == {"2025-04": (1, 1), "2025-05": (2, 1), "2025-07": (1, 1), "2025-09": (1, 1)}
    assert {r["name"]: (r["people"], r["contacts"]) for r in o["by_area"]} == {"東部圏域": (1, 4), "西部圏域": (1, 1)}


def test_meetings_as_counted_by_hand(year):
    mt = _report(year["town"])["meetings"]
    assert (mt["sasaeai"], mt["support"], mt["multi_agency"]) == (2, 2, 1)  # 10 June counts once
    assert (mt["support_cases"], mt["multi_agency_cases"]) == (2, 1)
    months = {r["month"]: r for r in mt["by_month"]}
    assert months["2025-05"]["sasaeai"] == 2 and months["2025-06"]["support"] == 1
    assert months["2025-07"]["multi_agency"] == 1 and months["2025-11"]["support"] == 1


def test_an_empty_year_is_zeros_not_an_error(town):
    r = fiscal_year_report(municipality_id=town.municipality.pk, year=2010)
    assert r["label"] == "平成22年度"
    assert r["visits"]["total"]["visits"] == 0 and r["visits"]["coverage"] == []
    assert r["concerns"]["total"]["raised"] == 0 and r["outreach"]["people"] == 0
    assert len(r["visits"]["by_month"]) == 12


# --- small cells -----------------------------------------------------------------------------------

def test_public_report_suppresses_small_counts_and_their_complements(year, settings):
    settings.REPORTS_SMALL_CELL_THRESHOLD = 3
    r = _report(year["town"], public=True)
    assert r["public"] is True and r["suppressed_below"] == 3
    v = r["visits"]
    assert v["total"]["visits"] == 10 and v["total"]["met"] is None  # 1 < 3
    # 西部圏域 has 2 visits (suppressed); 東部's 8 would give it away from the total 10, so it goes too.
    areas = {x["name"]: x for x in v["by_area"]}
    assert areas["西部圏域"]["visits"] is None and areas["東部圏域"]["visits"] is None
    districts = {x["name"]: x for x in v["by_district"]}
    assert districts["（未設定）"]["visits"] is None and districts["北地区"]["visits"] is None
    # zeros are shown; a 自治会's rate goes with its counts
    assert {x["month"]: x["visits"] for x in v["by_month"]}["2025-04"] == 0
    assert all(x["coverage_pct"] is None for x in v["coverage"] if x["finished"] is None)
    assert r["concerns"]["total"]["raised"] == 3 and all(x["count"] in (0, None) for x in r["concerns"]["by_source"])


def test_no_breakdown_leaves_a_single_suppressed_cell_beside_a_shown_total(year, settings):
    from reports.suppression import _breakdowns

    for threshold in (2, 3, 5, 11):
        settings.REPORTS_SMALL_CELL_THRESHOLD = threshold
        r = _report(year["town"], public=True)
        for cells, (total_row, total_key) in _breakdowns(r):
            values = [row[key] for row, key in cells]
            if total_row[total_key] is not None:
                assert sum(v is None for v in values) != 1, (threshold, total_key, values)
            assert not any(isinstance(v, int) and 0 < v < threshold for v in values)


def test_threshold_comes_from_settings(year, settings):
    settings.REPORTS_SMALL_CELL_THRESHOLD = 11
    r = _report(year["town"], public=True)
    assert r["suppressed_below"] == 11 and r["visits"]["total"]["visits"] is None  # 10 < 11
    full = _report(year["town"])
    assert full["visits"]["total"]["visits"] == 10 and full["suppressed_below"] is None


# --- the API ---------------------------------------------------------------------------------------

def test_api_roles(year):
    town = year["town"]
    coordinator = town.client("coordinator").get("reports/fiscal-years/2025")
    assert coordinator.status_code == 200, coordinator.content
    body = coordinator.json()
    assert body["label"] == "令和7年度" and body["visits"]["total"]["visits"] == 10 and body["public"] is False
    supervisor = town.client("supervisor").get("reports/fiscal-years/2025")
    assert supervisor.status_code == 200
    assert supervisor.json()["public"] is True and supervisor.json()["visits"]["total"]["met"] is None
    public = town.client("coordinator").get("reports/fiscal-years/2025", query={"public": "true"})
    assert public.json()["public"] is True
    for role in ("outreach_worker", "commissioner", "admin"):
        r = town.client(role).get("reports/fiscal-years/2025")
        assert r.status_code == 403, role
        assert "visits" not in r.json()


def test_api_counts_only_the_users_municipality(year, other_town):
    body = other_town.client("coordinator").get("reports/fiscal-years/2025").json()
    assert body["visits"]["total"]["visits"] == 1 and body["visits"]["total"]["households_in_scope"] == 1
    assert body["concerns"]["total"]["raised"] == 0  # its concern was registered now: 令和8年度
    assert body["outreach"]["people"] == 0


@pytest.mark.parametrize("year", ["1999", "2999", "-1", "abc", "2025.5"])
def test_api_refuses_implausible_years(town, year):
    r = town.client("coordinator").get(f"reports/fiscal-years/{year}")
    assert r.status_code in (404, 422), r.content
    if r.status_code == 422:
        details = r.json()["error"]["details"]
        assert any(d.get("loc", [None])[0] == "path" for d in details), details


def test_the_next_year_is_plausible_and_the_one_after_is_not(town):
    from django.utils import timezone

    from backend.dates import fiscal_year_of

    this = fiscal_year_of(timezone.localdate())
    assert town.client("coordinator").get(f"reports/fiscal-years/{this + 1}").status_code == 200
    assert town.client("coordinator").get(f"reports/fiscal-years/{this + 2}").status_code == 422


def test_tables_for_exports(year):
    tables = fiscal_year_tables(_report(year["town"]))
    titles = [t.title for t in tables]
    assert len(titles) == len(set(titles)) and all(len(t) <= 31 for t in titles)
    summary = next(t for t in tables if t.title == "世帯訪問調査 合計")
    assert summary.headers[0] == "区分" and "延べ訪問件数" in summary.headers
    row = next(iter(summary.rows))
    assert row[summary.headers.index("延べ訪問件数")] == 10
    months = next(t for t in tables if t.title == "世帯訪問調査 月別")
    assert [r[0] for r in months.rows][:2] == ["2025年4月", "2025年5月"]
    assert all(len(r) == len(t.headers) for t in tables for r in t.rows)
