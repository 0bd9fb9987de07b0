"""Small cells: a report meant for a wider audience (the supervisors' page and API, exports marked
public) must not let anyone single out a person, so small counts are suppressed (shown as null).

The rule, with the threshold T from settings.REPORTS_SMALL_CELL_THRESHOLD (default 5):

1. Primary: every count from 1 to T−1 is suppressed. Zero is shown (nobody to single out).
2. Complementary: where the cells of a breakdown add up to a total that is shown (the months to the
   year, the 日常生活圏域 to the municipality, the sources of concerns to those raised …), a single
   suppressed cell could be recovered by subtraction; so the smallest other non-zero cell of that
   breakdown is suppressed as well, or the total when there is none. Repeated until nothing changes
   (one breakdown's extra suppression can leave another with a single one).
3. A rate made of a suppressed count (a 自治会's coverage) is suppressed with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Integers in a report that are not counts of people or events.
NOT_COUNTS = frozenset({"fiscal_year", "id", "neighborhood_id", "suppressed_below"})


def is_small(value: Any, threshold: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < threshold


def suppress_primary(node: Any, threshold: int) -> None:
    """Rule 1, in place, over every count of a nested report."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in NOT_COUNTS:
                continue
            if is_small(value, threshold):
                node[key] = None
            else:
                suppress_primary(value, threshold)
    elif isinstance(node, list):
        for item in node:
            suppress_primary(item, threshold)


def _complement(cells: list[tuple[dict, str]], total: tuple[dict, str] | None) -> bool:
    """Rule 2 for one breakdown: `cells` are (row, key) pairs adding up to `total` (row, key).
    Returns whether it suppressed something."""
    if total is None or total[0].get(total[1]) is None:
        return False
    hidden = [c for c in cells if c[0].get(c[1]) is None]
    if len(hidden) != 1:
        return False
    shown = [c for c in cells if isinstance(c[0].get(c[1]), int) and c[0][c[1]] > 0]
    if shown:
        row, key = min(shown, key=lambda c: c[0][c[1]])
        row[key] = None
    else:
        total[0][total[1]] = None
    return True


def _breakdowns(report: dict) -> Iterable[tuple[list[tuple[dict, str]], tuple[dict, str] | None]]:
    """The report's breakdowns whose cells add up to a shown total."""
    v, c, o, m = report["visits"], report["concerns"], report["outreach"], report["meetings"]
    for key in v["total"]:
        for rows in (v["by_area"], v["by_district"]):
            yield [(r, key) for r in rows], (v["total"], key)
    yield [(r, "visits") for r in v["by_month"]], (v["total"], "visits")
    yield [(r, "in_scope") for r in v["coverage"]], (v["total"], "households_in_scope")
    yield [(r, "count") for r in c["by_source"]], (c["total"], "raised")
    yield [(r, "raised") for r in c["by_month"]], (c["total"], "raised")
    yield [(r, "raised") for r in c["by_area"]], (c["total"], "raised")
    yield [(r, "count") for r in c["referred_to"]], (c["total"], "referred")
    yield [(r, "count") for r in o["contacts_by_kind"]], (o, "contacts")
    yield [(r, "contacts") for r in o["by_month"]], (o, "contacts")
    yield [(r, "contacts") for r in o["by_area"]], (o, "contacts")
    yield [(r, "people") for r in o["by_area"]], (o, "people")
    yield [(r, "count") for r in o["continuing_by_stage"]], (o["cases"], "continuing")
    for key in ("sasaeai", "support", "multi_agency"):
        yield [(r, key) for r in m["by_month"]], (m, key)


def suppress_report(report: dict, threshold: int) -> dict:
    """Rules 1–3 over a fiscal-year report (reports.fiscal), in place."""
    suppress_primary(report, threshold)
    for _ in range(100):  # each pass suppresses at least one more cell, or stops
        if not any([_complement(cells, total) for cells, total in _breakdowns(report)]):
            break
    for row in report["visits"]["coverage"]:
        if row["in_scope"] is None or row["finished"] is None:
            row["coverage_pct"] = None
    return report
