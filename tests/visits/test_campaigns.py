"""Campaigns, allocations, hearings, schedule generation and re-planning through the API."""

import datetime as dt

import pytest
from django.contrib.gis.geos import Point

from accounts.roles import Role
from neighborhoods.models import Household
from tests import factories
from tests.api.test_errors import assert_error_body
from visits.calendar import is_public_holiday
from visits.models import Campaign, CampaignHousehold, CampaignNeighborhood, PlanningJob, ScheduledVisit

START, END = dt.date(2026, 12, 21), dt.date(2027, 1, 29)  # spans the New Year holidays and 成人の日


@pytest.fixture
def survey(town, django_capture_on_commit_callbacks):
    """A running campaign over two 自治会 (40 households) of the town, both allocated to the town's
    corporation, which has three workers."""
    muni = town.municipality
    Campaign.objects.filter(pk=town.campaign.pk).update(status="closed")  # the fixture's own campaign
    first = town.neighborhood
    x0, y0 = first.geom.extent[:2]
    second = factories.neighborhood(muni, name="東園", geom=factories.square(x0 + 0.01, y0))
    for hood in (first, second):
        hx, hy = hood.geom.extent[:2]
        for i in range(20):
            factories.household(muni, at=(hx + 0.001 + (i % 5) * 0.0018, hy + 0.001 + (i // 5) * 0.0018))
    factories.household(muni, at=(x0 + 0.0005, y0 + 0.0005), status="vacant")  # not visited
    workers = [town.users["outreach_worker"]] + [
        factories.user(muni, Role.OUTREACH_WORKER, partner_org=town.partner) for _ in range(2)
    ]
    town.partner.office = Point(x0 - 0.02, y0 - 0.01, srid=4326)
    town.partner.save()
    client = town.client("coordinator")
    r = client.post("campaigns", {"fiscal_year": 2026, "name": "令和8年度 世帯訪問", "start_date": str(START),
                                  "end_date": str(END), "visits_per_worker_day": 5, "max_attempts": 2})
    assert r.status_code == 201, r.content
    campaign = Campaign.objects.get(pk=r.json()["id"])
    assert client.put(f"campaigns/{campaign.id}/targets", {"neighborhood_ids": [first.id, second.id]}).status_code == 200
    allocs = [{"neighborhood_id": h.id, "partner_organization_id": town.partner.id} for h in (first, second)]
    assert client.put(f"campaigns/{campaign.id}/allocations", {"allocations": allocs}).status_code == 200
    assert client.post(f"campaigns/{campaign.id}/activate").status_code == 200  # it reaches the workers
    return {"campaign": campaign, "hoods": (first, second), "workers": workers, "client": client,
            "capture": django_capture_on_commit_callbacks}


def test_campaign_list_counts_its_targets_and_the_campaign_names_them(survey, django_assert_max_num_queries):
    client, campaign = survey["client"], survey["campaign"]
    first, second = survey["hoods"]
    with django_assert_max_num_queries(5):  # token, last-used, count, page: no query per campaign
        listed = client.get("campaigns").json()["items"]
    mine = next(c for c in listed if c["id"] == campaign.id)
    assert mine["target_count"] == 2 and "neighborhood_ids" not in mine
    for other in (c for c in listed if c["id"] != campaign.id):  # the town's own campaign
        assert other["target_count"] == CampaignNeighborhood.objects.filter(campaign_id=other["id"]).count()
    one = client.get(f"campaigns/{campaign.id}").json()
    assert one["target_count"] == 2 and one["neighborhood_ids"] == [first.id, second.id]


def plan(survey, kind="plan", body=None):
    with survey["capture"](execute=True):
        r = survey["client"].post(f"campaigns/{survey['campaign'].id}/{kind}", body)
    return r


def test_generation_gives_every_household_a_worker_day(survey, town):
    r = plan(survey)
    assert r.status_code == 202, r.content
    job_id = r.json()["id"]
    job = survey["client"].get(f"planning-jobs/{job_id}").json()
    assert job["status"] == "done", job
    assert job["progress"] == 100
    visits = list(ScheduledVisit.objects.filter(campaign=survey["campaign"]))
    planned = {v.household_id for v in visits}
    expected = set(
        Household.objects.filter(neighborhood__in=survey["hoods"]).exclude(status="vacant").values_list("pk", flat=True)
    )
    assert planned == expected
    assert job["result"]["visits"] == len(expected) == len(visits)
    per_day: dict = {}
    for v in visits:
        per_day.setdefault((v.worker_id, v.date), []).append(v)
        assert v.date.isoweekday() <= 5 and not is_public_holiday(v.date), v.date
        assert START <= v.date <= END
    assert all(len(day) <= 5 for day in per_day.values())
    for day in per_day.values():
        assert sorted(v.route_order for v in day) == list(range(1, len(day) + 1))
        assert {v.time_band for v in day} <= {"am", "pm"}
    assert {w for w, _ in per_day} <= {w.id for w in survey["workers"]}


def test_days_off_and_holidays_are_skipped(survey):
    worker = survey["workers"][0]
    r = survey["client"].post(f"workers/{worker.id}/days-off", {"dates": ["2026-12-21", "2026-12-22"]})
    assert r.status_code == 200
    assert plan(survey).status_code == 202
    dates = set(ScheduledVisit.objects.filter(worker=worker).values_list("date", flat=True))
    assert dates and not dates & {dt.date(2026, 12, 21), dt.date(2026, 12, 22)}


def test_priority_households_go_first_within_their_neighborhood(survey, town):
    first = survey["hoods"][0]
    last = Household.objects.filter(neighborhood=first, status="occupied").order_by("-external_id").first()
    r = survey["client"].post(f"campaigns/{survey['campaign'].id}/hearings", {
        "neighborhood_id": first.id, "held_on": "2026-11-10",  # a hearing has happened: not a future date
        "attendees": [{"role": "自治会長", "name": "山根"}, {"role": "民生委員", "name": "松本"}],
        "notes": "独居で最近姿を見ない", "priorities": [{"household_id": str(last.id), "reason": "独居・閉じこもり"}],
    })
    assert r.status_code == 201, r.content
    assert plan(survey).status_code == 202
    visits = ScheduledVisit.objects.filter(campaign=survey["campaign"], neighborhood=first)
    prio = visits.get(household=last)
    assert prio.priority
    assert prio.date == min(v.date for v in visits)


def test_a_second_request_while_one_is_running_is_409(survey):
    PlanningJob.objects.create(municipality=survey["campaign"].municipality, campaign=survey["campaign"],
                               kind="generate", status="running")
    err = assert_error_body(plan(survey), 409, "job_running")
    assert err["details"]["job_id"]
    assert not ScheduledVisit.objects.filter(campaign=survey["campaign"]).exists()


def test_generating_twice_is_409(survey):
    assert plan(survey).status_code == 202
    assert_error_body(plan(survey), 409, "already_planned")


def test_no_workers_is_422_and_nothing_is_written(survey, town):
    from accounts.models import User

    User.objects.filter(partner_organization=town.partner).update(is_active=False)
    err = assert_error_body(plan(survey), 422, "not_plannable")
    assert any(d["code"] == "no_workers" for d in err["details"])
    assert not PlanningJob.objects.filter(campaign=survey["campaign"]).exists()
    assert not ScheduledVisit.objects.filter(campaign=survey["campaign"]).exists()


def test_too_little_capacity_is_422(survey):
    Campaign.objects.filter(pk=survey["campaign"].pk).update(end_date=START + dt.timedelta(days=1))
    err = assert_error_body(plan(survey), 422, "not_plannable")
    assert any(d["code"] == "capacity" for d in err["details"])


def test_a_household_with_no_location_is_422(survey):
    hh = Household.objects.filter(neighborhood=survey["hoods"][1]).first()
    Household.objects.filter(pk=hh.pk).update(location=None)
    err = assert_error_body(plan(survey), 422, "not_plannable")
    assert hh.external_id in err["message"]


def test_unallocated_neighborhood_is_422(survey, town):
    third = factories.neighborhood(town.municipality, name="西園")
    survey["client"].put(f"campaigns/{survey['campaign'].id}/targets",
                         {"neighborhood_ids": [*(h.id for h in survey["hoods"]), third.id]})
    err = assert_error_body(plan(survey), 422, "not_plannable")
    assert "西園" in err["message"]


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"start_date": "2027-01-10", "end_date": "2027-01-01"}, "end_date"),
        ({"visits_per_worker_day": 0}, "visits_per_worker_day"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_campaigns_are_422(town, payload, where):
    body = {"fiscal_year": 2026, "name": "x", "start_date": "2027-01-01", "end_date": "2027-02-01", **payload}
    r = town.client("coordinator").post("campaigns", body)
    err = assert_error_body(r, 422, "invalid")
    assert where in r.content.decode()
    assert err["details"]


def test_a_neighborhood_in_two_running_campaigns_is_409(survey, town):
    client = survey["client"]
    assert Campaign.objects.get(pk=survey["campaign"].pk).status == "running"
    other = client.post("campaigns", {"fiscal_year": 2026, "name": "別の調査", "start_date": "2027-01-04", "end_date": "2027-03-31"}).json()
    assert client.put(f"campaigns/{other['id']}/targets", {"neighborhood_ids": [survey["hoods"][1].id]}).status_code == 200
    err = assert_error_body(client.post(f"campaigns/{other['id']}/activate"), 409, "neighborhood_in_running_campaign")
    assert err["details"][0]["neighborhood_id"] == survey["hoods"][1].id
    assert Campaign.objects.get(pk=other["id"]).status == "draft"


def test_only_coordinators_plan(survey, town):
    for role in ("supervisor", "outreach_worker", "commissioner", "admin"):
        r = town.client(role).post(f"campaigns/{survey['campaign'].id}/plan")
        assert r.status_code == 403, role


def test_absent_households_get_another_weekday_or_band_then_a_leaflet(survey, town):
    plan(survey)
    visit = ScheduledVisit.objects.filter(campaign=survey["campaign"]).order_by("date", "route_order").first()
    worker_client = factories_client(town, visit.worker)
    r = worker_client.post(f"scheduled-visits/{visit.id}/outcome", {"outcome": "absent"})
    assert r.status_code == 200, r.content
    state = CampaignHousehold.objects.get(campaign=survey["campaign"], household_id=visit.household_id)
    assert (state.state, state.attempts) == ("pending", 1)

    r = plan(survey, "replan", {"from_date": str(visit.date + dt.timedelta(days=1))})
    assert r.status_code == 202, r.content
    second = ScheduledVisit.objects.get(campaign=survey["campaign"], household_id=visit.household_id, status="planned")
    assert second.attempt == 2
    assert (second.date.isoweekday(), second.time_band) != (visit.date.isoweekday(), visit.time_band)

    assert factories_client(town, second.worker).post(f"scheduled-visits/{second.id}/outcome", {"outcome": "absent"}).status_code == 200
    state.refresh_from_db()
    assert (state.state, state.attempts) == ("leaflet_due", 2)


def test_replan_keeps_done_and_issued_visits(survey, town):
    plan(survey)
    visits = list(ScheduledVisit.objects.filter(campaign=survey["campaign"]).order_by("date", "worker_id", "route_order"))
    done, issued = visits[0], visits[1]
    from visits.services import record_outcome

    record_outcome(visit=done, outcome="met")
    ScheduledVisit.objects.filter(pk=issued.pk).update(status="issued")
    r = plan(survey, "replan", {"from_date": str(START)})
    assert r.status_code == 202
    done.refresh_from_db()
    issued.refresh_from_db()
    assert done.status == "done" and issued.status == "issued"
    open_by_household = ScheduledVisit.objects.filter(campaign=survey["campaign"], status__in=["planned", "issued"])
    households = list(open_by_household.values_list("household_id", flat=True))
    assert len(households) == len(set(households)) == len(visits) - 1  # the met household is finished


def test_reassigning_a_visit_moves_nothing_else(survey, town):
    plan(survey)
    visit = ScheduledVisit.objects.filter(campaign=survey["campaign"]).first()
    target = next(w for w in survey["workers"] if w.id != visit.worker_id)
    # The other worker's day is full: the visit does not fit (every campaign's visits counted).
    if ScheduledVisit.objects.filter(worker=target, date=visit.date).count() >= 5:
        full = assert_error_body(survey["client"].post(f"scheduled-visits/{visit.id}/reassign", {"worker_id": target.id}),
                                 409, "worker_day_full")
        assert full["details"][0]["date"] == str(visit.date)
    ScheduledVisit.objects.filter(worker=target, date=visit.date).update(status="cancelled")  # room on that day
    before = dict(ScheduledVisit.objects.exclude(pk=visit.pk).values_list("pk", "worker_id"))
    r = survey["client"].post(f"scheduled-visits/{visit.id}/reassign", {"worker_id": target.id})
    assert r.status_code == 200, r.content
    assert r.json()["worker_id"] == target.id and r.json()["date"] == str(visit.date)
    assert dict(ScheduledVisit.objects.exclude(pk=visit.pk).values_list("pk", "worker_id")) == before

    stranger = factories.user(town.municipality, Role.OUTREACH_WORKER)  # another corporation
    err = assert_error_body(survey["client"].post(f"scheduled-visits/{visit.id}/reassign", {"worker_id": stranger.id}), 422)
    assert err["code"] == "worker_of_other_partner"


def test_reassigning_a_neighborhood_to_another_corporation(survey, town):
    plan(survey)
    first, second = survey["hoods"]
    other_partner = factories.partner(town.municipality)
    newcomer = factories.user(town.municipality, Role.OUTREACH_WORKER, partner_org=other_partner)
    untouched = dict(ScheduledVisit.objects.filter(neighborhood=first).values_list("pk", "worker_id"))
    url = f"campaigns/{survey['campaign'].id}/neighborhoods/{second.id}/reassign"
    # Days of up to 5 visits from three workers do not fit one worker's days of 5.
    moving = ScheduledVisit.objects.filter(neighborhood=second, status="planned")
    if any(moving.filter(date=d).count() > 5 for d in moving.values_list("date", flat=True)):
        assert_error_body(survey["client"].post(url, {"partner_organization_id": other_partner.id,
                                                      "worker_id": newcomer.id}), 409, "worker_day_full")
        assert not ScheduledVisit.objects.filter(worker=newcomer).exists()
    Campaign.objects.filter(pk=survey["campaign"].pk).update(visits_per_worker_day=20)
    r = survey["client"].post(url, {"partner_organization_id": other_partner.id, "worker_id": newcomer.id})
    assert r.status_code == 200, r.content
    assert r.json()["moved"] == 20
    assert set(ScheduledVisit.objects.filter(neighborhood=second).values_list("worker_id", flat=True)) == {newcomer.id}
    assert dict(ScheduledVisit.objects.filter(neighborhood=first).values_list("pk", "worker_id")) == untouched
    wrong = survey["client"].post(url, {"partner_organization_id": other_partner.id, "worker_id": survey["workers"][0].id})
    assert_error_body(wrong, 422, "worker_of_other_partner")


def test_workers_see_their_own_schedule_and_their_corporations(survey, town):
    plan(survey)
    me, colleague = survey["workers"][0], survey["workers"][1]
    client = factories_client(town, me)
    mine = client.get("me/schedule", query={"date_from": str(START), "date_to": str(END), "limit": 500}).json()["items"]
    assert mine and {v["worker_id"] for v in mine} == {me.id}
    assert mine[0]["address"] and mine[0]["location"]["type"] == "Point"
    assert_error_body(client.get(f"workers/{colleague.id}/schedule", query={"date_from": str(START), "date_to": str(END)}), 403)
    corp = client.get(f"partners/{town.partner.id}/schedule",
                      query={"date_from": str(START), "date_to": str(END), "limit": 500}).json()["items"]
    assert {v["worker_id"] for v in corp} == {w.id for w in survey["workers"]}
    outsider = factories.user(town.municipality, Role.OUTREACH_WORKER)
    assert_error_body(factories_client(town, outsider).get(
        f"partners/{town.partner.id}/schedule", query={"date_from": str(START), "date_to": str(END)}), 403)
    too_long = client.get("me/schedule", query={"date_from": "2026-01-01", "date_to": "2026-12-31"})
    assert_error_body(too_long, 422)


def test_progress_per_neighborhood_and_corporation(survey, town):
    plan(survey)
    first = survey["hoods"][0]
    from visits.services import record_outcome

    for v in ScheduledVisit.objects.filter(neighborhood=first):
        record_outcome(visit=v, outcome="met")
    body = survey["client"].get(f"campaigns/{survey['campaign'].id}/progress").json()
    by_hood = {n["neighborhood_id"]: n for n in body["neighborhoods"]}
    assert by_hood[first.id]["state"] == "complete"
    assert by_hood[first.id]["coverage_pct"] == 100.0
    assert by_hood[survey["hoods"][1].id]["state"] == "not_started"
    assert body["partners"][0]["complete"] == 1


def test_progress_pages_the_neighborhoods_and_sums_corporations_over_all(survey):
    plan(survey)
    first, second = survey["hoods"]
    from visits.services import record_outcome

    for v in ScheduledVisit.objects.filter(neighborhood=first):
        record_outcome(visit=v, outcome="met")
    url = f"campaigns/{survey['campaign'].id}/progress"
    page1 = survey["client"].get(url, query={"limit": 1}).json()
    page2 = survey["client"].get(url, query={"limit": 1, "offset": 1}).json()
    assert [n["neighborhood_id"] for n in page1["neighborhoods"]] == [first.id]
    assert [n["neighborhood_id"] for n in page2["neighborhoods"]] == [second.id]
    assert page1["neighborhoods_count"] == page2["neighborhoods_count"] == 2
    whole = survey["client"].get(url).json()
    assert page1["partners"] == page2["partners"] == whole["partners"]
    (partner,) = whole["partners"]
    cells = whole["neighborhoods"]
    assert partner["neighborhoods"] == 2 and partner["complete"] == 1
    assert partner["in_scope"] == sum(n["in_scope"] for n in cells)
    assert partner["finished"] == sum(n["finished"] for n in cells)
    assert_error_body(survey["client"].get(url, query={"limit": 0}), 422)
    assert_error_body(survey["client"].get(url, query={"limit": 1001}), 422)


def factories_client(town, user):
    from tests.conftest import ApiClient

    return ApiClient(factories.token_for(user))
