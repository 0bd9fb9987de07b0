"""The campaign a tile shows is chosen by the statement that reads the tile's version
(maps.tiles.version_sql with maps.access.campaign_choice_sql), not by a query of its own: it must
be the campaign maps.access.campaign_for chooses (the coverage endpoints' choice), for every role
and whichever campaigns exist, and a campaign of another municipality is 404 as it is there."""

import datetime as dt

import pytest
from django.db import connection

from backend import tenancy
from maps import access, tiles
from tests import factories
from tests.api.test_errors import assert_error_body
from tests.maps.geo import tile_xy
from visits.models import Campaign

RUNNING, CLOSED, DRAFT = Campaign.Status.RUNNING, Campaign.Status.CLOSED, Campaign.Status.DRAFT


def chosen_by_tile(user, asked: int | None = None, layer: str = "neighborhoods") -> int | None:
    req = tiles.TileRequest(user=user, layer=layer, z=13, x=0, y=0, campaign=asked)
    sql, params = tiles.version_sql(req)
    with tenancy.scope(user.municipality_id), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def chosen_by_campaign_for(user, asked: int | None = None) -> int | None:
    with tenancy.scope(user.municipality_id):
        campaign = access.campaign_for(user, asked)
    return campaign.pk if campaign else None


def assert_same_choice(town, expected: Campaign | None) -> None:
    for role, user in town.users.items():
        assert chosen_by_campaign_for(user) == (expected.pk if expected else None), role
        assert chosen_by_tile(user) == chosen_by_campaign_for(user), role
        assert chosen_by_tile(user, layer="households") == chosen_by_campaign_for(user), role


def _campaign(town, status: str, start: dt.date) -> Campaign:
    return factories.campaign(town.municipality, status=status, start_date=start, end_date=start + dt.timedelta(days=90))


def test_the_current_campaign_is_the_one_campaign_for_chooses(town):
    first = town.campaign  # running, from the town's allocation
    older_running = _campaign(town, RUNNING, first.start_date - dt.timedelta(days=200))
    newer_closed = _campaign(town, CLOSED, first.start_date + dt.timedelta(days=30))
    newest_draft = _campaign(town, DRAFT, first.start_date + dt.timedelta(days=60))
    assert_same_choice(town, first)  # the latest running, however new the others

    same_day = _campaign(town, RUNNING, first.start_date)
    assert_same_choice(town, same_day)  # started the same day: the later one

    Campaign.objects.filter(pk__in=[first.pk, older_running.pk, same_day.pk]).update(status=CLOSED)
    assert_same_choice(town, newer_closed)  # none running: the latest started

    Campaign.objects.filter(municipality=town.municipality).update(status=DRAFT)
    assert_same_choice(town, newest_draft)  # drafts only: the latest draft


def test_a_municipality_without_campaigns_shows_none(db):
    town = factories.municipality()
    coordinator = factories.user(town, "coordinator")
    assert chosen_by_campaign_for(coordinator) is None
    assert chosen_by_tile(coordinator) is None


def test_a_campaign_asked_for_is_shown_if_it_is_the_callers(town, other_town):
    closed = _campaign(town, CLOSED, town.campaign.start_date - dt.timedelta(days=400))
    user = town.users["commissioner"]
    assert chosen_by_tile(user, closed.pk) == chosen_by_campaign_for(user, closed.pk) == closed.pk
    assert chosen_by_tile(user, other_town.campaign.pk) is None  # the handler answers 404


@pytest.mark.parametrize("revalidating", [False, True])
@pytest.mark.parametrize("layer", ["neighborhoods", "households"])
def test_another_municipalitys_campaign_is_404(town, other_town, layer, revalidating):
    client = town.client("coordinator")
    z = 15
    x, y = tile_xy(*factories.centre(town.neighborhood), z)
    url = f"maps/tiles/{layer}/{z}/{x}/{y}.mvt"
    own = client.get(f"{url}?campaign={town.campaign.pk}")
    assert own.status_code == 200
    headers = {"If-None-Match": own["ETag"]} if revalidating else None
    assert_error_body(client.get(f"{url}?campaign={other_town.campaign.pk}", headers=headers), 404, "not_found")
    coverage = client.get(f"maps/coverage?campaign={other_town.campaign.pk}")
    assert_error_body(coverage, 404, "not_found")  # the same answer as the coverage endpoints'


def test_a_layer_without_a_campaign_ignores_the_parameter(town, other_town):
    z = 13
    x, y = tile_xy(*factories.centre(town.neighborhood), z)
    response = town.client("admin").get(f"maps/tiles/hexagons/{z}/{x}/{y}.mvt?campaign={other_town.campaign.pk}")
    assert response.status_code == 200


def test_the_tile_follows_the_current_campaign(town):
    """The ETag (and the cached tile) of the default campaign change when another campaign becomes
    the current one, though nothing under the tile changed."""
    client = town.client("coordinator")
    z = 13
    x, y = tile_xy(*factories.centre(town.neighborhood), z)
    url = f"maps/tiles/neighborhoods/{z}/{x}/{y}.mvt"
    first = client.get(url)
    assert client.get(url, headers={"If-None-Match": first["ETag"]}).status_code == 304
    _campaign(town, RUNNING, town.campaign.start_date + dt.timedelta(days=1))
    assert client.get(url, headers={"If-None-Match": first["ETag"]}).status_code == 200
