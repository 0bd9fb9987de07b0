"""Writes of the addresses app: loading the reference points of a municipality, and placing one
household by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pghistory
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.db.models import F

from addresses.models import AddressReference, ReferenceLevel
from addresses.normalize import normalize_address
from addresses.reference import Progress, ReadResult, read_reference
from backend.errors import InvalidInput
from backend.versioning import lock_at_version
from neighborhoods.models import Household, MatchLevel, Municipality
from neighborhoods.services import check_inside_municipality, neighborhood_at, refuse_merged

_STAGING_NAME = "tsunagu_address_reference_rows"
_STAGING = f"pg_temp.{_STAGING_NAME}"
_STAGED_COLUMNS = ("level", "town", "block", "residence", "location", "source", "label")

# One statement: new keys are inserted; a key whose point, source or label changed is updated; an
# unchanged one is not touched (no new row version, updated_at kept). RETURNING tells which.
_UPSERT_SQL = """
INSERT INTO addresses_addressreference AS t
       (municipality_id, level, town, block, residence, location, source, label, created_at, updated_at)
SELECT %(municipality)s, s.level, s.town, s.block, s.residence, s.location, s.source, s.label, now(), now()
  FROM pg_temp.tsunagu_address_reference_rows AS s
ON CONFLICT (municipality_id, level, town, block, residence) DO UPDATE
   SET location = EXCLUDED.location, source = EXCLUDED.source, label = EXCLUDED.label, updated_at = now()
 WHERE (t.location, t.source, t.label) IS DISTINCT FROM (EXCLUDED.location, EXCLUDED.source, EXCLUDED.label)
RETURNING t.level, (t.xmax = 0) AS created
"""


@dataclass
class LevelCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class ReferenceImport:
    read: ReadResult
    levels: dict[str, LevelCounts] = field(default_factory=dict)
    dry_run: bool = False


def load_reference(*, municipality: Municipality, paths: Sequence[str | Path], dry_run: bool = False,
                   progress: Progress | None = None) -> ReferenceImport:
    """Read the files and upsert the municipality's reference points, all or nothing (ImportFailed
    lists every problem, nothing is written). Never deletes: a point missing from the files stays."""
    read = read_reference(municipality=municipality, paths=[Path(p) for p in paths], progress=progress)
    report = ReferenceImport(read=read, dry_run=dry_run, levels={level: LevelCounts() for level in ReferenceLevel.values})
    with transaction.atomic(), pghistory.context(command="import_address_reference"):
        staged: dict[str, int] = dict.fromkeys(ReferenceLevel.values, 0)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_STAGING}")
            cursor.execute(
                f"CREATE TEMP TABLE {_STAGING_NAME} ON COMMIT DROP AS "  # noqa: S608
                f"SELECT {', '.join(_STAGED_COLUMNS)} FROM addresses_addressreference WITH NO DATA"
            )
            with cursor.copy(f"COPY {_STAGING} ({', '.join(_STAGED_COLUMNS)}) FROM STDIN") as copy:
                for point in read.points:
                    copy.write_row(point.values())
                    staged[point.level] += 1
            cursor.execute(_UPSERT_SQL, {"municipality": municipality.pk})
            for level, created in cursor.fetchall():
                counts = report.levels[level]
                if created:
                    counts.created += 1
                else:
                    counts.updated += 1
            cursor.execute(f"DROP TABLE {_STAGING}")
        for level, counts in report.levels.items():
            counts.unchanged = staged[level] - counts.created - counts.updated
        if progress:
            progress(f"reference points written: {len(read.points)} staged")
        if dry_run:
            transaction.set_rollback(True)
    return report


def reference_towns(municipality_id: int) -> frozenset[str]:
    """The town keys of the municipality's reference (what the normaliser needs to read 3-5-12)."""
    return frozenset(AddressReference.objects.filter(municipality_id=municipality_id).values_list("town", flat=True).distinct())


@dataclass(frozen=True)
class ManualPlacement:
    household: Household
    before: dict  # what the audit event records as the previous state
    changed: bool = True


# A point a person places must lie in Japan (with its outlying islands); the schema states the box.
JAPAN_LON = (122.0, 154.0)
JAPAN_LAT = (20.0, 46.0)


@transaction.atomic
def place_household_by_hand(*, household: Household, lon: float, lat: float, base_version: int) -> ManualPlacement:
    """Set a household's point by hand (match level `manual`), put it in the 自治会 that covers the
    point, raise its version (a stale `base_version` is 409). Placing it where it already is, by
    hand, changes nothing."""
    if not (JAPAN_LON[0] <= lon <= JAPAN_LON[1]):
        raise InvalidInput(f"lon: {lon} is not a longitude in Japan ({JAPAN_LON[0]:g}..{JAPAN_LON[1]:g})",
                           details=[{"loc": ["body", "lon"], "msg": "not a longitude in Japan"}])
    if not (JAPAN_LAT[0] <= lat <= JAPAN_LAT[1]):
        raise InvalidInput(f"lat: {lat} is not a latitude in Japan ({JAPAN_LAT[0]:g}..{JAPAN_LAT[1]:g})",
                           details=[{"loc": ["body", "lat"], "msg": "not a latitude in Japan"}])
    locked = lock_at_version(Household, household.pk, base_version, "household")
    refuse_merged(locked)
    point = Point(lon, lat, srid=4326)
    try:
        check_inside_municipality(municipality_id=locked.municipality_id, point=point)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, code=exc.code,
                           details=[{"loc": ["body", "lon"], "msg": "outside the municipality"}]) from exc
    before = {
        "match_level": locked.match_level,
        "location": [locked.location.x, locked.location.y] if locked.location else None,
        "neighborhood_id": locked.neighborhood_id,
    }
    if locked.match_level == MatchLevel.MANUAL and locked.location is not None and locked.location.equals_exact(point, 0):
        return ManualPlacement(household=locked, before=before, changed=False)
    municipality = locked.municipality
    locked.location = point
    locked.match_level = MatchLevel.MANUAL
    locked.address_normalized = normalize_address(
        locked.address, prefecture=municipality.prefecture, name=municipality.name,
        towns=reference_towns(municipality.pk),
    ).canonical
    # The same rule as neighborhoods.services.assign_households (lowest code on a shared edge), in
    # the same save, so the version goes up once.
    locked.neighborhood = neighborhood_at(municipality_id=locked.municipality_id, point=point)
    locked.version = F("version") + 1
    with pghistory.context(action="place_household_by_hand"):
        locked.save(update_fields=["location", "match_level", "address_normalized", "neighborhood", "version", "updated_at"])
    locked.refresh_from_db()
    return ManualPlacement(household=locked, before=before)
