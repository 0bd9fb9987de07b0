"""Whose rows a database session may see: the tenant scope behind row-level security.

PostgreSQL enforces tenancy (the rls app installs the policies): every table that carries a
municipality shows and accepts only the rows of the municipality named by the session setting
``tsunagu.municipality_id``, and nothing at all when the setting is empty (fail closed). The
application sets it from the authenticated user and from nothing else:

- a request: `rls.middleware.TenantScopeMiddleware` (browser sessions) and the API's token
  authentication enter the user's scope; the scope is left when the request ends, so a reused
  connection never carries one request's tenant into the next;
- a job: takes a municipality id and runs ``with job_scope(municipality_id):``; jobs that span
  municipalities loop over `municipality_ids()` and enter each in turn.

Entering a scope also makes the session act as the application's database role (``SET ROLE``), so
the policies and privileges apply even where the connection was opened by the schema owner (the
test suite's fixtures, an operator's command). Entering and leaving only change the stack kept on
the connection; the settings themselves are made right by `ensure_settings` just before the next
query, in one statement, unless a statement already made them in passing: a request's likely last
statement returns to the outside ones (`execute(..., last=True)`) and records it, so whatever was made, the
next query still gets the settings its scope wants.

Platform operators (a superuser without a municipality) get the platform scope: the structure
tables (users, 自治会, corporations, audit) of every municipality, and still no people data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connections

TENANT_SETTING = "tsunagu.municipality_id"
PLATFORM_SETTING = "tsunagu.platform"


@dataclass(frozen=True)
class Scope:
    """What a session is allowed to see: one municipality, the platform's structure, or nothing."""

    municipality_id: int | None = None
    platform: bool = False

    def __post_init__(self) -> None:
        if self.municipality_id is not None and (
            isinstance(self.municipality_id, bool) or not isinstance(self.municipality_id, int)
        ):
            raise TypeError(f"a tenant is a municipality id, not {self.municipality_id!r}")
        if self.platform and self.municipality_id is not None:
            raise ValueError("the platform scope has no municipality")


NOTHING = Scope()
PLATFORM = Scope(platform=True)


# What the session settings must be, as (role, tenant, platform): outside any scope the login role
# and no tenant; inside one the application's role and the scope's municipality.
Settings = tuple[str, str, str]
OUTSIDE: Settings = ("none", "", "")


@dataclass
class _Connection:
    """The scope stack of one database connection, and what was last set on it."""

    stack: list[Scope] = field(default_factory=list)
    applied: Settings | None = OUTSIDE
    # Set inside a transaction, settings last only if it commits: the transaction (its outermost
    # atomic block) and the savepoints they were set in.
    atomic: object | None = None
    savepoints: tuple[str | None, ...] = ()


def _state(conn: Any) -> _Connection:
    state = getattr(conn, "_tsunagu_tenancy", None)
    if state is None:
        state = _Connection()
        conn._tsunagu_tenancy = state
    return state


def app_role() -> str:
    return settings.TSUNAGU_DB_APP_ROLE


def _wanted(state: _Connection) -> Settings:
    if not state.stack:
        return OUTSIDE
    top = state.stack[-1]
    return (app_role(), "" if top.municipality_id is None else str(top.municipality_id), "on" if top.platform else "")


def _still_set(conn: Any, state: _Connection) -> bool:
    """Settings made in autocommit hold. Made in a transaction, they hold while it and the
    savepoints they were made in last; once it has ended (committed or rolled back: we do not
    know which) they are made again, at the cost of one statement."""
    if state.applied is None:
        return False
    if state.atomic is None:
        return True
    blocks = getattr(conn, "atomic_blocks", [])
    if blocks and blocks[0] is state.atomic:
        return tuple(conn.savepoint_ids[: len(state.savepoints)]) == state.savepoints
    return False


def _set(conn: Any, state: _Connection, wanted: Settings) -> None:
    role, tenant, platform = wanted
    # The raw connection: one round trip, outside the query log (query counts stay the handler's).
    conn.connection.execute(
        "SELECT set_config('role', %s, false), set_config(%s, %s, false), set_config(%s, %s, false)",
        [role, TENANT_SETTING, tenant, PLATFORM_SETTING, platform],
    )
    _made(conn, state, wanted)


def _made(conn: Any, state: _Connection, made: Settings) -> None:
    state.applied = made
    if conn.in_atomic_block:
        state.atomic, state.savepoints = conn.atomic_blocks[0], tuple(conn.savepoint_ids)
    else:
        state.atomic = None


# The outside settings (OUTSIDE) as a statement of constants, for execute(last=True).
_OUTSIDE_SQL = "SELECT " + ", ".join(
    f"set_config('{name}', '{value}', false)"
    for name, value in zip(("role", TENANT_SETTING, PLATFORM_SETTING), OUTSIDE, strict=True)
)


def execute(cursor: Any, sql: str, params: Any, *, last: bool = False) -> None:
    """Run `sql` on a Django cursor. `last`: it is likely the request's last statement (a tile's),
    so the statement that returns the session to the outside settings follows it in the same round
    trip (the caller's first result stays the cursor's current one) and is recorded, and the reset
    at the request's end (rls.middleware) has nothing left to do. Should another query follow
    after all, its scope's settings are made again first."""
    cursor.execute(f"{sql};\n{_OUTSIDE_SQL}" if last else sql, params)
    if last:
        _made(cursor.db, _state(cursor.db), OUTSIDE)


def apply_now(conn: Any) -> None:
    """Make the connection's session settings those of its current scope, if they are not (one
    statement, or none). Queries get it from ensure_settings; a request's end calls it directly
    (rls.middleware), so an idle persistent connection holds no tenant."""
    state = _state(conn)
    wanted = _wanted(state)
    if wanted != state.applied or not _still_set(conn, state):
        _set(conn, state, wanted)


def ensure_settings(execute: Any, sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """Runs before every query (a Django execute wrapper, installed on every connection): the
    session settings are made right first, if they are not. Entering and leaving a scope costs
    nothing until a query needs it, so a request that never touches the database never does."""
    apply_now(context["connection"])
    return execute(sql, params, many, context)


def connection_opened(conn: Any) -> None:
    """A new connection has the login role and no settings; queries on it get ensure_settings."""
    state = _state(conn)
    state.applied, state.atomic = OUTSIDE, None
    if ensure_settings not in conn.execute_wrappers:
        conn.execute_wrappers.insert(0, ensure_settings)


def current(alias: str = "default") -> Scope:
    """The scope entered last on this connection (NOTHING outside any scope)."""
    stack = _state(connections[alias]).stack
    return stack[-1] if stack else NOTHING


def enter(new: Scope, alias: str = "default") -> None:
    """Enter `new` until the matching `leave()`. Prefer `scope()`; requests use the pair directly."""
    _state(connections[alias]).stack.append(new)


def in_scope(alias: str = "default") -> bool:
    return bool(_state(connections[alias]).stack)


def switch(new: Scope, alias: str = "default") -> None:
    """Replace the innermost scope (a request's, once its caller is known)."""
    stack = _state(connections[alias]).stack
    if not stack:
        raise RuntimeError("switch() needs a scope to replace: enter() one first")
    stack[-1] = new


def leave(alias: str = "default") -> None:
    """Return to the scope (and role) in force before the matching `enter()`."""
    stack = _state(connections[alias]).stack
    if stack:
        stack.pop()


@contextmanager
def entered(new: Scope, *, alias: str = "default") -> Iterator[Scope]:
    """Act as the application within `new`, then return to what was before."""
    enter(new, alias)
    try:
        yield new
    finally:
        leave(alias)


def scope(municipality_id: int | None, *, alias: str = "default") -> AbstractContextManager[Scope]:
    """Act as the application for one municipality (``None``: fail closed, see nothing)."""
    return entered(Scope(municipality_id=municipality_id), alias=alias)


def platform_scope(*, alias: str = "default") -> AbstractContextManager[Scope]:
    """Act as the platform operator's tool: the structure of every municipality, no people."""
    return entered(PLATFORM, alias=alias)


class TenantRequired(Exception):
    """A job was started without a municipality to work for."""


@contextmanager
def job_scope(municipality_id: object, *, alias: str = "default") -> Iterator[Scope]:
    """A job's scope: it must name an existing municipality, or it does nothing at all."""
    if isinstance(municipality_id, bool) or not isinstance(municipality_id, int) or municipality_id <= 0:
        raise TenantRequired(f"a job needs the id of the municipality it works for, not {municipality_id!r}")
    from neighborhoods.models import Municipality

    if not Municipality.objects.filter(pk=municipality_id).exists():
        raise TenantRequired(f"no municipality with id {municipality_id}")
    with scope(municipality_id, alias=alias) as entered:
        yield entered


def municipality_ids() -> list[int]:
    """Every municipality, for jobs that run once per municipality. The municipality table holds
    public facts (code, name) and has no tenant policy."""
    from neighborhoods.models import Municipality

    return list(Municipality.objects.order_by("id").values_list("id", flat=True))


def lookup_scope(kind: str, value: str | int) -> Scope:
    """Before a caller is authenticated no tenant is set, so the users and tokens they name are
    invisible. These database functions (SECURITY DEFINER, owned by the schema owner) answer only
    which scope a token, a username or a session's user id belongs to; the rows themselves are
    then read inside that scope."""
    function = {
        "token": "tsunagu_scope_of_token",
        "username": "tsunagu_scope_of_username",
        "user": "tsunagu_scope_of_user",
    }[kind]
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT municipality_id, platform FROM {function}(%s)", [value])  # noqa: S608 - a name from the table above
        row = cursor.fetchone()
    if row is None:
        return NOTHING
    municipality_id, platform = row
    if municipality_id is not None:
        return Scope(municipality_id=int(municipality_id))
    return PLATFORM if platform else NOTHING
