"""The refresh's sums (maps.models.CoverageSummary, CoverageWeekTotal): every coverage read without a
filter answers from them what summing the cells answers, page by page; a snapshot without sums
(made before they existed) is read from its cells; a campaign without cells still gets its sums."""

import pytest

from maps.models import CoverageCell, CoverageSummary, CoverageWeekTotal
from maps.services import refresh_coverage
from tests import factories
from visits import services as visits

GROUPINGS = ("neighborhood", "partner", "district", "daily_life_area", "campaign")
PAGES = ((100, 0), (1, 0), (1, 1), (1, 50))


def _reads(mapped) -> dict:
    """Every unfiltered read of the campaign's coverage, as the API answers it."""
    campaign = mapped.town.campaign
    client = mapped.client("coordinator")
    answers = {}
    for group_by in GROUPINGS:
        for limit, offset in PAGES:
            query = f"group_by={group_by}&limit={limit}&offset={offset}"
            if group_by != "campaign":
                query += f"&campaign={campaign.id}"
            r = client.get(f"maps/coverage?{query}")
            assert r.status_code == 200, r.content
            answers[query] = r.json()
    answers["weekly"] = client.get(f"maps/coverage/weekly?campaign={campaign.id}").json()
    answers["progress"] = client.get(f"campaigns/{campaign.id}/progress").json()
    answers["progress page"] = client.get(f"campaigns/{campaign.id}/progress?limit=1&offset=1").json()
    return answers


def _with_outcomes(mapped) -> None:
    """Two more met and one more tried, beside the fixture's outcomes: finished, tried and untouched
    households in both 自治会 (of two corporations)."""
    campaign, worker = mapped.town.campaign, mapped.town.users["outreach_worker"]
    chosen = (mapped.households["new"], *mapped.second_households[:2])
    for k, (outcome, household) in enumerate(zip(("met", "met", "absent"), chosen, strict=True)):
        visit = factories.scheduled_visit(campaign, household, worker, campaign.start_date, route_order=10 + k)
        visits.record_outcome(visit=visit, outcome=outcome)


def test_reads_from_the_sums_answer_what_the_cells_answer(mapped):
    _with_outcomes(mapped)
    campaign = mapped.town.campaign
    refresh_coverage(campaign.pk)
    groupings = set(CoverageSummary.objects.filter(campaign=campaign).values_list("grouping", flat=True))
    assert groupings == {"all", "partner", "district", "daily_life_area"}
    assert CoverageWeekTotal.objects.filter(campaign=campaign).exists()
    from_sums = _reads(mapped)
    assert from_sums[f"group_by=neighborhood&limit=100&offset=0&campaign={campaign.id}"]["totals"]["finished"] >= 2
    assert len(from_sums[f"group_by=partner&limit=100&offset=0&campaign={campaign.id}"]["items"]) >= 2

    # A snapshot without sums (made before they existed): the same answers, summed from the cells.
    CoverageSummary.objects.filter(campaign=campaign).delete()
    CoverageWeekTotal.objects.filter(campaign=campaign).delete()
    assert _reads(mapped) == from_sums


def test_the_sums_are_those_of_the_cells_after_every_refresh(mapped):
    campaign = mapped.town.campaign
    refresh_coverage(campaign.pk)
    before = CoverageSummary.objects.get(campaign=campaign, grouping="all")
    _with_outcomes(mapped)
    refresh_coverage(campaign.pk)
    after = CoverageSummary.objects.get(campaign=campaign, grouping="all")
    cells = CoverageCell.objects.filter(campaign=campaign)
    for count in ("in_scope", "met", "refused", "absent_pending", "not_visited"):
        assert getattr(after, count) == sum(getattr(c, count) for c in cells), count
    assert after.met == before.met + 2
    assert after.neighborhoods == cells.count() == 2
    assert after.neighborhoods_in_progress + after.neighborhoods_complete == 2


@pytest.mark.parametrize("targets", [False, True])
def test_a_campaign_without_cells_still_has_its_sums(town, targets):
    campaign = factories.campaign(town.municipality, name="空の調査")
    if targets:
        factories.target(campaign, town.neighborhood)
    refresh_coverage(campaign.pk)
    total = CoverageSummary.objects.get(campaign=campaign, grouping="all")
    assert total.neighborhoods == CoverageCell.objects.filter(campaign=campaign).count() == (1 if targets else 0)
