"""The coverage snapshot made in one pass (cells and weeks from one statement) and campaign progress
read from it: the week each finish is dated by, progress equal to the live aggregate when fresh,
and saying so when it is not."""

import datetime as dt
import uuid
from collections import Counter

import pytest
from django.utils import timezone

from maps.models import CoverageCell, CoverageWeek
from maps.services import refresh_coverage
from tests import factories
from visits import services as visits
from visits.coverage import campaign_cells
from visits.models import CampaignHousehold, VisitRecord

PROGRESS_KEYS = ("in_scope", "met", "refused", "moved_or_vacant", "leaflet_left", "leaflet_due", "absent_pending",
                 "finished", "not_visited", "coverage_pct", "state", "code", "name", "partner_organization_id")


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, 0), tzinfo=timezone.get_current_timezone())


def _record(town, household, visit, outcome: str, day: dt.date, supersedes=None) -> VisitRecord:
    return VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=town.municipality, household=household, worker=town.users["outreach_worker"],
        scheduled_visit=visit, outcome=outcome, visited_at=_at(day), supersedes=supersedes,
    )


def test_each_finish_is_dated_by_its_first_final_record_else_the_attempt_else_the_last_change(town):
    campaign, hood, worker = town.campaign, town.neighborhood, town.users["outreach_worker"]
    start = campaign.start_date
    x, y = factories.centre(hood)
    homes = {name: factories.household(town.municipality, at=(x + 0.0002 * (k + 1), y))
             for k, name in enumerate(("recorded", "corrected", "before_start", "unrecorded", "by_hand", "absent"))}

    def visit(name: str, day: dt.date, outcome: str):
        v = factories.scheduled_visit(campaign, homes[name], worker, day)
        visits.record_outcome(visit=v, outcome=outcome)
        return v

    # The record's day, not the attempt's.
    v = visit("recorded", start + dt.timedelta(days=1), "met")
    _record(town, homes["recorded"], v, "met", start + dt.timedelta(days=8))
    # A corrected record is left out: the correction dates it.
    v = visit("corrected", start + dt.timedelta(days=1), "refused")
    first = _record(town, homes["corrected"], v, "refused", start + dt.timedelta(days=1))
    _record(town, homes["corrected"], v, "met", start + dt.timedelta(days=15), supersedes=first)
    # A record from before the campaign does not count: the attempt's day does.
    v = visit("before_start", start + dt.timedelta(days=1), "met")
    _record(town, homes["before_start"], v, "met", start - dt.timedelta(days=10))
    # No record: the attempt's day.
    visit("unrecorded", start + dt.timedelta(days=22), "leaflet_left")
    # Finished by hand, no attempt: when its state last changed.
    by_hand = CampaignHousehold.objects.create(
        municipality=town.municipality, campaign=campaign, household=homes["by_hand"], neighborhood=hood,
        state="vacant",
    )
    # Not finished: not in any week, whatever its records say.
    v = visit("absent", start + dt.timedelta(days=2), "absent")
    _record(town, homes["absent"], v, "absent", start + dt.timedelta(days=2))

    refresh_coverage(campaign.pk)

    expected = Counter({
        _monday(start + dt.timedelta(days=8)): 1, _monday(start + dt.timedelta(days=15)): 1,
        _monday(start + dt.timedelta(days=1)): 1, _monday(start + dt.timedelta(days=22)): 1,
    })
    expected[_monday(timezone.localtime(by_hand.updated_at).date())] += 1
    weeks = CoverageWeek.objects.filter(campaign=campaign, neighborhood=hood)
    assert Counter({w.week: w.finished for w in weeks}) == expected
    cell = CoverageCell.objects.get(campaign=campaign, neighborhood=hood)
    assert cell.met + cell.refused + cell.leaflet_left + cell.moved_or_vacant == sum(expected.values()) == 5
    assert {w.partner_organization_id for w in weeks} == {cell.partner_organization_id}


def _progress_numbers(body: dict) -> dict:
    return {n["neighborhood_id"]: {k: n[k] for k in PROGRESS_KEYS} for n in body["neighborhoods"]}


def _live_numbers(campaign) -> dict:
    return {c["neighborhood_id"]: {k: c[k] for k in PROGRESS_KEYS}
            for c in campaign_cells(campaign_id=campaign.pk, municipality_id=campaign.municipality_id)}


def test_progress_reads_the_snapshot_with_the_live_numbers(mapped):
    campaign = mapped.town.campaign
    client = mapped.client("coordinator")
    body = client.get(f"campaigns/{campaign.id}/progress").json()
    assert body["snapshot"]["stale"] is False and body["snapshot"]["refreshed_at"] is not None
    assert _progress_numbers(body) == _live_numbers(campaign)
    assert [n["neighborhood_id"] for n in body["neighborhoods"]] == [mapped.town.neighborhood.id, mapped.second.id]

    # A new outcome: the read finds the snapshot stale and (jobs inline in tests) refreshes it first.
    newcomer = mapped.households["new"]
    v = factories.scheduled_visit(campaign, newcomer, mapped.town.users["outreach_worker"], campaign.start_date)
    visits.record_outcome(visit=v, outcome="met")
    after = client.get(f"campaigns/{campaign.id}/progress").json()
    assert after["snapshot"]["stale"] is False
    assert _progress_numbers(after) == _live_numbers(campaign)
    first = mapped.town.neighborhood.id
    assert _progress_numbers(after)[first]["met"] == _progress_numbers(body)[first]["met"] + 1


def test_progress_says_when_its_snapshot_is_stale(mapped, monkeypatch):
    """With the job cluster down the refresh asked for does not run: progress answers from the
    snapshot it has, and says that it is stale and being refreshed."""
    import django_q.tasks

    campaign = mapped.town.campaign
    client = mapped.client("supervisor")
    before = client.get(f"campaigns/{campaign.id}/progress").json()
    monkeypatch.setattr(django_q.tasks, "async_task", lambda *args, **kwargs: None)
    v = factories.scheduled_visit(campaign, mapped.households["new"], mapped.town.users["outreach_worker"],
                                  campaign.start_date)
    visits.record_outcome(visit=v, outcome="met")
    stale = client.get(f"campaigns/{campaign.id}/progress").json()
    assert stale["snapshot"] == {**before["snapshot"], "stale": True, "refreshing": True}
    assert _progress_numbers(stale) == _progress_numbers(before) != _live_numbers(campaign)


@pytest.mark.parametrize("role", ["outreach_worker", "commissioner"])
def test_progress_answers_every_role_that_sees_the_campaign(mapped, role):
    body = mapped.client(role).get(f"campaigns/{mapped.town.campaign.id}/progress").json()
    assert _progress_numbers(body) == _live_numbers(mapped.town.campaign)
