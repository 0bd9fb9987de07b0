"""Reports: the 年度 report and the per-corporation report (read-only aggregates)."""

from ninja import Router

router = Router(tags=["reports"])
