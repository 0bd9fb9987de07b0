"""The demo town as a coordinator uses it: its campaign starts today and reaches the workers, and
after a plan, a re-plan and a second campaign no worker-day holds more visits than its capacity."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from backend.tenancy import scope
from demo.towns import DEMO_USERNAMES
from neighborhoods.models import Municipality, Neighborhood
from tests import factories
from tests.conftest import ApiClient
from visits import services
from visits.calendar import working_days
from visits.models import Campaign, PartnerOrganization, PlanningJob, ScheduledVisit


def _run(capture, fn, **kwargs):
    with capture(execute=True):
        job = fn(**kwargs)
    job.refresh_from_db()
    assert job.status == PlanningJob.Status.DONE, job.message
    return job


@pytest.mark.django_db
def test_demo_plan_replan_and_a_second_campaign_never_overfill_a_worker_day(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo", verbosity=0)
    town = Municipality.objects.get(code="313726")
    today = timezone.localdate()
    campaign = Campaign.objects.get(municipality=town)
    assert campaign.status == "running" and campaign.start_date == today
    job = PlanningJob.objects.get(campaign=campaign)
    assert job.status == "done", job.message
    assert services.over_capacity(municipality_id=town.pk) == []
    assert ScheduledVisit.objects.filter(campaign=campaign, date__lt=today).count() == 0

    # The worker's first day: today's visits (when today is a working day) on /me/schedule.
    worker = User.objects.get(username=DEMO_USERNAMES["outreach_worker"])
    client = ApiClient(factories.token_for(worker))
    mine = client.get("me/schedule", query={"limit": 500}).json()
    planned_today = ScheduledVisit.objects.filter(worker=worker, date=today).count()
    if working_days(today, today, weekdays=(1, 2, 3, 4, 5)):
        assert planned_today > 0
    assert sum(1 for v in mine["items"] if v["date"] == str(today)) == planned_today

    coordinator = User.objects.get(username=DEMO_USERNAMES["coordinator"])
    with scope(town.pk):
        _run(django_capture_on_commit_callbacks, services.request_planning, campaign=campaign, kind="replan",
             by=coordinator)
    assert services.over_capacity(municipality_id=town.pk) == []

    # A second campaign for the same corporations (a follow-up round of some 自治会), planned while
    # the first holds most worker-days: it takes only what is left of each.
    hoods = list(Neighborhood.objects.filter(municipality=town).order_by("code")[:4])
    partners = list(PartnerOrganization.objects.filter(municipality=town).order_by("code"))
    with scope(town.pk):
        second = services.create_campaign(
            municipality=town, by=coordinator, fiscal_year=campaign.fiscal_year, name="再訪問 (デモ)",
            start_date=today + dt.timedelta(days=1), end_date=campaign.end_date, visits_per_worker_day=8,
            time_bands=["am", "pm"],
        )
        services.set_targets(campaign=second, neighborhood_ids=[h.pk for h in hoods])
        services.set_allocations(campaign=second, allocations=[(h.pk, partners[i % len(partners)].pk)
                                                               for i, h in enumerate(hoods)])
        _run(django_capture_on_commit_callbacks, services.request_planning, campaign=second, kind="generate",
             by=coordinator)
        _run(django_capture_on_commit_callbacks, services.request_planning, campaign=campaign, kind="replan",
             by=coordinator, from_date=today + dt.timedelta(days=2))
    assert ScheduledVisit.objects.filter(campaign=second).exclude(status="cancelled").exists()
    over = services.over_capacity(municipality_id=town.pk)
    assert over == [], f"{len(over)} worker-days over capacity, first: {over[:3]}"
