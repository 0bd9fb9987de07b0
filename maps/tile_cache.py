"""Tiles from a cache: a rendered tile is kept in `maps_cachedtile` (maps.models.CachedTile) and
served again, without its PostGIS statement, while the data version it was made from holds.

Why a table and not files under the data folder: tiles of the households layer are people data
(points with indicators such as ひきこもり), so they belong under the same row-level security as the
rows they come from (a tenant table: a session sees only its municipality's tiles), in the same
backups and retention; a lookup is one statement with the version read (one snapshot, one round
trip), every web worker and machine shares it, and a render replaces its entry in place, so there
are no half-written files or clean-up races. UNLOGGED: losing it in a crash costs renders only.

- key = hash(municipality, layer, z/x/y, options (the campaign asked for, not the one chosen),
  cache scope): whose view (tiles.cache_scope: shared layers by the municipality, coordinators and
  supervisors by role, everyone else by user); one row per key, replaced when a render finds a
  newer version.
- version = tiles.version_sql: the campaign shown (so the entry of "the current campaign" is made
  again when another campaign becomes current), the per-municipality versions of the layer's
  inputs (kept by triggers, maps.queries.LOGGED_INPUTS), the coverage snapshot, the 民生委員's
  自治会, the day for daily layers. A lookup reads the version and the entry in one statement and takes the entry only
  if its version is the current one, so a tile is never served after the data under it changed.
- a miss renders the tile and stores it in one statement (version and tile from one snapshot).
- bounded: besides replacement per key, `evict` drops entries rendered more than MAX_AGE ago and
  the oldest beyond MAX_BYTES per municipality; `compact_changes` folds the version rows. Both
  run from the django-q2 schedule `maps-tile-cache` (every 10 minutes, migration maps 0003).
"""

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

from backend import tenancy
from backend.db import prepared_cursor
from maps import tiles

MAX_AGE = dt.timedelta(days=7)
MAX_BYTES = 256 * 1024 * 1024  # per municipality


def cache_key(req: tiles.TileRequest) -> uuid.UUID:
    """What the tile shows, hashed: 128 bits of SHA-256 (a uuid column: 16 bytes, one index)."""
    basis = "|".join([
        "tile-cache-v1", str(req.user.municipality_id), req.layer, f"{req.z}/{req.x}/{req.y}", req.options(),
        tiles.cache_scope(req),
    ])
    return uuid.UUID(bytes=hashlib.sha256(basis.encode()).digest()[:16])


@dataclass(frozen=True)
class Lookup:
    version: str
    tile: bytes | None  # None: not cached at this version


LOOKUP_SQL = """
WITH v AS ({version})
SELECT v.campaign_id, v.version, c.tile
  FROM v LEFT JOIN maps_cachedtile c ON c.key = %s AND c.version = v.version
"""

# The version and the tile from one statement's snapshot; a concurrent render of the same key
# simply replaces the row (a lookup takes an entry only at the current version, so which render
# wins never matters for correctness).
STORE_SQL = """
WITH made AS MATERIALIZED (  -- made once (inlined, each use of made.tile would make the tile again)
  SELECT v.version, ({tile}) AS tile FROM ({version}) v
)
INSERT INTO maps_cachedtile (key, municipality_id, layer, version, tile, size, rendered_at)
SELECT %s, %s, %s, made.version, made.tile, octet_length(made.tile), now() FROM made
    ON CONFLICT (key) DO UPDATE
   SET version = EXCLUDED.version, tile = EXCLUDED.tile, size = EXCLUDED.size, rendered_at = EXCLUDED.rendered_at
RETURNING version, tile
"""


def lookup(req: tiles.TileRequest) -> Lookup:
    """The tile's current version and its cached bytes if they were made at that version: one
    statement, prepared once per connection (backend.db.prepared_cursor)."""
    vsql, vparams = tiles.version_sql(req)
    sql = LOOKUP_SQL.format(version=vsql)
    with prepared_cursor() as cursor:
        cursor.execute(sql, [*vparams, cache_key(req)])
        campaign_id, version, tile = cursor.fetchone()
    return Lookup(tiles.checked_version(req, campaign_id, version), bytes(tile) if tile is not None else None)


def render_and_keep(req: tiles.TileRequest, *, last: bool = False) -> tuple[bytes, str]:
    """Render the tile (its one ST_AsMVT statement) and keep it, in one statement: (bytes, version).
    `last`: the request makes no statement after it, so the same round trip also returns the
    session to the outside settings (backend.tenancy.execute)."""
    vsql, vparams = tiles.version_sql(req)
    tsql, tparams = tiles.tile_sql(req)
    sql = tiles.TILE_SETTINGS + STORE_SQL.format(version=vsql, tile=tsql)
    if not connection.in_atomic_block:
        # The statement is its own transaction, and only a cache write: its commit need not wait for
        # the WAL to reach the disk (it was 5 of the 11 ms of a small tile's miss here). Inside a
        # caller's transaction the setting would reach the caller's writes too, so it is left alone.
        sql = "SET LOCAL synchronous_commit = off;" + sql
    params = [*tparams, *vparams, cache_key(req), req.user.municipality_id, req.layer]
    with connection.cursor() as cursor:
        tenancy.execute(cursor, sql, params, last=last)
        while cursor.description is None and cursor.nextset():
            pass
        version, tile = cursor.fetchone()
    return bytes(tile) if tile is not None else b"", version or ""


def tile_with_etag(req: tiles.TileRequest, *, last: bool = False) -> tuple[bytes, str]:
    """The tile and its ETag: from the cache at the current version, else rendered and kept.
    `last`: the request makes no other statement after this (as for render_and_keep)."""
    found = lookup(req)
    if found.tile is not None:
        return found.tile, tiles.tag(req, found.version)
    body, version = render_and_keep(req, last=last)
    return body, tiles.tag(req, version)


# --- whole answers -----------------------------------------------------------------------------

ANSWER_LOOKUP_SQL = "SELECT tile FROM maps_cachedtile WHERE key = %s AND version = %s"
ANSWER_STORE_SQL = """
INSERT INTO maps_cachedtile (key, municipality_id, layer, version, tile, size, rendered_at)
VALUES (%s, %s, %s, %s, %s, %s, now())
    ON CONFLICT (key) DO UPDATE
   SET version = EXCLUDED.version, tile = EXCLUDED.tile, size = EXCLUDED.size, rendered_at = EXCLUDED.rendered_at
"""


def kept_answer(*, municipality_id: int, kind: str, basis: str, version: str, build: Callable[[], str]) -> bytes:
    """A whole answer (the 自治会 GeoJSON of a whole city: 3,000 polygons, 76 ms of PostGIS at 1.8
    million households) kept in the tile cache's table beside the tiles, under the same rules:
    `basis` names what it shows and whose view it is (the caller's ETag options and scope), the
    entry is taken only at the current `version` (read before the answer is built, so an entry is
    never older than its version), a build replaces the key's row, and eviction bounds it."""
    key = uuid.UUID(bytes=hashlib.sha256(f"answer-v1|{municipality_id}|{kind}|{basis}".encode()).digest()[:16])
    with prepared_cursor() as cursor:
        cursor.execute(ANSWER_LOOKUP_SQL, [key, version])
        row = cursor.fetchone()
    if row is not None:
        return bytes(row[0])
    body = build().encode()
    with connection.cursor() as cursor:
        cursor.execute(ANSWER_STORE_SQL, [key, municipality_id, kind, version, body, len(body)])
    return body


# --- keeping it small ------------------------------------------------------------------------------

EVICT_SQL = """
WITH gone AS (
  DELETE FROM maps_cachedtile
   WHERE municipality_id = %(m)s
     AND (rendered_at < now() - make_interval(secs => %(age)s)
          OR key IN (SELECT key FROM (
                       SELECT key, sum(size) OVER (ORDER BY rendered_at DESC, key) AS kept
                         FROM maps_cachedtile WHERE municipality_id = %(m)s) s
                      WHERE kept > %(bytes)s))
  RETURNING 1
)
SELECT count(*) FROM gone
"""

# Readers see the rows before or after (one statement, one commit): the sums stay the same.
# Rows added meanwhile are not in the DELETE's snapshot and stay.
COMPACT_SQL = """
WITH gone AS (
  DELETE FROM maps_mapdatachange
   WHERE municipality_id = %(m)s
     AND input IN (SELECT input FROM maps_mapdatachange WHERE municipality_id = %(m)s
                    GROUP BY input HAVING count(*) > 1)
  RETURNING input, changes
)
INSERT INTO maps_mapdatachange (municipality_id, input, changes)
SELECT %(m)s, input, sum(changes) FROM gone GROUP BY input
"""


def evict(municipality_id: int, *, max_age: dt.timedelta = MAX_AGE, max_bytes: int = MAX_BYTES) -> int:
    """Drop a municipality's tiles rendered longer than max_age ago, and the oldest beyond
    max_bytes. A dropped tile that is still current is simply rendered again."""
    with connection.cursor() as cursor:
        cursor.execute(EVICT_SQL, {"m": municipality_id, "age": max_age.total_seconds(), "bytes": max_bytes})
        return cursor.fetchone()[0]


def compact_changes(municipality_id: int) -> None:
    """Fold a municipality's data-change rows into one per input (keeping their sums), so reading a
    version stays a lookup of one row whatever was written since."""
    with connection.cursor() as cursor:
        cursor.execute(COMPACT_SQL, {"m": municipality_id})
