"""Importing a municipality's users from CSV (manage.py import_users): reading and validating the
file, then creating or updating the users through accounts.services, all or nothing.

The file (UTF-8 or CP932) has a header line; English or Japanese headers:

    username / ユーザー名 / ログインID           required: the login id (ASCII letters, digits, @ . + - _)
    display_name / 氏名 / 表示名                 required
    role / 役割 / ロール                          required: a role code or its Japanese name (民生委員 …)
    corporation / 法人コード                      an outreach worker's corporation (its code)
    neighborhoods / 自治会コード                  a 民生委員's 自治会 codes, separated by ; ・ or 、
    email / メール / メールアドレス               optional

A username of this municipality that exists already is updated where the file differs (never its
password) and left alone where it does not; a username of another municipality is an error
(usernames are one login for the whole service). New users get no usable password: each, and each
existing user who has not chosen one yet, gets a one-time set-password link."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pghistory
from django.db import transaction

from accounts import services
from accounts.models import User
from accounts.roles import Role
from backend.csv_input import CsvFile, ImportFailed, Problems, RowReader, read_csv
from backend.errors import TsunaguError
from backend.text import text_problem
from neighborhoods.models import Municipality, Neighborhood
from visits.models import PartnerOrganization


def _key(text: str) -> str:
    """How names and codes are compared: NFKC (full-width letters and digits as ASCII), no case,
    no surrounding spaces."""
    return unicodedata.normalize("NFKC", text).strip().lower()


# canonical column -> the headers accepted for it
COLUMNS: dict[str, tuple[str, ...]] = {
    "username": ("username", "ユーザー名", "ユーザ名", "ログインid", "ログイン名"),
    "display_name": ("display_name", "氏名", "表示名", "名前"),
    "role": ("role", "役割", "ロール"),
    "corporation": ("corporation", "法人コード"),
    "neighborhoods": ("neighborhoods", "自治会コード"),
    "email": ("email", "メール", "メールアドレス"),
}
REQUIRED = ("username", "display_name", "role")

# What a role may be called in the file: its code, its label, and the names people use.
ROLE_NAMES: dict[str, Role] = {
    _key(name): role
    for role, names in {
        Role.COORDINATOR: ("コーディネーター", "コーディネータ", "相談支援包括化推進員"),
        Role.SUPERVISOR: ("監督者", "閲覧者"),
        Role.OUTREACH_WORKER: ("訪問員", "アウトリーチ", "アウトリーチ支援員", "訪問支援員"),
        Role.COMMISSIONER: ("民生委員", "児童委員", "民生委員・児童委員", "民生委員児童委員"),
        Role.ADMIN: ("管理者", "システム管理者"),
    }.items()
    for name in (role.value, str(role.label), *names)
}
CODE_SEPARATORS = re.compile("[;；・、,，]")


@dataclass(frozen=True)
class UserRow:
    line: int
    username: str
    display_name: str
    role: Role
    corporation: str  # the code as written ("" for none)
    neighborhoods: tuple[str, ...]  # the codes as written
    email: str
    # False when the row has problems of its own: its corporation and 自治会 codes are still looked
    # up (every problem of the file at once), but it is never written
    valid: bool = True


@dataclass
class IssuedLink:
    username: str
    display_name: str
    url: str
    expires_at: datetime


@dataclass
class UserImport:
    file: str
    encoding: str
    rows: int
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    links: list[IssuedLink] = field(default_factory=list)  # none in a dry run
    needs_link: list[str] = field(default_factory=list)  # who gets (or, in a dry run, would get) a link
    dry_run: bool = False


# ---------------------------------------------------------------------------------------------
# Reading


def _columns(file: CsvFile) -> dict[str, str]:
    """canonical column -> the file's header for it; a missing required one, or a header given
    twice, is an error on line 1."""
    accepted = {_key(name): canonical for canonical, names in COLUMNS.items() for name in names}
    found: dict[str, str] = {}
    problems = []
    for header in file.columns:
        canonical = accepted.get(_key(header))
        if canonical is None:
            continue
        if canonical in found:
            problems.append(f"{file.name}:1: columns {found[canonical]!r} and {header!r} both give {canonical}")
        found[canonical] = header
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        names = "; ".join(f"{c} ({' / '.join(COLUMNS[c][:3])})" for c in missing)
        problems.append(f"{file.name}:1: missing column(s): {names} (found: {', '.join(file.columns)})")
    if problems:
        raise ImportFailed(problems)
    return found


class Headers:
    """The file's own header for each canonical column (or the canonical name when the file has
    none), so that problems name the column as the operator wrote it."""

    def __init__(self, file: CsvFile) -> None:
        self.columns = _columns(file)

    def __call__(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)


def read_users(file: CsvFile, header: Headers) -> tuple[list[UserRow], Problems]:
    """Every row checked on its own (the database is not asked yet): text, username, role, email,
    a duplicate username (naming the line it first appears on), and what the role needs."""
    problems = Problems(file.name)
    rows: list[UserRow] = []
    first_line: dict[str, int] = {}
    for raw in file.rows:
        row = RowReader(raw, problems)
        for column, value in raw.values.items():
            problem = text_problem(value, multiline=False) if column else None
            if problem:
                row.error(column, problem)
        if not row.ok:
            continue
        username = unicodedata.normalize(
            "NFKC", row.text(header("username"), max_length=services.USERNAME_MAX_LENGTH, required=True)
        )
        if row.ok and (problem := services.username_problem(username)):
            row.error(header("username"), problem)
        display_name = row.text(header("display_name"), max_length=100, required=True)
        role_name = raw.values.get(header("role"), "")
        role = ROLE_NAMES.get(_key(role_name))
        if not role_name:
            row.error(header("role"), "is required")
        elif role is None:
            row.error(header("role"), f"unknown role {role_name!r} (use one of: {', '.join(r.value for r in Role)}, "
                                      "or 民生委員, コーディネーター, 訪問員, 監督者, 管理者)")
        corporation = raw.values.get(header("corporation"), "")
        hoods = tuple(dict.fromkeys(
            c.strip() for c in CODE_SEPARATORS.split(raw.values.get(header("neighborhoods"), "")) if c.strip()
        ))
        email = row.text(header("email"), max_length=254)
        if problem := services.email_problem(email):
            row.error(header("email"), problem)
        if role is not None:
            for p in services.role_field_problems(role=role, partner_organization=corporation or None, neighborhoods=hoods):
                row.error(header(FIELD_COLUMNS[p.field]), _column_words(p.message))
        if username in first_line:
            row.error(header("username"), f"{username!r} is given twice (first on line {first_line[username]})")
        first_line.setdefault(username, raw.line)
        if role is not None:
            rows.append(UserRow(line=raw.line, username=username, display_name=display_name, role=role,
                                corporation=corporation, neighborhoods=hoods, email=email, valid=row.ok))
    return rows, problems


# the services' field -> the file's column
FIELD_COLUMNS = {"partner_organization": "corporation", "neighborhoods": "neighborhoods"}


def _column_words(message: str) -> str:
    """The rule's words, with the file's notions: a corporation code, 自治会 codes."""
    return message.replace("needs the corporation they work for", "needs a corporation code (法人コード)").replace(
        "needs at least one 自治会", "needs at least one 自治会 code (自治会コード)")


# ---------------------------------------------------------------------------------------------
# Writing


def import_users(*, municipality: Municipality, path: str | Path, encoding: str = "auto",
                 dry_run: bool = False) -> UserImport:
    """Create and update the users of `municipality` from a CSV file, all or nothing. Must run in
    the municipality's tenant scope (backend.tenancy.scope). Returns what was done and the links of
    the users who have not chosen a password yet (none in a dry run: those users do not exist)."""
    file = read_csv(path, encoding=encoding)
    header = Headers(file)
    rows, problems = read_users(file, header)
    report = UserImport(file=file.name, encoding=file.encoding, rows=len(file.rows), dry_run=dry_run)
    with transaction.atomic(), pghistory.context(command="import_users", file=file.name):
        partners = {_key(p.code): p for p in PartnerOrganization.objects.filter(municipality=municipality)}
        hoods = {_key(h.code): h for h in Neighborhood.objects.filter(municipality=municipality)}
        existing = {
            u.username: u
            for u in User.objects.filter(municipality=municipality, username__in=[r.username for r in rows])
        }
        waiting = []
        for row in rows:
            user = _write(row, municipality, partners, hoods, existing.get(row.username), problems, report, header)
            if user is not None and user.is_active and not user.has_usable_password():
                waiting.append(user)
        if problems:
            raise ImportFailed(problems.messages)
        report.needs_link = [u.username for u in waiting]
        if dry_run:
            transaction.set_rollback(True)
        else:
            for user in waiting:
                link = services.issue_set_password_link(user=user, by=None)
                report.links.append(IssuedLink(username=user.username, display_name=user.display_name, url=link.url,
                                               expires_at=link.expires_at))
    return report


def _write(row: UserRow, municipality: Municipality, partners: dict[str, PartnerOrganization],
           hoods: dict[str, Neighborhood], user: User | None, problems: Problems, report: UserImport,
           header: Headers) -> User | None:
    """Create or update one row's user; a problem is recorded with the row's line."""
    partner = partners.get(_key(row.corporation)) if row.corporation else None
    if row.corporation and partner is None:
        problems.add(row.line, header("corporation"), f"no corporation with code {row.corporation!r} in {municipality.name}")
    unknown = [code for code in row.neighborhoods if _key(code) not in hoods]
    if unknown:
        problems.add(row.line, header("neighborhoods"), f"no 自治会 with code {', '.join(map(repr, unknown))} in {municipality.name}")
    if (row.corporation and partner is None) or unknown or not row.valid:
        return None
    chosen = [hoods[_key(code)] for code in row.neighborhoods]
    try:
        with transaction.atomic():  # a savepoint: a refused row must not end the transaction
            if user is None:
                user = services.register_user(
                    municipality=municipality, by=None, username=row.username, role=row.role.value,
                    display_name=row.display_name, email=row.email, partner_organization=partner, neighborhoods=chosen,
                )
                report.created.append(row.username)
            elif services.change_user(user=user, by=None, changes={
                "role": row.role.value, "display_name": row.display_name, "email": row.email,
                "partner_organization": partner, "neighborhoods": chosen,
            }).changed:
                report.updated.append(row.username)
            else:
                report.unchanged.append(row.username)
    except TsunaguError as exc:
        if exc.code == "username_taken":
            problems.add(row.line, header("username"), f"{row.username!r} belongs to another municipality's account "
                                               "(usernames are unique across the service)")
        else:
            problems.add(row.line, None, exc.message)
        return None
    return user
