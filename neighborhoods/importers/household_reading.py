"""Reading household lists: mapped CSV rows -> normalised, validated households and residents.

Nothing here touches the database; every problem is collected as `file:line: column: message`
(the column as the file spells it), so an operator fixes a whole file in one go.

Two shapes of household file are read:

- one row per household (`世帯番号,住所,緯度,経度,世帯人数`), residents optionally in a second file;
- one row per person, as a 住民基本台帳 extract gives it (`世帯番号,氏名,カナ,生年月日,続柄,住所,方書`):
  a file with a name column. Rows are grouped by 世帯番号; the household's fields come from its
  世帯主 row (else its first row), each row is a resident, and a second address within one 世帯番号
  is an error on the later line.

Residents keep the birth *year* (and the age band derived from it), never the day: the day is not
needed to find people who need support, and a year identifies no one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.gis.gdal import CoordTransform
from django.db.models import Model
from django.utils import timezone

from addresses.normalize import other_municipality
from backend import japanese
from backend.csv_input import CsvRow, Problems, RowReader
from backend.text import text_problem
from neighborhoods.importers.columns import MappedFile
from neighborhoods.importers.locations import Coordinates, LonLat, ewkt, read_location
from neighborhoods.models import (
    AgeBand,
    Household,
    HouseholdStatus,
    LivingArrangement,
    MatchLevel,
    Municipality,
    Relation,
    Resident,
    ResidentFlag,
    RiskFlag,
)

# The allowed values, read once: TextChoices.values builds a new list on every access, which
# shows up when it is asked for 100,000 times.
STATUSES = tuple(HouseholdStatus.values)
ARRANGEMENTS = tuple(LivingArrangement.values)
RISK_FLAGS = tuple(RiskFlag.values)
AGE_BANDS = tuple(AgeBand.values)
RELATIONS = tuple(Relation.values)
RESIDENT_FLAGS = tuple(ResidentFlag.values)

HOUSEHOLD_REQUIRED = ("external_id", "address")
RESIDENT_REQUIRED = ("household_external_id", "name")
OLDEST_BIRTH_DATE = dt.date(1890, 1, 1)  # as the model's resident_birth_year_plausible constraint
MEMBER_COUNT_RANGE = (1, 99)  # as household_member_count_plausible


def max_length(model: type[Model], name: str) -> int:
    return model._meta.get_field(name).max_length  # type: ignore[union-attr,return-value]


def _count(text: str) -> str:
    return japanese.to_halfwidth_ascii(text).strip().removesuffix("人").strip()


# How each field's text is normalised before it is validated (so lengths and choices see the
# normalised value, and an unchanged file normalises to the same values on every import).
NORMALIZE: dict[str, Callable[[str], str]] = {
    "external_id": japanese.normalize_code,
    "household_external_id": japanese.normalize_code,
    "address": japanese.normalize_text,
    "address_detail": japanese.normalize_text,
    "address_kana": japanese.normalize_kana,
    "name": japanese.normalize_text,
    "kana": japanese.normalize_kana,
    "member_count": _count,
    "birth_year": japanese.normalize_code,
    "status": japanese.normalize_code,
    "living_arrangement": japanese.normalize_code,
    "risk_flags": japanese.normalize_code,
    "age_band": japanese.normalize_code,
    "relation": japanese.normalize_text,
    "flags": japanese.normalize_code,
}


class MappedRow(RowReader):
    """A RowReader over a mapped row: values normalised, problems named by the file's header,
    and text refused when it holds control or bidirectional-formatting characters."""

    def __init__(self, raw: CsvRow, problems: Problems, labels: dict[str, str]) -> None:
        self.labels = labels
        values = raw.values if "" in raw.values else {
            k: NORMALIZE[k](v) if k in NORMALIZE and v else v for k, v in raw.values.items()
        }
        super().__init__(CsvRow(raw.line, values), problems)

    def error(self, column: str | None, message: str) -> None:
        label = "/".join(self.labels.get(part, part) for part in column.split("/")) if column else None
        self.problems.add(self.row.line, label, message)
        self.failed.add(column or "")

    def text(self, column: str, *, max_length: int, required: bool = False) -> str:
        value = super().text(column, max_length=max_length, required=required)
        problem = text_problem(value, multiline=False) if value else None
        if problem:
            self.error(column, problem)
        return value


# ---------------------------------------------------------------------------------------------
# Residents


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


RESIDENT_COLUMNS = ("kana", "birth_year", "age_band", "relation", "flags")


def resident_columns(fields: frozenset[str]) -> tuple[str, ...]:
    """The resident columns a file owns: those it has (the age band follows the birth year). A
    column the file lacks is left as it is on existing residents (flags set in the app survive a
    re-import of a 住民記録 extract that has none)."""
    has = set(fields)
    if has & {"birth_date", "birth_year"}:
        has |= {"birth_year", "age_band"}
    return tuple(c for c in RESIDENT_COLUMNS if c in has)


def age_band_for(birth_year: int | None, year: int) -> str:
    """The band of the age reached in `year` (only the birth year is known, not the day)."""
    if birth_year is None:
        return ""
    age = year - birth_year
    for upper, band in ((18, AgeBand.UNDER_18), (40, AgeBand.AGE_18_39), (65, AgeBand.AGE_40_64), (75, AgeBand.AGE_65_74)):
        if age < upper:
            return band.value
    return AgeBand.AGE_75_PLUS.value


def _birth_year(row: MappedRow, today: dt.date) -> int | None:
    text = row.row.values.get("birth_date", "")
    if text:
        try:
            return japanese.parse_date(text, earliest=OLDEST_BIRTH_DATE, latest=today).year
        except japanese.NotADate as exc:
            row.error("birth_date", str(exc))
            return None
    return row.integer("birth_year", low=OLDEST_BIRTH_DATE.year, high=today.year)


def _relation(row: MappedRow) -> str:
    value = row.row.values.get("relation", "")
    if not value:
        return Relation.OTHER.value
    if value in RELATIONS or value.isascii():  # our codes; an unknown code is an error, not "other"
        return row.choice("relation", RELATIONS)
    return japanese.relation_for(value)  # a 続柄 as 住民記録 writes it


def read_person(row: MappedRow, household_external_id: str, today: dt.date) -> ResidentRow:
    birth_year = _birth_year(row, today)
    return ResidentRow(
        line=row.row.line,
        household_external_id=household_external_id,
        name=row.text("name", max_length=max_length(Resident, "name"), required=True),
        kana=row.text("kana", max_length=max_length(Resident, "kana")),
        birth_year=birth_year,
        # An explicit age_band column wins; otherwise it is derived so that filters by age work.
        age_band=row.choice("age_band", AGE_BANDS) or age_band_for(birth_year, today.year),
        relation=_relation(row),
        flags=row.choices("flags", RESIDENT_FLAGS),
    )


# ---------------------------------------------------------------------------------------------
# Households


# The columns a household file may own, in the order of HouseholdRow.values (after external_id).
HOUSEHOLD_COLUMNS = (
    "address", "address_kana", "location", "match_level", "status", "living_arrangement", "risk_flags", "member_count",
)


def household_columns(fields: frozenset[str]) -> tuple[str, ...]:
    """The household columns a file owns: the address and the point always (a row without
    coordinates never clears a point), the others when the file has them, so that a list that
    lacks, say, risk_flags leaves the flags a coordinator set alone."""
    always = {"address", "location", "match_level"}
    return tuple(c for c in HOUSEHOLD_COLUMNS if c in always or c in fields)


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
    member_count: int | None

    def values(self) -> tuple[object, ...]:
        """external_id, then HOUSEHOLD_COLUMNS."""
        level = MatchLevel.UNMATCHED if self.location is None else MatchLevel.COORDINATES
        return (
            self.external_id, self.address, self.address_kana, ewkt(self.location), level.value,
            self.status, self.living_arrangement, self.risk_flags, self.member_count,
        )


@dataclass
class HouseholdReading:
    file: MappedFile
    rows: list[HouseholdRow]
    problems: Problems
    rejected: dict[str, int]  # external_id -> line, for rows that were not valid
    residents: list[ResidentRow] | None = None  # when the file has one row per person
    columns: tuple[str, ...] = ()
    resident_columns: tuple[str, ...] = ()

    @property
    def per_person(self) -> bool:
        return self.residents is not None


@dataclass
class _Group:
    """The rows of one 世帯番号 in a per-person file."""

    first_line: int
    address: str
    rows: list[tuple[HouseholdRow, ResidentRow]] = field(default_factory=list)

    def household(self) -> HouseholdRow | None:
        head = next((h for h, person in self.rows if person.relation == Relation.HEAD), None)
        return head or (self.rows[0][0] if self.rows else None)


def read_households(file: MappedFile, coords: Coordinates, municipality: Municipality) -> HouseholdReading:
    problems = Problems(file.name)
    per_person = "name" in file.fields
    reading = HouseholdReading(
        file=file, rows=[], problems=problems, rejected={}, residents=[] if per_person else None,
        columns=household_columns(file.fields), resident_columns=resident_columns(file.fields) if per_person else (),
    )
    today = timezone.localdate()
    transform = coords.transform()
    first_line: dict[str, int] = {}
    groups: dict[str, _Group] = {}
    for raw in file.rows:
        row = MappedRow(raw, problems, file.labels)
        household = _read_household(row, coords, transform, municipality)
        external_id = household.external_id
        if not per_person:
            if external_id in first_line:
                row.error("external_id", f"{external_id!r} is already on line {first_line[external_id]}")
            elif external_id:
                first_line[external_id] = raw.line
            if row.ok:
                reading.rows.append(household)
            elif external_id:
                reading.rejected.setdefault(external_id, raw.line)
            continue
        person = read_person(row, external_id, today)
        group = groups.get(external_id) if external_id else None
        if group is None and external_id and "address" not in row.failed:
            group = groups[external_id] = _Group(first_line=raw.line, address=household.address)
        elif group is not None and household.address and household.address != group.address:
            row.error("address", f"{household.address!r} differs from line {group.first_line} "
                                 f"({group.address!r}) of the same 世帯番号 {external_id!r}")
        if row.ok and group is not None:
            group.rows.append((household, person))
        elif external_id:
            reading.rejected.setdefault(external_id, raw.line)
    for group in groups.values():
        chosen = group.household()
        if chosen is not None:
            reading.rows.append(chosen)
            assert reading.residents is not None
            reading.residents.extend(person for _, person in group.rows)
    return reading


def _read_household(row: MappedRow, coords: Coordinates, transform: CoordTransform | None,
                    municipality: Municipality) -> HouseholdRow:
    return HouseholdRow(
        line=row.row.line,
        external_id=row.text("external_id", max_length=max_length(Household, "external_id"), required=True),
        address=_address(row, municipality),
        address_kana=row.text("address_kana", max_length=max_length(Household, "address_kana")),
        location=read_location(row, coords, transform, required=False),
        status=row.choice("status", STATUSES, default=HouseholdStatus.OCCUPIED),
        living_arrangement=row.choice("living_arrangement", ARRANGEMENTS),
        risk_flags=row.choices("risk_flags", RISK_FLAGS),
        member_count=row.integer("member_count", low=MEMBER_COUNT_RANGE[0], high=MEMBER_COUNT_RANGE[1]),
    )


def _address(row: MappedRow, municipality: Municipality) -> str:
    """The address as the municipality spells it, with its 方書 (building, room) after one space:
    two flats of one building are two households, and the 方書 is what tells them apart."""
    limit = max_length(Household, "address")
    address = row.text("address", max_length=limit, required=True)
    detail = row.text("address_detail", max_length=limit)
    if not address or {"address", "address_detail"} & row.failed:
        return address
    other = other_municipality(address, prefecture=municipality.prefecture, name=municipality.name)
    if other is not None:
        row.error("address", f"{address!r} is in {other}, not in {municipality.prefecture}{municipality.name}")
        return address
    full = f"{address} {detail}" if detail else address
    if len(full) > limit:
        row.error("address", f"is {len(full)} characters long with its 方書 (at most {limit})")
    return full


def read_residents(file: MappedFile, households: HouseholdReading, existing: set[str]) -> tuple[list[ResidentRow], Problems]:
    """A separate residents file. `existing`: external ids of the municipality's households
    already in the database."""
    problems = Problems(file.name)
    today = timezone.localdate()
    in_file = {h.external_id for h in households.rows}
    rows: list[ResidentRow] = []
    for raw in file.rows:
        row = MappedRow(raw, problems, file.labels)
        household = row.text("household_external_id", max_length=max_length(Household, "external_id"), required=True)
        if household and household not in in_file and household not in existing:
            skipped = households.rejected.get(household)
            where = f"its row was rejected ({households.problems.name}:{skipped})" if skipped else "no such household"
            row.error("household_external_id", f"{household!r}: {where}")
        # No uniqueness check on (household, name): registers do hold two people of one name in a
        # household (the demo file has such rows); the merge pairs them one to one.
        resident = read_person(row, household, today)
        if row.ok:
            rows.append(resident)
    return rows, problems
