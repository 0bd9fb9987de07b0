"""The supervisors' map page in a real browser: Debian's headless Chromium driven by Playwright
against the live test server, with no font able to draw Japanese but the page's web font
(tests/browser.py). Logs in, waits for the tiles to render, toggles layers, clicks a 自治会 and reads
its numbers, checks that the Japanese text was drawn with the web font, and saves screenshots (also
to $TSUNAGU_SCREENSHOT_DIR when set)."""

from pathlib import Path

import pytest
from django.conf import settings

from tests.browser import CHROMIUM, assert_japanese_drawn_with_web_font, chromium_page, save_screenshot
from tests.conftest import build_town
from tests.factories import PASSWORD
from tests.maps.conftest import build_mapped

VENDOR = Path(settings.BASE_DIR) / "maps" / "static" / "maps" / "vendor" / "maplibre-gl.mjs"
FONT = Path(settings.BASE_DIR) / "backend" / "static" / "vendor" / "noto-sans-jp" / "noto-sans-jp.css"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium chromium-driver)"),
]


@pytest.fixture
def surveyed(transactional_db):
    """Committed data (the live server's thread has its own connection), made before the browser
    starts: Playwright's sync API runs an event loop, and Django refuses the ORM inside one."""
    from tests import factories

    town = build_town("930003")
    mapped = build_mapped(town)
    # A hamlet of 20 households within 40 m, in a 自治会 outside the campaign (the coverage numbers
    # stay those of build_mapped): at most three hexagons meet there, so one holds 7 or more and
    # the hexagon layer has something to draw wherever the grid falls.
    x0, y0, x1, _y1 = mapped.second.geom.extent
    third = factories.neighborhood(town.municipality, geom=factories.square(x1, y0, x1 - x0))
    cx, cy = factories.centre(third)
    for k in range(20):
        factories.household(town.municipality, at=(cx + (k % 5) * 0.0001, cy + (k // 5) * 0.0001))
    return town, mapped


@pytest.fixture
def browser_page(tmp_path):
    with chromium_page(tmp_path) as page:
        yield page


def _login(page, base: str, username: str, tmp_path: Path | None = None) -> None:
    page.goto(f"{base}/map/")
    assert "/map/login/" in page.url  # the page asks for a session first
    if tmp_path is not None:  # the login page's Japanese, drawn with the web font too
        assert page.inner_text("h1") == "つなぐ 地図"
        assert_japanese_drawn_with_web_font(page, [".login-box h1", ".login-box p", "button[type=submit]"],
                                            sample="訪問状況・孤立の兆し")
        save_screenshot(page, tmp_path, "map-login.png")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/map/")


def _wait_rendered(page, layer: str, at_least: int = 1, timeout: int = 90_000) -> int:
    """Until the layer has at least `at_least` features drawn (generous: software WebGL on a busy
    test machine, where tiles arrive one by one)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"() => window.tsunaguMap && window.tsunaguMap.getLayer('{layer}')"
            f" && window.tsunaguMap.queryRenderedFeatures({{layers: ['{layer}']}}).length >= {at_least}",
            timeout=timeout,
        )
    except PlaywrightTimeout:
        state = page.evaluate("() => window.tsunaguMap && {zoom: window.tsunaguMap.getZoom(),"
                              " loaded: window.tsunaguMap.loaded(), tiles: window.tsunaguMap.areTilesLoaded()}")
        pytest.fail(f"{layer} drew nothing: map {state}; errors {page.errors}; log {page.log[-20:]}")
    return page.evaluate(f"() => window.tsunaguMap.queryRenderedFeatures({{layers: ['{layer}']}}).length")


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    page.wait_for_function("() => window.tsunaguMap.areTilesLoaded()", timeout=60_000)
    return save_screenshot(page, tmp_path, name)


def test_a_supervisor_sees_coverage_toggles_layers_and_reads_a_neighborhood(
    surveyed, live_server, browser_page, tmp_path
):
    assert VENDOR.exists() and FONT.exists(), "the front-end packages are not installed: run `make vendor`"
    town, mapped = surveyed
    page = browser_page
    _login(page, live_server.url, town.users["supervisor"].username, tmp_path)

    assert _wait_rendered(page, "neighborhoods-fill", at_least=2) >= 2
    assert _wait_rendered(page, "households-points", at_least=10) >= 10  # a supervisor sees the households
    page.wait_for_selector("#totals table")
    assert "23.1%" in page.inner_text("#totals")

    # layer toggles: resources off, hexagons on
    page.uncheck("#toggle-resources")
    assert page.evaluate("() => window.tsunaguMap.getLayoutProperty('resources-points', 'visibility')") == "none"
    page.check("#toggle-hexagons")
    assert _wait_rendered(page, "hexagons-fill") >= 1

    # click inside the first 自治会, away from its households and resources
    x0, y0, x1, y1 = town.neighborhood.geom.extent
    point = page.evaluate(
        "([lon, lat]) => { const p = window.tsunaguMap.project([lon, lat]); return [p.x, p.y]; }",
        [x0 + (x1 - x0) * 0.15, y0 + (y1 - y0) * 0.15],
    )
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    popup = page.wait_for_selector(".neighborhood-numbers", timeout=10_000)
    text = popup.inner_text()
    assert town.neighborhood.name in text
    assert "対象世帯" in text and "42.9%" in text and "実施中" in text
    panel = page.inner_text("#selected")
    assert "面談" in panel and "未訪問" in panel
    page.wait_for_selector("#selected svg.spark", timeout=10_000)  # the weekly series

    # the overdue list: the case and the 見守り
    page.wait_for_selector("#overdue li")
    overdue = page.inner_text("#overdue")
    assert mapped.case.title in overdue and "見守り 太郎" in overdue

    # The rendered text: the header, the panel's labels and numbers, the popup, in the web font.
    assert page.inner_text(".bar strong") == "つなぐ 地図"
    assert page.inner_text("label[for=campaign]") == "世帯訪問調査"
    assert page.inner_text("#link-reports") == "年度報告"  # a supervisor reads the reports too
    assert_japanese_drawn_with_web_font(page, [
        ".bar strong", "label[for=campaign]", "#link-reports", ".neighborhood-numbers", "#overdue li",
    ])
    path = _screenshot(page, tmp_path, "map-supervisor.png")
    assert path.stat().st_size > 10_000
    assert page.errors == []


def test_an_admin_sees_hexagons_and_no_households(surveyed, live_server, browser_page, tmp_path):
    assert VENDOR.exists() and FONT.exists(), "the front-end packages are not installed: run `make vendor`"
    town, _mapped = surveyed
    page = browser_page
    _login(page, live_server.url, town.users["admin"].username)
    assert _wait_rendered(page, "hexagons-fill") >= 1
    assert page.evaluate("() => window.tsunaguMap.getLayer('households-points') === undefined")
    assert page.locator("#toggle-households").count() == 0
    assert page.locator("#overdue-section").is_hidden()
    assert page.locator("#link-reports").count() == 0  # an admin does not read the reports
    assert_japanese_drawn_with_web_font(page, [".bar strong", "label[for=campaign]"])
    _screenshot(page, tmp_path, "map-admin.png")
    assert page.errors == []
