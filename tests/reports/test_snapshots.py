"""Stored reports (reports.snapshots): the answer is the computed one, every input the report reads
makes the next read recompute it, another municipality's writes do not, a stale read answers the
stored result and queues one refresh, and small cells are still suppressed on the way out.

Tasks run inline in tests (Q_CLUSTER sync): a read that finds the data changed refreshes first."""

import datetime as dt
import json
import uuid

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from maps.services import REQUEST_RETRY
from neighborhoods.models import District
from outreach.models import CaseContact, CaseMeeting, Concern, ConcernTransition, Meeting, OutreachCase
from reports import snapshots
from reports.corporation_schemas import CorporationReportOut
from reports.corporations import corporation_report
from reports.fiscal import fiscal_year_report
from reports.models import ReportKind, ReportSnapshot
from reports.schemas import FiscalYearReportOut
from tests import factories
from visits.models import CampaignHousehold, VisitRecord

pytestmark = pytest.mark.django_db

FRESHNESS = ("as_of", "stale", "refreshing")


def _as_json(report: dict) -> dict:
    return json.loads(json.dumps(report, cls=DjangoJSONEncoder))


def _numbers(body: dict) -> dict:
    """A report's answer without its freshness fields."""
    return {k: v for k, v in body.items() if k not in FRESHNESS}


@pytest.fixture
def outreach(town):
    """The town's current 年度 with something of every kind the 年度 report reads: a district, a
    visit record, a concern, an open case with a contact, a 支え愛連絡会, and a 自治会 with a household
    that the campaign does not target yet."""
    m, coordinator, worker = town.municipality, town.users["coordinator"], town.users["outreach_worker"]
    district = District.objects.create(municipality=m, name="北地区")
    town.neighborhood.district = district
    town.neighborhood.save()
    VisitRecord.objects.create(id=uuid.uuid4(), municipality=m, household=town.household, worker=worker,
                               outcome="absent", visited_at=timezone.now() - dt.timedelta(hours=2))
    concern = Concern.objects.create(municipality=m, source="commissioner", categories=["poverty"],
                                     household=town.household, reported_by=coordinator)
    case = OutreachCase.objects.create(municipality=m, household=town.household, title="継続支援",
                                       opened_on=timezone.localdate(), stage="no_contact",
                                       next_contact_due=timezone.localdate() + dt.timedelta(days=14))
    CaseContact.objects.create(case=case, kind="call", contacted_on=timezone.localdate(), by=worker)
    Meeting.objects.create(municipality=m, neighborhood=town.neighborhood, held_on=timezone.localdate(),
                           recorded_by=coordinator)
    spare = factories.neighborhood(m)
    factories.household(m, at=factories.centre(spare))
    return {"town": town, "year": town.campaign.fiscal_year, "concern": concern, "case": case,
            "district": district, "spare": spare}


def _fiscal(town, role="coordinator", **query):
    r = town.client(role).get(f"reports/fiscal-years/{town.campaign.fiscal_year}", query=query or None)
    assert r.status_code == 200, r.content
    return r.json()


def _corporations(town, role="coordinator"):
    r = town.client(role).get("reports/corporations", query={"campaign": town.campaign.pk})
    assert r.status_code == 200, r.content
    return r.json()


def test_the_stored_answer_is_the_computed_one(outreach):
    town = outreach["town"]
    m = town.municipality.pk
    first = _fiscal(town)
    assert first["stale"] is False and first["refreshing"] is False
    computed = _as_json(fiscal_year_report(municipality_id=m, year=outreach["year"]))
    assert _numbers(first) == computed
    again = _fiscal(town)
    assert _numbers(again) == computed and again["as_of"] == first["as_of"]  # not computed again
    corporations = _corporations(town)
    assert _numbers(corporations) == _as_json(corporation_report(municipality_id=m, campaign_id=town.campaign.pk))
    # The stored text is answered without validating it again: it is what the schemas publish.
    for body in (again, _fiscal(town, "supervisor")):
        FiscalYearReportOut.model_validate(body)
    CorporationReportOut.model_validate(corporations)


def test_a_repeated_read_runs_no_aggregate(outreach):
    town = outreach["town"]
    _fiscal(town)
    with CaptureQueriesContext(connection) as queries:
        _fiscal(town)
    statements = [q["sql"] for q in queries.captured_queries]
    assert not any("visits_visitrecord" in sql or "outreach_outreachcase" in sql for sql in statements), statements
    assert ReportSnapshot.objects.filter(kind=ReportKind.FISCAL_YEAR).count() == 1


def _visit_record(o):
    t = o["town"]
    VisitRecord.objects.create(id=uuid.uuid4(), municipality=t.municipality, household=t.household,
                               worker=t.users["outreach_worker"], outcome="met", visited_at=timezone.now())


def _concern(o):
    t = o["town"]
    Concern.objects.create(municipality=t.municipality, source="visit", categories=["hikikomori"],
                           household=t.household, reported_by=t.users["coordinator"])


def _concern_transition(o):
    ConcernTransition.objects.create(concern=o["concern"], to_status="triaged", reason="確認",
                                     by=o["town"].users["coordinator"])


def _case_stage(o):
    case = o["case"]
    case.stage = "trust"
    case.save()


def _case_contact(o):
    CaseContact.objects.create(case=o["case"], kind="visit", contacted_on=timezone.localdate(),
                               by=o["town"].users["outreach_worker"])


def _case_meeting(o):
    CaseMeeting.objects.create(case=o["case"], kind="support", held_on=timezone.localdate(),
                               recorded_by=o["town"].users["coordinator"])


def _meeting(o):
    t = o["town"]
    Meeting.objects.create(municipality=t.municipality, neighborhood=t.neighborhood, held_on=timezone.localdate(),
                           recorded_by=t.users["coordinator"])


def _campaign_household(o):
    t = o["town"]
    CampaignHousehold.objects.create(municipality=t.municipality, campaign=t.campaign, household=t.household,
                                     neighborhood=t.neighborhood, state="met", attempts=1)


def _campaign_target(o):
    factories.target(o["town"].campaign, o["spare"])


def _household(o):
    t = o["town"]
    factories.household(t.municipality, at=factories.centre(t.neighborhood))


def _district_renamed(o):
    District.objects.filter(pk=o["district"].pk).update(name="北部地区")


@pytest.mark.parametrize("change", [
    _visit_record, _concern, _concern_transition, _case_stage, _case_contact, _case_meeting, _meeting,
    _campaign_household, _campaign_target, _household, _district_renamed,
])
def test_every_input_of_the_fiscal_year_report_refreshes_it(outreach, change):
    town = outreach["town"]
    before = _fiscal(town)
    change(outreach)
    after = _fiscal(town)
    computed = _as_json(fiscal_year_report(municipality_id=town.municipality.pk, year=outreach["year"]))
    assert _numbers(after) != _numbers(before), change.__name__  # the change shows in the report …
    assert _numbers(after) == computed  # … as computing it now says
    assert after["stale"] is False and after["as_of"] > before["as_of"]


def _scheduled_visit(t):
    another = factories.household(t.municipality, at=factories.centre(t.neighborhood))  # not an input of this report
    factories.scheduled_visit(t.campaign, another, t.users["outreach_worker"], timezone.localdate() + dt.timedelta(days=2))


def _partner_renamed(t):
    type(t.partner).objects.filter(pk=t.partner.pk).update(name="社会福祉法人あたらしい名前")


def _worker_renamed(t):
    type(t.users["outreach_worker"]).objects.filter(pk=t.users["outreach_worker"].pk).update(display_name="訪問 花子")


def _record_of_the_visit(t):
    VisitRecord.objects.create(id=uuid.uuid4(), municipality=t.municipality, household=t.household,
                               worker=t.users["outreach_worker"], outcome="met", visited_at=timezone.now(),
                               scheduled_visit=t.visit)


@pytest.mark.parametrize("change", [_scheduled_visit, _partner_renamed, _worker_renamed, _record_of_the_visit])
def test_every_input_of_the_corporation_report_refreshes_it(town, change):
    before = _corporations(town)
    change(town)
    after = _corporations(town)
    assert _numbers(after) != _numbers(before), change.__name__
    assert _numbers(after) == _as_json(corporation_report(municipality_id=town.municipality.pk,
                                                          campaign_id=town.campaign.pk))


def test_another_municipalitys_writes_keep_the_stored_report(outreach, other_town):
    town = outreach["town"]
    m = town.municipality.pk
    before = _fiscal(town)
    version = snapshots.current_version(ReportKind.FISCAL_YEAR, m)
    o = other_town
    VisitRecord.objects.create(id=uuid.uuid4(), municipality=o.municipality, household=o.household,
                               worker=o.users["outreach_worker"], outcome="met", visited_at=timezone.now())
    Concern.objects.create(municipality=o.municipality, source="visit", categories=["poverty"],
                           household=o.household, reported_by=o.users["coordinator"])
    factories.target(o.campaign, factories.neighborhood(o.municipality))
    assert snapshots.current_version(ReportKind.FISCAL_YEAR, m) == version
    after = _fiscal(town)
    assert after == before  # the same answer, as_of included: not computed again


def test_a_stale_read_answers_the_stored_report_and_queues_one_refresh(outreach, monkeypatch):
    import django_q.tasks

    town = outreach["town"]
    queued = []
    monkeypatch.setattr(django_q.tasks, "async_task", lambda *args, **kw: queued.append(args))
    before = _fiscal(town)
    _visit_record(outreach)
    stale = _fiscal(town)
    assert stale["stale"] is True and stale["refreshing"] is True
    assert _numbers(stale) == _numbers(before) and stale["as_of"] == before["as_of"]
    assert queued == [("reports.tasks.refresh_report_task", ReportKind.FISCAL_YEAR, town.municipality.pk,
                       str(outreach["year"]))]
    assert _fiscal(town)["stale"] is True and len(queued) == 1  # one refresh per version
    from reports.tasks import refresh_report_task

    refresh_report_task(*queued[0][1:])
    fresh = _fiscal(town)
    assert fresh["stale"] is False and fresh["visits"]["total"]["visits"] == before["visits"]["total"]["visits"] + 1


def test_a_refresh_asked_for_long_ago_is_asked_for_again(outreach, monkeypatch):
    import django_q.tasks

    town = outreach["town"]
    queued = []
    monkeypatch.setattr(django_q.tasks, "async_task", lambda *args, **kw: queued.append(args))
    _fiscal(town)
    _visit_record(outreach)
    _fiscal(town)
    ReportSnapshot.objects.update(requested_at=timezone.now() - REQUEST_RETRY - dt.timedelta(minutes=1))
    _fiscal(town)
    assert len(queued) == 2


def test_small_cells_are_suppressed_on_the_way_out_only(outreach, settings):
    settings.REPORTS_SMALL_CELL_THRESHOLD = 5
    town = outreach["town"]
    full = _fiscal(town)
    assert full["visits"]["total"]["visits"] == 1 and full["public"] is False
    supervisor = _fiscal(town, "supervisor")
    assert supervisor["public"] is True and supervisor["suppressed_below"] == 5
    assert supervisor["visits"]["total"]["visits"] is None and supervisor["concerns"]["total"]["raised"] is None
    assert _numbers(_fiscal(town, public="true")) == _numbers(supervisor)
    assert _numbers(_fiscal(town)) == _numbers(full)  # the stored report is still the full one


def test_a_campaign_of_another_municipality_is_not_found_even_when_stored(town, other_town):
    assert _corporations(other_town)["scope"]["campaign"]["id"] == other_town.campaign.pk
    r = town.client("coordinator").get("reports/corporations", query={"campaign": other_town.campaign.pk})
    assert r.status_code == 404


def test_snapshots_are_tenant_data(outreach, other_town):
    from backend.tenancy import job_scope

    _fiscal(outreach["town"])
    with job_scope(other_town.municipality.pk):
        assert not ReportSnapshot.objects.exists()
    with job_scope(outreach["town"].municipality.pk):
        assert ReportSnapshot.objects.count() == 1
