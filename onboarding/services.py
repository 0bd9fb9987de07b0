"""Onboarding writes: a municipality from its code, its partner corporations from a CSV file.

Each is idempotent (what is already so is not written again), all or nothing (every problem is
reported, nothing is written), and has a dry run that reports what a real run would do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import jaconv
from django.db import connection, transaction

from backend.csv_input import ImportFailed
from backend.errors import Conflict, InvalidInput
from backend.text import text_problem
from neighborhoods import municipality_code
from neighborhoods.models import Municipality
from onboarding.partners import PartnerRow, read_partners
from visits.models import PartnerOrganization

# ---------------------------------------------------------------------------------------------
# Municipality

NAME_MAX = Municipality._meta.get_field("name").max_length or 100
KANA_MAX = Municipality._meta.get_field("name_kana").max_length or 100
# Every 市町村 and 特別区 is named …市, …区, …町 or …村.
_MUNICIPALITY_SUFFIX = ("市", "区", "町", "村")
# 東伯郡北栄町: the 郡 is part of the address, not of the name (小郡市 and 郡山市 are names).
_WITH_GUN = re.compile(r"^.{2,}郡.+[町村]$")
_KATAKANA = re.compile(r"^[\u30a0-\u30ff ]+$")


@dataclass
class MunicipalityResult:
    municipality: Municipality
    outcome: str  # created | updated | unchanged
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)  # field -> (before, after)
    same_name: list[str] = field(default_factory=list)  # codes of others of the same name and prefecture
    dry_run: bool = False


def _name_problem(name: str, prefecture: str) -> str | None:
    if not name:
        return "--name: is empty"
    problem = text_problem(name, multiline=False)
    if problem:
        return f"--name: {problem}"
    if len(name) > NAME_MAX:
        return f"--name: is {len(name)} characters long (at most {NAME_MAX})"
    if name.startswith(prefecture):
        return f"--name: give the name without the prefecture ({name[len(prefecture):]!r})"
    if _WITH_GUN.match(name):
        return f"--name: give the name without the 郡 ({name[name.index('郡') + 1:]!r})"
    if not name.endswith(_MUNICIPALITY_SUFFIX):
        return f"--name: {name!r} does not end in 市, 区, 町 or 村"
    return None


def normalize_kana(kana: str) -> str:
    """Half-width and hiragana readings as full-width katakana (ほくえいちょう → ホクエイチョウ)."""
    return jaconv.hira2kata(municipality_code.normalize(kana))


def _kana_problem(kana: str) -> str | None:
    problem = text_problem(kana, multiline=False)
    if problem:
        return f"--name-kana: {problem}"
    if len(kana) > KANA_MAX:
        return f"--name-kana: is {len(kana)} characters long (at most {KANA_MAX})"
    if not _KATAKANA.match(kana):
        return f"--name-kana: {kana!r} is not written in katakana"
    return None


def _check_municipality(
    code: str, prefecture: str, name: str, kana: str | None,
) -> tuple[municipality_code.MunicipalityCode | None, list[str]]:
    """The parsed code and every problem of the arguments (all at once)."""
    parsed: municipality_code.MunicipalityCode | None = None
    try:
        parsed = municipality_code.parse_code(code)
    except InvalidInput as exc:
        problems = [exc.message]
    else:
        problems = [p for p in [municipality_code.prefecture_problem(parsed, prefecture)] if p]
    in_prefecture = parsed.prefecture if parsed else municipality_code.normalize(prefecture)
    problems += [p for p in (_name_problem(name, in_prefecture), kana and _kana_problem(kana)) if p]
    if kana == "":
        problems.append("--name-kana: is empty (leave the option out to keep the reading as it is)")
    return parsed, problems


def create_municipality(
    *, code: str, prefecture: str, name: str, name_kana: str | None = None, update: bool = False, dry_run: bool = False,
) -> MunicipalityResult:
    """Create the municipality `code`, or confirm it is already so. A different name (or reading)
    of an existing code is refused (Conflict) unless `update`: renaming is rare and deliberate.
    `name_kana` None leaves an existing reading as it is."""
    name = name.strip()
    kana = normalize_kana(name_kana) if name_kana is not None else None
    parsed, problems = _check_municipality(code, prefecture, name, kana)
    if parsed is None or problems:
        raise InvalidInput("\n".join(problems), details=problems)

    wanted = {"prefecture": parsed.prefecture, "name": name}
    if kana is not None:
        wanted["name_kana"] = kana
    with transaction.atomic():
        existing = Municipality.objects.select_for_update().filter(code=parsed.code).first()
        if existing is None:
            result = MunicipalityResult(Municipality(code=parsed.code, **{"name_kana": "", **wanted}), "created")
        else:
            changes = {f: (getattr(existing, f), v) for f, v in wanted.items() if getattr(existing, f) != v}
            if changes and not update:
                raise Conflict(
                    f"{parsed.code} is already {existing.prefecture}{existing.name}"
                    f"{f' ({existing.name_kana})' if existing.name_kana else ''}; "
                    f"pass --update to change {', '.join(f'{f} to {after!r}' for f, (_, after) in changes.items())}",
                    code="municipality_exists",
                )
            for f, (_, after) in changes.items():
                setattr(existing, f, after)
            result = MunicipalityResult(existing, "updated" if changes else "unchanged", changes)
        town = result.municipality
        result.same_name = list(
            Municipality.objects.filter(prefecture=town.prefecture, name=town.name)
            .exclude(code=town.code).values_list("code", flat=True)
        )
        result.dry_run = dry_run
        if dry_run or result.outcome == "unchanged":
            return result
        town.full_clean()
        if result.outcome == "created":
            town.save()
        else:
            town.save(update_fields=list(result.changes))
    return result


# ---------------------------------------------------------------------------------------------
# Partner corporations

PARTNER_FIELDS = ("name", "address", "phone", "contact_person", "office")


@dataclass
class PartnerImport:
    file: str
    encoding: str
    created: list[str] = field(default_factory=list)  # codes
    updated: dict[str, list[str]] = field(default_factory=dict)  # code -> changed fields
    unchanged: list[str] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)  # the municipality's other partners, left as they are
    dry_run: bool = False


def _office_key(office: object) -> tuple[float, float] | None:
    return None if office is None else (office.x, office.y)  # type: ignore[attr-defined]


def _differences(partner: PartnerOrganization, row: PartnerRow) -> list[str]:
    changed = [f for f in PARTNER_FIELDS if f != "office" and getattr(partner, f) != getattr(row, f)]
    if _office_key(partner.office) != _office_key(row.office):
        changed.append("office")
    return changed


def import_partners(*, municipality: Municipality, path: str | Path, encoding: str = "auto",
                    dry_run: bool = False) -> PartnerImport:
    """Upsert the municipality's partner corporations by code from a CSV file. All or nothing:
    with any invalid row, ImportFailed lists every problem (file:line) and nothing is written.
    Rows equal to what is stored are not written; partners absent from the file are left alone.
    Call inside `backend.tenancy.scope(municipality.id)`."""
    file, rows, problems = read_partners(path, encoding=encoding)
    if problems:
        raise ImportFailed(problems.messages)
    report = PartnerImport(file=file.name, encoding=file.encoding, dry_run=dry_run)
    with transaction.atomic():
        with connection.cursor() as cursor:  # one partner import per municipality at a time
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('onboarding.import_partners'), %s)", [municipality.pk])
        existing = {p.code: p for p in PartnerOrganization.objects.filter(municipality=municipality).select_for_update()}
        new: list[PartnerOrganization] = []
        changed: list[PartnerOrganization] = []
        for row in rows:
            partner = existing.get(row.code)
            if partner is None:
                new.append(PartnerOrganization(municipality=municipality, code=row.code,
                                               **{f: getattr(row, f) for f in PARTNER_FIELDS}))
                report.created.append(row.code)
                continue
            fields = _differences(partner, row)
            if not fields:
                report.unchanged.append(row.code)
                continue
            for f in fields:
                setattr(partner, f, getattr(row, f))
            changed.append(partner)
            report.updated[row.code] = fields
        in_file = {row.code for row in rows}
        report.not_in_file = sorted(code for code in existing if code not in in_file)
        if dry_run:
            return report
        PartnerOrganization.objects.bulk_create(new)
        for partner in changed:
            partner.save(update_fields=report.updated[partner.code])
    return report
