"""Exports (CSV / XLSX) of the reports and of the underlying lists, run as jobs."""

from ninja import Router

router = Router(tags=["exports"])
