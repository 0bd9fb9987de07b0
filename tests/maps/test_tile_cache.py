"""Tiles from the cache (maps.tile_cache): for every layer a second request is served without the
tile's statement, a change of the data under the tile makes the next one render anew, another
municipality's change does not, callers whose views differ never share an entry, and the cache and
the version rows stay bounded."""

import datetime as dt
import uuid

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.tenancy import job_scope
from maps import queries, tasks, tile_cache
from maps.models import CachedTile, MapDataChange
from neighborhoods.models import Neighborhood
from neighborhoods.services import update_household
from outreach import services as outreach
from tests import factories
from tests.maps.geo import tile_xy, tiles_covering
from tests.maps.mvt import decode
from tests.maps.test_tiles import fetch
from visits.models import Allocation, CampaignHousehold, VisitRecord


def _tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    return (z, *tile_xy(lon, lat, z))


def _spot(m) -> tuple[float, float]:
    """Where the changes happen: at the household "new" (so in the tiles that show it)."""
    return m.households["new"].location.coords


def get(client, layer: str, tile, query: str = "") -> tuple[bytes, str, int]:
    """(body, ETag, how many tile statements ran)."""
    with CaptureQueriesContext(connection) as captured:
        r = fetch(client, layer, *tile, query)
    assert r.status_code == 200, r.content
    return r.content, r["ETag"], sum("ST_AsMVT" in q["sql"] for q in captured.captured_queries)


def features(body: bytes, layer: str) -> list:
    decoded = decode(body)
    return decoded[layer].features if layer in decoded else []


# --- what changes under each layer: each makes a change and says how to see it ------------------------

def _household_flag(m, first):
    hh = m.households["new"]
    update_household(household=hh, changes={"risk_flags": ["multi_pet"]}, base_version=hh.version)
    return lambda body: any(f.properties.get("multi_pet") for f in features(body, "households")
                            if f.properties["id"] == str(hh.id))


def _visit_record(m, first):
    """A refusal recorded at the door: visit records had no cheap version (a 5-minute bucket)."""
    hh = m.households["new"]
    VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=m.town.municipality, household=hh, worker=m.town.users["outreach_worker"],
        outcome="refused", visited_at=timezone.now() - dt.timedelta(hours=1),
    )
    return lambda body: any(f.properties["refused"] for f in features(body, "households")
                            if f.properties["id"] == str(hh.id))


def _campaign_state(m, first):
    hh = m.households["new"]
    CampaignHousehold.objects.update_or_create(
        campaign=m.town.campaign, household=hh,
        defaults={"municipality": m.town.municipality, "neighborhood_id": hh.neighborhood_id, "state": "leaflet_left"},
    )
    return lambda body: any(f.properties.get("campaign_state") == "leaflet_left" for f in features(body, "households")
                            if f.properties["id"] == str(hh.id))


def _neighborhood_renamed(m, first):
    # A bare UPDATE (no model code, no updated_at): the statement trigger still notes it.
    Neighborhood.objects.filter(pk=m.town.neighborhood.pk).update(name="改名自治会")
    return lambda body: any(f.properties["name"] == "改名自治会" for f in features(body, "neighborhoods"))


def _resource_added(m, first):
    factories.resource(m.town.municipality, at=_spot(m), name="新しいサロン")
    return lambda body: "新しいサロン" in {f.properties["name"] for f in features(body, "resources")}


def _households_added(m, first):
    """Six households at one point: their cell gains six (and is shown, being over the minimum)."""
    for _ in range(6):
        factories.household(m.town.municipality, at=_spot(m))

    def total(body):
        return sum(f.properties["households"] for f in features(body, "hexagons"))

    before = total(first)
    return lambda body: total(body) >= before + 6


def _concern_pinned(m, first):
    concern = outreach.raise_concern(
        user=m.town.users["coordinator"], source="other", categories=["hikikomori"],
        pin=Point(*_spot(m), srid=4326), place_description="橋の下",
    )
    return lambda body: str(concern.id) in {f.properties["id"] for f in features(body, "concerns")}


def _case_opened(m, first):
    case = outreach.open_case(by=m.town.users["coordinator"], household_id=m.households["new"].id, title="新しいケース")
    return lambda body: str(case.id) in {f.properties["id"] for f in features(body, "cases")}


CHANGES = [
    ("households", 15, "coordinator", _household_flag),
    ("households", 15, "coordinator", _visit_record),
    ("households", 15, "supervisor", _campaign_state),
    ("neighborhoods", 13, "commissioner", _neighborhood_renamed),
    ("resources", 13, "admin", _resource_added),
    ("hexagons", 14, "admin", _households_added),
    ("concerns", 13, "coordinator", _concern_pinned),
    ("cases", 13, "coordinator", _case_opened),
]


@pytest.mark.parametrize(("layer", "z", "role", "change"), CHANGES, ids=lambda v: getattr(v, "__name__", v))
def test_a_tile_is_cached_until_the_data_under_it_changes(mapped, layer, z, role, change):
    client = mapped.client(role)
    tile = _tile_at(*_spot(mapped), z)
    first, tag, rendered = get(client, layer, tile)
    assert rendered == 1
    again, same_tag, rendered = get(client, layer, tile)
    assert rendered == 0 and again == first and same_tag == tag  # from the cache
    shows_change = change(mapped, first)
    assert not shows_change(first)
    changed, new_tag, rendered = get(client, layer, tile)
    assert rendered == 1 and new_tag != tag
    assert shows_change(changed)
    assert get(client, layer, tile)[2] == 0  # the new tile is kept in turn
    assert CachedTile.objects.filter(layer=layer).count() == 1  # replaced, not added


def test_another_municipalitys_change_keeps_the_tile(mapped, other_town):
    client = mapped.client("coordinator")
    tile = _tile_at(*_spot(mapped), 15)
    body, tag, _ = get(client, "households", tile)
    hh = other_town.household
    update_household(household=hh, changes={"risk_flags": ["hoarding"]}, base_version=hh.version)
    VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=other_town.municipality, household=hh,
        worker=other_town.users["outreach_worker"], outcome="refused", visited_at=timezone.now(),
    )
    again, same_tag, rendered = get(client, "households", tile)
    assert rendered == 0 and again == body and same_tag == tag


def test_a_304_reads_neither_the_cache_nor_the_tile(mapped):
    client = mapped.client("coordinator")
    tile = _tile_at(*_spot(mapped), 15)
    _body, tag, _ = get(client, "households", tile)
    with CaptureQueriesContext(connection) as captured:
        r = fetch(client, "households", *tile, **{"If-None-Match": tag})
    assert r.status_code == 304
    assert not any("ST_AsMVT" in q["sql"] or "maps_cachedtile" in q["sql"] for q in captured.captured_queries)


def _bbox(m, pad: float = 0.002) -> tuple[float, float, float, float]:
    a, b = m.town.neighborhood.geom.extent, m.second.geom.extent
    return (min(a[0], b[0]) - pad, min(a[1], b[1]) - pad, max(a[2], b[2]) + pad, max(a[3], b[3]) + pad)


def view(client, m, layer: str = "households", z: int = 15) -> tuple[set[str], int]:
    """The ids of every tile over both 自治会, and how many of those tiles were rendered."""
    ids, rendered = set(), 0
    for tile in tiles_covering(_bbox(m), z):
        body, _tag, n = get(client, layer, tile)
        ids |= {str(f.properties.get("id")) for f in features(body, layer)}
        rendered += n
    return ids, rendered


def test_callers_whose_views_differ_never_share_a_tile(mapped):
    """A 民生委員 sees their own 自治会's households, a worker their corporation's, a coordinator the
    whole town: each renders their own tiles after the others, and sees only their own view."""
    tiles_count = len(tiles_covering(_bbox(mapped), 15))
    own = {str(h.id) for h in [mapped.town.household, *mapped.households.values()]}
    seconds = {str(h.id) for h in mapped.second_households}
    assert view(mapped.client("coordinator"), mapped) == (own | seconds, tiles_count)
    assert view(mapped.client("commissioner"), mapped) == (own, tiles_count)
    assert view(mapped.client("outreach_worker"), mapped) == (own, tiles_count)
    other = factories.user(mapped.town.municipality, "commissioner", neighborhoods=[mapped.second])
    assert view(_client(other), mapped) == (seconds, tiles_count)
    partner2 = Allocation.objects.get(neighborhood=mapped.second).partner_organization
    worker = factories.user(mapped.town.municipality, "outreach_worker", partner_org=partner2)
    assert view(_client(worker), mapped) == (seconds, tiles_count)


def test_the_same_view_is_shared(mapped):
    """Two coordinators see the same town; the 自治会 layer is the same for every role."""
    ids, _ = view(mapped.client("coordinator"), mapped)
    second = factories.user(mapped.town.municipality, "coordinator")
    assert view(_client(second), mapped) == (ids, 0)
    view(mapped.client("admin"), mapped, "neighborhoods", 13)
    assert view(mapped.client("commissioner"), mapped, "neighborhoods", 13)[1] == 0


def test_a_commissioners_new_neighborhood_renders_anew(mapped):
    client = mapped.client("commissioner")
    before, _ = view(client, mapped)
    mapped.town.users["commissioner"].neighborhoods.add(mapped.second)
    after, rendered = view(client, mapped)
    assert rendered > 0 and after == before | {str(h.id) for h in mapped.second_households}


def test_a_worker_whose_allocation_ends_renders_anew(mapped):
    client = mapped.client("outreach_worker")
    assert view(client, mapped)[0]
    Allocation.objects.filter(partner_organization=mapped.town.partner).delete()
    ids, rendered = view(client, mapped)
    assert rendered > 0 and not ids


def _client(user):
    from tests.conftest import ApiClient

    return ApiClient(factories.token_for(user))


# --- the database side ------------------------------------------------------------------------------

def test_every_logged_input_has_its_triggers(db):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, t.tgname, encode(t.tgargs, 'escape')
              FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             WHERE t.tgname LIKE 'maps_data_change_%%'
            """
        )
        found = {(table, name, args.rstrip("\x00").replace("\\000", "")) for table, name, args in cursor.fetchall()}
    expected = {
        (table, f"maps_data_change_{op}", input_name)
        for input_name, table in queries.LOGGED_INPUTS.items() for op in ("insert", "update", "delete")
    }
    assert found == expected


def test_a_bulk_statement_adds_one_version_row_per_municipality(mapped, other_town):
    before = MapDataChange.objects.filter(input="household").count()
    from neighborhoods.models import Household

    Household.objects.filter(municipality__in=[mapped.town.municipality, other_town.municipality]).update(
        living_arrangement="single"
    )
    assert MapDataChange.objects.filter(input="household").count() == before + 2


def test_tiles_are_tenant_data(mapped, other_town):
    get(mapped.client("coordinator"), "households", _tile_at(*_spot(mapped), 15))
    with job_scope(other_town.municipality.pk):
        assert not CachedTile.objects.exists()
    with job_scope(mapped.town.municipality.pk):
        assert CachedTile.objects.exists()


def _version(m) -> str:
    return queries.data_version(("household", "visit_record"), queries.VersionContext(
        municipality_id=m.town.municipality.pk, user_id=m.town.users["coordinator"].pk,
    ))


def test_compacting_keeps_every_version(mapped):
    m = mapped.town.municipality.pk
    before = _version(mapped)
    assert MapDataChange.objects.filter(municipality_id=m, input="household").count() > 1
    tasks.evict_tile_cache_task()
    assert _version(mapped) == before
    assert MapDataChange.objects.filter(municipality_id=m, input="household").count() == 1
    factories.household(mapped.town.municipality, at=_spot(mapped))
    assert _version(mapped) != before


def test_old_and_surplus_tiles_are_evicted(mapped):
    client = mapped.client("admin")
    lon, lat = _spot(mapped)
    for dz in range(3):
        get(client, "neighborhoods", _tile_at(lon, lat, 13 + dz))
    m = mapped.town.municipality.pk
    assert CachedTile.objects.filter(municipality_id=m).count() == 3
    oldest = CachedTile.objects.order_by("key").first()
    CachedTile.objects.filter(pk=oldest.pk).update(rendered_at=timezone.now() - dt.timedelta(days=8))
    assert tile_cache.evict(m) == 1
    newest = CachedTile.objects.order_by("-rendered_at", "key").first()  # the order eviction keeps
    assert tile_cache.evict(m, max_bytes=newest.size) == 1
    assert list(CachedTile.objects.values_list("key", flat=True)) == [newest.key]


def test_the_cleanup_is_scheduled(db):
    from django.utils.module_loading import import_string
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="maps-tile-cache")
    assert schedule.minutes == 10 and schedule.repeats == -1
    assert import_string(schedule.func) is tasks.evict_tile_cache_task
