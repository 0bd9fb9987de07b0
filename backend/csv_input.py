"""Reading the CSV files people bring: bytes -> text (UTF-8 with or without BOM, or CP932 as
Japanese municipal systems write it) -> rows that know their line number, and the way their
problems are collected (`file:line: column: message`, every problem of a file at once, so an
operator fixes the whole file in one go). Shared by every importer and onboarding command."""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from backend.errors import InvalidInput

ENCODINGS = ("auto", "utf-8", "cp932", "shift_jis")
MAX_SHOWN_ERRORS = 50
LIST_SEPARATOR = ";"


# ---------------------------------------------------------------------------------------------
# Errors


class ImportFailed(InvalidInput):
    """The file (or some rows) are not valid and nothing was written. `errors` holds every problem."""

    code = "import_invalid"

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__(format_problems(self.errors, "nothing was written"), details=self.errors)


def format_problems(errors: Sequence[str], outcome: str, *, limit: int = MAX_SHOWN_ERRORS) -> str:
    """`N problem(s), <outcome>:` then at most `limit` lines, so a file with 10,000 bad rows gives a
    readable message rather than a wall of text."""
    noun = "problem" if len(errors) == 1 else "problems"
    lines = [f"{len(errors)} {noun}, {outcome}:", *(f"  {e}" for e in errors[:limit])]
    if len(errors) > limit:
        lines.append(f"  … and {len(errors) - limit} more")
    return "\n".join(lines)


class Problems:
    """Collects row problems of one file as `name:line: column: message`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[str] = []
        self.lines: set[int] = set()

    def add(self, line: int, column: str | None, message: str) -> None:
        where = f"{column}: " if column else ""
        self.messages.append(f"{self.name}:{line}: {where}{message}")
        self.lines.add(line)

    def __bool__(self) -> bool:
        return bool(self.messages)


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class CsvFile:
    name: str
    encoding: str
    columns: tuple[str, ...]
    rows: list[CsvRow]


def read_csv(path: str | Path, *, encoding: str = "auto", required: Iterable[str] = ()) -> CsvFile:
    """Read a whole CSV file. Header names are compared without case or surrounding spaces."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from exc
    used = detect_encoding(data, path.name) if encoding == "auto" else _codec(encoding)
    text = _decode(data, used, path.name)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise ImportFailed([f"{path.name}:1: the file is empty (a header line is expected)"])
    columns = tuple(h.strip().lower() for h in header)
    missing = [c for c in required if c not in columns]
    if missing:
        raise ImportFailed([f"{path.name}:1: missing column(s): {', '.join(missing)} (found: {', '.join(columns)})"])
    return CsvFile(name=path.name, encoding=used, columns=columns, rows=list(_rows(reader, columns)))


def _rows(reader: Iterable[list[str]], columns: tuple[str, ...]) -> Iterable[CsvRow]:
    line = 1  # the header
    for fields in reader:
        # csv.reader's line_num is where a record *ends*; a quoted field may span lines, so the
        # record starts on the line after the previous one ended.
        start, line = line + 1, reader.line_num  # type: ignore[attr-defined]
        if not any(f.strip() for f in fields):
            continue  # blank lines (often a trailing one) carry nothing
        if len(fields) > len(columns):
            yield CsvRow(start, {"": f"{len(fields)} fields but the header has {len(columns)}"})
            continue
        yield CsvRow(start, {c: v.strip() for c, v in zip(columns, fields, strict=False)})


def _codec(encoding: str) -> str:
    # `shift_jis` is read with the CP932 table: that is what "Shift_JIS" means for files written by
    # Windows-based municipal systems (①, 髙, ～ …), and every strict Shift_JIS file decodes with it.
    # `utf-8` tolerates a BOM, which Excel adds.
    return {"utf-8": "utf-8-sig", "shift_jis": "cp932", "cp932": "cp932"}[encoding]


def detect_encoding(data: bytes, name: str = "") -> str:
    """UTF-8 (with or without BOM) or CP932."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        # Exact, unlike statistical detection; Shift_JIS text with any kanji is never valid UTF-8.
        return "utf-8"
    best = charset_normalizer.from_bytes(data, cp_isolation=["cp932", "shift_jis"]).best()
    if best is None:
        raise ImportFailed([f"{name}: the encoding is neither UTF-8 nor Shift_JIS/CP932; pass --encoding"])
    return "cp932"  # whichever of the two won: CP932 is the superset that Windows systems write


def _decode(data: bytes, encoding: str, name: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.end].hex(" ")
        raise ImportFailed(
            [f"{name}:{line}: cannot be read as {encoding} (bytes {bad}); check --encoding"]
        ) from exc


# ---------------------------------------------------------------------------------------------
# Validation of single values


class RowReader:
    """One row under validation: each accessor returns a clean value or records a problem."""

    def __init__(self, row: CsvRow, problems: Problems) -> None:
        self.row = row
        self.problems = problems
        self.failed: set[str] = set()
        if "" in row.values:  # too many fields: nothing else in the row can be trusted
            self.error(None, row.values[""])

    @property
    def ok(self) -> bool:
        return not self.failed

    def error(self, column: str | None, message: str) -> None:
        self.problems.add(self.row.line, column, message)
        self.failed.add(column or "")

    def text(self, column: str, *, max_length: int, required: bool = False) -> str:
        value = self.row.values.get(column, "")
        if required and not value:
            self.error(column, "is required")
        elif len(value) > max_length:
            self.error(column, f"is {len(value)} characters long (at most {max_length})")
        return value

    def choice(self, column: str, choices: Sequence[str], *, default: str = "", required: bool = False) -> str:
        value = self.row.values.get(column, "")
        if not value:
            if required:
                self.error(column, "is required")
            return default
        if value not in choices:
            self.error(column, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def choices(self, column: str, choices: Sequence[str]) -> list[str]:
        """A `;`-separated list; duplicates are dropped, the file's order is kept."""
        raw = self.row.values.get(column, "")
        if not raw:
            return []
        values = [v for v in dict.fromkeys(v.strip() for v in raw.split(LIST_SEPARATOR)) if v]
        for bad in (v for v in values if v not in choices):
            self.error(column, f"{bad!r} is not one of {', '.join(choices)}")
        return values

    def number(self, column: str) -> float | None:
        value = self.row.values.get(column, "")
        if not value:
            return None
        try:
            # NFKC turns full-width ３５．５ (typed in a Japanese spreadsheet) into 35.5.
            number = float(unicodedata.normalize("NFKC", value))
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            self.error(column, f"{value!r} is not a number")
            return None
        return number

    def integer(self, column: str, *, low: int, high: int) -> int | None:
        value = self.row.values.get(column, "")
        if not value:
            return None
        try:
            number = int(value)
        except ValueError:
            self.error(column, f"{value!r} is not a whole number")
            return None
        if not low <= number <= high:
            self.error(column, f"{number} is out of range ({low}..{high})")
            return None
        return number
