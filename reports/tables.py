"""A report as tables: what the exports write (one CSV per table, one XLSX sheet per table).

Each report module turns its answer into `Table`s with Japanese headers; the export writers
(reports.exports) know nothing of the reports' shapes."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """One table: a title (the sheet's name, at most 31 characters for Excel), Japanese column
    headers, and the rows (values: str, int, float, date, None; None is written as empty)."""

    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence]
