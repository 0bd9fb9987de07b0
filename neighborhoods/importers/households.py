"""Import households (世帯), residents (世帯員) and community resources (社会資源) from the CSV files
that municipal systems export.

Three layers, used by the management commands `import_households` and `import_resources`:

- reading: bytes -> text (UTF-8 with or without BOM, or CP932 as Japanese systems write it) ->
  rows that know their line number;
- validation: every row is checked and every problem is collected as `file:line: column: message`,
  so an operator fixes the whole file in one go instead of one error per run;
- writing: valid rows are streamed with COPY into a temporary table and merged set-based (one
  UPDATE of what changed, one INSERT of what is new) per batch, then `assign_households` puts each
  household in its 自治会. Everything happens in one transaction: all or nothing.

An import never deletes: households or residents missing from the file are left as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pghistory
from django.contrib.gis.gdal import CoordTransform, GDALException, SpatialReference
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.db.models import Model, UUIDField
from django.utils import timezone

from backend.csv_input import (  # noqa: F401  (ENCODINGS, format_problems: the commands' names)
    ENCODINGS,
    MAX_SHOWN_ERRORS,
    CsvFile,
    ImportFailed,
    Problems,
    RowReader,
    format_problems,
    read_csv,
)
from backend.errors import InvalidInput, NotFound
from neighborhoods.models import (
    AgeBand,
    CommunityResource,
    Household,
    HouseholdStatus,
    LivingArrangement,
    Municipality,
    Relation,
    Resident,
    ResidentFlag,
    ResourceType,
    RiskFlag,
    Weekday,
)
from neighborhoods.services import AssignmentResult, assign_households

WGS84 = 4326
BATCH_SIZE = 2000
MAX_SHOWN_UNASSIGNED = 20

Progress = Callable[[str], None]

# The allowed values, read once: TextChoices.values builds a new list on every access, which
# shows up when it is asked for 50,000 times.
STATUSES = tuple(HouseholdStatus.values)
ARRANGEMENTS = tuple(LivingArrangement.values)
RISK_FLAGS = tuple(RiskFlag.values)
AGE_BANDS = tuple(AgeBand.values)
RELATIONS = tuple(Relation.values)
RESIDENT_FLAGS = tuple(ResidentFlag.values)
RESOURCE_TYPES = tuple(ResourceType.values)
WEEKDAYS = tuple(Weekday.values)


def _max_length(model: type[Model], name: str) -> int:
    return model._meta.get_field(name).max_length  # type: ignore[union-attr,return-value]


# ---------------------------------------------------------------------------------------------
# Locations


@dataclass(frozen=True)
class Coordinates:
    """Which columns hold a row's location and in which reference system. `x` is always the
    easting / longitude and `y` the northing / latitude (GIS order). Careful: in Japanese surveying
    (公共測量) the "X座標" of the plane rectangular systems is the *northing*; for such files pass
    `--x-field Y --y-field X`."""

    x_field: str = "lon"
    y_field: str = "lat"
    srid: int = WGS84
    explicit: bool = False  # named by the operator: then the file must have these columns

    @classmethod
    def from_options(
        cls, *, lat_field: str | None = None, lon_field: str | None = None,
        x_field: str | None = None, y_field: str | None = None, srid: int = WGS84,
    ) -> Coordinates:
        latlon = lat_field is not None or lon_field is not None
        xy = x_field is not None or y_field is not None
        if latlon and xy:
            raise InvalidInput("Give either --lat-field/--lon-field or --x-field/--y-field, not both.")
        if latlon and srid != WGS84:
            raise InvalidInput(f"lat/lon are WGS84 (EPSG:4326); for EPSG:{srid} use --x-field and --y-field.")
        if xy or srid != WGS84:
            return cls(x_field=(x_field or "x").lower(), y_field=(y_field or "y").lower(), srid=srid, explicit=True)
        return cls(x_field=(lon_field or "lon").lower(), y_field=(lat_field or "lat").lower(), explicit=latlon)

    @property
    def columns(self) -> tuple[str, str]:
        return (self.x_field, self.y_field)

    def transform(self) -> CoordTransform | None:
        if self.srid == WGS84:
            return None
        try:
            # Django builds spatial references in traditional GIS axis order (x = lon / easting),
            # whatever order the EPSG definition states, so no axis swapping is needed here.
            return CoordTransform(SpatialReference(self.srid), SpatialReference(WGS84))
        except GDALException as exc:
            raise InvalidInput(f"EPSG:{self.srid} is not a known spatial reference system.") from exc


class LonLat(NamedTuple):
    """A point in WGS84 (EPSG:4326), longitude first."""

    lon: float
    lat: float

    def ewkt(self) -> str:
        # repr() of a float is its shortest exact form, so PostGIS reads back the same double and
        # an unchanged file compares equal on re-import.
        return f"SRID={WGS84};POINT({self.lon!r} {self.lat!r})"


def _location(row: RowReader, coords: Coordinates, transform: CoordTransform | None, *, required: bool) -> LonLat | None:
    """The row's point in WGS84, or None when both coordinates are blank."""
    x, y = row.number(coords.x_field), row.number(coords.y_field)
    if {coords.x_field, coords.y_field} & row.failed:
        return None
    if x is None or y is None:
        if x is None and y is None and not required:
            return None
        for column, value in ((coords.x_field, x), (coords.y_field, y)):
            if value is None:
                row.error(column, "is required" if required else "is missing (the other coordinate is given)")
        return None
    if transform is None:
        return _in_range(row, LonLat(x, y), coords)
    point = Point(x, y, srid=coords.srid)
    try:
        point.transform(transform)
    except GDALException:
        row.error(f"{coords.x_field}/{coords.y_field}", f"({x}, {y}) cannot be transformed from EPSG:{coords.srid}")
        return None
    return _in_range(row, LonLat(point.x, point.y), coords)


def _in_range(row: RowReader, point: LonLat, coords: Coordinates) -> LonLat | None:
    ok = True
    if not -90 <= point.lat <= 90:
        row.error(coords.y_field, f"{point.lat:g} is out of range (latitude -90..90)")
        ok = False
    if not -180 <= point.lon <= 180:
        row.error(coords.x_field, f"{point.lon:g} is out of range (longitude -180..180)")
        ok = False
    return point if ok else None


def _ewkt(point: LonLat | None) -> str | None:
    return None if point is None else point.ewkt()


# ---------------------------------------------------------------------------------------------
# Households


HOUSEHOLD_REQUIRED = ("external_id", "address")
HOUSEHOLD_COLUMNS = ("address", "address_kana", "location", "status", "living_arrangement", "risk_flags")


@dataclass(frozen=True)
class HouseholdRow:
    line: int
    external_id: str
    address: str
    address_kana: str
    location: LonLat | None
    status: str
    living_arrangement: str
    risk_flags: list[str]

    def values(self) -> tuple[object, ...]:
        """In the order of `_HOUSEHOLDS.key + _HOUSEHOLDS.columns`."""
        return (
            self.external_id, self.address, self.address_kana, _ewkt(self.location),
            self.status, self.living_arrangement, self.risk_flags,
        )


@dataclass
class ValidatedHouseholds:
    rows: list[HouseholdRow]
    problems: Problems
    rejected: dict[str, int]  # external_id -> line, for rows that were not valid


def validate_households(file: CsvFile, coords: Coordinates) -> ValidatedHouseholds:
    problems = Problems(file.name)
    result = ValidatedHouseholds(rows=[], problems=problems, rejected={})
    first_line: dict[str, int] = {}
    transform = coords.transform()
    for raw in file.rows:
        row = RowReader(raw, problems)
        external_id = row.text("external_id", max_length=_max_length(Household, "external_id"), required=True)
        if external_id in first_line:
            row.error("external_id", f"{external_id!r} is already on line {first_line[external_id]}")
        elif external_id:
            first_line[external_id] = raw.line
        household = HouseholdRow(
            line=raw.line,
            external_id=external_id,
            address=row.text("address", max_length=_max_length(Household, "address"), required=True),
            address_kana=row.text("address_kana", max_length=_max_length(Household, "address_kana")),
            location=_location(row, coords, transform, required=False),
            status=row.choice("status", STATUSES, default=HouseholdStatus.OCCUPIED),
            living_arrangement=row.choice("living_arrangement", ARRANGEMENTS),
            risk_flags=row.choices("risk_flags", RISK_FLAGS),
        )
        if row.ok:
            result.rows.append(household)
        elif external_id:
            result.rejected.setdefault(external_id, raw.line)
    return result


# ---------------------------------------------------------------------------------------------
# Residents


RESIDENT_REQUIRED = ("household_external_id", "name")
RESIDENT_COLUMNS = ("kana", "birth_year", "age_band", "relation", "flags")
OLDEST_BIRTH_YEAR = 1890  # as the model's resident_birth_year_plausible constraint


@dataclass(frozen=True)
class ResidentRow:
    line: int
    household_external_id: str
    name: str
    kana: str
    birth_year: int | None
    age_band: str
    relation: str
    flags: list[str]

    @property
    def data(self) -> tuple[object, ...]:
        """The values of RESIDENT_COLUMNS."""
        return (self.kana, self.birth_year, self.age_band, self.relation, self.flags)

    def values(self, resident_id: uuid.UUID, household_id: uuid.UUID) -> tuple[object, ...]:
        """In the order of `_RESIDENTS.key + _RESIDENTS.columns`."""
        return (resident_id, household_id, self.name, *self.data)


def age_band_for(birth_year: int | None, year: int) -> str:
    """The band of the age reached in `year` (only the birth year is known, not the day)."""
    if birth_year is None:
        return ""
    age = year - birth_year
    for upper, band in ((18, AgeBand.UNDER_18), (40, AgeBand.AGE_18_39), (65, AgeBand.AGE_40_64), (75, AgeBand.AGE_65_74)):
        if age < upper:
            return band.value
    return AgeBand.AGE_75_PLUS.value


def validate_residents(file: CsvFile, households: ValidatedHouseholds, existing: set[str]) -> tuple[list[ResidentRow], Problems]:
    """`existing`: external ids of the municipality's households already in the database."""
    problems = Problems(file.name)
    this_year = timezone.localdate().year
    in_file = {h.external_id for h in households.rows}
    rows: list[ResidentRow] = []
    for raw in file.rows:
        row = RowReader(raw, problems)
        household = row.text("household_external_id", max_length=_max_length(Household, "external_id"), required=True)
        if household and household not in in_file and household not in existing:
            skipped = households.rejected.get(household)
            where = f"its row was rejected ({households.problems.name}:{skipped})" if skipped else "no such household"
            row.error("household_external_id", f"{household!r}: {where}")
        # No uniqueness check on (household, name): registers do hold two people of one name in a
        # household (the demo file has such rows); _pair_residents matches them one to one.
        name = row.text("name", max_length=_max_length(Resident, "name"), required=True)
        birth_year = row.integer("birth_year", low=OLDEST_BIRTH_YEAR, high=this_year)
        resident = ResidentRow(
            line=raw.line,
            household_external_id=household,
            name=name,
            kana=row.text("kana", max_length=_max_length(Resident, "kana")),
            birth_year=birth_year,
            # An explicit age_band column wins; otherwise it is derived so that filters by age work.
            age_band=row.choice("age_band", AGE_BANDS) or age_band_for(birth_year, this_year),
            relation=row.choice("relation", RELATIONS, default=Relation.OTHER),
            flags=row.choices("flags", RESIDENT_FLAGS),
        )
        if row.ok:
            rows.append(resident)
    return rows, problems


@dataclass(frozen=True)
class _Existing:
    id: uuid.UUID
    birth_year: int | None
    data: tuple[object, ...]


def _pair_residents(rows: Sequence[ResidentRow], household_ids: dict[str, uuid.UUID],
                    municipality: Municipality) -> tuple[list[tuple[object, ...]], int]:
    """The staging rows for `rows`, each with the id of the resident it updates (or a new id),
    and how many names occur more than once within one household.

    A resident is the same person when household and name match. Where a name occurs more than
    once in a household, identical records are paired first (so an unchanged file changes
    nothing, whatever its order), then the same birth year (a corrected relation or flags), then
    in order of birth (a corrected birth year)."""
    existing: dict[tuple[uuid.UUID, str], list[_Existing]] = {}
    fields = ("id", "household_id", "name", "birth_year", *RESIDENT_COLUMNS)
    query = Resident.objects.filter(municipality=municipality).order_by("household_id", "name", "birth_year", "created_at", "id")
    for rid, hid, name, birth_year, *data in query.values_list(*fields):
        existing.setdefault((hid, name), []).append(_Existing(rid, birth_year, tuple(data)))
    incoming: dict[tuple[uuid.UUID, str], list[ResidentRow]] = {}
    for row in rows:
        incoming.setdefault((household_ids[row.household_external_id], row.name), []).append(row)
    staged: list[tuple[object, ...]] = []
    for (hid, name), group in incoming.items():
        ids = _pair(group, existing.get((hid, name), []))
        staged.extend(row.values(rid, hid) for row, rid in zip(group, ids, strict=True))
    return staged, sum(1 for group in incoming.values() if len(group) > 1)


def _pair(group: Sequence[ResidentRow], candidates: Sequence[_Existing]) -> list[uuid.UUID]:
    if len(group) == 1 and len(candidates) == 1:  # by far the usual case: one person of that name
        return [candidates[0].id]
    free = list(candidates)
    ids: list[uuid.UUID | None] = [None] * len(group)
    rules: tuple[Callable[[ResidentRow, _Existing], bool], ...] = (
        lambda row, old: row.data == old.data,
        lambda row, old: row.birth_year == old.birth_year,
        lambda row, old: True,
    )
    for same in rules:
        for i, row in enumerate(group):
            match = next((old for old in free if same(row, old)), None) if ids[i] is None else None
            if match is not None:
                ids[i] = match.id
                free.remove(match)
    return [i or uuid.uuid4() for i in ids]


# ---------------------------------------------------------------------------------------------
# Community resources


RESOURCE_REQUIRED = ("name", "type", "lat", "lon")


@dataclass(frozen=True)
class ResourceRow:
    line: int
    name: str
    type: str
    location: LonLat | None
    opening_days: list[str]

    def values(self) -> tuple[object, ...]:
        return (self.name, self.type, _ewkt(self.location), self.opening_days)


def validate_resources(file: CsvFile) -> tuple[list[ResourceRow], Problems]:
    problems = Problems(file.name)
    first_line: dict[str, int] = {}
    rows: list[ResourceRow] = []
    for raw in file.rows:
        row = RowReader(raw, problems)
        name = row.text("name", max_length=_max_length(CommunityResource, "name"), required=True)
        if name in first_line:
            row.error("name", f"{name!r} is already on line {first_line[name]}")
        elif name:
            first_line[name] = raw.line
        resource = ResourceRow(
            line=raw.line,
            name=name,
            type=row.choice("type", RESOURCE_TYPES, required=True),
            location=_location(row, Coordinates(), None, required=True),
            opening_days=row.choices("opening_days", WEEKDAYS),
        )
        if row.ok:
            rows.append(resource)
    return rows, problems


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True)
class _Table:
    """How one model is merged: rows are matched on `municipality_id` + `key`; `columns` are the
    ones the file owns (anything else, e.g. a household's 自治会, is left alone). `versioned`
    models get `version + 1` on every real change, as services.update_household does."""

    model: type[Model]
    key: tuple[str, ...]
    columns: tuple[str, ...]
    versioned: bool = False

    @property
    def name(self) -> str:
        return self.model._meta.db_table

    def on_change(self) -> dict[str, str]:
        """column -> SQL expression, set only on rows that really changed."""
        exprs = {
            f.column: "now()" for f in self.model._meta.concrete_fields
            if f.column is not None and getattr(f, "auto_now", False)  # a concrete field has a column
        }
        if self.versioned:
            exprs["version"] = "t.version + 1"
        return exprs

    def on_insert(self) -> tuple[dict[str, str], dict[str, Any]]:
        """column -> SQL expression for the columns the file does not give, and their parameters.
        Raw SQL skips Django's Python-side defaults, so they are read off the model here: a field
        added later with a default keeps working without touching this module."""
        given = {"municipality_id", *self.key, *self.columns}
        exprs: dict[str, str] = {}
        params: dict[str, Any] = {}  # values as get_db_prep_save gives them to the driver
        for f in self.model._meta.concrete_fields:
            if f.column is None or f.column in given:  # (a concrete field has a column)
                continue
            if f.primary_key:
                if isinstance(f, UUIDField):
                    exprs[f.column] = "gen_random_uuid()"
                continue  # an identity column numbers itself
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                exprs[f.column] = "now()"
            elif f.has_default() or not f.null:
                value = f.get_default()  # "" for a blank text field without a default
                if value is None:
                    continue  # nullable, or a database default: the database decides
                params[f"default_{f.column}"] = f.get_db_prep_save(value, connection)
                exprs[f.column] = f"CAST(%(default_{f.column})s AS {f.db_type(connection)})"
        return exprs, params


_HOUSEHOLDS = _Table(Household, key=("external_id",), columns=HOUSEHOLD_COLUMNS, versioned=True)
# Residents are matched in Python (see _pair_residents), so they are merged on their id.
_RESIDENTS = _Table(Resident, key=("id",), columns=("household_id", "name", *RESIDENT_COLUMNS), versioned=True)
_RESOURCES = _Table(CommunityResource, key=("name",), columns=("type", "location", "opening_days"))

_STAGING_NAME = "tsunagu_import_rows"
_STAGING = f"pg_temp.{_STAGING_NAME}"  # qualified, so a real table of that name is never touched

# Table and column names below come from the _Table constants above, never from the file; values
# travel as COPY data or bound parameters.
_UPDATE_SQL = """
UPDATE {table} AS t SET {assignments}
  FROM {staging} AS s
 WHERE t.municipality_id = %(municipality)s AND {match}
   AND ({target}) IS DISTINCT FROM ({source})
"""
_INSERT_SQL = """
INSERT INTO {table} (municipality_id, {columns})
SELECT %(municipality)s, {values}
  FROM {staging} AS s
 WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE t.municipality_id = %(municipality)s AND {match})
"""


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped"


def _merge(table: _Table, municipality_id: int, rows: Sequence[tuple[object, ...]], *,
           label: str, progress: Progress | None) -> Counts:
    """Stage `rows` (key + columns, in order) with COPY and merge them batch by batch: one UPDATE
    of the rows that differ, one INSERT of the rows that are new. Unchanged rows are not touched,
    so their version, updated_at and history stay as they were."""
    counts = Counts()
    fields = (*table.key, *table.columns)
    match = " AND ".join(f"t.{k} = s.{k}" for k in table.key)
    update = _UPDATE_SQL.format(
        table=table.name, staging=_STAGING, match=match,
        assignments=", ".join([*(f"{c} = s.{c}" for c in table.columns), *(f"{c} = {e}" for c, e in table.on_change().items())]),
        target=", ".join(f"t.{c}" for c in table.columns), source=", ".join(f"s.{c}" for c in table.columns),
    )
    defaults, default_params = table.on_insert()
    insert = _INSERT_SQL.format(
        table=table.name, staging=_STAGING, match=match,
        columns=", ".join([*fields, *defaults]),
        values=", ".join([*(f"s.{c}" for c in fields), *defaults.values()]),
    )
    params = {"municipality": municipality_id, **default_params}
    with connection.cursor() as cursor:
        # The staging table copies the target's column types (geometry(Point,4326), varchar[] …),
        # so the comparison and the insert need no casts. Dropped first because pytest (or a caller)
        # may run two imports inside one outer transaction.
        cursor.execute(f"DROP TABLE IF EXISTS {_STAGING}")
        cursor.execute(
            f"CREATE TEMP TABLE {_STAGING_NAME} ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {', '.join(fields)} FROM {table.name} WITH NO DATA"
        )
        for start in range(0, len(rows), BATCH_SIZE):
            batch = rows[start : start + BATCH_SIZE]
            cursor.execute(f"TRUNCATE {_STAGING}")
            with cursor.copy(f"COPY {_STAGING} ({', '.join(fields)}) FROM STDIN") as copy:
                for values in batch:
                    copy.write_row(values)
            cursor.execute(update, dict(params))
            counts.updated += cursor.rowcount
            cursor.execute(insert, dict(params))
            counts.created += cursor.rowcount
            if progress:
                progress(f"{label}: {start + len(batch)}/{len(rows)} written")
        cursor.execute(f"DROP TABLE {_STAGING}")
    counts.unchanged = len(rows) - counts.created - counts.updated
    return counts


def _lock(municipality_id: int) -> None:
    """Serialise imports of one municipality (the NOT EXISTS inserts assume nobody else inserts
    the same keys meanwhile). An advisory lock, not SELECT … FOR UPDATE on the municipality:
    that would block every insert referencing it (FK checks) for the duration of the import."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, municipality_id])


_LOCK_CLASS = 0x7473  # "ts": keeps these advisory locks apart from any other use of them


# ---------------------------------------------------------------------------------------------
# The two imports


def municipality_by_code(code: str) -> Municipality:
    try:
        return Municipality.objects.get(code=code)
    except Municipality.DoesNotExist as exc:
        raise NotFound(f"No municipality with code {code!r}.") from exc


@dataclass
class HouseholdImport:
    file: str
    encoding: str
    rows_read: int
    households: Counts
    residents: Counts | None
    residents_file: str | None
    skipped: list[str]  # the problems of the rows left out with skip_invalid
    assignment: AssignmentResult
    unassigned: list[tuple[str, str]] = field(default_factory=list)  # first (external_id, address)
    repeated_names: int = 0  # (household, name) pairs the residents file lists more than once
    dry_run: bool = False


@dataclass
class _Plan:
    """Everything read and validated, before the database is written."""

    households: ValidatedHouseholds
    residents: list[ResidentRow] = field(default_factory=list)
    resident_problems: Problems | None = None

    @property
    def problems(self) -> list[str]:
        return [*self.households.problems.messages, *(self.resident_problems.messages if self.resident_problems else [])]


def import_households(
    *, municipality: Municipality, path: str | Path, residents_path: str | Path | None = None,
    encoding: str = "auto", coords: Coordinates | None = None, skip_invalid: bool = False,
    dry_run: bool = False, progress: Progress | None = None,
) -> HouseholdImport:
    """Upsert the households (and residents) of the files, then assign 自治会. All or nothing:
    with any invalid row, ImportFailed lists every problem and nothing is written, unless
    `skip_invalid`, which writes the valid rows and reports the others."""
    coords = coords or Coordinates()
    # Locations are optional, so the lat/lon columns may be absent, unless the operator named them.
    required = (*HOUSEHOLD_REQUIRED, *(coords.columns if coords.explicit else ()))
    file = read_csv(path, encoding=encoding, required=required)
    if progress:
        progress(f"{file.name}: {len(file.rows)} rows read ({file.encoding})")
    plan = _Plan(households=validate_households(file, coords))
    residents_file = read_csv(residents_path, encoding=encoding, required=RESIDENT_REQUIRED) if residents_path else None
    if residents_file and progress:
        progress(f"{residents_file.name}: {len(residents_file.rows)} rows read ({residents_file.encoding})")
    with transaction.atomic(), pghistory.context(command="import_households", file=file.name):
        _lock(municipality.pk)
        if residents_file is not None:
            existing = set(Household.objects.filter(municipality=municipality).values_list("external_id", flat=True))
            plan.residents, plan.resident_problems = validate_residents(residents_file, plan.households, existing)
        if plan.problems and not skip_invalid:
            raise ImportFailed(plan.problems)
        report = _write_households(municipality, file, plan, progress)
        report.residents_file = residents_file.name if residents_file else None
        report.dry_run = dry_run
        if dry_run:  # the report above is what a real run would do; now undo it
            transaction.set_rollback(True)
    return report


def _write_households(municipality: Municipality, file: CsvFile, plan: _Plan, progress: Progress | None) -> HouseholdImport:
    households = _merge(_HOUSEHOLDS, municipality.pk, [h.values() for h in plan.households.rows],
                        label="households", progress=progress)
    households.skipped = len(plan.households.problems.lines)
    residents: Counts | None = None
    same_names = 0
    if plan.resident_problems is not None:
        ids = dict(Household.objects.filter(municipality=municipality).values_list("external_id", "id"))
        staged, same_names = _pair_residents(plan.residents, ids, municipality)
        residents = _merge(_RESIDENTS, municipality.pk, staged, label="residents", progress=progress)
        residents.skipped = len(plan.resident_problems.lines)
    assignment = assign_households(municipality_id=municipality.pk)
    unassigned = Household.objects.filter(municipality=municipality, neighborhood__isnull=True).order_by("external_id")
    return HouseholdImport(
        file=file.name, encoding=file.encoding, rows_read=len(file.rows), households=households, residents=residents,
        residents_file=None, skipped=plan.problems, assignment=assignment, repeated_names=same_names,
        unassigned=list(unassigned.values_list("external_id", "address")[:MAX_SHOWN_UNASSIGNED]),
    )


@dataclass
class ResourceImport:
    file: str
    encoding: str
    resources: Counts
    assignment: AssignmentResult
    unassigned: int  # resources in no 自治会
    unassigned_names: list[str]  # the first of them
    dry_run: bool = False


def import_resources(*, municipality: Municipality, path: str | Path, encoding: str = "auto",
                     dry_run: bool = False) -> ResourceImport:
    """Upsert community resources by name, then assign 自治会 (which also places the resources).
    All or nothing, like import_households."""
    file = read_csv(path, encoding=encoding, required=RESOURCE_REQUIRED)
    rows, problems = validate_resources(file)
    if problems:
        raise ImportFailed(problems.messages)
    with transaction.atomic(), pghistory.context(command="import_resources", file=file.name):
        _lock(municipality.pk)
        counts = _merge(_RESOURCES, municipality.pk, [r.values() for r in rows], label="resources", progress=None)
        assignment = assign_households(municipality_id=municipality.pk)
        unassigned = CommunityResource.objects.filter(municipality=municipality, neighborhood__isnull=True)
        report = ResourceImport(
            file=file.name, encoding=file.encoding, resources=counts, assignment=assignment,
            unassigned=unassigned.count(), dry_run=dry_run,
            unassigned_names=list(unassigned.order_by("name").values_list("name", flat=True)[:MAX_SHOWN_UNASSIGNED]),
        )
        if dry_run:  # the report above is what a real run would do; now undo it
            transaction.set_rollback(True)
    return report
