"""`manage.py retention [--dry-run] [--municipality CODE] [--today YYYY-MM-DD]`: purge the records
whose retention period (保存年限, settings.TSUNAGU_RETENTION) has passed, or with --dry-run only show
what would go. Prints, per municipality and kind, the cutoff and the counts (never contents).

The daily job (audit.tasks.retention_daily_task) does the same without --dry-run. Exit status 1
(CommandError) when a municipality failed; the others are still processed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from backend import retention
from backend.tenancy import municipality_ids
from neighborhoods.models import Municipality


class Command(BaseCommand):
    help = "Purge the personal records whose retention period (保存年限) has passed; --dry-run to only count them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
        parser.add_argument(
            "--municipality", metavar="CODE", help="only this municipality (its 6-digit 全国地方公共団体コード)"
        )
        parser.add_argument(
            "--today", metavar="YYYY-MM-DD", help="run as if on this day (default: today in Asia/Tokyo)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        today = self._today(options["today"])
        years = retention.retention_years()
        if options["municipality"] is not None:
            town = Municipality.objects.filter(code=options["municipality"]).first()
            if town is None:
                raise CommandError(f"no municipality with code {options['municipality']!r}")
            towns = [town]
        else:
            # The municipality table holds public facts and has no tenant policy.
            by_id = Municipality.objects.in_bulk(municipality_ids())
            towns = [by_id[pk] for pk in sorted(by_id)]

        verb = "would go" if dry_run else "purged"
        self.stdout.write(
            f"保存年限 {today.isoformat()}"
            + (" (dry run: nothing is deleted)" if dry_run else "")
            + ": " + ", ".join(f"{kind} {n} year{'' if n == 1 else 's'}" for kind, n in years.items())
        )
        total = 0
        failed: list[str] = []
        for position, town in enumerate(towns, start=1):
            label = f"{town.code} {town.name}"
            self.stdout.write(f"[{position}/{len(towns)}] {label}")
            self.stdout.flush()
            try:
                report = retention.purge(town.pk, today, dry_run=dry_run)
            except Exception as exc:
                # The municipality's transaction was rolled back; carry on with the others.
                self.stderr.write(f"  failed, nothing of it was purged: {type(exc).__name__}: {exc}")
                failed.append(label)
                continue
            for kind, keys in retention.COUNT_KEYS.items():
                counts = ", ".join(f"{key} {report.counts[key]}" for key in keys if report.counts[key])
                self.stdout.write(f"  {kind:<8} {report.cutoffs[kind]}: {counts or 'nothing'}")
            suffix = f" (audit event {report.audit_event_id})" if report.audit_event_id else ""
            self.stdout.write(f"  {report.total} records {verb}{suffix}")
            total += report.total
        self.stdout.write(f"Done: {len(towns) - len(failed)} of {len(towns)} municipalities, {total} records {verb}.")
        if failed:
            raise CommandError("retention failed for: " + "; ".join(failed))

    @staticmethod
    def _today(value: str | None) -> dt.date:
        if value is None:
            return timezone.localdate()
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--today must be a date like 2026-04-01, not {value!r}") from None
