"""django-q2 entry points for the audit app's jobs. Thin, safe to run twice."""

from __future__ import annotations

import logging

from django.utils import timezone

from backend import retention, tenancy

logger = logging.getLogger("tsunagu.retention")


def retention_daily_task() -> dict:
    """保存年限: purge every municipality's expired records (scheduled daily at 03:30 JST by
    outreach migration 0004). One tenant scope and one transaction per municipality; a failure is
    logged and reported, and the other municipalities still run. The result holds counts only."""
    today = timezone.localdate()
    purged: dict[str, dict[str, int]] = {}
    failed: dict[str, str] = {}
    for municipality_id in tenancy.municipality_ids():
        try:
            report = retention.purge(municipality_id, today)
        except Exception as exc:
            logger.exception("retention: municipality %s failed; its records are left as they were", municipality_id)
            failed[str(municipality_id)] = type(exc).__name__
            continue
        purged[str(municipality_id)] = {key: n for key, n in report.counts.items() if n}
    return {"today": today.isoformat(), "purged": purged, "failed": failed}
