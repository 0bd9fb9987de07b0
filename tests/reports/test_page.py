"""The reports page (/reports/): who may open it and what the server hands the browser; then, in a
real browser (Debian's headless Chromium driven by Playwright, with no system font at all), that
the page draws the 年度 report the API returns, in Japanese, with the web font: the numbers, the
charts' data, suppression for supervisors, and the export buttons' files. Screenshots are saved
(also to $TSUNAGU_SCREENSHOT_DIR when set)."""

import datetime as dt
import io
import json
import os
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import User
from backend.dates import fiscal_year_of
from neighborhoods.models import DailyLifeArea, District
from outreach.models import CaseContact, Concern, Meeting, OutreachCase
from reports.fiscal import fiscal_year_report, wareki_fiscal_year
from tests import factories
from tests.browser import (
    CHROMIUM,
    assert_japanese_drawn_with_web_font,
    chromium_page,
    no_japanese_fonts_env,
    save_screenshot,
)
from tests.conftest import build_town
from visits.models import CampaignHousehold, VisitRecord

JST = ZoneInfo("Asia/Tokyo")
FONT_DIR = Path(settings.BASE_DIR) / "backend" / "static" / "vendor" / "noto-sans-jp"
CHART_JS = Path(settings.BASE_DIR) / "reports" / "static" / "reports" / "vendor" / "chart.umd.min.js"
NOT_VENDORED = "the front-end packages are not installed: run `make vendor` (npm ci + scripts/vendor.sh)"
CHART_TITLES = {
    "#chart-monthly-title": "月別の訪問件数と継続的支援の件数",
    "#chart-coverage-title": "自治会別の訪問完了率",
    "#chart-concerns-title": "気づきの分類",
}
# The cards' numbers: data-key → the report's value at that path.
CARD_KEYS = [
    *(f"visits.total.{k}" for k in ("households_in_scope", "households_visited", "visits", "met", "absent_final",
                                    "leaflet_left", "refused", "moved_or_vacant")),
    *(f"concerns.total.{k}" for k in ("raised", "triaged", "referred", "case_opened")),
    "outreach.people", "outreach.contacts", "outreach.cases.opened", "outreach.cases.closed",
    "outreach.cases.continuing", "outreach.consent_obtained",
    "meetings.sasaeai", "meetings.support", "meetings.support_cases", "meetings.multi_agency",
    "meetings.multi_agency_cases",
]


def _pick(report: dict, path: str):
    for key in path.split("."):
        report = report[key]
    return report


def _shown(value) -> str:
    """How the page writes a count: grouped digits, or — where it is suppressed."""
    return "—" if value is None else f"{value:,}"


def _session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="reports-config" type="application/json">') + len(
        '<script id="reports-config" type="application/json">')
    return json.loads(html[start:html.index("</script>", start)])


# --- the server side -----------------------------------------------------------------------------


def test_the_page_asks_for_the_maps_login(db):
    response = Client().get("/reports/?year=2025")
    assert response.status_code == 302
    assert response["Location"].startswith("/map/login/?next=/reports/")


@pytest.mark.parametrize("role", ["coordinator", "supervisor"])
def test_readers_get_the_page_with_its_config(town, role):
    response = _session(town.users[role]).get("/reports/", {"year": "2025"})
    assert response.status_code == 200
    config = _config(response)
    assert config["year"] == 2025
    assert config["api"] == "/api/v1/reports/fiscal-years/2025"
    assert config["exports"] == "/api/v1/exports"
    assert config["public_only"] is (role == "supervisor")
    html = response.content.decode()
    assert '<option value="2025" selected>令和7年度 (2025)</option>' in html
    assert 'href="/map/"' in html  # the header links to the map
    assert html.count('data-format="') == 3  # CSV, CSV (Shift_JIS), Excel
    assert ('id="public"' in html) is (role == "coordinator")  # only a coordinator chooses the public version
    assert "noto-sans-jp/noto-sans-jp.css" in html
    assert "csrftoken" in response.cookies  # for the exports' POST
    # No inline script but the JSON config (and the module's src).
    assert html.count("<script") == 2 and '<script type="module" src="' in html


def test_the_default_year_is_the_current_fiscal_year(town):
    response = _session(town.users["supervisor"]).get("/reports/")
    year = fiscal_year_of(timezone.localdate())
    assert _config(response)["year"] == year
    assert f'<option value="{year}" selected>{wareki_fiscal_year(year)} ({year})</option>' in response.content.decode()


@pytest.mark.parametrize("year", ["abc", "1999", "2100", "２０２５", "2025.0", "-2025", "20250"])
def test_a_year_outside_the_window_is_a_400_page(town, year):
    response = _session(town.users["coordinator"]).get("/reports/", {"year": year})
    assert response.status_code == 400
    text = response.content.decode()
    assert "年度の指定が正しくありません" in text
    assert f"({2000}〜{fiscal_year_of(timezone.localdate()) + 1})" in text


@pytest.mark.parametrize("role", ["outreach_worker", "commissioner", "admin"])
def test_other_roles_get_a_clear_403_page(town, role):
    response = _session(town.users[role]).get("/reports/")
    assert response.status_code == 403
    text = response.content.decode()
    assert "このページを表示する権限がありません" in text and "コーディネーターと監督者" in text
    assert "reports-config" not in text


def test_a_user_without_a_municipality_gets_403(db):
    operator = User.objects.create_superuser("platform-op", "op@example.jp", factories.PASSWORD)
    assert operator.role == "supervisor" and operator.municipality_id is None
    assert _session(operator).get("/reports/").status_code == 403


@pytest.mark.parametrize(("role", "linked"), [("coordinator", True), ("supervisor", True), ("outreach_worker", False),
                                              ("commissioner", False), ("admin", False)])
def test_the_map_header_links_to_the_reports_for_their_readers(town, role, linked):
    html = _session(town.users[role]).get("/map/").content.decode()
    assert ('href="/reports/"' in html) is linked
    assert "noto-sans-jp/noto-sans-jp.css" in html


def test_the_vendored_font_is_woff2_in_two_weights_with_every_subset_it_names():
    assert FONT_DIR.exists(), NOT_VENDORED
    css = (FONT_DIR / "noto-sans-jp.css").read_text(encoding="utf-8")
    named = {line.split("url(./")[1].split(")")[0] for line in css.splitlines() if "url(" in line}
    files = {f"files/{p.name}" for p in (FONT_DIR / "files").iterdir()}
    assert named == files  # every face's file is there, and nothing else
    assert all(name.endswith(".woff2") for name in files)
    assert {name.rsplit("-", 2)[1] for name in files} == {"400", "700"}
    assert css.count("@font-face") == len(files) > 100  # the unicode-range subsets
    assert css.count("unicode-range:") == len(files)


def test_the_browsers_fontconfig_hides_an_installed_japanese_font(tmp_path):
    """The browser tests' Chromium sees no Japanese font even where one is installed: here one of
    the vendored Noto Sans JP files stands for it (FreeType reads woff2), in a font folder added to
    the tests' fontconfig; fontconfig lists it without the rejection and hides it with it."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        pytest.skip("no fc-list (apt-get install fontconfig)")
    assert FONT_DIR.exists(), NOT_VENDORED
    installed = tmp_path / "installed-fonts"
    installed.mkdir()
    shutil.copy(FONT_DIR / "files" / "noto-sans-jp-119-400-normal.woff2", installed)  # kana and common kanji
    tests_conf = Path(no_japanese_fonts_env(tmp_path / "fc")["FONTCONFIG_FILE"])

    def families(*confs: str) -> list[str]:
        conf = tmp_path / f"machine-{len(confs)}.conf"
        conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n'
                        f"<fontconfig><dir>{installed}</dir>{''.join(confs)}</fontconfig>\n", encoding="utf-8")
        out = subprocess.run([fc_list, ":charset=3042", "family"], env={**os.environ, "FONTCONFIG_FILE": str(conf)},
                             capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.split()

    if not families():
        pytest.skip("this FreeType reads no woff2: nothing to stand for an installed font")
    assert families(f"<include>{tests_conf}</include>") == []


# --- in the browser ------------------------------------------------------------------------------


def _at(y, m, d):
    return dt.datetime(y, m, d, 10, 0, tzinfo=JST)


@pytest.fixture
def reported(transactional_db):
    """A municipality's 令和7年度 (committed: the live server's thread has its own connection),
    with enough of everything that a supervisor's suppressed report still shows some numbers, and
    the expected reports computed before the browser starts (Playwright's sync API runs an event
    loop, and Django refuses the ORM inside one)."""
    town = build_town("940004")
    m = town.municipality
    area = DailyLifeArea.objects.create(municipality=m, name="中央圏域")
    district = District.objects.create(municipality=m, name="本町地区")
    h1 = factories.neighborhood(m, name="本町一丁目")
    h2 = factories.neighborhood(m, name="本町二丁目")
    for hood in (h1, h2):
        hood.daily_life_area, hood.district = area, district
        hood.save()
    camp = factories.campaign(m, fiscal_year=2025, start_date=dt.date(2025, 5, 1), end_date=dt.date(2026, 3, 31),
                              status="closed")
    factories.target(camp, h1, h2)
    worker = town.users["outreach_worker"]
    states = {h1: ["met"] * 6 + ["refused", "pending"], h2: ["met", "pending", "pending", "pending"]}
    homes = []
    for hood, outcomes in states.items():
        for i, state in enumerate(outcomes):
            hh = factories.household(m, at=factories.centre(hood))
            homes.append(hh)
            CampaignHousehold.objects.create(municipality=m, campaign=camp, household=hh, neighborhood=hood,
                                             state=state, attempts=0 if state == "pending" else 1)
            if state != "pending":
                VisitRecord.objects.create(id=uuid.uuid4(), municipality=m, household=hh, worker=worker,
                                           outcome=state, visited_at=_at(2025, 5 + i % 3, 10 + i))
    for i, hh in enumerate(homes[:5]):  # a second round of calls in the autumn
        VisitRecord.objects.create(id=uuid.uuid4(), municipality=m, household=hh, worker=worker, outcome="absent",
                                   visited_at=_at(2025, 10, 1 + i))
    coordinator = town.users["coordinator"]
    for i, categories in enumerate([["hikikomori"], ["hikikomori", "8050"], ["hikikomori"], ["living_alone"],
                                    ["living_alone"], ["poverty"], ["hikikomori"], ["hikikomori"]]):
        concern = Concern.objects.create(municipality=m, source="commissioner", categories=categories,
                                         neighborhood=h1, household=homes[i], reported_by=coordinator)
        Concern.objects.filter(pk=concern.pk).update(created_at=_at(2025, 6 + i % 4, 3))
    case = OutreachCase.objects.create(municipality=m, household=homes[0], title="継続支援", opened_on=dt.date(2025, 5, 1),
                                       next_contact_due=dt.date(2025, 5, 15), stage="contact")
    for month in (5, 6, 7, 8, 9, 11):
        CaseContact.objects.create(case=case, kind="visit" if month % 2 else "call",
                                   contacted_on=dt.date(2025, month, 20), by=worker)
    for day in (dt.date(2025, 5, 15), dt.date(2025, 9, 15)):
        Meeting.objects.create(municipality=m, neighborhood=h1, held_on=day, recorded_by=coordinator)

    full = fiscal_year_report(municipality_id=m.pk, year=2025)
    public = fiscal_year_report(municipality_id=m.pk, year=2025, public=True)
    return town, full, public


def _login(page, base: str, username: str, path: str) -> None:
    page.goto(f"{base}{path}")
    assert "/map/login/" in page.url  # the reports page asks for the map's session first
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    try:
        page.wait_for_url(f"{base}{path}")
    except Exception:
        pytest.fail(f"login: at {page.url}; errors {page.errors}; log {page.log[-20:]}; {page.content()[:3000]}")


def _wait_ready(page) -> dict:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("() => document.body.dataset.state !== 'loading'", timeout=60_000)
    except PlaywrightTimeout:
        pytest.fail(f"the report did not load: errors {page.errors}; log {page.log[-20:]}")
    assert page.get_attribute("body", "data-state") == "ready", (page.inner_text("#error"), page.errors, page.log)
    return page.evaluate("() => window.tsunaguReports.report")


def _chart(page, name: str) -> dict:
    return page.evaluate(
        f"() => {{ const c = window.tsunaguReports.charts['{name}'];"
        " return {labels: c.data.labels, data: c.data.datasets.map((d) => d.data), titles: c.data.datasets.map((d) => d.label)}; }"
    )


def _assert_page_shows(page, report: dict) -> None:
    """The visible text equals the report the API returned: the label, every card's number, the
    charts' titles and data, the tables' rows."""
    assert page.inner_text("#label") == report["label"]
    assert page.inner_text("#period").startswith(f"{report['start']} 〜 {report['end']}")
    for key in CARD_KEYS:
        assert page.inner_text(f'dd[data-key="{key}"]') == _shown(_pick(report, key)), key
    for selector, title in CHART_TITLES.items():
        assert page.inner_text(selector) == title

    monthly = _chart(page, "monthly")
    assert monthly["labels"] == ["4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月", "1月", "2月", "3月"]
    assert monthly["titles"] == ["延べ訪問件数", "訪問世帯 (実世帯数)", "継続的支援 延べ件数"]
    assert monthly["data"] == [[r["visits"] for r in report["visits"]["by_month"]],
                               [r["households_visited"] for r in report["visits"]["by_month"]],
                               [r["contacts"] for r in report["outreach"]["by_month"]]]
    coverage = _chart(page, "coverage")
    rows = sorted(report["visits"]["coverage"],
                  key=lambda r: (-(r["coverage_pct"] if r["coverage_pct"] is not None else -1), r["code"]))
    assert coverage["labels"] == [r["name"] for r in rows]
    assert coverage["data"] == [[r["coverage_pct"] for r in rows]]
    concerns = _chart(page, "concerns")
    categories = sorted((r for r in report["concerns"]["by_category"] if r["count"] != 0), key=lambda r: -(r["count"] or 0))
    assert concerns["labels"] == [r["label"] for r in categories]
    assert concerns["data"] == [[r["count"] for r in categories]]

    suppressed = {name: None in [v for d in _chart(page, name)["data"] for v in d] for name in ("monthly", "coverage", "concerns")}
    for name, hidden in suppressed.items():  # a chart with suppressed values says it left them out
        assert page.locator(f"#chart-{name}-note").is_visible() is hidden, name

    areas = page.inner_text("#table-areas")
    for area in report["visits"]["by_area"]:
        assert area["name"] in areas
    total_row = page.locator("#table-areas tr.total td").all_inner_texts()
    assert total_row[0] == "合計"
    assert total_row[3] == _shown(report["visits"]["total"]["visits"])  # 対象世帯, 訪問世帯, 延べ訪問件数


@pytest.fixture
def exports_root(settings, tmp_path):
    settings.EXPORTS_ROOT = tmp_path / "exports"
    return settings.EXPORTS_ROOT


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
def test_a_coordinator_reads_the_year_in_japanese_and_downloads_it(reported, exports_root, live_server, tmp_path):
    assert CHART_JS.exists() and FONT_DIR.exists(), NOT_VENDORED
    town, full, public = reported
    with chromium_page(tmp_path) as page:
        _login(page, live_server.url, town.users["coordinator"].username, "/reports/?year=2025")
        report = _wait_ready(page)
        # The page drew what the API returned, and the API returned the 年度 report.
        assert report["label"] == "令和7年度" and report["public"] is False and report["suppressed_below"] is None
        assert report["visits"]["total"] == full["visits"]["total"]
        assert report["concerns"]["total"] == full["concerns"]["total"]
        assert (report["outreach"]["people"], report["outreach"]["contacts"]) == (
            full["outreach"]["people"], full["outreach"]["contacts"])
        assert report["visits"]["total"]["visits"] == 8 + 5 and report["outreach"]["contacts"] == 6  # 8 outcomes, 5 calls
        _assert_page_shows(page, report)
        assert page.locator("#suppression-note").is_hidden()
        assert page.inner_text("#chart-concerns-title") == "気づきの分類"
        assert_japanese_drawn_with_web_font(page, [
            "#label", "#card-visits h2", 'dd[data-key="visits.total.visits"]', "#chart-monthly-title",
            "#table-areas h2", ".bar strong",
        ])
        assert page.get_attribute("#link-map", "href") == "/map/"
        save_screenshot(page, tmp_path, "reports-coordinator.png", full_page=True)

        # The exports: each button makes a job, waits for it, then downloads the file.
        files = {}
        for button in ("#export-csv", "#export-csv-sjis", "#export-xlsx"):
            with page.expect_download(timeout=60_000) as download:
                page.click(button)
            files[button] = Path(download.value.path()).read_bytes()
            assert download.value.suggested_filename.endswith(".xlsx" if button == "#export-xlsx" else ".csv")
        assert files["#export-csv"].startswith(b"\xef\xbb\xbf") and "令和7年度" in files["#export-csv"].decode("utf-8-sig")
        assert "令和7年度" in files["#export-csv-sjis"].decode("cp932")
        with zipfile.ZipFile(io.BytesIO(files["#export-xlsx"])) as xlsx:
            assert "xl/workbook.xml" in xlsx.namelist()

        # The public version on request: small cells hidden, the note says why.
        page.check("#public")
        page.wait_for_function("() => window.tsunaguReports.report.public === true && document.body.dataset.state === 'ready'")
        shown = page.evaluate("() => window.tsunaguReports.report")
        assert shown["visits"]["total"] == public["visits"]["total"]
        _assert_page_shows(page, shown)
        assert "5未満" in page.inner_text("#suppression-note")
        assert page.errors == [], page.errors


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
def test_a_supervisor_sees_the_public_report_with_small_cells_hidden(reported, exports_root, live_server, tmp_path):
    assert CHART_JS.exists() and FONT_DIR.exists(), NOT_VENDORED
    town, _full, public = reported
    with chromium_page(tmp_path) as page:
        _login(page, live_server.url, town.users["supervisor"].username, "/reports/?year=2025")
        report = _wait_ready(page)
        assert report["public"] is True and report["suppressed_below"] == settings.REPORTS_SMALL_CELL_THRESHOLD
        assert report["visits"]["total"] == public["visits"]["total"]
        assert report["concerns"]["by_category"] == public["concerns"]["by_category"]
        cards = [_pick(report, key) for key in CARD_KEYS]
        assert None in cards and any(isinstance(v, int) and v >= 5 for v in cards)  # both kinds on the page
        _assert_page_shows(page, report)
        note = page.inner_text("#suppression-note")
        assert f"{report['suppressed_below']}未満" in note and "「—」" in note
        assert page.locator("#public").count() == 0  # nothing to choose: always the public version
        assert_japanese_drawn_with_web_font(page, ["#label", "#suppression-note", "#card-concerns h2"])
        save_screenshot(page, tmp_path, "reports-supervisor.png", full_page=True)
        with page.expect_download(timeout=60_000) as download:
            page.click("#export-csv")
        csv = Path(download.value.path()).read_text(encoding="utf-8-sig")
        assert "令和7年度" in csv and f"{report['suppressed_below']}未満を秘匿" in csv  # the public version

        # Another 年度 from the selector: a new page for that year.
        page.select_option("#year", "2024")
        page.wait_for_url(f"{live_server.url}/reports/?year=2024")
        assert _wait_ready(page)["label"] == "令和6年度"
        assert page.inner_text("#label") == "令和6年度"
        assert page.inner_text('dd[data-key="visits.total.visits"]') == "0"
        # Nothing to chart that year: the charts say so instead of drawing empty axes.
        assert page.inner_text("#chart-coverage-empty") == "この年度の世帯訪問調査はありません。"
        assert page.inner_text("#chart-concerns-empty") == "この年度の気づきはありません。"
        assert page.locator("#chart-coverage").is_hidden()
        assert page.errors == [], page.errors
