"""Reference files in their real formats, written by the tests (and the bench): 位置参照情報 in
CP932 with every field quoted, as MLIT ships them; ABR in UTF-8 with the current column names."""

import csv
import io
import zipfile
from pathlib import Path

MLIT_BLOCK_HEADER = [
    "都道府県名", "市区町村名", "大字・丁目名", "小字・通称名", "街区符号・地番", "座標系番号", "Ｘ座標", "Ｙ座標",
    "緯度", "経度", "住居表示フラグ", "代表フラグ", "更新前履歴フラグ", "更新後履歴フラグ",
]
MLIT_TOWN_HEADER = [
    "都道府県コード", "都道府県名", "市区町村コード", "市区町村名", "大字町丁目コード", "大字町丁目名", "緯度", "経度",
    "原典資料コード", "大字・字・丁目区分コード",
]
ABR_RESIDENCE_HEADER = [
    "lg_code", "machiaza_id", "blk_id", "rsdt_id", "rsdt2_id", "city", "ward", "oaza_cho", "chome", "koaza",
    "blk_num", "rsdt_num", "rsdt_num2", "basic_rsdt_div", "rsdt_addr_flg", "rsdt_addr_mtd_code", "status_flg",
    "efct_date", "ablt_date", "src_code", "remarks",
]
ABR_RESIDENCE_POS_HEADER = [
    "lg_code", "machiaza_id", "blk_id", "rsdt_id", "rsdt2_id", "rsdt_addr_flg", "rsdt_addr_mtd_code",
    "rep_lon", "rep_lat", "rep_srid", "rep_scale", "rep_src_code", "rsdtdsp_blk_id", "remarks",
]
ABR_TOWN_HEADER = [
    "lg_code", "machiaza_id", "machiaza_type", "pref", "county", "city", "ward", "oaza_cho", "chome", "chome_number",
    "koaza", "rsdt_addr_flg", "efct_date", "ablt_date",
]
ABR_TOWN_POS_HEADER = ["lg_code", "machiaza_id", "rsdt_addr_flg", "rep_lon", "rep_lat", "rep_srid", "rep_scale"]


def write_csv(path: Path, header: list[str], rows: list[list[object]], *, encoding: str) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL if encoding == "cp932" else csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def zipped(path: Path) -> Path:
    target = path.with_suffix(".zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, path.name)
    return target


def mlit_block_row(prefecture: str, city: str, oaza: str, number: str, lon: float, lat: float, *,
                   koaza: str = "", rsdt: bool = True) -> list[object]:
    return [prefecture, city, oaza, koaza, number, "5", "-59000.0", "-35000.0", f"{lat:.6f}", f"{lon:.6f}",
            "1" if rsdt else "0", "1", "0", "0"]


def mlit_town_row(code: str, prefecture: str, city: str, town_code: str, name: str, lon: float, lat: float) -> list[object]:
    kind = "3" if "丁目" in name else "1"
    return [code[:2], prefecture, code[:5], city, town_code, name, f"{lat:.6f}", f"{lon:.6f}", "1", kind]


def abr_residence_rows(code: str, machiaza_id: str, oaza: str, chome: str, entries: list[tuple[str, str, float, float]]):
    """entries: (blk_num, rsdt_num, lon, lat) -> (master rows, 位置参照拡張 rows)."""
    master, pos = [], []
    for i, (blk, rsdt, lon, lat) in enumerate(entries, start=1):
        ids = [code, machiaza_id, f"{int(blk):03d}", f"{i:03d}", ""]
        master.append([*ids, "", "", oaza, chome, "", blk, rsdt, "", "2", "1", "1", "0", "2020-01-01", "", "", ""])
        pos.append([*ids, "1", "1", f"{lon:.9f}", f"{lat:.9f}", "EPSG:6668", "2500", "1", "", ""])
    return master, pos
