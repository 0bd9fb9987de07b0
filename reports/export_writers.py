"""The file writers of the exports (reports.exports): CSV for Excel on a municipal PC, and XLSX.

- CSV: UTF-8 with a byte order mark (Excel on Windows detects it) or CP932 on request, CRLF line
  ends. A character CP932 cannot encode is written as 〓 (geta) and counted; characters that only
  differ between the JIS and the Microsoft mappings (〜 and ～, − and －, …) are written as the
  Microsoft ones and not counted. A report of several tables is one CSV: heading lines, then each
  table after a title row (■ …) and followed by a blank row. A text cell that Excel would take for a
  formula (=, +, -, @ first) gets a leading '.
- XLSX (xlsxwriter in constant-memory mode: each row leaves memory once written): a heading sheet
  for a report, then one sheet per table, header row bold and frozen, dates as real dates, text never
  read as a formula.

Rows are consumed as they come (a list's rows come from a server-side cursor): nothing holds the
whole file in memory."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils import timezone

from reports.models import ExportEncoding
from reports.tables import Table

PROGRESS_EVERY = 5_000  # data rows between progress reports
CHUNK_ROWS = 2_000  # rows formatted, encoded and written at a time
GETA = "〓"


@dataclass
class Document:
    """What a file holds: heading lines (reports: the 年度 and what was suppressed), then tables.
    `total` is the number of data rows to come, counted first, for the progress."""

    heading: list[str]
    tables: list[Table]
    total: int


@dataclass
class Written:
    """What was written: data rows (not headings or headers) and characters replaced by 〓."""

    rows: int = 0
    replaced: int = 0


# Characters that the JIS mapping and Windows' CP932 map differently: written as the CP932 ones.
_TO_CP932 = {
    "\u301c": "\uff5e",  # 〜 wave dash → ～
    "\u2016": "\u2225",  # ‖ → ∥
    "\u2212": "\uff0d",  # − minus → －
    "\u00a2": "\uffe0",  # ¢
    "\u00a3": "\uffe1",  # £
    "\u00ac": "\uffe2",  # ¬
    "\u2014": "\u2015",  # — em dash → ―
}
_JIS_ONLY = re.compile("[" + "".join(_TO_CP932) + "]")  # a search is far cheaper than str.translate
_FORMULA_FIRST = frozenset("=+-@\t\r")


def encode_cp932(text: str) -> tuple[bytes, int]:
    """`text` in CP932, each character it cannot hold written as 〓; and how many there were."""
    if _JIS_ONLY.search(text):
        text = _JIS_ONLY.sub(lambda m: _TO_CP932[m.group()], text)
    out, replaced, rest = bytearray(), 0, text
    while True:
        try:
            out += rest.encode("cp932")
            return bytes(out), replaced
        except UnicodeEncodeError as exc:  # a run of characters CP932 lacks, from exc.start to exc.end
            out += rest[: exc.start].encode("cp932")
            out += (GETA * (exc.end - exc.start)).encode("cp932")
            replaced += exc.end - exc.start
            rest = rest[exc.end:]


def _local(value: dt.datetime) -> dt.datetime:
    """An aware time as Asia/Tokyo (the project's time zone) shows it; a naive one as it is."""
    return value.astimezone(timezone.get_default_timezone()) if value.tzinfo is not None else value


def _csv_cell(value: Any) -> Any:
    kind = type(value)  # exact types first: this runs for every cell of every row
    if kind is str:
        return "'" + value if value[:1] in _FORMULA_FIRST else value
    if value is None:
        return ""
    if kind is int or kind is float:
        return value
    if kind is bool:
        return "○" if value else ""
    if isinstance(value, dt.datetime):
        return f"{_local(value):%Y/%m/%d %H:%M}"
    if isinstance(value, dt.date):
        return f"{value:%Y/%m/%d}"
    if isinstance(value, str):
        return _csv_cell(str(value))
    return value


def _csv_rows(document: Document) -> Iterator[tuple[list[Any], bool]]:
    """(cells, is a data row) in file order."""
    for line in document.heading:
        yield [line], False
    if document.heading:
        yield [], False
    report = bool(document.heading)
    for table in document.tables:
        if report:
            yield [f"■ {table.title}"], False
        yield list(table.headers), False
        for row in table.rows:
            yield [_csv_cell(v) for v in row], True
        if report:
            yield [], False


def write_csv(path: Path, document: Document, *, encoding: str, on_rows: Callable[[int], None]) -> Written:
    """One CSV, streamed: rows are formatted into a small buffer that is encoded and written out
    every CHUNK_ROWS rows."""
    written = Written()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    cp932 = encoding == ExportEncoding.CP932

    def flush(out: Any) -> None:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if cp932:
            data, replaced = encode_cp932(text)
            written.replaced += replaced
        else:
            data = text.encode("utf-8")
        out.write(data)

    with path.open("wb") as out:
        if not cp932:
            out.write("\ufeff".encode())
        pending = 0
        for cells, is_data in _csv_rows(document):
            writer.writerow(cells)
            pending += 1
            if is_data:
                written.rows += 1
                if written.rows % PROGRESS_EVERY == 0:
                    on_rows(written.rows)
            if pending >= CHUNK_ROWS:
                flush(out)
                pending = 0
        flush(out)
    return written


_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


@dataclass
class SheetNames:
    """Excel's sheet names: at most 31 characters, none of []:*?/\\, unique without regard to case."""

    taken: set[str] = field(default_factory=set)

    def __call__(self, title: str) -> str:
        base = _SHEET_FORBIDDEN.sub("_", title).strip("'").strip() or "Sheet"
        name, n = base[:31], 1
        while name.casefold() in self.taken:
            n += 1
            suffix = f"({n})"
            name = base[: 31 - len(suffix)] + suffix
        self.taken.add(name.casefold())
        return name


def write_xlsx(path: Path, document: Document, *, on_rows: Callable[[int], None]) -> Written:
    """One workbook, streamed (constant memory): a heading sheet for a report, then one sheet per
    table with its header row bold and frozen."""
    import xlsxwriter

    written = Written()
    names = SheetNames()
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False, "tmpdir": str(path.parent),
    })
    try:
        bold = workbook.add_format({"bold": True})
        date_format = workbook.add_format({"num_format": "yyyy/mm/dd"})
        time_format = workbook.add_format({"num_format": "yyyy/mm/dd hh:mm"})
        if document.heading:
            sheet = workbook.add_worksheet(names("表紙"))
            sheet.set_column(0, 0, 60)
            for r, line in enumerate(document.heading):
                sheet.write_string(r, 0, line, bold if r == 0 else None)
        for table in document.tables:
            sheet = workbook.add_worksheet(names(table.title))
            sheet.freeze_panes(1, 0)
            for c, header in enumerate(table.headers):
                sheet.set_column(c, c, max(10, 2 * len(header) + 2))
                sheet.write_string(0, c, header, bold)
            for r, row in enumerate(table.rows, start=1):
                for c, value in enumerate(row):
                    _write_cell(sheet, r, c, value, date_format, time_format)
                written.rows += 1
                if written.rows % PROGRESS_EVERY == 0:
                    on_rows(written.rows)
    finally:
        workbook.close()
    return written


def _write_cell(sheet: Any, r: int, c: int, value: Any, date_format: Any, time_format: Any) -> None:
    if value is None or value == "":
        return
    if isinstance(value, str):
        sheet.write_string(r, c, value)
    elif isinstance(value, bool):
        sheet.write_string(r, c, "○" if value else "")
    elif isinstance(value, int | float):
        sheet.write_number(r, c, value)
    elif isinstance(value, dt.datetime):
        sheet.write_datetime(r, c, _local(value).replace(tzinfo=None), time_format)
    elif isinstance(value, dt.date):
        sheet.write_datetime(r, c, value, date_format)
    else:
        sheet.write_string(r, c, str(value))
