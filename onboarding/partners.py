"""Reading a partner corporations' CSV file (アウトリーチ受託法人): headers in English or Japanese,
UTF-8 or CP932, every problem of the file at once as `file:line: column: message`.

    code,name,address,lat,lon,phone,contact_person
    法人コード,法人名,事業所住所,緯度,経度,電話番号,担当者      (名称 and 住所 are read too)

`code` and `name` are required. The office's latitude and longitude are both given or both left
empty (then the planner starts the corporation's routes from the middle of its households).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from django.contrib.gis.geos import Point
from django.core.validators import slug_re
from django.db.models import Field

from backend.csv_input import CsvFile, CsvRow, ImportFailed, Problems, RowReader, read_csv
from backend.text import text_problem
from visits.models import PartnerOrganization

# Column -> the names it may have in a file (compared without case or surrounding spaces).
COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "法人コード"),
    "name": ("name", "法人名", "名称"),
    "address": ("address", "事業所住所", "住所"),
    "lat": ("lat", "緯度"),
    "lon": ("lon", "経度"),
    "phone": ("phone", "電話番号"),
    "contact_person": ("contact_person", "担当者"),
}
REQUIRED = ("code", "name")

# Japan's box (WGS84): 与那国島 to 南鳥島, 沖ノ鳥島 to 択捉島.
LAT_RANGE = (20.0, 46.0)
LON_RANGE = (122.0, 154.0)


def _max_length(name: str) -> int:
    field = PartnerOrganization._meta.get_field(name)
    assert isinstance(field, Field) and field.max_length, name
    return field.max_length


MAX_LENGTH = {name: _max_length(name) for name in ("code", "name", "address", "phone", "contact_person")}

# Hyphens and dashes people type in phone numbers (NFKC already turns － into -).
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−ーｰ"), "-")
_PHONE = re.compile(r"^\+?[0-9][0-9\-() ]*$")


@dataclass(frozen=True)
class PartnerRow:
    line: int
    code: str
    name: str
    address: str
    phone: str
    contact_person: str
    office: Point | None


def _columns(file: CsvFile) -> tuple[dict[str, str], list[str]]:
    """The file's header -> our column names, and the problems of the header line."""
    aliases = {alias.lower(): column for column, names in COLUMNS.items() for alias in names}
    found: dict[str, str] = {}  # our column -> the header that names it
    problems: list[str] = []
    for header in file.columns:
        column = aliases.get(header)
        if column is None:
            known = ", ".join(" / ".join(names) for names in COLUMNS.values())
            problems.append(f"{file.name}:1: unknown column {header!r} (known: {known})")
        elif column in found:
            problems.append(f"{file.name}:1: {found[column]!r} and {header!r} are the same column ({column})")
        else:
            found[column] = header
    missing = [" / ".join(COLUMNS[c]) for c in REQUIRED if c not in found]
    if missing:
        problems.append(f"{file.name}:1: missing column(s): {', '.join(missing)} (found: {', '.join(file.columns)})")
    return {header: column for column, header in found.items()}, problems


class _FileProblems(Problems):
    """Problems that name each column as the file's header does (緯度, not lat)."""

    def __init__(self, name: str, headers: dict[str, str]) -> None:
        super().__init__(name)
        self.headers = headers  # our column -> the file's header

    def add(self, line: int, column: str | None, message: str) -> None:
        if column:
            column = "/".join(self.headers.get(c, c) for c in column.split("/"))
        super().add(line, column, message)


def _renamed(row: CsvRow, columns: dict[str, str]) -> CsvRow:
    # "" is csv_input's marker of a row with too many fields: keep it.
    return CsvRow(row.line, {columns.get(header, header): value for header, value in row.values.items()})


def read_partners(path: str | Path, *, encoding: str = "auto") -> tuple[CsvFile, list[PartnerRow], Problems]:
    """The valid rows of the file and the problems of the others (an empty Problems: all valid).
    A header that cannot be read raises ImportFailed."""
    file = read_csv(path, encoding=encoding)
    columns, header_problems = _columns(file)
    if header_problems:
        raise ImportFailed(header_problems)
    problems = _FileProblems(file.name, {column: header for header, column in columns.items()})
    rows: list[PartnerRow] = []
    seen: dict[str, int] = {}  # code -> line
    for raw in file.rows:
        row = _row(RowReader(_renamed(raw, columns), problems))
        if row is None:
            continue
        if row.code in seen:
            problems.add(row.line, "code", f"{row.code!r} is also on line {seen[row.code]}")
            continue
        seen[row.code] = row.line
        rows.append(row)
    return file, rows, problems


def _line(reader: RowReader, column: str, *, required: bool = False) -> str:
    value = reader.text(column, max_length=MAX_LENGTH[column], required=required)
    problem = text_problem(value, multiline=False)
    if problem:
        reader.error(column, problem)
    return value


def _row(reader: RowReader) -> PartnerRow | None:
    if not reader.ok:  # too many fields: nothing in the row can be trusted
        return None
    code = unicodedata.normalize("NFKC", reader.row.values.get("code", ""))
    if not code:
        reader.error("code", "is required")
    elif len(code) > MAX_LENGTH["code"]:
        reader.error("code", f"is {len(code)} characters long (at most {MAX_LENGTH['code']})")
    elif not slug_re.match(code):
        reader.error("code", f"{code!r} is not a slug (letters, digits, - and _ only)")
    name = _line(reader, "name", required=True)
    address = _line(reader, "address")
    contact_person = _line(reader, "contact_person")
    phone = unicodedata.normalize("NFKC", _line(reader, "phone")).translate(_DASHES)
    if phone and "phone" not in reader.failed and not _PHONE.match(phone):
        reader.error("phone", f"{phone!r} is not a phone number (digits, -, ( ) and spaces)")
    office = _office(reader)
    if not reader.ok:
        return None
    return PartnerRow(line=reader.row.line, code=code, name=name, address=address, phone=phone,
                      contact_person=contact_person, office=office)


def _header(reader: RowReader, column: str) -> str:
    """The column as the file names it (緯度 for lat)."""
    problems = reader.problems
    return problems.headers.get(column, column) if isinstance(problems, _FileProblems) else column


def _office(reader: RowReader) -> Point | None:
    lat, lon = reader.number("lat"), reader.number("lon")
    if "lat" in reader.failed or "lon" in reader.failed:
        return None
    if (lat is None) != (lon is None):
        given, missing = ("lat", "lon") if lon is None else ("lon", "lat")
        reader.error(missing, f"is empty but {_header(reader, given)} is given (give both, or neither for no office location)")
        return None
    if lat is None or lon is None:
        return None
    in_japan = LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]
    if not in_japan:
        swapped = LAT_RANGE[0] <= lon <= LAT_RANGE[1] and LON_RANGE[0] <= lat <= LON_RANGE[1]
        hint = " (lat and lon look swapped)" if swapped else ""
        reader.error(
            "lat/lon", f"{lat}, {lon} is outside Japan (lat {LAT_RANGE[0]:g}–{LAT_RANGE[1]:g}, "
            f"lon {LON_RANGE[0]:g}–{LON_RANGE[1]:g}){hint}",
        )
        return None
    return Point(lon, lat, srid=4326)
