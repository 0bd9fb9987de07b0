"""What a device keeps after a purge (../shared/SYNC.md): the purge names every item the device may
no longer hold, dependents included, and a visit recorded offline while the household was still the
worker's is kept (flagged `after_reassignment`) when pushed after its 自治会 moved away."""

import datetime as dt

import pytest
from django.utils import timezone

from tests import factories
from tests.visits.test_sync import pull, push, tablet, visit_op  # noqa: F401  (tablet is a fixture)
from visits.models import CampaignHousehold, VisitRecord


def _hand_away(town, *, partner=None):
    """The coordinator hands the town's 自治会 to another corporation (its open visits cancelled)."""
    partner = partner or factories.partner(town.municipality)
    r = town.client("coordinator").post(
        f"campaigns/{town.campaign.id}/neighborhoods/{town.neighborhood.id}/reassign",
        {"partner_organization_id": partner.id},
    )
    assert r.status_code == 200, r.content
    return partner


def _visited(minutes: int) -> str:
    return (timezone.now() + dt.timedelta(minutes=minutes)).isoformat()


def test_the_purge_names_the_household_and_all_its_visits_in_one_page(town, tablet):  # noqa: F811
    neighbour = factories.household(town.municipality, at=(town.household.location.x + 0.0005, town.household.location.y))
    assert neighbour.neighborhood_id == town.neighborhood.id
    today = factories.scheduled_visit(town.campaign, neighbour, town.users["outreach_worker"], timezone.localdate(), route_order=2)
    page = pull(tablet)
    held = {(c["kind"], c["id"]) for c in page["changes"]}
    assert {("household", str(neighbour.id)), ("scheduled_visit", str(today.id))} <= held
    today.refresh_from_db()
    assert today.status == "issued"  # handed out by the pull: reassigning the 自治会 does not cancel it
    _hand_away(town)
    after = pull(tablet, page["next_cursor"], limit=1)
    assert {(p["kind"], p["id"]) for p in after["purge"]} == {
        ("household", str(town.household.id)), ("scheduled_visit", str(town.visit.id)),
        ("household", str(neighbour.id)), ("scheduled_visit", str(today.id)),
    }
    assert pull(tablet, after["next_cursor"])["purge"] == []


def test_a_visit_recorded_before_the_reassignment_is_kept_and_flagged(town, tablet):  # noqa: F811
    pull(tablet)
    new_partner = _hand_away(town)
    town.visit.refresh_from_db()
    assert town.visit.status == "cancelled"
    newcomer = factories.user(town.municipality, "outreach_worker", partner_org=new_partner)
    their_visit = factories.scheduled_visit(town.campaign, town.household, newcomer, timezone.localdate() + dt.timedelta(days=3))
    state_before = list(CampaignHousehold.objects.filter(household=town.household).values_list("state", flat=True))

    op = visit_op(town, scheduled=town.visit, visited_at=_visited(-60), outcome="met")
    result = push(tablet, [op])[0]
    assert result["status"] == "applied", result
    assert result["flags"]["after_reassignment"] is True
    record = VisitRecord.objects.get(pk=op["data"]["id"])
    assert record.household_id == town.household.id and record.scheduled_visit_id == town.visit.id
    assert record.worker_id == town.users["outreach_worker"].id
    # the campaign goes on with the new corporation: nothing of its state changed
    their_visit.refresh_from_db()
    town.visit.refresh_from_db()
    assert their_visit.status == "planned" and town.visit.status == "cancelled"
    assert list(CampaignHousehold.objects.filter(household=town.household).values_list("state", flat=True)) == state_before
    assert push(tablet, [op])[0]["status"] == "duplicate"


def test_a_visit_after_the_household_left_the_worker_is_rejected(town, tablet):  # noqa: F811
    _hand_away(town)
    op = visit_op(town, scheduled=town.visit, visited_at=_visited(5))
    result = push(tablet, [op])[0]
    assert result["status"] == "rejected" and result["error"]["code"] == "not_assigned", result
    assert not VisitRecord.objects.filter(pk=op["data"]["id"]).exists()


def test_a_visit_moved_to_a_colleague_counts_from_the_move(town, tablet):  # noqa: F811
    """Handed to a worker of the new corporation: the visit left this worker when it moved."""
    new_partner = factories.partner(town.municipality)
    newcomer = factories.user(town.municipality, "outreach_worker", partner_org=new_partner)
    r = town.client("coordinator").post(
        f"campaigns/{town.campaign.id}/neighborhoods/{town.neighborhood.id}/reassign",
        {"partner_organization_id": new_partner.id, "worker_id": newcomer.id},
    )
    assert r.status_code == 200, r.content
    late = push(tablet, [visit_op(town, scheduled=town.visit, visited_at=_visited(5))])[0]
    assert late["status"] == "rejected" and late["error"]["code"] == "not_assigned"
    early = push(tablet, [visit_op(town, scheduled=town.visit, visited_at=_visited(-30))])[0]
    assert early["status"] == "applied" and early["flags"]["after_reassignment"] is True
    town.visit.refresh_from_db()
    assert town.visit.worker_id == newcomer.id and town.visit.status == "planned"  # the newcomer's still open


@pytest.mark.parametrize("how", ["no_scheduled_visit", "a_colleagues_visit", "another_households_visit"])
def test_a_household_the_worker_never_had_is_still_not_assigned(town, tablet, how):  # noqa: F811
    _hand_away(town)
    colleague = factories.user(town.municipality, "outreach_worker", partner_org=town.partner)
    other = factories.household(town.municipality, at=(town.household.location.x, town.household.location.y))
    if how == "no_scheduled_visit":
        op = visit_op(town, visited_at=_visited(-60))
    elif how == "a_colleagues_visit":
        theirs = factories.scheduled_visit(town.campaign, other, colleague, timezone.localdate() + dt.timedelta(days=2))
        op = visit_op(town, household=other, scheduled=theirs, visited_at=_visited(-60))
    else:  # the worker's own visit, named for a household it is not for
        op = visit_op(town, household=other, scheduled=town.visit, visited_at=_visited(-60))
    result = push(tablet, [op])[0]
    assert result["status"] == "rejected" and result["error"]["code"] == "not_assigned", result
    assert not VisitRecord.objects.filter(pk=op["data"]["id"]).exists()
