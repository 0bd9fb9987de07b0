"""The file writers alone (no database): streaming with progress, Excel's sheet-name rules, CP932,
and text that Excel must not run as a formula."""

import csv
import datetime as dt
import io

import openpyxl

from reports.export_writers import (
    PROGRESS_EVERY,
    Document,
    SheetNames,
    encode_cp932,
    write_csv,
    write_xlsx,
)
from reports.tables import Table


def _rows(n: int):
    day = dt.date(2025, 4, 1)
    for i in range(n):
        yield (i, f"世帯{i}", day + dt.timedelta(days=i % 365))


def test_rows_are_streamed_with_progress(tmp_path):
    n = 2 * PROGRESS_EVERY + 123
    for writer in (write_csv, write_xlsx):
        seen: list[int] = []
        consumed: list[int] = []

        def rows(consumed=consumed):
            for row in _rows(n):
                consumed.append(1)
                yield row

        document = Document(heading=[], tables=[Table("一覧", ["番号", "名前", "日付"], rows())], total=n)
        kwargs = {"encoding": "utf-8-sig"} if writer is write_csv else {}
        written = writer(tmp_path / f"out.{writer.__name__}", document, on_rows=seen.append, **kwargs)
        assert written.rows == n == len(consumed)
        assert seen == [PROGRESS_EVERY, 2 * PROGRESS_EVERY], writer.__name__


def test_a_report_csv_has_heading_titles_and_blank_rows(tmp_path):
    document = Document(
        heading=["令和7年度 年度報告", "公開用"],
        tables=[Table("月別", ["月", "件数"], [["2025年4月", 7], ["2025年5月", None]]),
                Table("合計", ["区分", "件数", "完了"], [["合計", 0, True]])],
        total=3,
    )
    path = tmp_path / "report.csv"
    written = write_csv(path, document, encoding="utf-8-sig", on_rows=lambda n: None)
    assert written.rows == 3
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    assert rows == [
        ["令和7年度 年度報告"], ["公開用"], [],
        ["■ 月別"], ["月", "件数"], ["2025年4月", "7"], ["2025年5月", ""], [],
        ["■ 合計"], ["区分", "件数", "完了"], ["合計", "0", "○"], [],
    ]


def test_text_is_never_a_formula(tmp_path):
    risky = ["=HYPERLINK(\"http://x\",\"x\")", "+1", "-2", "@SUM(A1)", "普通"]
    document = Document(heading=[], tables=[Table("一覧", ["名前", "数"], [[t, -3] for t in risky])], total=5)
    path = tmp_path / "risky.csv"
    write_csv(path, document, encoding="utf-8-sig", on_rows=lambda n: None)
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))[1:]
    assert [r[0] for r in rows] == ["'" + t for t in risky[:4]] + ["普通"]
    assert {r[1] for r in rows} == {"-3"}  # numbers are numbers

    path = tmp_path / "risky.xlsx"
    write_xlsx(path, document, on_rows=lambda n: None)
    sheet = openpyxl.load_workbook(path).active
    cells = [row for row in sheet.iter_rows(min_row=2)]
    assert [c[0].value for c in cells] == risky and {c[0].data_type for c in cells} == {"s"}
    assert {c[1].value for c in cells} == {-3}


def test_sheet_names_follow_excels_rules():
    names = SheetNames()
    long = "世帯訪問調査 日常生活圏域別 訪問結果の内訳と前年度との比較表（令和7年度）"
    first, second = names(long), names(long)
    assert len(first) == 31 == len(second) and first != second and second.endswith("(2)")
    assert names("A/B:C?[D]*") == "A_B_C__D__"
    assert names("Sheet") == "Sheet" and names("sheet") == "sheet(2)"  # unique regardless of case
    assert names("''") == "Sheet(3)"  # empty once apostrophes are stripped


def test_cp932_maps_the_microsoft_variants_and_counts_the_rest():
    data, replaced = encode_cp932("髙橋〜−𠮷野家🍣")
    assert replaced == 2
    assert data.decode("cp932") == "髙橋～－〓野家〓"
    assert encode_cp932("北栄町") == ("北栄町".encode("cp932"), 0)
