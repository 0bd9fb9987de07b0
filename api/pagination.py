"""Pagination for every list: ?limit=&offset=, answered as {"items": [...], "count": n}."""

from django.conf import settings
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination


class Paginated(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(50, ge=1, le=settings.NINJA_PAGINATION_MAX_LIMIT)
        offset: int = Field(0, ge=0)
