"""Placing households from their addresses, at a town's scale: 100,000 households with addresses
only (住居表示 towns divided into 丁目, 地番 大字, and some addresses that match nothing) and a
reference of the town's size written here in the real formats (位置参照情報 街区レベル and
大字・町丁目レベル CSV, CP932).

Figures: the household import end to end (read, merge, place, assign 自治会) in rows/s against a raw
COPY of the same rows; the reference import against a raw COPY of its rows; the share placed at
each level; a re-import of the same file (households changed: 0); placement alone against reading
the same households and reference rows raw."""

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Count

from addresses.placement import place_households
from addresses.services import load_reference
from backend.tenancy import scope
from bench.common import Figure
from neighborhoods.importers.households import import_households
from neighborhoods.models import Household, Municipality
from tests.addresses import files

CODE = "999401"
NAME = "ベンチ町"
PREFECTURE = "鳥取県"
HOUSEHOLDS = 100_000
CHOME_BASES = 50  # × 4 丁目, 住居表示: 30 街区 each
OAZA = 100  # 地番 大字: 1,500 地番 each, a representative point for every 10th
BLOCKS_PER_CHOME = 30
LOTS_PER_OAZA = 1_500
RESIDENCE_ADDRESSES = 60_000
LOT_ADDRESSES = 35_000
KANJI = "〇一二三四"
LON, LAT = 133.70, 35.45


_FIRST = "東西南北上下新本大小"
_SECOND = "山川田野原谷沢浜島岡"


def _town_names() -> tuple[list[tuple[str, int]], list[str]]:
    """Names without numerals (a numeral would start the numbers): 住居表示 towns 東山町1丁目 …,
    地番 大字 東山 …"""
    names = [a + b for b in _SECOND for a in _FIRST]
    chome = [(f"{names[i]}町", c) for i in range(CHOME_BASES) for c in range(1, 5)]
    return chome, names[:OAZA]


def _point(i: int, j: int) -> tuple[float, float]:
    return (LON + (i % 50) * 0.004 + (j % 40) * 0.0001, LAT + (i // 50) * 0.004 + (j // 40) * 0.0001)


def _write_reference(folder: Path) -> list[Path]:
    chome, oaza = _town_names()
    city = f"東伯郡{NAME}"
    blocks, towns = [], []
    for i, (base, c) in enumerate(chome):
        name = f"{base}{KANJI[c]}丁目"
        towns.append(files.mlit_town_row(CODE, PREFECTURE, city, f"{CODE[:5]}{i:04d}", name, *_point(i, 0)))
        blocks += [files.mlit_block_row(PREFECTURE, city, name, str(b), *_point(i, b)) for b in range(1, BLOCKS_PER_CHOME + 1)]
    for k, name in enumerate(oaza):
        i = len(chome) + k
        towns.append(files.mlit_town_row(CODE, PREFECTURE, city, f"{CODE[:5]}{i:04d}", name, *_point(i, 0)))
        blocks += [files.mlit_block_row(PREFECTURE, city, f"大字{name}", str(n), *_point(i, n), rsdt=False)
                   for n in range(10, LOTS_PER_OAZA + 1, 10)]
    return [
        files.write_csv(folder / "31_2024.csv", files.MLIT_BLOCK_HEADER, blocks, encoding="cp932"),
        files.write_csv(folder / "31000-18.0b.csv", files.MLIT_TOWN_HEADER, towns, encoding="cp932"),
    ]


def _addresses() -> list[tuple[str, str]]:
    """Every household at its own address: 60% 住居表示 (one in three written out in full with the
    prefecture and kanji 丁目, the others as 東山町1-2-3), 35% 地番 (大字 …番地…, or …-…), 5% in no
    town of the reference."""
    chome, oaza = _town_names()
    rows = []
    residences = RESIDENCE_ADDRESSES // (len(chome) * BLOCKS_PER_CHOME)
    for n in range(HOUSEHOLDS):
        if n < RESIDENCE_ADDRESSES:
            (base, c), rest = chome[n % len(chome)], n // len(chome)
            block, number = 1 + rest % BLOCKS_PER_CHOME, 1 + (rest // BLOCKS_PER_CHOME) % residences
            address = (f"{PREFECTURE}東伯郡{NAME}{base}{KANJI[c]}丁目{block}番{number}号" if n % 3 == 0
                       else f"{base}{c}-{block}-{number}")
        elif n < RESIDENCE_ADDRESSES + LOT_ADDRESSES:
            k = n - RESIDENCE_ADDRESSES
            name, rest = oaza[k % len(oaza)], k // len(oaza)
            lot, branch = 1 + rest % LOTS_PER_OAZA, 1 + rest // LOTS_PER_OAZA
            address = f"大字{name}{lot}番地{branch}" if n % 2 else f"{NAME}{name}{lot}-{branch}"
        else:
            address = f"不明町{n}番地"
        rows.append((f"B{n:06d}", address))
    return rows


def _xmins(municipality_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, xmin::text FROM neighborhoods_household WHERE municipality_id = %s", [municipality_id])
        return dict(cursor.fetchall())


def _raw_copy(rows: Sequence[Sequence[object]], columns: str) -> float:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE bench_copy ({columns}) ON COMMIT DROP")
        started = time.perf_counter()
        with cursor.copy("COPY bench_copy FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def run() -> list[Figure]:
    municipality, _ = Municipality.objects.get_or_create(code=CODE, defaults={"name": NAME, "prefecture": PREFECTURE})
    folder = Path(tempfile.mkdtemp(prefix="bench_addresses_"))
    reference_files = _write_reference(folder)
    rows = _addresses()
    households_csv = folder / "households.csv"
    households_csv.write_text("external_id,address\n" + "".join(f"{e},{a}\n" for e, a in rows), encoding="utf-8")
    figures = []
    with scope(municipality.pk):
        started = time.perf_counter()
        loaded = load_reference(municipality=municipality, paths=reference_files)
        reference_time = time.perf_counter() - started
        points = [p.values() for p in loaded.read.points]
        reference_copy = _raw_copy(points, "level text, town text, block text, residence text, location text, source text, label text")
        figures.append(Figure(f"address reference import ({len(points):,} points), points/s vs raw COPY",
                              len(points) / reference_time, len(points) / reference_copy, unit="/s"))

        started = time.perf_counter()
        import_households(municipality=municipality, path=households_csv)
        import_time = time.perf_counter() - started
        copy_time = _raw_copy(rows, "external_id text, address text")
        figures.append(Figure(f"household import, {HOUSEHOLDS:,} addresses only (placed, 自治会), rows/s vs raw COPY",
                              HOUSEHOLDS / import_time, HOUSEHOLDS / copy_time, unit="/s"))

        levels = dict(
            Household.objects.filter(municipality=municipality).values_list("match_level")
            .annotate(n=Count("pk")).values_list("match_level", "n")
        )
        for level in ("residence", "block", "town", "unmatched"):
            figures.append(Figure(f"  share placed at {level}", 100 * levels.get(level, 0) / HOUSEHOLDS, 100, unit="%"))

        before = _xmins(municipality.pk)
        started = time.perf_counter()
        import_households(municipality=municipality, path=households_csv)
        reimport_time = time.perf_counter() - started
        after = _xmins(municipality.pk)
        changed = sum(1 for k, v in after.items() if before.get(k) != v)
        figures.append(Figure("re-import of the same file: households changed (of 100,000)", changed, HOUSEHOLDS,
                              unit="rows", note=f"took {reimport_time:.1f} s"))

        with connection.cursor() as cursor:  # back to unplaced, to time placement alone
            cursor.execute(
                "UPDATE neighborhoods_household SET location = NULL, match_level = 'unmatched', address_normalized = '' "
                "WHERE municipality_id = %s", [municipality.pk],
            )
        started = time.perf_counter()
        place_households(municipality_id=municipality.pk)
        place_time = time.perf_counter() - started
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, address, match_level, address_normalized, ST_X(location), ST_Y(location) "
                           "FROM neighborhoods_household WHERE municipality_id = %s", [municipality.pk])
            cursor.fetchall()
            cursor.execute("SELECT level, town, block, residence, ST_X(location), ST_Y(location) "
                           "FROM addresses_addressreference WHERE municipality_id = %s", [municipality.pk])
            cursor.fetchall()
        read_time = time.perf_counter() - started
        figures.append(Figure("placement alone, 100,000 households vs reading them and the reference raw",
                              place_time, read_time))
    return figures
