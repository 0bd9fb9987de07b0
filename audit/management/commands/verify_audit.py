"""`manage.py verify_audit [--municipality CODE]`: walk the audit hash chains and report each one.

Exit status 1 (CommandError) when any chain is broken. What it proves and what it cannot: see
audit/chain.py and README ("The audit log").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.chain import ChainReport, verify_chain
from backend.tenancy import municipality_ids
from neighborhoods.models import Municipality

NO_MUNICIPALITY = "events without a municipality (platform, failed logins)"


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chains (one per municipality, plus the events without a "
        "municipality): every event's hash, its link to the previous event, no missing positions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--municipality",
            metavar="CODE",
            help="verify only this municipality's chain (its 6-digit 全国地方公共団体コード)",
        )

    def handle(self, *args: Any, municipality: str | None = None, **options: Any) -> None:
        if municipality is not None:
            town = Municipality.objects.filter(code=municipality).first()
            if town is None:
                raise CommandError(f"no municipality with code {municipality!r}")
            chains: list[tuple[int | None, str]] = [(town.pk, f"{town.name} ({town.code})")]
        else:
            # The municipality table holds public facts and has no tenant policy.
            towns = Municipality.objects.in_bulk(municipality_ids())
            chains = [(pk, f"{town.name} ({town.code})") for pk, town in sorted(towns.items())]
            chains.append((None, NO_MUNICIPALITY))

        broken: list[str] = []
        for municipality_id, label in chains:
            report = verify_chain(municipality_id, progress=self._progress(label))
            self.stdout.write(f"{label}: {report.describe()}")
            if not report.intact:
                broken.append(self._summary(label, report))
        if broken:
            raise CommandError("audit log chain broken: " + "; ".join(broken))

    def _progress(self, label: str) -> Callable[[int], None]:
        def report(events: int) -> None:
            self.stderr.write(f"  {label}: {events:,} events checked …")
            self.stderr.flush()

        return report

    @staticmethod
    def _summary(label: str, report: ChainReport) -> str:
        return f"{label} at event {report.broken_event_id} (chain position {report.broken_chain_seq}, {report.problem})"
