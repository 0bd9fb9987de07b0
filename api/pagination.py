"""Pagination for every list: ?limit=&offset=, answered as {"items": [...], "count": n}."""

from django.conf import settings
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

# Far beyond any list of a municipality, and far below PostgreSQL's bigint OFFSET (a larger one
# was a 500).
MAX_OFFSET = 10_000_000


class Paginated(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(50, ge=1, le=settings.NINJA_PAGINATION_MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)
