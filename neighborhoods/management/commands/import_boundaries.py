"""manage.py import_boundaries PATH --municipality CODE: 自治会 boundaries from GeoJSON, Shapefile or
GeoPackage. The work is in neighborhoods.importers.boundaries; this parses options and prints."""

import argparse

from django.core.management.base import BaseCommand

from neighborhoods.importers.boundaries import (
    DEFAULT_GAP_M2,
    DEFAULT_OVERLAP_M2,
    BoundaryImportResult,
    FieldNames,
    import_boundaries,
)
from neighborhoods.models import Municipality
from neighborhoods.municipality_code import municipality_command


def _square_metres(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


class Command(BaseCommand):
    help = (
        "Create or update a municipality's 自治会 (by code) from a GeoJSON, Shapefile or GeoPackage; "
        "reprojects to EPSG:4326, repairs invalid rings, reports overlaps and gaps. All or nothing."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("path", help="GeoJSON, Shapefile (.shp) or GeoPackage file")
        parser.add_argument("--municipality", required=True, help="6-digit 全国地方公共団体コード")
        parser.add_argument("--layer", default=None, help="layer name (default: the first layer)")
        parser.add_argument("--code-field", dest="code_field", default="code")
        parser.add_argument("--name-field", dest="name_field", default="name")
        parser.add_argument("--kana-field", dest="kana_field", default="kana")
        parser.add_argument("--district-field", dest="district_field", default="district", help="地区")
        parser.add_argument("--area-field", dest="area_field", default="area", help="日常生活圏域")
        parser.add_argument(
            "--srid", type=int, default=None, help="source EPSG code, when the file has none or a wrong one"
        )
        parser.add_argument(
            "--encoding", default=None, help="Shapefile text encoding, overrides .cpg (e.g. cp932)"
        )
        parser.add_argument(
            "--overlap-threshold", dest="overlap_threshold", type=_square_metres, default=DEFAULT_OVERLAP_M2,
            help=f"report overlaps larger than this many m² (default {DEFAULT_OVERLAP_M2:g})",
        )
        parser.add_argument(
            "--gap-threshold", dest="gap_threshold", type=_square_metres, default=DEFAULT_GAP_M2,
            help=f"report gaps larger than this many m² (default {DEFAULT_GAP_M2:g})",
        )
        parser.add_argument("--dry-run", dest="dry_run", action="store_true", help="check and report, write nothing")

    def handle(
        self, *args: str, path: str, municipality: str, layer: str | None, srid: int | None,
        encoding: str | None, overlap_threshold: float, gap_threshold: float, dry_run: bool, verbosity: int,
        **options: str,
    ) -> None:
        fields = FieldNames(
            code=options["code_field"], name=options["name_field"], kana=options["kana_field"],
            district=options["district_field"], area=options["area_field"],
        )
        with municipality_command(municipality) as town:
            result = import_boundaries(
                path, municipality=town, layer=layer, fields=fields, srid=srid, encoding=encoding,
                overlap_threshold=overlap_threshold, gap_threshold=gap_threshold, dry_run=dry_run,
            )
        if verbosity >= 1:
            self._print(result, town, verbose=verbosity >= 2)

    def _print(self, result: BoundaryImportResult, municipality: Municipality, *, verbose: bool) -> None:
        out = self.stdout.write
        warn = self.stderr.write
        total = len(result.created) + len(result.updated) + len(result.unchanged)
        out(f"{municipality} ({result.municipality_code}): {total} 自治会 from {result.file} "
            f"(layer {result.layer}, {result.source_srs})")
        out(f"created {len(result.created)}, updated {len(result.updated)}, unchanged {len(result.unchanged)}")
        if verbose:
            for label, codes in (("created", result.created), ("updated", result.updated)):
                if codes:
                    out(f"  {label}: {', '.join(codes)}")
        for label, names in (("地区", result.districts_created), ("日常生活圏域", result.areas_created)):
            if names:
                out(f"new {label}: {', '.join(names)}")
        for note in result.notes:
            out(f"note: {note}")
        if result.not_in_file:
            out(f"in the database but not in the file (kept): {', '.join(result.not_in_file)}")
        for repair in result.repaired:
            warn(self.style.WARNING(f"repaired feature {repair.number} ({repair.code}): {repair.reason}"))
        for overlap in result.overlaps:
            warn(self.style.WARNING(f"overlap {overlap.code_a} / {overlap.code_b}: {overlap.area_m2:,.1f} m²"))
        for gap in result.gaps:
            warn(self.style.WARNING(
                f"gap of {gap.area_m2:,.1f} m² at {gap.lon:.6f}, {gap.lat:.6f} "
                f"between {', '.join(gap.around) or '?'}"
            ))
        if result.dry_run:
            out(self.style.NOTICE("dry run: nothing was written"))
        else:
            out(self.style.SUCCESS("done"))
