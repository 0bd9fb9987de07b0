"""The audit log is a hash chain per municipality: the database chains every insert, and
`verify_chain` / `manage.py verify_audit` find the first link an owner's edit or deletion broke."""

import datetime as dt
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pgtrigger
import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, transaction

from accounts.models import User
from accounts.roles import Role
from audit.chain import GENESIS_HASH, ChainHead, chain_head, verify_chain
from audit.models import AuditEvent
from audit.services import record_access
from backend.tenancy import scope
from tests import factories

DIGEST_SQL = (
    "SELECT audit_event_digest(%s, %s::bigint, %s::bigint, %s::timestamptz, %s::bigint, %s, %s, %s::uuid, "
    "%s::inet, %s, %s, %s, %s, %s::jsonb)"
)
APPEND_ONLY = "audit.AuditEvent:audit_append_only"


def write(actor, n: int, *, prefix: str = "e") -> list[AuditEvent]:
    return [
        record_access(actor=actor, object_type="neighborhoods.resident", object_id=f"{prefix}{i}", basis="role:coordinator")
        for i in range(n)
    ]


def chain_of(municipality_id: int | None) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(municipality_id=municipality_id) if municipality_id else (
        AuditEvent.objects.filter(municipality__isnull=True)
    )
    return list(events.order_by("chain_seq"))


def assert_linked(events: list[AuditEvent]) -> None:
    assert [e.chain_seq for e in events] == list(range(1, len(events) + 1))
    assert [e.prev_hash for e in events] == [GENESIS_HASH] + [e.hash for e in events[:-1]]
    assert all(len(e.hash) == 64 and e.hash != GENESIS_HASH for e in events)


def tamper(sql: str, params: list) -> None:
    """What only the schema owner can do: change a row past the append-only trigger."""
    with pgtrigger.ignore(APPEND_ONLY), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def coordinator(db) -> User:
    return factories.user(factories.municipality(name="北栄町"), Role.COORDINATOR)


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_superuser("platform-op", "op@example.jp", factories.PASSWORD)


# --- chaining -------------------------------------------------------------------------------------


def test_interleaved_writes_of_two_municipalities_form_two_intact_chains(db):
    a = factories.user(factories.municipality(), Role.COORDINATOR)
    b = factories.user(factories.municipality(), Role.COORDINATOR)
    for i in range(4):
        write(a, 1, prefix=f"a{i}-")
        write(b, 1 + i % 2, prefix=f"b{i}-")
    chain_a, chain_b = chain_of(a.municipality_id), chain_of(b.municipality_id)
    assert (len(chain_a), len(chain_b)) == (4, 6)
    assert_linked(chain_a)
    assert_linked(chain_b)
    assert verify_chain(a.municipality_id).intact
    report = verify_chain(b.municipality_id)
    assert (report.intact, report.events, report.municipality_id) == (True, 6, b.municipality_id)


def test_events_without_a_municipality_form_their_own_chain(coordinator, operator):
    write(operator, 2)
    write(coordinator, 1)
    write(operator, 1)
    platform = chain_of(None)
    assert len(platform) == 3
    assert_linked(platform)
    assert [e.chain_seq for e in chain_of(coordinator.municipality_id)] == [1]
    report = verify_chain(None)
    assert (report.intact, report.events, report.municipality_id) == (True, 3, None)


def test_the_created_event_carries_the_chain_fields_the_database_gave_it(coordinator):
    first, second = write(coordinator, 2)
    assert (first.chain_seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.chain_seq, second.prev_hash) == (2, first.hash)
    stored = AuditEvent.objects.get(pk=second.pk)
    assert (stored.chain_seq, stored.prev_hash, stored.hash) == (2, first.hash, second.hash)


def test_a_raw_insert_is_chained_and_cannot_choose_its_place_or_hash(coordinator):
    (first,) = write(coordinator, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (municipality_id, actor_username, actor_role, action, object_type, "
            "object_id, basis, detail, chain_seq, prev_hash, hash) "
            "VALUES (%s, 'raw', '', 'read', 'x.y', '1', 'raw sql', '{}', 99, %s, %s) RETURNING id, at",
            [coordinator.municipality_id, "f" * 64, "e" * 64],
        )
        event_id, at = cursor.fetchone()
    raw = AuditEvent.objects.get(pk=event_id)
    assert (raw.chain_seq, raw.prev_hash) == (2, first.hash)
    assert raw.hash not in ("e" * 64, "")
    assert at is not None  # no `at` given: the trigger set it
    assert verify_chain(coordinator.municipality_id).intact


def test_a_writer_that_cannot_see_the_chain_still_extends_it(coordinator, operator):
    """Inside a municipality's scope the application role sees none of the events without a
    municipality (row-level security), yet may write one (a plain INSERT: RETURNING would need to
    see it). The trigger, SECURITY DEFINER, still finds the end of that chain."""
    write(operator, 2)
    with scope(coordinator.municipality_id), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE municipality_id IS NULL")
        visible = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO audit_auditevent (municipality_id, actor_username, actor_role, action, object_type, "
            "object_id, basis, detail) VALUES (NULL, 'platform-op', '', 'read', 'x.y', '1', 'raw sql', '{}')"
        )
        write(coordinator, 1)
    platform = chain_of(None)
    assert visible in (0, 2)  # 0 under row-level security; 2 where the scope's role sees everything
    assert [e.actor_username for e in platform] == ["platform-op"] * 3
    assert_linked(platform)
    assert verify_chain(None).intact
    assert verify_chain(coordinator.municipality_id).intact


def test_the_head_of_a_chain_is_its_last_event(coordinator, operator):
    assert chain_head(coordinator.municipality_id) is None
    *_, last = write(coordinator, 3)
    write(operator, 1)
    assert chain_head(coordinator.municipality_id) == ChainHead(chain_seq=3, hash=last.hash)
    head = chain_head(None)
    assert head is not None and head.chain_seq == 1


def test_the_walk_goes_page_by_page_and_reports_progress(coordinator):
    write(coordinator, 5)
    seen: list[int] = []
    report = verify_chain(coordinator.municipality_id, progress=seen.append, page_size=2, progress_every=2)
    assert (report.intact, report.events) == (True, 5)
    assert seen == [2, 4]


# --- tampering ------------------------------------------------------------------------------------


@pytest.fixture
def five(coordinator) -> list[AuditEvent]:
    return write(coordinator, 5)


def test_an_edited_event_is_the_first_broken_link(five, coordinator):
    tamper("UPDATE audit_auditevent SET basis = 'consent' WHERE id = %s", [five[2].pk])
    report = verify_chain(coordinator.municipality_id)
    assert (report.broken_event_id, report.broken_chain_seq, report.problem) == (five[2].pk, 3, "hash")
    assert report.events == 5
    assert "hash does not match its content" in report.describe()


def test_an_edited_detail_is_caught_too(five, coordinator):
    tamper("UPDATE audit_auditevent SET detail = %s::jsonb WHERE id = %s", ['{"variant": "full"}', five[2].pk])
    report = verify_chain(coordinator.municipality_id)
    assert (report.broken_event_id, report.problem) == (five[2].pk, "hash")


def test_a_deleted_event_breaks_the_chain_at_the_next_one(five, coordinator):
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [five[2].pk])
    report = verify_chain(coordinator.municipality_id)
    assert (report.broken_event_id, report.broken_chain_seq, report.problem) == (five[3].pk, 4, "gap")
    assert report.events == 4


def test_a_deleted_first_event_is_a_gap(five, coordinator):
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [five[0].pk])
    report = verify_chain(coordinator.municipality_id)
    assert (report.broken_event_id, report.broken_chain_seq, report.problem) == (five[1].pk, 2, "gap")


def test_an_edited_event_with_its_hash_recomputed_breaks_the_next_link(five, coordinator):
    tamper(
        "UPDATE audit_auditevent SET basis = 'consent', hash = audit_event_digest(prev_hash, municipality_id, "
        "chain_seq, at, actor_id, actor_username, actor_role, device_token_id, ip, action, object_type, "
        "object_id, 'consent', detail) WHERE id = %s",
        [five[2].pk],
    )
    report = verify_chain(coordinator.municipality_id)
    assert (report.broken_event_id, report.broken_chain_seq, report.problem) == (five[3].pk, 4, "prev_hash")


def test_a_renumbered_chain_after_a_deletion_is_still_caught(five, coordinator):
    """Closing the gap by renumbering leaves the next event pointing at the deleted one's hash."""
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [five[2].pk])
    for event in five[3:]:  # one by one, upwards: the unique chain position holds at every step
        tamper("UPDATE audit_auditevent SET chain_seq = chain_seq - 1 WHERE id = %s", [event.pk])
    report = verify_chain(coordinator.municipality_id)
    assert (report.broken_event_id, report.broken_chain_seq, report.problem) == (five[3].pk, 3, "prev_hash")


def test_tampering_with_one_chain_leaves_the_others_intact(five, coordinator):
    other = factories.user(factories.municipality(), Role.COORDINATOR)
    write(other, 3)
    tamper("UPDATE audit_auditevent SET basis = 'x' WHERE id = %s", [five[0].pk])
    assert not verify_chain(coordinator.municipality_id).intact
    assert verify_chain(other.municipality_id).intact


# --- the command ----------------------------------------------------------------------------------


def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("verify_audit", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_reports_every_chain_intact(five, coordinator, operator):
    write(operator, 2)
    empty = factories.municipality(name="湯梨浜町")
    out, _err = run_command()
    town = coordinator.municipality
    assert f"{town.name} ({town.code}): 5 events, intact" in out
    assert f"{empty.name} ({empty.code}): 0 events, intact" in out
    assert "events without a municipality (platform, failed logins): 2 events, intact" in out


def test_the_command_fails_naming_the_municipality_and_the_event(five, coordinator):
    other = factories.user(factories.municipality(), Role.COORDINATOR)
    write(other, 2)
    tamper("UPDATE audit_auditevent SET object_id = 'someone-else' WHERE id = %s", [five[2].pk])
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit", stdout=out, stderr=io.StringIO())
    town = coordinator.municipality
    assert failure.value.returncode == 1
    message = str(failure.value)
    assert f"{town.name} ({town.code})" in message
    assert f"event {five[2].pk} (chain position 3, hash)" in message
    assert other.municipality.name not in message
    assert (
        f"{town.name} ({town.code}): 5 events, BROKEN at event {five[2].pk} (chain position 3): "
        "hash does not match its content"
    ) in out.getvalue()
    assert f"{other.municipality.name} ({other.municipality.code}): 2 events, intact" in out.getvalue()


def test_the_command_checks_one_municipality_by_code(five, coordinator, operator):
    other = factories.user(factories.municipality(), Role.COORDINATOR)
    write(other, 1)
    tamper("UPDATE audit_auditevent SET basis = 'x' WHERE id = %s", [other_event_id(other)])
    out, _err = run_command("--municipality", coordinator.municipality.code)
    assert out.strip() == f"{coordinator.municipality.name} ({coordinator.municipality.code}): 5 events, intact"
    with pytest.raises(CommandError, match="no municipality with code '000000'"):
        run_command("--municipality", "000000")
    with pytest.raises(CommandError, match=other.municipality.code):
        run_command("--municipality", other.municipality.code)


def other_event_id(user: User) -> int:
    return AuditEvent.objects.filter(actor=user).values_list("pk", flat=True).get()


# --- the digest -----------------------------------------------------------------------------------

EVENT = {
    "prev_hash": GENESIS_HASH,
    "municipality_id": 12,
    "chain_seq": 3,
    "at": dt.datetime(2026, 12, 1, 9, 30, 5, 123456, tzinfo=dt.UTC),
    "actor_id": 7,
    "actor_username": "hokuei-coordinator",
    "actor_role": "coordinator",
    "device_token_id": "4f8c7d7e-3a35-4a47-9d35-0a4a3c7c2f10",
    "ip": "192.0.2.10",
    "action": "read",
    "object_type": "neighborhoods.resident",
    "object_id": "42",
    "basis": "role:coordinator",
    "detail": '{"variant": "full", "fields": ["name", "flags"]}',
}


def digest(**changes) -> str:
    fields = {**EVENT, **changes}
    with connection.cursor() as cursor:
        cursor.execute(DIGEST_SQL, list(fields.values()))
        (value,) = cursor.fetchone()
    return value


@pytest.mark.django_db
def test_the_digest_depends_on_content_only():
    assert digest() == digest()
    assert len(digest()) == 64
    # jsonb: the same object, keys in another order and other spacing
    assert digest(detail='{"fields":["name","flags"],"variant":"full"}') == digest()
    for name, value in [
        ("prev_hash", "1" * 64), ("municipality_id", 13), ("chain_seq", 4), ("actor_id", 8),
        ("at", EVENT["at"] + dt.timedelta(microseconds=1)), ("basis", "consent"), ("detail", "{}"),
        ("ip", "192.0.2.11"), ("device_token_id", "4f8c7d7e-3a35-4a47-9d35-0a4a3c7c2f11"),
    ]:
        assert digest(**{name: value}) != digest(), name


@pytest.mark.django_db
def test_the_digest_tells_null_from_empty_and_keeps_fields_apart():
    assert digest(actor_role=None) != digest(actor_role="")
    assert digest(municipality_id=None) != digest(municipality_id=0)
    assert digest(ip=None) != digest()
    assert digest(object_type="neighborhoods.residen", object_id="t42") != digest()
    assert digest(actor_username='a", "b') != digest(actor_username="a", actor_role='b", "coordinator')


@pytest.mark.django_db
def test_the_digest_ignores_the_session_time_zone():
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        in_utc = digest()
        cursor.execute("SET TIME ZONE 'Asia/Tokyo'")
        in_tokyo = digest()
        tokyo_wall_clock = digest(at=EVENT["at"].astimezone(dt.timezone(dt.timedelta(hours=9))))
        cursor.execute("SET TIME ZONE 'UTC'")
    assert in_utc == in_tokyo == tokyo_wall_clock


def test_events_written_in_another_session_time_zone_verify(coordinator):
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Tokyo'")
        try:
            write(coordinator, 2)
            cursor.execute(
                "INSERT INTO audit_auditevent (municipality_id, actor_username, actor_role, action, object_type, "
                "object_id, basis, detail) VALUES (%s, 'raw', '', 'read', 'x.y', '1', 'raw sql', '{}')",
                [coordinator.municipality_id],
            )
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")
    report = verify_chain(coordinator.municipality_id)
    assert (report.intact, report.events) == (True, 3)


# --- concurrent writers ---------------------------------------------------------------------------


def in_own_connection(fn):
    """Run `fn` on a thread of its own, with its own database connection, closed at the end."""

    def run(*args):
        try:
            return fn(*args)
        finally:
            connection.close()

    return run


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_municipality_form_one_intact_chain():
    town = factories.municipality()
    users = [factories.user(town, Role.COORDINATOR) for _ in range(8)]
    start = threading.Barrier(len(users))

    @in_own_connection
    def writer(user: User) -> int:
        start.wait(timeout=30)
        return len(write(user, 25, prefix=f"{user.pk}-"))

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        assert list(pool.map(writer, users)) == [25] * 8

    events = chain_of(town.pk)
    assert len(events) == 200
    assert len({e.chain_seq for e in events}) == 200
    assert_linked(events)
    report = verify_chain(town.pk)
    assert (report.intact, report.events) == (True, 200)


@pytest.mark.django_db(transaction=True)
def test_writers_of_one_municipality_wait_for_each_other_and_other_municipalities_do_not():
    a = factories.user(factories.municipality(), Role.COORDINATOR)
    b = factories.user(factories.municipality(), Role.COORDINATOR)

    @in_own_connection
    def other_connection() -> tuple[float, BaseException | None]:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        started = time.monotonic()
        with transaction.atomic():
            write(b, 1)
        b_took = time.monotonic() - started
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        try:
            with transaction.atomic():
                write(a, 1, prefix="blocked")
        except OperationalError as exc:
            return b_took, exc
        return b_took, None

    with transaction.atomic():
        write(a, 1)  # holds municipality A's chain lock until this block ends
        with ThreadPoolExecutor(max_workers=1) as pool:
            b_took, a_failure = pool.submit(other_connection).result(timeout=30)

    assert b_took < 2
    assert isinstance(a_failure, OperationalError)
    assert isinstance(a_failure.__cause__, psycopg.errors.LockNotAvailable)
    # The timed-out insert left nothing behind; A's chain continues where the open transaction left it.
    write(a, 1, prefix="after")
    assert [e.object_id for e in chain_of(a.municipality_id)] == ["e0", "after0"]
    assert_linked(chain_of(a.municipality_id))
    assert verify_chain(a.municipality_id).intact
    assert verify_chain(b.municipality_id).intact
    assert len(chain_of(b.municipality_id)) == 1
