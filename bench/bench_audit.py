"""Audit writes with the hash chain against the same INSERT into an unchained copy of the table
(`bench_audit_plain`: same columns, defaults, indexes and foreign keys, no chain trigger), in the
same run: one writer, 8 concurrent writers of one municipality (they take turns on the chain's
lock) and 8 of 8 municipalities (they should not). Then `verify_chain` over a long chain against
reading the same rows page by page without recomputing any hash."""

import statistics
import threading
import time

from django.db import connection

from bench.common import Figure, best_of

WRITERS = 8
PER_WRITER = 150
ROUNDS = 3
CHAIN = 50_000

_COLUMNS = (
    "at, municipality_id, actor_id, actor_username, actor_role, device_token_id, ip, action, "
    "object_type, object_id, basis, detail"
)
_VALUES = "now(), %s, %s, %s, 'coordinator', NULL, '192.0.2.10', 'read', 'neighborhoods.resident', %s, 'role:coordinator', %s::jsonb"
_DETAIL = '{"fields": ["name", "flags", "care_level"]}'


def _setup() -> list[tuple[int, int, str]]:
    """Eight municipalities with a coordinator each, and the unchained copy of the audit table."""
    from accounts.models import User
    from accounts.roles import Role
    from accounts.services import create_user
    from neighborhoods.models import Municipality

    writers = []
    for i in range(WRITERS):
        town, _ = Municipality.objects.get_or_create(
            code=f"99910{i}", defaults={"name": f"監査ベンチ町{i}", "prefecture": "鳥取県"}
        )
        username = f"bench-audit-{i}"
        user = User.objects.filter(username=username).first() or create_user(
            municipality=town, username=username, role=Role.COORDINATOR, password=None
        )
        writers.append((town.pk, user.pk, username))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_audit_plain")
        cursor.execute("CREATE TABLE bench_audit_plain (LIKE audit_auditevent INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)")
        # The copy must not carry the chain's unique position: nothing fills chain_seq there.
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'bench_audit_plain' AND indexdef LIKE '%%chain_seq%%'"
        )
        for (index,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{index}"')
        cursor.execute(
            "ALTER TABLE bench_audit_plain "
            "ADD FOREIGN KEY (municipality_id) REFERENCES neighborhoods_municipality (id), "
            "ADD FOREIGN KEY (actor_id) REFERENCES accounts_user (id)"
        )
    return writers


def _insert(table: str, writer: tuple[int, int, str], n: int) -> None:
    municipality_id, actor_id, username = writer
    sql = f"INSERT INTO {table} ({_COLUMNS}) VALUES ({_VALUES})"
    with connection.cursor() as cursor:
        for i in range(n):  # autocommit: each event its own transaction, as in a request
            cursor.execute(sql, [municipality_id, actor_id, username, str(i), _DETAIL])


def _concurrent(table: str, writers: list[tuple[int, int, str]]) -> float:
    """Wall-clock seconds per insert with one thread (own connection) per writer."""
    ready = threading.Barrier(len(writers) + 1)
    errors: list[BaseException] = []

    def work(writer: tuple[int, int, str]) -> None:
        try:
            connection.ensure_connection()
            ready.wait()
            _insert(table, writer, PER_WRITER)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    ready.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed / (len(writers) * PER_WRITER)


def _paired(fn_value, fn_baseline) -> tuple[float, float]:
    """Medians over alternating rounds, so drift in machine load hits both sides alike."""
    values, baselines = [], []
    for _ in range(ROUNDS):
        values.append(fn_value())
        baselines.append(fn_baseline())
    return statistics.median(values), statistics.median(baselines)


def _read_pages(municipality_id: int, page: int = 10_000) -> int:
    """The verifier's walk without the hashing: the same pages of the same rows."""
    seen, after = 0, 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT id, chain_seq, prev_hash, hash FROM audit_auditevent "
                "WHERE COALESCE(municipality_id, 0) = %s AND chain_seq > %s ORDER BY chain_seq LIMIT %s",
                [municipality_id, after, page],
            )
            rows = cursor.fetchall()
            seen += len(rows)
            if len(rows) < page:
                return seen
            after = rows[-1][1]


def run() -> list[Figure]:
    from audit.chain import verify_chain

    writers = _setup()
    one = writers[0]
    # Warm both tables (and the chain) before timing.
    _insert("audit_auditevent", one, 50)
    _insert("bench_audit_plain", one, 50)

    single, single_base = _paired(
        lambda: best_of(lambda: _insert("audit_auditevent", one, 1), repeat=5, number=100),
        lambda: best_of(lambda: _insert("bench_audit_plain", one, 1), repeat=5, number=100),
    )
    same_town = [one] * WRITERS
    same, same_base = _paired(
        lambda: _concurrent("audit_auditevent", same_town), lambda: _concurrent("bench_audit_plain", same_town)
    )
    spread, spread_base = _paired(
        lambda: _concurrent("audit_auditevent", writers), lambda: _concurrent("bench_audit_plain", writers)
    )
    connection.close()

    # A long chain of its own for the verifier (the trigger chains INSERT … SELECT row by row).
    long_town = writers[-1]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO audit_auditevent ({_COLUMNS}) "
            "SELECT now(), %s, %s, %s, 'coordinator', NULL, '192.0.2.10', 'read', 'neighborhoods.resident', "
            "g::text, 'role:coordinator', %s::jsonb FROM generate_series(1, %s) g",
            [*long_town, _DETAIL, CHAIN],
        )
    events = verify_chain(long_town[0]).events
    started = time.perf_counter()
    report = verify_chain(long_town[0])
    verify_s = time.perf_counter() - started
    assert report.intact and report.events == events, report
    started = time.perf_counter()
    assert _read_pages(long_town[0]) == events
    read_s = time.perf_counter() - started

    return [
        Figure("audit insert, 1 writer: chained vs unchained table", single * 1000, single_base * 1000, unit="ms"),
        Figure(
            f"audit insert, {WRITERS} writers, 1 municipality: chained vs unchained",
            same * 1000, same_base * 1000, unit="ms",
            note=f"wall ms per insert; {1 / same:,.0f} vs {1 / same_base:,.0f} inserts/s",
        ),
        Figure(
            f"audit insert, {WRITERS} writers, {WRITERS} municipalities: chained vs unchained",
            spread * 1000, spread_base * 1000, unit="ms",
            note=f"wall ms per insert; {1 / spread:,.0f} vs {1 / spread_base:,.0f} inserts/s",
        ),
        Figure(
            f"verify_chain over {events:,} events vs reading the same pages", verify_s, read_s,
            note=f"{events / verify_s:,.0f} events/s",
        ),
    ]
