"""Which column of a municipality's file holds which of our fields.

Files come with the headers their system writes: `世帯番号,住所,緯度,経度,世帯人数`, `世帯コード,所在地`,
`ｶﾅ氏名` … The common Japanese headers are recognised out of the box (compared after NFKC, without
case or spaces, so `世帯番号`, ` 世帯番号 ` and half-width `ｾﾀｲ` spellings meet), the English ones
keep working, and anything else is named by the operator: `--column ours=theirs` or a mapping file

    [columns]              # the households file
    external_id = "世帯コード"
    address = "住所１"

    [residents]            # the separate residents file, if any
    household_external_id = "世帯コード"

A mapping that names a column the file does not have is refused (`file:1: …`), and so is a
mapping file with a key or table we do not know (`mapping.toml:LINE: …`).

個人番号 (マイナンバー) and 住民票コード are never read: a column holding one is dropped as the file
is read (it is listed in the report), and a mapping that names one is refused.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from backend.csv_input import CsvFile, CsvRow, ImportFailed
from backend.errors import InvalidInput

# Our field -> the headers that mean it (besides its own name). Keys of both as `header_key` makes them.
HOUSEHOLD_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": ("世帯番号", "世帯コード", "世帯id", "世帯no", "世帯no."),
    "address": ("住所", "所在地", "現住所"),
    "address_detail": ("方書", "方書き", "建物名", "住所方書"),
    "address_kana": ("住所カナ", "住所フリガナ", "住所ふりがな", "所在地カナ"),
    "lat": ("緯度", "latitude"),
    "lon": ("経度", "longitude", "lng"),
    "x": (),
    "y": (),
    "status": (),
    "living_arrangement": (),
    "risk_flags": (),
    "member_count": ("世帯人数", "人数", "世帯員数"),
}
PERSON_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("氏名", "名前", "世帯員氏名"),
    "kana": ("カナ", "フリガナ", "ふりがな", "氏名カナ", "カナ氏名", "氏名フリガナ", "氏名(カナ)", "氏名(フリガナ)"),
    "birth_date": ("生年月日",),
    "birth_year": ("生年", "生まれ年"),
    "age_band": (),
    "relation": ("続柄", "世帯主との続柄"),
    "flags": (),
}
RESIDENT_FILE_FIELDS: dict[str, tuple[str, ...]] = {
    "household_external_id": ("世帯番号", "世帯コード", "世帯id", "世帯no", "世帯no."),
    **PERSON_FIELDS,
}
HOUSEHOLDS_FILE_FIELDS: dict[str, tuple[str, ...]] = {**HOUSEHOLD_FIELDS, **PERSON_FIELDS}

# Headers whose columns are never read, whatever a mapping says (substrings of the header's key).
NEVER_READ = ("個人番号", "マイナンバー", "住民票コード", "mynumber")

# The mapping file's tables and which fields each may name.
MAPPING_TABLES = {"columns": HOUSEHOLDS_FILE_FIELDS, "residents": RESIDENT_FILE_FIELDS}


def header_key(header: str) -> str:
    """The form headers are compared in: NFKC (full/half width, ｶﾅ → カナ), case-folded, no spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", header)).casefold()


def never_read(header: str) -> bool:
    key = header_key(header)
    return any(word in key for word in NEVER_READ)


@dataclass(frozen=True)
class MappedFile:
    """A CSV file whose rows are keyed by our field names. `labels` gives, for each field read,
    the header as the file spells it (problems name the file's column, which the operator sees)."""

    file: CsvFile
    rows: list[CsvRow]
    labels: dict[str, str]
    ignored_never_read: tuple[str, ...] = ()  # 個人番号 / 住民票コード columns dropped unread

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.labels)


@dataclass
class ColumnMapping:
    """The operator's choices: our field -> their header, per file. `source` says where each came
    from, for messages (`--column`, `mapping.toml:3`)."""

    households: dict[str, str] = field(default_factory=dict)
    residents: dict[str, str] = field(default_factory=dict)
    source: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, *, columns: Iterable[str] = (), mapping_file: str | Path | None = None) -> ColumnMapping:
        mapping = read_mapping_file(mapping_file) if mapping_file else cls()
        for option in columns:  # the command line wins over the file
            ours, sep, theirs = option.partition("=")
            ours, theirs = ours.strip().lower(), theirs.strip()
            if not sep or not ours or not theirs:
                raise InvalidInput(f"--column {option!r}: expected ours=theirs, e.g. --column external_id=世帯コード")
            if ours not in HOUSEHOLDS_FILE_FIELDS:
                raise InvalidInput(f"--column {option!r}: {ours!r} is not a field we read (known: {', '.join(HOUSEHOLDS_FILE_FIELDS)})")
            mapping.households[ours] = theirs
            mapping.source[("columns", ours)] = "--column"
        return mapping


def read_mapping_file(path: str | Path) -> ColumnMapping:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ImportFailed([f"{path.name}: is not UTF-8 text ({exc.reason})"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column \d+\)$", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)$", "", str(exc))
        raise ImportFailed([f"{path.name}:{where[1] if where else 1}: not valid TOML: {message}"]) from exc
    lines = text.splitlines()
    problems: list[str] = []
    mapping = ColumnMapping()
    for table, entries in data.items():
        if not isinstance(entries, dict):
            problems.append(f"{path.name}:{_line_of(lines, None, table)}: {table!r} is outside a table; "
                            f"put it under [columns] (the households file) or [residents]")
            continue
        if table not in MAPPING_TABLES:
            problems.append(f"{path.name}:{_line_of(lines, None, table)}: unknown table [{table}] "
                            f"(a mapping file has [{'] and ['.join(MAPPING_TABLES)}])")
            continue
        known = MAPPING_TABLES[table]
        target = mapping.households if table == "columns" else mapping.residents
        for ours, theirs in entries.items():
            line = _line_of(lines, table, ours)
            if ours.lower() not in known:
                problems.append(f"{path.name}:{line}: [{table}] {ours!r} is not a field we read (known: {', '.join(known)})")
            elif not isinstance(theirs, str) or not theirs.strip():
                problems.append(f"{path.name}:{line}: [{table}] {ours}: must be the column's header, as text")
            else:
                target[ours.lower()] = theirs.strip()
                mapping.source[(table, ours.lower())] = f"{path.name}:{line}"
    if problems:
        raise ImportFailed(problems)
    return mapping


_TABLE_HEADER = re.compile(r"^\[\s*([^\]]+?)\s*\]")


def _line_of(lines: list[str], table: str | None, key: str) -> int:
    """The line where `key` is defined (in `[table]`; a table itself when `table` is None), for
    messages; 1 if it cannot be found."""
    quoted = re.escape(key)
    key_line = re.compile(rf"""^\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*=""")
    section: str | None = None
    for number, line in enumerate(lines, start=1):
        header = _TABLE_HEADER.match(line.strip())
        if header:
            section = header[1].strip("\"'")
            if table is None and section == key:
                return number
        elif section == table and key_line.match(line):
            return number
    return 1


def map_columns(file: CsvFile, *, known: Mapping[str, tuple[str, ...]], chosen: Mapping[str, str],
                sources: Mapping[str, str] | None = None) -> MappedFile:
    """Key `file`'s rows by our field names. `known`: our fields and their usual headers; `chosen`:
    the operator's mapping (our field -> their header), which wins over the usual headers."""
    by_key: dict[str, str] = {}
    for column in file.columns:
        by_key.setdefault(header_key(column), column)
    problems: list[str] = []
    columns: dict[str, str] = {}  # our field -> the file's column
    for ours, theirs in chosen.items():
        found = by_key.get(header_key(theirs))
        where = f" ({sources[ours]})" if sources and ours in sources else ""
        if found is None:
            problems.append(f"{file.name}:1: mapping names column {theirs!r} which the file does not have"
                            f"{where} (found: {', '.join(file.columns)})")
        elif never_read(found):
            problems.append(f"{file.name}:1: {ours}: column {found!r} holds a 個人番号 or 住民票コード, which is never read or stored{where}")
        else:
            columns[ours] = found
    taken = set(columns.values())
    for ours, aliases in known.items():
        if ours in chosen:
            continue
        candidates = [by_key[k] for k in dict.fromkeys((header_key(ours), *(header_key(a) for a in aliases))) if k in by_key]
        candidates = [c for c in candidates if c not in taken]
        if len(candidates) > 1:
            problems.append(f"{file.name}:1: columns {' and '.join(repr(c) for c in candidates)} both mean {ours}; "
                            f"choose one with --column {ours}=…")
        elif candidates:
            columns[ours] = candidates[0]
    if problems:
        raise ImportFailed(problems)
    dropped = tuple(c for c in file.columns if never_read(c))
    rename = [(ours, column) for ours, column in columns.items()]
    rows = [
        CsvRow(raw.line, raw.values if "" in raw.values else {ours: raw.values.get(column, "") for ours, column in rename})
        for raw in file.rows
    ]
    return MappedFile(file=file, rows=rows, labels={ours: column for ours, column in columns.items()},
                      ignored_never_read=dropped)


def require(mapped: MappedFile, fields: Iterable[str]) -> None:
    """The same message as backend.csv_input.read_csv's, in our field names and theirs."""
    missing = [f for f in fields if f not in mapped.labels]
    if missing:
        raise ImportFailed([f"{mapped.name}:1: missing column(s): {', '.join(missing)} (found: {', '.join(mapped.file.columns)})"])
