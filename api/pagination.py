"""Pagination for every list: ?limit=&offset=, answered as {"items": [...], "count": n,
"count_capped": bool}.

The count is exact up to settings.TSUNAGU_LIST_COUNT_CAP (1,000) matching rows; past it the list
answers the cap with `count_capped: true` ("1,000件以上"; backend.db.capped_count). Counting every
household of a town of 1.8 million on each page cost 18 times what it did at 100,000 (issue 15): a
count that stops at the cap costs the same in both, and a person paging a list that long (20 pages
of 50) narrows it (by 自治会, status …) rather than reading to its end. At 10,000 a corporation's
households or a risk flag's still counted more rows in a city than in a town (2–3x). Exact
per-自治会 household counts are on the 自治会 list."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

from backend.db import capped_count

# Far beyond any list of a municipality, and far below PostgreSQL's bigint OFFSET (a larger one
# was a 500).
MAX_OFFSET = 10_000_000


@dataclass(frozen=True)
class Windowed:
    """A list whose page is read by a query of its own: `rows` is the list (it is counted), and
    `window(end)` a narrower query holding at least the list's first `end` rows in the same order
    (neighborhoods.queries.first_by_neighborhood: a worker's households, 自治会 by 自治会)."""

    rows: QuerySet
    window: Callable[[int], QuerySet]


class Paginated(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(50, ge=1, le=settings.NINJA_PAGINATION_MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)

    class Output(Schema):
        items: list[Any]
        count: int = Field(..., description="Matching rows, exact up to the cap (1,000); the cap when count_capped")
        count_capped: bool = Field(..., description="True when more rows match than the count says")

    def paginate_queryset(self, queryset: QuerySet, pagination: Any, request: HttpRequest, **params: Any) -> Any:
        offset = pagination.offset
        limit: int = min(pagination.limit, self.max_limit)
        if isinstance(queryset, Windowed):
            count, capped = capped_count(queryset.rows)
            return {"items": queryset.window(offset + limit)[offset: offset + limit], "count": count,
                    "count_capped": capped}
        count, capped = capped_count(queryset)
        return {"items": queryset[offset: offset + limit], "count": count, "count_capped": capped}
