"""Placing households that have an address and no point, from the address reference data.

The household importer calls `place_households` after its merge and before 自治会 assignment;
`import_address_reference` calls it after loading new reference points.

Which households:
- merged ones (`merged_into`) never;
- `coordinates` (the municipality's file gave the point) and points given any other way (a
  household created with a location) keep their point: only `address_normalized` is filled in,
  because the duplicate report reads it for every household;
- `manual` (a coordinator placed it) keeps its point while its address stays the same. When the
  address changes (its normalised form differs from the one recorded when it was placed), the
  household moved: the manual point is stale, so the household is matched again like any other,
  and if the new address matches nothing it loses its point and is listed as unplaced again;
- everything else (`residence`, `block`, `town`, `unmatched` without a point) is matched at the
  finest level the reference has: 住居 (town, block, residence), else 街区・地番 (town, block), else
  大字・町丁目 (town); no match leaves it without a point (`unmatched`).

Set-based: the reference is read into dicts once, every household is decided in Python, and only
the rows that differ are staged with COPY and written by one UPDATE … FROM … WHERE … IS DISTINCT FROM,
so a second run writes nothing (no new version, history row or change_seq). The version goes up
only when the point or the level changes, as for any edit the tablets must hear of."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pghistory
from django.db import connection, transaction

from addresses.models import ReferenceLevel
from addresses.normalize import NormalizedAddress, normalize_address
from neighborhoods.models import MatchLevel, Municipality

PROGRESS_EVERY = 20_000

_STAGING_NAME = "tsunagu_household_placement"
_STAGING = f"pg_temp.{_STAGING_NAME}"

_UPDATE_SQL = """
UPDATE neighborhoods_household AS h
   SET location = s.location,
       match_level = s.match_level,
       address_normalized = s.address_normalized,
       version = CASE WHEN (h.location, h.match_level) IS DISTINCT FROM (s.location, s.match_level)
                      THEN h.version + 1 ELSE h.version END,
       updated_at = now()
  FROM pg_temp.tsunagu_household_placement AS s
 WHERE h.id = s.id AND h.municipality_id = %(municipality)s AND h.merged_into_id IS NULL
   AND (h.location, h.match_level, h.address_normalized) IS DISTINCT FROM (s.location, s.match_level, s.address_normalized)
"""

_GIVEN = (MatchLevel.COORDINATES, MatchLevel.MANUAL, MatchLevel.UNMATCHED)
_MATCHED = (MatchLevel.RESIDENCE, MatchLevel.BLOCK, MatchLevel.TOWN)

LonLat = tuple[float, float]


@dataclass
class PlacementResult:
    changed: dict[str, int] = field(default_factory=dict)  # match level -> households whose point changed
    unmatched: int = 0  # households still without a point
    placed: dict[str, int] = field(default_factory=dict)  # match level -> households at that level now
    normalized_only: int = 0  # households whose address_normalized alone changed
    considered: int = 0  # households looked at (not merged)


@dataclass
class ReferenceIndex:
    """A municipality's reference points in dicts, keyed as addresses are normalised."""

    residences: dict[tuple[str, str, str], LonLat]
    blocks: dict[tuple[str, str], LonLat]
    towns: dict[str, LonLat]
    town_keys: frozenset[str]

    @classmethod
    def load(cls, municipality_id: int) -> ReferenceIndex:
        residences: dict[tuple[str, str, str], LonLat] = {}
        blocks: dict[tuple[str, str], LonLat] = {}
        towns: dict[str, LonLat] = {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT level, town, block, residence, ST_X(location), ST_Y(location) "
                "FROM addresses_addressreference WHERE municipality_id = %s",
                [municipality_id],
            )
            for level, town, block, residence, lon, lat in cursor.fetchall():
                if level == ReferenceLevel.RESIDENCE:
                    residences[(town, block, residence)] = (lon, lat)
                elif level == ReferenceLevel.BLOCK:
                    blocks[(town, block)] = (lon, lat)
                else:
                    towns[town] = (lon, lat)
        keys = frozenset(towns) | {t for t, _b in blocks} | {t for t, _b, _r in residences}
        return cls(residences=residences, blocks=blocks, towns=towns, town_keys=keys)

    def match(self, address: NormalizedAddress) -> tuple[str, LonLat | None]:
        """The finest level the address matches, and its point."""
        if address.residence:
            point = self.residences.get((address.town, address.block, address.residence))
            if point is not None:
                return MatchLevel.RESIDENCE, point
        if address.block:
            point = self.blocks.get((address.town, address.block))
            if point is not None:
                return MatchLevel.BLOCK, point
        point = self.towns.get(address.town)
        if point is not None:
            return MatchLevel.TOWN, point
        return MatchLevel.UNMATCHED, None


def _ewkt(point: LonLat | None) -> str | None:
    # repr(): the shortest exact form of the double, so PostGIS stores the reference's own value and
    # the next run compares equal.
    return None if point is None else f"SRID=4326;POINT({point[0]!r} {point[1]!r})"


@dataclass(frozen=True)
class AddressPlacement:
    level: str  # a MatchLevel: residence, block, town or unmatched
    point: LonLat | None
    normalized: str

    def ewkt(self) -> str | None:
        return _ewkt(self.point)


def placements_for(*, municipality: Municipality, addresses: Iterable[str]) -> dict[str, AddressPlacement]:
    """Where each address falls by the municipality's reference (the reference is read once). For
    an importer that wants to write new households with their point in the same INSERT, instead of
    inserting them without one and letting `place_households` update them right after."""
    index = ReferenceIndex.load(municipality.pk)
    found: dict[str, AddressPlacement] = {}
    for address in addresses:
        if address not in found:
            parsed = normalize_address(address, prefecture=municipality.prefecture, name=municipality.name,
                                       towns=index.town_keys)
            level, point = index.match(parsed)
            found[address] = AddressPlacement(level=level, point=point, normalized=parsed.canonical)
    return found


def place_households(*, municipality_id: int, progress: Callable[[str], None] | None = None) -> PlacementResult:
    municipality = Municipality.objects.get(pk=municipality_id)
    index = ReferenceIndex.load(municipality_id)
    result = PlacementResult(placed=dict.fromkeys(MatchLevel.values, 0))
    staged: list[tuple[object, ...]] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, address, match_level, address_normalized, ST_X(location), ST_Y(location) "
            "FROM neighborhoods_household WHERE municipality_id = %s AND merged_into_id IS NULL",
            [municipality_id],
        )
        households = cursor.fetchall()
    result.considered = len(households)
    for done, (hid, address, level, normalized, x, y) in enumerate(households, start=1):
        current: LonLat | None = None if x is None else (x, y)
        parsed = normalize_address(address, prefecture=municipality.prefecture, name=municipality.name,
                                   towns=index.town_keys)
        canonical = parsed.canonical
        new_level, new_point = level, current
        moved_away = level == MatchLevel.MANUAL and normalized and normalized != canonical
        if level in _MATCHED or current is None or moved_away:
            new_level, new_point = index.match(parsed)
        elif level not in _GIVEN:  # a level this module does not know: leave it
            new_level = level
        if (new_level, new_point) != (level, current):
            result.changed[new_level] = result.changed.get(new_level, 0) + 1
            staged.append((hid, _ewkt(new_point), new_level, canonical))
        elif canonical != normalized:
            result.normalized_only += 1
            staged.append((hid, _ewkt(new_point), new_level, canonical))
        result.placed[new_level] = result.placed.get(new_level, 0) + 1
        if new_point is None:
            result.unmatched += 1
        if progress and done % PROGRESS_EVERY == 0:
            progress(f"placing households: {done}/{len(households)} read")
    if staged:
        _write(municipality_id, staged)
    if progress:
        levels = ", ".join(f"{level} {n}" for level, n in result.placed.items() if n)
        progress(f"placement: {len(staged)} households written ({levels}; {result.unmatched} without a point)")
    return result


def _write(municipality_id: int, staged: list[tuple[object, ...]]) -> None:
    with transaction.atomic(), pghistory.context(step="place_households"), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_STAGING}")
        cursor.execute(
            f"CREATE TEMP TABLE {_STAGING_NAME} ON COMMIT DROP AS "  # noqa: S608
            "SELECT id, location, match_level, address_normalized FROM neighborhoods_household WITH NO DATA"
        )
        with cursor.copy(f"COPY {_STAGING} (id, location, match_level, address_normalized) FROM STDIN") as copy:
            for row in staged:
                copy.write_row(row)
        cursor.execute(_UPDATE_SQL, {"municipality": municipality_id})
        cursor.execute(f"DROP TABLE {_STAGING}")
