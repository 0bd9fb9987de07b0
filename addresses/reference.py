"""Reading the national address reference files a municipality downloads, into reference points
of that municipality (written by addresses.services.load_reference).

Kinds, told apart by their header (a `.zip` holding one CSV is read as that CSV; CP932 or UTF-8):

- 国土交通省 位置参照情報, 街区レベル (CP932): 都道府県名, 市区町村名, 大字・丁目名, 小字・通称名,
  街区符号・地番, …, 緯度, 経度, 住居表示フラグ (1: 街区符号 of a 住居表示 area, 0: 地番), 代表フラグ …
  -> block points;
- 国土交通省 位置参照情報, 大字・町丁目レベル (CP932): 都道府県コード, 都道府県名, 市区町村コード,
  市区町村名, 大字町丁目コード, 大字町丁目名, 緯度, 経度, … -> town points;
- デジタル庁 アドレス・ベース・レジストリ (UTF-8), each master with its 位置参照拡張 (the representative
  point, `rep_lon`/`rep_lat`), joined here on their ids: 町字 (`machiaza_id`) -> town points,
  住居表示－街区 (`blk_id`) -> block points, 住居表示－住居 (`rsdt_id`, `rsdt2_id`) -> residence
  points. The current English column names and the older Japanese ones (町字id, 代表点_緯度 …)
  are both read.

Rows of other municipalities (a prefecture's file) are skipped and counted; the municipality is
matched on its code where the file has one (the first five digits: MLIT writes no check digit),
else on prefecture and name. Every problem is collected as `file:line: column: message`.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from addresses.models import ReferenceLevel, ReferenceSource
from addresses.normalize import normalize_number, normalize_town
from backend.csv_input import ImportFailed, Problems, detect_encoding
from neighborhoods.models import Municipality

Progress = Callable[[str], None]

# A plausible point in Japan (with its outlying islands): what a reference file may hold.
LON_RANGE = (122.0, 154.0)
LAT_RANGE = (20.0, 46.0)
# Geographic CRSs whose latitude/longitude are WGS84's to well under a metre (JGD2000, JGD2011).
SAME_AS_WGS84 = {"", "4326", "4612", "6668"}

# The ABR's column names: the current ones first, then the older Japanese ones.
ABR_COLUMNS: dict[str, tuple[str, ...]] = {
    "lg_code": ("lg_code", "全国地方公共団体コード"),
    "machiaza_id": ("machiaza_id", "町字id"),
    "blk_id": ("blk_id", "街区id"),
    "rsdt_id": ("rsdt_id", "住居id"),
    "rsdt2_id": ("rsdt2_id", "住居2id"),
    "oaza_cho": ("oaza_cho", "大字・町名"),
    "chome": ("chome", "丁目名"),
    "koaza": ("koaza", "小字名"),
    "blk_num": ("blk_num", "街区符号"),
    "rsdt_num": ("rsdt_num", "住居番号"),
    "rsdt_num2": ("rsdt_num2", "住居番号2"),
    "rep_lon": ("rep_lon", "代表点_経度", "rep_pnt_lon"),
    "rep_lat": ("rep_lat", "代表点_緯度", "rep_pnt_lat"),
    "rep_srid": ("rep_srid", "代表点_座標参照系"),
}
MLIT_BLOCK_COLUMNS = ("都道府県名", "市区町村名", "大字・丁目名", "街区符号・地番", "緯度", "経度")
MLIT_TOWN_COLUMNS = ("市区町村コード", "大字町丁目名", "緯度", "経度")

KIND_NAMES = {
    "mlit_block": "位置参照情報 街区レベル",
    "mlit_town": "位置参照情報 大字・町丁目レベル",
    "abr_town": "ABR 町字マスター",
    "abr_town_pos": "ABR 町字マスター 位置参照拡張",
    "abr_block": "ABR 住居表示－街区マスター",
    "abr_block_pos": "ABR 住居表示－街区マスター 位置参照拡張",
    "abr_residence": "ABR 住居表示－住居マスター",
    "abr_residence_pos": "ABR 住居表示－住居マスター 位置参照拡張",
}
# An ABR master and its 位置参照拡張 are read together.
ABR_PAIRS = {"abr_town": "abr_town_pos", "abr_block": "abr_block_pos", "abr_residence": "abr_residence_pos"}


@dataclass(frozen=True)
class ReferencePoint:
    level: str
    town: str
    block: str
    residence: str
    lon: float
    lat: float
    source: str
    label: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.level, self.town, self.block, self.residence)

    def values(self) -> tuple[object, ...]:
        """In the order of services._STAGED_COLUMNS."""
        ewkt = f"SRID=4326;POINT({self.lon!r} {self.lat!r})"
        return (self.level, self.town, self.block, self.residence, ewkt, self.source, self.label)


@dataclass
class FileReport:
    name: str
    kind: str
    encoding: str
    rows: int = 0
    mine: int = 0
    other_municipalities: int = 0


@dataclass
class ReadResult:
    points: list[ReferencePoint]
    files: list[FileReport]
    without_point: int = 0  # ABR master rows with no representative point (or points with no master row)
    duplicates: int = 0  # rows whose key another, better row already gave


@dataclass
class _Candidates:
    """The best row seen for each key: ABR before MLIT, a representative row before another, a
    大字 before its 小字; then the first in file order."""

    best: dict[tuple[str, str, str, str], tuple[tuple[int, ...], ReferencePoint]] = field(default_factory=dict)
    duplicates: int = 0

    def offer(self, point: ReferencePoint, rank: tuple[int, ...]) -> None:
        held = self.best.get(point.key)
        if held is None or rank < held[0]:
            self.best[point.key] = (rank, point)
        if held is not None:
            self.duplicates += 1


# ---------------------------------------------------------------------------------------------
# Files


@dataclass
class _Table:
    name: str
    encoding: str
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]  # (line, fields)


def _open(path: Path) -> _Table:
    """The CSV of `path` (or the one CSV inside a zip), decoded."""
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed([f"{name}:1: cannot be read ({exc.strerror})"]) from exc
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith(".csv") and not m.endswith("/")]
            if len(members) != 1:
                raise ImportFailed([f"{name}:1: a zip must hold exactly one CSV file (it holds {len(members)})"])
            data = archive.read(members[0])
            name = f"{name}/{Path(members[0]).name}"
    encoding = detect_encoding(data, name)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFailed([f"{name}:{line}: cannot be read as {encoding}"]) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise ImportFailed([f"{name}:1: the file is empty (a header line is expected)"])

    def rows() -> Iterator[tuple[int, list[str]]]:
        line = 1
        for fields in reader:
            start, line = line + 1, reader.line_num
            if any(f.strip() for f in fields):
                yield start, [f.strip() for f in fields]

    return _Table(name, encoding, [h.strip().lower() for h in header], rows())


def detect_kind(header: list[str]) -> str | None:
    columns = set(header)
    if set(MLIT_BLOCK_COLUMNS) <= columns:
        return "mlit_block"
    if set(MLIT_TOWN_COLUMNS) <= columns:
        return "mlit_town"

    def has(name: str) -> bool:
        return any(c in columns for c in ABR_COLUMNS[name])

    positioned = has("rep_lat") and has("rep_lon")
    if has("rsdt_id") and has("lg_code"):
        if positioned:
            return "abr_residence_pos"
        return "abr_residence" if has("rsdt_num") and has("blk_num") and has("oaza_cho") else None
    if has("blk_id") and has("lg_code"):
        if positioned:
            return "abr_block_pos"
        return "abr_block" if has("blk_num") and has("oaza_cho") else None
    if has("machiaza_id") and has("lg_code"):
        if positioned:
            return "abr_town_pos"
        return "abr_town" if has("oaza_cho") else None
    return None


class _Row:
    """One row's values by column name (the ABR's synonyms resolved), with its problems."""

    def __init__(self, index: dict[str, int], line: int, fields: list[str], problems: Problems) -> None:
        self.index, self.line, self.fields, self.problems = index, line, fields, problems
        self.ok = True

    def get(self, name: str) -> str:
        at = self.index.get(name)
        return self.fields[at] if at is not None and at < len(self.fields) else ""

    def error(self, column: str, message: str) -> None:
        self.problems.add(self.line, column, message)
        self.ok = False

    def required(self, name: str, column: str | None = None) -> str:
        value = self.get(name)
        if not value:
            self.error(column or name, "is required")
        return value

    def coordinate(self, name: str, column: str, bounds: tuple[float, float], what: str) -> float:
        raw = self.get(name)
        try:
            value = float(unicodedata.normalize("NFKC", raw))
        except ValueError:
            self.error(column, f"{raw!r} is not a number" if raw else "is required")
            return 0.0
        if not bounds[0] <= value <= bounds[1]:
            self.error(column, f"{raw} is not a {what} in Japan ({bounds[0]:g}..{bounds[1]:g})")
        return value


def _index(header: list[str], kind: str) -> dict[str, int]:
    """Column name -> position; for ABR files keyed by the current English names."""
    positions = {name: i for i, name in reversed(list(enumerate(header)))}
    if not kind.startswith("abr"):
        return positions
    index: dict[str, int] = {}
    for name, synonyms in ABR_COLUMNS.items():
        found = next((positions[s] for s in synonyms if s in positions), None)
        if found is not None:
            index[name] = found
    return index


# ---------------------------------------------------------------------------------------------
# Reading


class _Town:
    """Which rows are this municipality's."""

    def __init__(self, municipality: Municipality) -> None:
        self.code5 = municipality.code[:5]
        self.prefecture = municipality.prefecture
        self.name = municipality.name
        self._gun = re.compile(rf"^\S{{1,5}}郡{re.escape(self.name)}$")

    def has_code(self, code: str) -> bool:
        return code[:5] == self.code5

    def has_name(self, prefecture: str, city: str) -> bool:
        city = unicodedata.normalize("NFKC", city).replace(" ", "")
        return prefecture == self.prefecture and (city == self.name or bool(self._gun.match(city)))


def read_reference(*, municipality: Municipality, paths: list[Path], progress: Progress | None = None) -> ReadResult:
    """Every reference point of `municipality` in the files. ImportFailed lists every problem."""
    town = _Town(municipality)
    errors: list[str] = []
    files: list[FileReport] = []
    candidates = _Candidates()
    abr: dict[str, list[tuple[FileReport, dict]]] = {}
    for path in paths:
        try:
            table = _open(Path(path))
        except ImportFailed as exc:
            errors += exc.errors
            continue
        kind = detect_kind(table.header)
        if kind is None:
            errors.append(
                f"{table.name}:1: the header matches no kind of address reference file "
                f"(位置参照情報 街区・大字町丁目レベル, ABR 町字・住居表示 and their 位置参照拡張); "
                f"found: {', '.join(table.header[:8])}{' …' if len(table.header) > 8 else ''}"
            )
            continue
        report = FileReport(name=table.name, kind=kind, encoding=table.encoding)
        files.append(report)
        problems = Problems(table.name)
        index = _index(table.header, kind)
        if kind == "mlit_block":
            _read_mlit_block(table, index, town, report, problems, candidates)
        elif kind == "mlit_town":
            _read_mlit_town(table, index, town, report, problems, candidates)
        else:
            abr.setdefault(kind, []).append((report, _read_abr(table, index, kind, town, report, problems)))
        errors += problems.messages
        if progress:
            progress(
                f"{report.name} ({KIND_NAMES[kind]}, {report.encoding}): {report.rows} rows, "
                f"{report.mine} of {municipality.name}, {report.other_municipalities} of other municipalities skipped"
            )
    errors += _missing_partners(abr)
    if errors:
        raise ImportFailed(errors)
    without_point = _join_abr(abr, candidates)
    points = [point for _rank, point in candidates.best.values()]
    return ReadResult(points=points, files=files, without_point=without_point, duplicates=candidates.duplicates)


def _read_mlit_block(table: _Table, index: dict[str, int], town: _Town, report: FileReport,
                     problems: Problems, candidates: _Candidates) -> None:
    for line, fields in table.rows:
        report.rows += 1
        row = _Row(index, line, fields, problems)
        if not town.has_name(row.get("都道府県名"), row.get("市区町村名")):
            report.other_municipalities += 1
            continue
        report.mine += 1
        oaza = row.required("大字・丁目名")
        number = row.required("街区符号・地番")
        lat = row.coordinate("緯度", "緯度", LAT_RANGE, "latitude")
        lon = row.coordinate("経度", "経度", LON_RANGE, "longitude")
        if not row.ok:
            continue
        koaza = row.get("小字・通称名")
        point = ReferencePoint(
            level=ReferenceLevel.BLOCK, town=normalize_town(oaza), block=normalize_number(number), residence="",
            lon=lon, lat=lat, source=ReferenceSource.MLIT_BLOCK, label=f"{oaza}{koaza} {number}"[:200],
        )
        candidates.offer(point, (1, int(bool(koaza)), int(row.get("代表フラグ") == "0")))


def _read_mlit_town(table: _Table, index: dict[str, int], town: _Town, report: FileReport,
                    problems: Problems, candidates: _Candidates) -> None:
    for line, fields in table.rows:
        report.rows += 1
        row = _Row(index, line, fields, problems)
        if not town.has_code(row.get("市区町村コード")):
            report.other_municipalities += 1
            continue
        report.mine += 1
        name = row.required("大字町丁目名")
        lat = row.coordinate("緯度", "緯度", LAT_RANGE, "latitude")
        lon = row.coordinate("経度", "経度", LON_RANGE, "longitude")
        if not row.ok:
            continue
        point = ReferencePoint(
            level=ReferenceLevel.TOWN, town=normalize_town(name), block="", residence="",
            lon=lon, lat=lat, source=ReferenceSource.MLIT_TOWN, label=name[:200],
        )
        # 大字・字・丁目区分コード 2 is a 字 (小字): its 大字 (code 1) or 丁目 (3) come first
        candidates.offer(point, (1, int(row.get("大字・字・丁目区分コード") == "2"), 0))


_ABR_KEYS = {
    "abr_town": ("machiaza_id",),
    "abr_block": ("machiaza_id", "blk_id"),
    "abr_residence": ("machiaza_id", "blk_id", "rsdt_id", "rsdt2_id"),
}


def _read_abr(table: _Table, index: dict[str, int], kind: str, town: _Town, report: FileReport,
              problems: Problems) -> dict:
    """An ABR master: ids -> (level, town, block, residence, label, rank); its 位置参照拡張:
    ids -> (lon, lat)."""
    master = kind.removesuffix("_pos")
    names = ("lg_code", *_ABR_KEYS[master])
    rows: dict = {}
    for line, fields in table.rows:
        report.rows += 1
        row = _Row(index, line, fields, problems)
        if not town.has_code(row.get("lg_code")):
            report.other_municipalities += 1
            continue
        report.mine += 1
        key = (row.get("lg_code")[:5], *(row.get(n) for n in names[1:]))
        if kind.endswith("_pos"):
            if not row.get("rep_lat") and not row.get("rep_lon"):
                continue  # no representative point for this one (most 小字)
            lat = row.coordinate("rep_lat", _column(table, index, "rep_lat"), LAT_RANGE, "latitude")
            lon = row.coordinate("rep_lon", _column(table, index, "rep_lon"), LON_RANGE, "longitude")
            srid = re.sub(r"\D", "", row.get("rep_srid"))
            if srid not in SAME_AS_WGS84:
                row.error(_column(table, index, "rep_srid"), f"{row.get('rep_srid')!r}: only JGD2000/JGD2011 (EPSG:4612, 6668) or WGS84 are read")
            if row.ok:
                rows.setdefault(key, (lon, lat))
            continue
        oaza = row.required("oaza_cho", _column(table, index, "oaza_cho"))
        chome, koaza = row.get("chome"), row.get("koaza")
        town_key = normalize_town(oaza + chome)
        if master == "abr_town":
            entry = (ReferenceLevel.TOWN, town_key, "", "", f"{oaza}{chome}{koaza}", (0, int(bool(koaza)), 0))
        else:
            block = row.required("blk_num", _column(table, index, "blk_num"))
            if master == "abr_block":
                entry = (ReferenceLevel.BLOCK, town_key, normalize_number(block), "", f"{oaza}{chome}{koaza} {block}",
                         (0, int(bool(koaza)), 0))
            else:
                number = row.required("rsdt_num", _column(table, index, "rsdt_num"))
                second = row.get("rsdt_num2")
                entry = (ReferenceLevel.RESIDENCE, town_key, normalize_number(block), normalize_number(number),
                         f"{oaza}{chome}{koaza} {block}-{number}{'-' + second if second else ''}",
                         (0, int(bool(koaza)), int(bool(second))))
        if row.ok:
            rows.setdefault(key, entry)
    return rows


def _column(table: _Table, index: dict[str, int], name: str) -> str:
    """The column as the file names it, for messages."""
    at = index.get(name)
    return table.header[at] if at is not None else name


def _missing_partners(abr: dict[str, list[tuple[FileReport, dict]]]) -> list[str]:
    errors = []
    for master, pos in ABR_PAIRS.items():
        for kind, partner in ((master, pos), (pos, master)):
            if kind in abr and partner not in abr:
                for report, _rows in abr[kind]:
                    errors.append(
                        f"{report.name}:1: a {KIND_NAMES[kind]} file is read with its "
                        f"{KIND_NAMES[partner]} file: give both in the same command"
                    )
    return errors


def _join_abr(abr: dict[str, list[tuple[FileReport, dict]]], candidates: _Candidates) -> int:
    without_point = 0
    source = {"abr_town": ReferenceSource.ABR_TOWN, "abr_block": ReferenceSource.ABR_BLOCK,
              "abr_residence": ReferenceSource.ABR_RESIDENCE}
    for master, pos in ABR_PAIRS.items():
        if master not in abr:
            continue
        names: dict = {}
        for _report, rows in abr[master]:
            for key, entry in rows.items():
                names.setdefault(key, entry)
        points: dict = {}
        for _report, rows in abr[pos]:
            for key, entry in rows.items():
                points.setdefault(key, entry)
        without_point += len(set(names) ^ set(points))
        for key in sorted(set(names) & set(points)):
            level, town_key, block, residence, label, rank = names[key]
            lon, lat = points[key]
            candidates.offer(
                ReferencePoint(level=level, town=town_key, block=block, residence=residence, lon=lon, lat=lat,
                               source=source[master], label=label[:200]),
                rank,
            )
    return without_point
