"""The field work on the calendar: plans stay within their campaign's dates, only started campaigns
reach workers, a worker-day's capacity counts every campaign, a re-plan can undo another, and a
recorded outcome is corrected (with who and why), never silently replaced."""

import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from accounts.roles import Role
from audit.models import AuditEvent
from backend.dates import fiscal_year_bounds, fiscal_year_of
from neighborhoods.models import Household
from tests import factories
from tests.api.test_errors import assert_error_body
from tests.conftest import ApiClient
from visits import services
from visits.calendar import working_days
from visits.models import Campaign, CampaignHousehold, OutcomeCorrection, ScheduledVisit, VisitRecord

TODAY = timezone.localdate()
TOMORROW = TODAY + dt.timedelta(days=1)


def _next_fiscal_year_start() -> dt.date:
    return fiscal_year_bounds(fiscal_year_of(TODAY) + 1)[0]


@pytest.fixture
def field(town, django_capture_on_commit_callbacks):
    """The town's corporation with three workers, and three 自治会 of 15 households each (the first
    has the fixture's household too: 16), not yet in any campaign (the fixture's own is closed)."""
    muni = town.municipality
    Campaign.objects.filter(pk=town.campaign.pk).update(status="closed")
    ScheduledVisit.objects.filter(campaign=town.campaign).update(status="cancelled")
    first = town.neighborhood
    x0, y0 = first.geom.extent[:2]
    hoods = [first] + [factories.neighborhood(muni, geom=factories.square(x0 + 0.01 * i, y0)) for i in (1, 2)]
    for hood in hoods:
        hx, hy = hood.geom.extent[:2]
        for i in range(15):
            factories.household(muni, at=(hx + 0.001 + (i % 5) * 0.0018, hy + 0.001 + (i // 5) * 0.0018))
    workers = [town.users["outreach_worker"]] + [
        factories.user(muni, Role.OUTREACH_WORKER, partner_org=town.partner) for _ in range(2)
    ]
    town.partner.office = Point(x0 - 0.02, y0 - 0.01, srid=4326)
    town.partner.save()
    return {"town": town, "hoods": hoods, "workers": workers, "client": town.client("coordinator"),
            "capture": django_capture_on_commit_callbacks}


def _campaign(field, hoods, *, name: str, start: dt.date, end: dt.date | None = None, capacity: int = 5,
              activate: bool = True) -> Campaign:
    client = field["client"]
    fy = fiscal_year_of(start)
    r = client.post("campaigns", {"fiscal_year": fy, "name": name, "start_date": str(start),
                                  "end_date": str(end or fiscal_year_bounds(fy)[1]), "visits_per_worker_day": capacity})
    assert r.status_code == 201, r.content
    cid = r.json()["id"]
    assert client.put(f"campaigns/{cid}/targets", {"neighborhood_ids": [h.id for h in hoods]}).status_code == 200
    allocs = [{"neighborhood_id": h.id, "partner_organization_id": field["town"].partner.id} for h in hoods]
    assert client.put(f"campaigns/{cid}/allocations", {"allocations": allocs}).status_code == 200
    if activate:
        assert client.post(f"campaigns/{cid}/activate").status_code == 200
    return Campaign.objects.get(pk=cid)


def _plan(field, campaign: Campaign, kind: str = "plan", body: dict | None = None) -> dict:
    with field["capture"](execute=True):
        r = field["client"].post(f"campaigns/{campaign.id}/{kind}", body)
    assert r.status_code == 202, r.content
    job = field["client"].get(f"planning-jobs/{r.json()['id']}").json()
    assert job["status"] == "done", job
    return job


def _live(campaign: Campaign):
    return ScheduledVisit.objects.filter(campaign=campaign).exclude(status="cancelled")


# --- the campaign's dates ---------------------------------------------------------------------


def test_a_campaign_starting_next_april_is_planned_from_its_start_not_tomorrow(field):
    april = _next_fiscal_year_start()
    campaign = _campaign(field, field["hoods"][:1], name="来年度の調査", start=april,
                         end=april + dt.timedelta(days=60), activate=False)
    _plan(field, campaign)
    dates = set(_live(campaign).values_list("date", flat=True))
    assert dates and min(dates) >= april and max(dates) <= campaign.end_date
    # A re-plan with no body starts there too, not tomorrow.
    _plan(field, campaign, "replan", {})
    dates = set(_live(campaign).values_list("date", flat=True))
    assert min(dates) == working_days(april, campaign.end_date)[0]


@pytest.mark.parametrize("which", ["before_start", "after_end", "past"])
def test_a_from_date_outside_the_campaign_is_422(field, which):
    start = TOMORROW + dt.timedelta(days=7)
    campaign = _campaign(field, field["hoods"][:1], name="日付の検査", start=start,
                         end=start + dt.timedelta(days=40))
    from_date = {"before_start": start - dt.timedelta(days=1), "after_end": campaign.end_date + dt.timedelta(days=1),
                 "past": TODAY - dt.timedelta(days=1)}[which]
    r = field["client"].post(f"campaigns/{campaign.id}/plan", {"from_date": str(from_date)})
    err = assert_error_body(r, 422)
    assert ["body", "from_date"] in [d["loc"] for d in err["details"]]
    assert not ScheduledVisit.objects.filter(campaign=campaign).exists()


def test_new_dates_release_planned_visits_outside_them(field):
    campaign = _campaign(field, field["hoods"][:2], name="短縮", start=TOMORROW)
    _plan(field, campaign)
    last = max(_live(campaign).values_list("date", flat=True))
    cut = last - dt.timedelta(days=1)
    outside = set(_live(campaign).filter(date__gt=cut).values_list("household_id", flat=True))
    assert outside
    r = field["client"].patch(f"campaigns/{campaign.id}", {"end_date": str(cut)})
    assert r.status_code == 200, r.content
    assert not _live(campaign).filter(date__gt=cut).exists()
    states = CampaignHousehold.objects.filter(campaign=campaign, household_id__in=outside)
    assert {s.state for s in states} == {"pending"}  # waiting for the next re-plan, inside the dates
    # A handed-out visit outside new dates is not taken from the worker silently.
    ScheduledVisit.objects.filter(pk=_live(campaign).order_by("-date").first().pk).update(status="issued")
    issued_day = _live(campaign).filter(status="issued").get().date
    err = assert_error_body(field["client"].patch(f"campaigns/{campaign.id}",
                                                  {"end_date": str(issued_day - dt.timedelta(days=1))}),
                            409, "visits_outside_dates")
    assert err["details"]["issued"] == 1


def test_status_is_not_edited_by_patch(field):
    campaign = _campaign(field, field["hoods"][:1], name="状態", start=TOMORROW, activate=False)
    err = assert_error_body(field["client"].patch(f"campaigns/{campaign.id}", {"status": "running"}), 422)
    assert ["body", "status"] in [d["loc"] for d in err["details"]]
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


# --- only started campaigns reach workers -----------------------------------------------------


def test_a_draft_reaches_no_worker_until_it_is_started_and_starting_is_audited(field):
    town = field["town"]
    campaign = _campaign(field, field["hoods"][:1], name="準備中の調査", start=TOMORROW, activate=False)
    _plan(field, campaign)
    worker = field["workers"][0]
    mine = _live(campaign).filter(worker=worker)
    assert mine.exists()
    client = ApiClient(factories.token_for(worker))
    window = {"date_from": str(TODAY), "date_to": str(TODAY + dt.timedelta(days=90)), "limit": 500}

    def seen() -> set[str]:
        return {v["id"] for v in client.get("me/schedule", query=window).json()["items"]}

    assert seen() == set()
    visit = mine.first()
    assert client.get(f"households/{visit.household_id}").status_code == 404
    # The coordinator sees the draft's plan (to review it before it starts).
    reviewed = {v["id"] for v in field["client"].get(f"workers/{worker.id}/schedule", query=window).json()["items"]}
    assert reviewed >= {str(v) for v in mine.values_list("pk", flat=True)}
    for role in ("supervisor", "outreach_worker", "commissioner", "admin"):
        assert_error_body(town.client(role).post(f"campaigns/{campaign.id}/activate"), 403)

    r = field["client"].post(f"campaigns/{campaign.id}/activate")
    assert r.status_code == 200 and r.json()["status"] == "running"
    assert seen() == {str(v) for v in mine.values_list("pk", flat=True)}
    assert client.get(f"households/{visit.household_id}").status_code == 200
    event = AuditEvent.objects.get(action="change", object_type="visits.campaign", object_id=str(campaign.pk))
    assert event.actor_id == town.users["coordinator"].id and event.detail["status"] == ["draft", "running"]
    assert_error_body(field["client"].post(f"campaigns/{campaign.id}/activate"), 409, "invalid_transition")

    r = field["client"].post(f"campaigns/{campaign.id}/close")
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert seen() == set()
    closing = AuditEvent.objects.filter(action="change", object_id=str(campaign.pk)).order_by("-chain_seq").first()
    assert closing.detail["status"] == ["running", "closed"] and closing.detail["cancelled_visits"] > 0


def test_the_sync_pull_carries_only_started_campaigns(field):
    campaign = _campaign(field, field["hoods"][:1], name="同期", start=TODAY, activate=False)
    _plan(field, campaign, body={"from_date": str(TODAY)})
    worker = field["workers"][0]
    ScheduledVisit.objects.filter(campaign=campaign).update(worker=worker)  # all on one tablet
    client = ApiClient(factories.token_for(worker))
    device = "5b7d3f0e-1c1e-4a53-9d57-6f0f3d2b8a11"
    assert client.post("sync/devices", {"device_id": device, "name": "tab", "platform": "android"}).status_code == 201

    def kinds(body: dict) -> set[str]:
        return {c["kind"] for c in body["changes"]}

    first = client.get("sync/pull", query={"device_id": device, "cursor": "", "limit": 500}).json()
    assert "scheduled_visit" not in kinds(first) and "household" not in kinds(first)
    assert field["client"].post(f"campaigns/{campaign.id}/activate").status_code == 200
    second = client.get("sync/pull", query={"device_id": device, "cursor": first["next_cursor"], "limit": 500}).json()
    near = _live(campaign).filter(date__lte=TODAY + dt.timedelta(days=13))
    if near.exists():  # within the device's schedule window
        assert "scheduled_visit" in kinds(second) and "household" in kinds(second)


# --- a worker-day's capacity counts every campaign --------------------------------------------


def test_a_second_campaign_fills_only_what_is_left_of_each_worker_day(field):
    town = field["town"]
    first = _campaign(field, field["hoods"][:2], name="一つ目", start=TOMORROW, capacity=5)
    _plan(field, first)
    second = _campaign(field, field["hoods"][2:], name="二つ目", start=TOMORROW, capacity=5, activate=False)
    _plan(field, second)
    assert _live(second).count() == 15
    assert services.over_capacity(municipality_id=town.municipality.id) == []
    # A worker-day the first campaign left partly free takes the second campaign's visits up to 5.
    per_day: dict = {}
    for v in ScheduledVisit.objects.exclude(status="cancelled").filter(worker__in=field["workers"]):
        per_day[(v.worker_id, v.date)] = per_day.get((v.worker_id, v.date), 0) + 1
    assert max(per_day.values()) == 5
    # A smaller capacity on a later campaign binds the whole day: its visits only go where the
    # day holds fewer than its own capacity.
    third_hood = factories.neighborhood(town.municipality, geom=factories.square(
        field["hoods"][0].geom.extent[0] + 0.03, field["hoods"][0].geom.extent[1]))
    for _ in range(6):
        factories.household(town.municipality, at=factories.centre(third_hood))
    third = _campaign(field, [third_hood], name="三つ目", start=TOMORROW, capacity=3, activate=False)
    _plan(field, third)
    assert _live(third).count() == 6
    assert services.over_capacity(municipality_id=town.municipality.id) == []


def test_replanning_one_campaign_never_overfills_days_of_another(field):
    first = _campaign(field, field["hoods"][:2], name="先", start=TOMORROW, capacity=5)
    second = _campaign(field, field["hoods"][2:], name="後", start=TOMORROW, capacity=5, activate=False)
    _plan(field, first)
    _plan(field, second)
    _plan(field, first, "replan", {})
    _plan(field, second, "replan", {"from_date": str(TOMORROW + dt.timedelta(days=3))})
    _plan(field, first, "replan", {"from_date": str(TOMORROW)})
    assert services.over_capacity(municipality_id=field["town"].municipality.id) == []
    assert _live(first).count() == 31 and _live(second).count() == 15


def test_validation_counts_other_campaigns_visits_as_taken(field):
    end = working_days(TOMORROW, TOMORROW + dt.timedelta(days=30))[1]  # two working days
    first = _campaign(field, field["hoods"][1:], name="満杯", start=TOMORROW, end=end, capacity=5)
    _plan(field, first)  # 30 households on 3 workers x 2 days x 5: every worker-day full
    assert _live(first).count() == 30
    second = _campaign(field, field["hoods"][:1], name="入らない", start=TOMORROW, end=end, capacity=5,
                       activate=False)
    err = assert_error_body(field["client"].post(f"campaigns/{second.id}/plan"), 422, "not_plannable")
    assert any(d["code"] == "capacity" for d in err["details"]), err
    assert "0 visits free" in err["message"]


# --- one re-plan can undo another -------------------------------------------------------------


def test_a_replan_from_an_earlier_date_undoes_one_from_a_later_date(field):
    campaign = _campaign(field, field["hoods"][:2], name="やり直し", start=TOMORROW)
    _plan(field, campaign)
    before = sorted(_live(campaign).values_list("date", flat=True))
    later = TOMORROW + dt.timedelta(days=21)
    _plan(field, campaign, "replan", {"from_date": str(later)})
    assert min(_live(campaign).values_list("date", flat=True)) >= later
    _plan(field, campaign, "replan", {"from_date": str(TOMORROW)})
    assert sorted(_live(campaign).values_list("date", flat=True)) == before


def test_a_replan_keeps_what_is_done_and_handed_out_whatever_its_date(field):
    campaign = _campaign(field, field["hoods"][:1], name="保持", start=TOMORROW)
    _plan(field, campaign)
    visits = list(_live(campaign).order_by("date", "worker_id", "route_order"))
    done, issued = visits[0], visits[-1]
    services.record_outcome(visit=done, outcome="met", by=field["workers"][0])
    ScheduledVisit.objects.filter(pk=issued.pk).update(status="issued")
    _plan(field, campaign, "replan", {"from_date": str(TOMORROW + dt.timedelta(days=10))})
    done.refresh_from_db()
    issued.refresh_from_db()
    assert (done.status, done.date) == ("done", visits[0].date)
    assert (issued.status, issued.date) == ("issued", visits[-1].date)
    others = _live(campaign).exclude(pk__in=[done.pk, issued.pk])
    assert min(others.values_list("date", flat=True)) >= TOMORROW + dt.timedelta(days=10)


# --- outcomes: once, or corrected with a reason -----------------------------------------------


def test_a_second_outcome_is_refused_unless_it_is_a_correction(field):
    campaign = _campaign(field, field["hoods"][:1], name="結果", start=TOMORROW)
    _plan(field, campaign)
    visit = _live(campaign).order_by("date", "route_order").first()
    worker = ApiClient(factories.token_for(visit.worker))
    url = f"scheduled-visits/{visit.id}/outcome"
    assert worker.post(url, {"outcome": "absent"}).status_code == 200
    assert worker.post(url, {"outcome": "absent"}).status_code == 200  # the same again: nothing changes
    state = CampaignHousehold.objects.get(campaign=campaign, household_id=visit.household_id)
    assert (state.state, state.attempts) == ("pending", 1)
    _plan(field, campaign, "replan", {})
    retry = ScheduledVisit.objects.get(campaign=campaign, household_id=visit.household_id, status="planned")

    err = assert_error_body(worker.post(url, {"outcome": "met"}), 409, "outcome_recorded")
    assert err["details"]["outcome"] == "absent" and "不在" in err["message"]
    visit.refresh_from_db()
    assert (visit.status, visit.outcome) == ("absent", "absent")

    r = worker.post(url, {"outcome": "met", "correction_reason": "在宅だったが応答が遅れた"})
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "done"
    correction = OutcomeCorrection.objects.get(scheduled_visit=visit)
    assert (correction.from_outcome, correction.to_outcome, correction.by_id) == ("absent", "met", visit.worker_id)
    assert correction.reason == "在宅だったが応答が遅れた"
    state.refresh_from_db()
    assert (state.state, state.attempts) == ("met", 1)  # the same attempt, corrected
    retry.refresh_from_db()
    assert retry.status == "cancelled"  # no next attempt for a household met

    # Correcting what has no outcome yet is a mistake, not a correction.
    fresh = _live(campaign).filter(status="planned").first()
    err = assert_error_body(field["client"].post(f"scheduled-visits/{fresh.id}/outcome",
                                                 {"outcome": "met", "correction_reason": "x"}), 422, "nothing_to_correct")
    assert ["body", "correction_reason"] in [d["loc"] for d in err["details"]]


def test_a_correction_back_to_absent_reopens_the_household(field):
    campaign = _campaign(field, field["hoods"][:1], name="戻す", start=TOMORROW)
    _plan(field, campaign)
    visit = _live(campaign).first()
    coordinator = field["town"].users["coordinator"]
    services.record_outcome(visit=visit, outcome="met", by=visit.worker)
    services.record_outcome(visit=visit, outcome="absent", by=coordinator, correction_reason="別世帯の記録だった")
    state = CampaignHousehold.objects.get(campaign=campaign, household_id=visit.household_id)
    assert (state.state, state.attempts) == ("pending", 1)
    _plan(field, campaign, "replan", {})
    assert ScheduledVisit.objects.filter(campaign=campaign, household_id=visit.household_id, status="planned",
                                         attempt=2).exists()
    assert OutcomeCorrection.objects.get(scheduled_visit=visit).by_id == coordinator.id


# --- schedules default to today and the next 14 days ------------------------------------------


def test_a_schedule_without_dates_is_today_and_the_next_14_days(field):
    campaign = _campaign(field, field["hoods"][:2], name="既定の期間", start=TODAY)
    _plan(field, campaign, body={"from_date": str(TODAY)})
    worker = field["workers"][0]
    client = ApiClient(factories.token_for(worker))
    body = client.get("me/schedule", query={"limit": 500}).json()
    dates = {dt.date.fromisoformat(v["date"]) for v in body["items"]}
    expected = set(_live(campaign).filter(worker=worker, date__gte=TODAY, date__lte=TODAY + dt.timedelta(days=14))
                   .values_list("date", flat=True))
    assert dates == expected
    assert body["count"] == _live(campaign).filter(
        worker=worker, date__gte=TODAY, date__lte=TODAY + dt.timedelta(days=14)).count()
    only_from = client.get("me/schedule", query={"date_from": str(TODAY + dt.timedelta(days=7)), "limit": 500}).json()
    assert all(TODAY + dt.timedelta(days=7) <= dt.date.fromisoformat(v["date"]) <= TODAY + dt.timedelta(days=21)
               for v in only_from["items"])
    assert Household.objects.filter(pk__in=[v["household_id"] for v in body["items"]]).count() == len(
        {v["household_id"] for v in body["items"]})


def test_from_a_tablet_a_second_outcome_is_refused_and_a_superseding_record_corrects_it(town):
    from tests.visits.test_sync import push, visit_op

    client = town.client("outreach_worker")
    device_id = "0f6f3c8e-8a53-4c1b-9a0e-2d5f1c7b9e21"
    assert client.post("sync/devices", {"device_id": device_id, "name": "tab"}).status_code == 201
    tablet = {"client": client, "device_id": device_id}
    first = visit_op(town, scheduled=town.visit, outcome="absent")
    assert push(tablet, [first])[0]["status"] == "applied"
    # Met after 不在, on the same scheduled visit, correcting nothing: refused, and the record kept
    # on the device (nothing stored, so it can be sent again as a correction).
    again = visit_op(town, scheduled=town.visit, outcome="met")
    result = push(tablet, [again])[0]
    assert result["status"] == "rejected" and result["error"]["code"] == "outcome_recorded"
    assert not VisitRecord.objects.filter(pk=again["data"]["id"]).exists()
    fix = visit_op(town, scheduled=town.visit, outcome="met", supersedes=first["data"]["id"],
                   correction_reason="在宅だった（インターホン故障）")
    assert push(tablet, [fix])[0]["status"] == "applied"
    town.visit.refresh_from_db()
    assert (town.visit.status, town.visit.outcome) == ("done", "met")
    correction = OutcomeCorrection.objects.get(scheduled_visit=town.visit)
    assert (correction.from_outcome, correction.to_outcome) == ("absent", "met")
    assert str(correction.visit_record_id) == fix["data"]["id"]
    assert correction.reason == "在宅だった（インターホン故障）"
    state = CampaignHousehold.objects.get(campaign=town.campaign, household=town.household)
    assert (state.state, state.attempts) == ("met", 1)


def test_campaigns_are_filtered_by_a_status_the_domain_has(field):
    running = _campaign(field, field["hoods"][:1], name="実施中の調査", start=TOMORROW)
    draft = _campaign(field, field["hoods"][1:2], name="準備中の調査", start=TOMORROW, activate=False)
    client = field["client"]
    ids = {c["id"] for c in client.get("campaigns", query={"status": "running"}).json()["items"]}
    assert running.id in ids and draft.id not in ids
    assert_error_body(client.get("campaigns", query={"status": "started"}), 422)
    assert_error_body(client.get("campaigns", query={"fiscal_year": 1999}), 422)
