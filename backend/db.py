"""Database pieces shared by apps."""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pgtrigger
import psycopg
from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Aggregate, QuerySet, Subquery
from django.db.models.functions import Coalesce

# Every syncable row carries `change_seq`, set from one database sequence by a trigger on every
# insert and update (bulk and raw SQL writes included), so a device's pull can tell what changed
# since it last received each row. The sequence is created by neighborhoods' migration 0003.
SYNC_SEQUENCE = "sync_change_seq"


def change_seq_trigger(name: str) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=name,
        when=pgtrigger.Before,
        operation=pgtrigger.Insert | pgtrigger.Update,
        func=f"NEW.change_seq := nextval('{SYNC_SEQUENCE}'); RETURN NEW;",
    )


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor of the default connection that binds its values server-side, so that PostgreSQL keeps
    each of its statements prepared for the connection's life (psycopg prepares it on first use:
    settings, DATABASES OPTIONS prepare_threshold). For the few fixed statements made at almost
    every request: a tile's version (a 304), a cached tile, a kept answer. Parsing them, rewriting
    them under the row-level security policies and planning them took 0.3-0.9 ms each, against
    0.1-0.2 ms to run them. Django's own cursors bind client-side and never prepare (the ORM's SQL
    is not written for server-side binding). One command per statement; the query wrappers
    (backend.tenancy's settings, the tests' query capture) apply as on any cursor."""
    connection.ensure_connection()
    raw: Any = psycopg.Cursor(connection.connection)  # psycopg's own: binds server-side
    cursor = _LoggedCursor(raw, connection) if connection.queries_logged else CursorWrapper(raw, connection)
    try:
        yield cursor
    finally:
        cursor.close()


class _LoggedCursor(CursorDebugWrapper):
    """A prepared cursor whose statements are logged with their values written in, as Django logs
    its own (for DEBUG and the tests' query capture: a statement bound server-side has no such
    text of its own)."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


def fetch_dicts(sql: str, params: Sequence | Mapping | None = None) -> list[dict[str, Any]]:
    """Run a read statement on the default connection; its rows as dicts by column name."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c.name for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def capped_count(queryset: QuerySet | Sequence) -> tuple[int, bool]:
    """How many rows, exact up to settings.TSUNAGU_LIST_COUNT_CAP, and whether there are more: one
    COUNT over at most cap + 1 rows, so a count costs the same in a town of 100,000 households and
    in one of 1.8 million (issue 15). Lists answer it as `count` and `count_capped`."""
    cap = settings.TSUNAGU_LIST_COUNT_CAP
    n = queryset.order_by()[: cap + 1].count() if isinstance(queryset, QuerySet) else len(queryset)
    return min(n, cap), n > cap



def per_row(rows: QuerySet, link: str, aggregate: Aggregate) -> Coalesce:
    """`aggregate` over `rows` (filtered by `link`, their foreign key, = OuterRef("pk") of the
    annotated row) as a correlated subquery, 0 over no rows. A list annotated with it computes the
    value for its page's rows only (after the LIMIT), where a join with GROUP BY aggregates every
    row of the list first: a city's 3,000 自治会 or meetings cost several times a town's (issue 15)."""
    return Coalesce(Subquery(rows.order_by().values(link).annotate(value=aggregate).values("value")), 0)
