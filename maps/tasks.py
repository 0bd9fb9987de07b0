"""django-q2 entry points for maps. Thin, take ids, enter the municipality's tenant scope, safe
to run twice."""

import logging

from backend.tenancy import job_scope, municipality_ids
from maps import services, tile_cache

logger = logging.getLogger("tsunagu.maps")


def refresh_coverage_task(campaign_id: int, municipality_id: int) -> dict:
    with job_scope(municipality_id):
        return services.refresh_coverage(campaign_id)


def refresh_due_coverage_task() -> list[int]:
    """Scheduled every few minutes (migration 0002), for every municipality in turn."""
    refreshed: list[int] = []
    for municipality_id in municipality_ids():
        with job_scope(municipality_id):
            refreshed += services.refresh_due_coverage()
    return refreshed


def evict_tile_cache_task() -> dict[int, int]:
    """Scheduled every 10 minutes (migration maps 0003), for every municipality in turn: tiles
    evicted per municipality."""
    evicted = {}
    for municipality_id in municipality_ids():
        with job_scope(municipality_id):
            tile_cache.compact_changes(municipality_id)
            evicted[municipality_id] = tile_cache.evict(municipality_id)
    logger.info("tile cache: %s tiles evicted", sum(evicted.values()))
    return evicted
