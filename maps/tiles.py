"""Vector tiles straight from PostGIS: one ST_AsMVT statement per tile, filtered by the caller's
scope (maps.access), with an ETag made of what determines the tile.

Layers and their zoom ranges (outside the range: 422 `zoom_out_of_range`, never an empty tile, so
a misconfigured client notices):

| layer          | zoom   | who                              | what                                      |
|----------------|--------|----------------------------------|-------------------------------------------|
| neighborhoods  | 8–22   | every role                       | 自治会 with the campaign's coverage         |
| resources      | 10–22  | every role                       | community resources                       |
| hexagons       | 12–22  | every role                       | households per hexagon, cells < 5 dropped |
| concerns       | 12–22  | coordinators                     | open concerns (household or pin)          |
| cases          | 12–22  | coordinators                     | open outreach cases                       |
| households     | 14–22  | roles that may see households    | their visible households + indicators     |

The hexagon grid is one fixed grid (ST_HexagonGrid, edge HEXAGON_SIZE in EPSG:3857 units, about
245 m on the ground at 35°N) at every zoom: grids of several sizes could be subtracted from one
another to uncover the small cells that are suppressed.

ETag = hash(layer, z/x/y, the layer's options (the campaign asked for, if any), the caller's scope
key, the version). The version is read in one statement of index lookups: the campaign the tile
shows (自治会 and households: the one asked for if it is the caller's municipality's, else the
current one; chosen in that statement, maps.access.campaign_choice_sql, so choosing it costs no
round trip), and the data version of the layer's inputs: per municipality and input table, the sum
kept by statement-level triggers (maps.queries.LOGGED_INPUTS: households, visit records, campaign
states, concerns, cases, 自治会, resources, allocations, campaigns), the coverage snapshot's refresh
time, the commissioner's 自治会; and the day, for the layers computed against today (households: no
contact within N months; cases: overdue). A tile is served again from maps.tile_cache while that
version holds. A revalidation (304) and a tile from the cache are each that one statement after
the token check and the tenant's settings, prepared once per connection (backend.db.prepared_cursor);
the request's end returns the session to the outside settings."""

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.http import Http404
from django.utils import timezone

from accounts.access import municipality_id_of
from accounts.models import User
from backend.db import prepared_cursor
from backend.errors import InvalidInput, NotFound
from maps import access, queries
from outreach.models import case_overdue_sql
from visits import coverage

MAX_ZOOM = 22
EXTENT = 4096
BUFFER = 64
HEXAGON_SIZE = 300.0  # EPSG:3857 units (edge length)
CONTENT_TYPE = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = "private, no-cache"


@dataclass(frozen=True)
class TileRequest:
    user: User
    layer: str
    z: int
    x: int
    y: int
    campaign: int | None = None  # asked for (layers that show one); None: the current one
    months: int = 6
    indicators: tuple[str, ...] = ()
    today: dt.date = field(default_factory=timezone.localdate)

    def options(self) -> str:
        """What the caller chose (the day is part of the version of the layers that use it)."""
        parts = [f"c{'-' if self.campaign is None else self.campaign}"]
        if self.layer == "households":
            parts += [f"m{self.months}", "i" + ",".join(self.indicators)]
        return ";".join(parts)


@dataclass(frozen=True)
class Layer:
    name: str
    min_zoom: int
    max_zoom: int
    versions: tuple[str, ...]
    build: Callable[[TileRequest], tuple[str, list]]
    feature_id: str | None = None
    daily: bool = False  # computed against today (Asia/Tokyo): the day is part of its version
    campaign: bool = False  # shows a campaign (the one asked for, else the current one): part of its version
    shared: bool = False  # the same for every caller of the municipality (no person in it)


def _geom(column: str) -> str:
    return f"ST_AsMVTGeom(ST_Transform({column}, 3857), b.env, {EXTENT}, {BUFFER}, true)"


def _neighborhoods(req: TileRequest) -> tuple[str, list]:
    finished, state = coverage.finished_sql("c"), coverage.cell_state_sql("c")  # the one formula
    sql = f"""
    SELECT {_geom('n.geom')} AS geom, n.id AS fid, n.id, n.code, n.name,
           (c.neighborhood_id IS NOT NULL) AS targeted,
           c.in_scope, c.met, c.refused, c.leaflet_left, c.moved_or_vacant, c.absent_pending, c.not_visited,
           {finished} AS finished,
           CASE WHEN c.neighborhood_id IS NOT NULL
                THEN coalesce({coverage.coverage_pct_sql(finished, "c.in_scope")}, 0)::float8 END AS coverage_pct,
           CASE WHEN c.neighborhood_id IS NOT NULL THEN {state} END AS state
      FROM bounds b
      JOIN neighborhoods_neighborhood n ON n.geom && b.env4326
      LEFT JOIN maps_coveragecell c ON c.campaign_id = b.campaign_id AND c.neighborhood_id = n.id
     WHERE n.municipality_id = %s"""  # noqa: S608 - constant fragments, values bound
    return sql, [req.user.municipality_id]


def _households(req: TileRequest) -> tuple[str, list]:
    scope = access.household_condition(req.user)
    ind = queries.indicator_columns(req.user, months=req.months, today=req.today)
    available = [i for i in queries.INDICATORS if i not in ind.withheld]
    count = " + ".join(f'x."{name}"::int' for name in available) or "0"
    match = queries.indicators_true_sql(req.indicators, available) if req.indicators else "TRUE"
    sql = f"""
    SELECT x.*, ({count}) AS indicator_count
      FROM (
        SELECT {_geom('h.location')} AS geom, h.id::text AS id, h.neighborhood_id, h.status, h.living_arrangement,
               {ind.columns},
               cch.state AS campaign_state
          FROM bounds b
          JOIN neighborhoods_household h ON h.location && b.env4326
          LEFT JOIN visits_campaignhousehold cch ON cch.campaign_id = b.campaign_id AND cch.household_id = h.id
         WHERE {scope.sql}
        OFFSET 0  -- computed once per household, not once per use of each indicator
      ) x
     WHERE {match}"""  # noqa: S608 - constant fragments, values bound
    return sql, [*ind.params, *scope.params]


def _concerns(req: TileRequest) -> tuple[str, list]:
    """Open concerns at their household's point, or at their pin when no household is known."""
    cond = access.layer_condition(req.user, "concerns", "c.id")
    columns = """c.id::text AS id, c.status, c.urgency, c.source, array_to_string(c.categories, ',') AS categories,
           c.neighborhood_id, c.household_id::text AS household_id"""
    sql = f"""
    SELECT {_geom('h.location')} AS geom, {columns}
      FROM bounds b
      JOIN neighborhoods_household h ON h.location && b.env4326
      JOIN outreach_concern c ON c.household_id = h.id
     WHERE c.municipality_id = %s AND c.status <> 'closed' AND {cond.sql}
    UNION ALL
    SELECT {_geom('c.pin')} AS geom, {columns}
      FROM bounds b
      JOIN outreach_concern c ON c.pin && b.env4326
     WHERE c.household_id IS NULL AND c.municipality_id = %s AND c.status <> 'closed' AND {cond.sql}"""  # noqa: S608 - constant fragments, values bound
    return sql, [req.user.municipality_id, *cond.params, req.user.municipality_id, *cond.params]


def _cases(req: TileRequest) -> tuple[str, list]:
    cond = access.layer_condition(req.user, "cases", "c.id")
    sql = f"""
    SELECT {_geom('h.location')} AS geom, c.id::text AS id, c.stage, {case_overdue_sql("c")} AS overdue,
           c.next_contact_due::text AS next_contact_due, c.lead_partner_id, h.neighborhood_id,
           c.household_id::text AS household_id
      FROM bounds b
      JOIN neighborhoods_household h ON h.location && b.env4326
      JOIN outreach_outreachcase c ON c.household_id = h.id
     WHERE c.municipality_id = %s AND c.status = 'open' AND {cond.sql}"""  # noqa: S608 - constant fragments, values bound
    # overdue is computed against today (Asia/Tokyo): the layer is daily (its version has the day)
    return sql, [req.today, req.user.municipality_id, *cond.params]


def _resources(req: TileRequest) -> tuple[str, list]:
    sql = f"""
    SELECT {_geom('r.location')} AS geom, r.id AS fid, r.id, r.name, r.type, r.neighborhood_id
      FROM bounds b
      JOIN neighborhoods_communityresource r ON r.location && b.env4326
     WHERE r.municipality_id = %s"""  # noqa: S608 - constant fragments, values bound
    return sql, [req.user.municipality_id]


def _hexagons(req: TileRequest) -> tuple[str, list]:
    """Households per cell of the fixed hexagon grid of ST_Hexagon / ST_HexagonGrid (flat-topped,
    cell (i, j) centred at (1.5·s·i, √3·s·j + (i odd ? √3·s/2 : 0)) in EPSG:3857). Each household
    of the tile grown by a cell's width (2·s: every point of any cell that touches the tile) is
    put in its cell by arithmetic: of the two columns its x can fall in, the nearest centre, which
    is the hexagon that contains it. So a cell's count is complete where it crosses the tile's
    edge, and the same in both tiles; a cell that only reaches the tile's buffer belongs to the
    neighbouring tile and is left to it. Cells with fewer than HEXAGON_MIN_COUNT are left out. Only
    the count: no attribute per cell, which a small or uniform cell would give away."""
    minimum = access.HEXAGON_MIN_COUNT
    size = HEXAGON_SIZE
    w, h, half = (f"{v!r}::float8" for v in (1.5 * size, 3 ** 0.5 * size, 3 ** 0.5 * size / 2))
    r = "6378137.0::float8"  # EPSG:3857 is spherical Mercator on this radius: computed here, not by PROJ
    odd = "CASE WHEN mod({i}, 2) <> 0 THEN " + half + " ELSE 0.0::float8 END"
    # The grown envelope is a column of its own CTE: under row-level security only a condition of
    # LEAKPROOF parts (`&&` on two columns) reaches the spatial index; `&&` on an ST_Transform(…)
    # expression would wait for the policy's filter, after a scan of the whole municipality.
    sql = f"""
    WITH grown AS MATERIALIZED (
      SELECT ST_Transform(ST_Expand(b.env, {2 * size}), 4326) AS env4326 FROM bounds b
    ),
    pts AS MATERIALIZED (
      SELECT {r} * radians(ST_X(h.location)) AS x, {r} * ln(tan(pi() / 4 + radians(ST_Y(h.location)) / 2)) AS y
        FROM grown g
        JOIN neighborhoods_household h ON h.location && g.env4326
       WHERE h.municipality_id = %s AND h.status NOT IN ('vacant', 'moved')
    ),
    candidates AS MATERIALIZED (
      SELECT x, y, i0, i0 + 1 AS i1, o0, o1, round((y - o0) / {h}) AS j0, round((y - o1) / {h}) AS j1
        FROM (SELECT p.*, {odd.format(i="p.i0")} AS o0, {odd.format(i="p.i0 + 1")} AS o1
                FROM (SELECT pts.*, floor(x / {w})::int AS i0 FROM pts) p) q
    ),
    cells AS (
      SELECT CASE WHEN d0 <= d1 THEN i0 ELSE i1 END AS i, CASE WHEN d0 <= d1 THEN j0 ELSE j1 END AS j
        FROM (SELECT c.*, (x - {w} * i0) ^ 2 + (y - {h} * j0 - o0) ^ 2 AS d0,
                          (x - {w} * i1) ^ 2 + (y - {h} * j1 - o1) ^ 2 AS d1
                FROM candidates c) d
    )
    SELECT ST_AsMVTGeom(ST_SetSRID(ST_Hexagon({size}::float8, k.i, k.j::int), 3857), b.env, {EXTENT}, {BUFFER}, true)
             AS geom,
           k.households
      FROM bounds b,
           (SELECT i, j, count(*) AS households FROM cells GROUP BY i, j HAVING count(*) >= {minimum}) k
     WHERE ST_Intersects(ST_SetSRID(ST_Hexagon({size}::float8, k.i, k.j::int), 3857), b.env)"""  # noqa: S608 - constant fragments, values bound
    return sql, [req.user.municipality_id]


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer("neighborhoods", 8, MAX_ZOOM, ("neighborhood", "coverage"), _neighborhoods, feature_id="fid",
              shared=True, campaign=True),
        Layer("resources", 10, MAX_ZOOM, ("resource",), _resources, feature_id="fid", shared=True),
        Layer("hexagons", 12, MAX_ZOOM, ("household",), _hexagons, shared=True),
        Layer("concerns", 12, MAX_ZOOM, ("concern", "household"), _concerns),
        Layer("cases", 12, MAX_ZOOM, ("case", "household"), _cases, daily=True),
        # + the scope's inputs for roles that see part of the municipality (access.scope_version_parts)
        Layer("households", 14, MAX_ZOOM,
              ("household", "visit_record", "campaign_household", "concern", "case"), _households, daily=True,
              campaign=True),
    )
}

TILE_SQL = """
WITH bounds AS (
  SELECT ST_TileEnvelope(%s, %s, %s) AS env,
         ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => %s), 4326) AS env4326,
         {campaign} AS campaign_id
),
features AS (
  SELECT * FROM ({select}) s WHERE s.geom IS NOT NULL
)
SELECT coalesce(ST_AsMVT(features.*, %s, {extent}, 'geom'{feature_id}), ''::bytea) FROM features
"""


def layer_for(name: str) -> Layer:
    layer = LAYERS.get(name)
    if layer is None:
        raise NotFound(f"No map layer {name!r}.", code="unknown_layer", details={"layers": sorted(LAYERS)})
    return layer


def parse_tile(z: str, x: str, y: str) -> tuple[int, int, int]:
    """z/x/y from the path: integers, 0 <= z <= MAX_ZOOM, 0 <= x, y < 2**z."""
    problems = []
    values = {}
    for name, raw in (("z", z), ("x", x), ("y", y)):
        try:
            values[name] = int(raw, 10)
        except ValueError:
            problems.append({"loc": ["path", name], "msg": f"{name} must be a whole number", "type": "int_parsing"})
    if problems:
        raise InvalidInput("Tile coordinates must be whole numbers.", code="invalid_tile", details=problems)
    tz, tx, ty = values["z"], values["x"], values["y"]
    if not 0 <= tz <= MAX_ZOOM:
        raise InvalidInput(f"z must be between 0 and {MAX_ZOOM}.", code="invalid_tile",
                           details=[{"loc": ["path", "z"], "msg": f"0 <= z <= {MAX_ZOOM}"}])
    side = 2 ** tz
    for name, value in (("x", tx), ("y", ty)):
        if not 0 <= value < side:
            problems.append({"loc": ["path", name], "msg": f"at zoom {tz}, 0 <= {name} < {side}"})
    if problems:
        raise InvalidInput("Tile coordinates are outside the tile grid.", code="invalid_tile", details=problems)
    return tz, tx, ty


def check_zoom(layer: Layer, z: int) -> None:
    if not layer.min_zoom <= z <= layer.max_zoom:
        raise InvalidInput(
            f"The {layer.name} layer is served from zoom {layer.min_zoom} to {layer.max_zoom}.",
            code="zoom_out_of_range",
            details={"layer": layer.name, "min_zoom": layer.min_zoom, "max_zoom": layer.max_zoom, "z": z},
        )


def campaign_sql(req: TileRequest) -> tuple[str, list]:
    """The id of the campaign the tile shows, chosen in SQL by the statement that needs it
    (maps.access.campaign_choice_sql: the one asked for if the caller may see it, else the current
    one), so choosing it costs no round trip of its own; NULL for the layers that show none."""
    if not LAYERS[req.layer].campaign:
        return "NULL::bigint", []
    return access.campaign_choice_sql(req.user, req.campaign)


def tile_sql(req: TileRequest) -> tuple[str, list]:
    """The one statement that makes the tile, with its parameters (the bench runs it directly)."""
    layer = LAYERS[req.layer]
    select, select_params = layer.build(req)
    campaign, campaign_params = campaign_sql(req)
    margin = BUFFER / EXTENT
    feature_id = f", '{layer.feature_id}'" if layer.feature_id else ""
    sql = TILE_SQL.format(select=select, extent=EXTENT, feature_id=feature_id, campaign=campaign)
    params = [req.z, req.x, req.y, req.z, req.x, req.y, margin, *campaign_params, *select_params, layer.name]
    return sql, params


# Tiles are small queries whose cost the planner overestimates; compiling them (JIT) costs more
# than running them. Limited to the statement's own transaction.
TILE_SETTINGS = "SET LOCAL jit = off;"


def render(req: TileRequest) -> bytes:
    """The tile's bytes: its one statement (what the bench compares the API with)."""
    sql, params = tile_sql(req)
    with connection.cursor() as cursor:
        cursor.execute(TILE_SETTINGS + sql, params)
        while cursor.description is None and cursor.nextset():
            pass
        value = cursor.fetchone()[0]
    return bytes(value) if value is not None else b""


VERSION_SQL = """
SELECT s.campaign_id, concat_ws('|', 'c' || coalesce(s.campaign_id::text, '-'), {parts}, %s::text) AS version
  FROM (SELECT {campaign} AS campaign_id OFFSET 0) s  -- chosen once (pulled up, each use would choose again)
"""


def version_sql(req: TileRequest) -> tuple[str, list]:
    """The statement of the tile's version, one row (campaign_id, version): the campaign it shows
    and the data version of its inputs (and the day for a daily layer), what its ETag and its
    cache entry are made of, read by index lookups only."""
    layer = LAYERS[req.layer]
    parts = layer.versions + (access.scope_version_parts(req.user) if req.layer == "households" else ())
    ctx = queries.VersionContext(
        municipality_id=municipality_id_of(req.user), user_id=req.user.pk, campaign_column="s.campaign_id",
    )
    parts_sql, parts_params = queries.version_sql(parts, ctx)
    campaign, campaign_params = campaign_sql(req)
    day = req.today.isoformat() if layer.daily else ""
    return VERSION_SQL.format(parts=parts_sql, campaign=campaign), [*parts_params, day, *campaign_params]


def checked_version(req: TileRequest, campaign_id: int | None, version: str | None) -> str:
    """The version read by version_sql, once the campaign asked for is known to be the caller's:
    another municipality's campaign, or none, answers 404 (as maps.access.campaign_for)."""
    if req.campaign is not None and campaign_id is None:
        raise Http404("No Campaign matches the given query.")
    return version or ""


def tag(req: TileRequest, version: str) -> str:
    """The ETag of the tile of this request at this data version (per caller)."""
    basis = "|".join([
        "tile-v2", req.layer, f"{req.z}/{req.x}/{req.y}", req.options(), access.scope_key(req.user), version,
    ])
    return 'W/"' + hashlib.sha256(basis.encode()).hexdigest()[:32] + '"'


def etag(req: TileRequest) -> str:
    """The tile's ETag without making the tile (for If-None-Match): one prepared statement of index
    lookups (backend.db.prepared_cursor: 0.2 ms where parsing and planning it again took 1 ms)."""
    sql, params = version_sql(req)
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        campaign_id, version = cursor.fetchone()
    return tag(req, checked_version(req, campaign_id, version))


def render_with_etag(req: TileRequest) -> tuple[bytes, str]:
    """The tile and its ETag in one statement, without the cache (bench_rls compares policies on
    and off with it)."""
    vsql, vparams = version_sql(req)
    tsql, tparams = tile_sql(req)
    with connection.cursor() as cursor:
        cursor.execute(f"{TILE_SETTINGS} SELECT v.campaign_id, v.version, ({tsql}) FROM ({vsql}) v",  # noqa: S608 - constant fragments, values bound
                       [*tparams, *vparams])
        while cursor.description is None and cursor.nextset():
            pass
        campaign_id, version, value = cursor.fetchone()
    return (bytes(value) if value is not None else b""), tag(req, checked_version(req, campaign_id, version))


def cache_scope(req: TileRequest) -> str:
    """Whose view a cached tile is: callers with the same scope may share it, callers whose views
    can differ never do. A shared layer (自治会, resources, hexagons) is built from the
    municipality alone; coordinators and supervisors see the whole municipality (their layers'
    SQL reads nothing of the user but the role); everyone else sees a part that depends on who
    they are (a 民生委員's 自治会 and own concerns, a worker's corporation and own cases)."""
    user = req.user
    layer = LAYERS[req.layer]
    if layer.shared:
        return f"m{user.municipality_id}"
    if user.role in access.WHOLE_MUNICIPALITY_SCOPE:
        return f"m{user.municipality_id}:{user.role}"
    return access.scope_key(user)


def json_etag(kind: str, options: str, user: User, version: str) -> str:
    basis = "|".join(["json-v1", kind, options, access.scope_key(user), version])
    return 'W/"' + hashlib.sha256(basis.encode()).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2) of a tag with an If-None-Match header."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = tag.removeprefix("W/")
    return any(part.strip().removeprefix("W/") == wanted for part in if_none_match.split(","))


def layer_info(user: User, names: Sequence[str] | None = None) -> list[dict]:
    allowed = set(access.allowed_layers(user, tuple(LAYERS)))
    return [
        {"name": layer.name, "min_zoom": layer.min_zoom, "max_zoom": layer.max_zoom, "allowed": layer.name in allowed,
         "tiles": f"/api/v1/maps/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.mvt"}
        for layer in LAYERS.values() if names is None or layer.name in names
    ]
