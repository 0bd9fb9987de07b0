"""The supervisors' map page in a real browser: Debian's headless Chromium driven by Playwright
against the live test server. Logs in, waits for the tiles to render, toggles layers, clicks a
自治会 and reads its numbers, and saves a screenshot (also to $TSUNAGU_SCREENSHOT_DIR when set)."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import build_town
from tests.factories import PASSWORD
from tests.maps.conftest import build_mapped

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VENDOR = Path(settings.BASE_DIR) / "maps" / "static" / "maps" / "vendor" / "maplibre-gl.mjs"

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
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 820}, locale="ja-JP")
        page.errors, page.log = [], []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: page.log.append(f"console {msg.type}: {msg.text}"))
        page.on("requestfailed", lambda req: page.log.append(f"failed {req.url}: {req.failure}"))
        page.on("response", lambda r: r.status >= 400 and page.log.append(f"HTTP {r.status} {r.url}"))
        try:
            yield page
        finally:
            browser.close()


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/map/")
    assert "/map/login/" in page.url  # the page asks for a session first
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
    path = tmp_path / name
    page.screenshot(path=str(path))
    target = os.environ.get("TSUNAGU_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def test_a_supervisor_sees_coverage_toggles_layers_and_reads_a_neighborhood(
    surveyed, live_server, browser_page, tmp_path
):
    assert VENDOR.exists(), "MapLibre GL is not installed: run `make vendor` (npm ci + copy into maps/static)"
    town, mapped = surveyed
    page = browser_page
    _login(page, live_server.url, town.users["supervisor"].username)

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

    path = _screenshot(page, tmp_path, "map-supervisor.png")
    assert path.stat().st_size > 10_000
    assert page.errors == []


def test_an_admin_sees_hexagons_and_no_households(surveyed, live_server, browser_page, tmp_path):
    assert VENDOR.exists(), "MapLibre GL is not installed: run `make vendor`"
    town, _mapped = surveyed
    page = browser_page
    _login(page, live_server.url, town.users["admin"].username)
    assert _wait_rendered(page, "hexagons-fill") >= 1
    assert page.evaluate("() => window.tsunaguMap.getLayer('households-points') === undefined")
    assert page.locator("#toggle-households").count() == 0
    assert page.locator("#overdue-section").is_hidden()
    _screenshot(page, tmp_path, "map-admin.png")
    assert page.errors == []
