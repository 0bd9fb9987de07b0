"""What the browser tests share: Debian's headless Chromium driven by Playwright, launched with a
fontconfig that hides every font able to draw Japanese, so that Japanese can only be drawn by the
pages' web font (Noto Sans JP from our static files) even on a machine with Japanese fonts
installed; the checks that the text was drawn with it; screenshots (to tmp_path, and to
$TSUNAGU_SCREENSHOT_DIR when set)."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FONT_FAMILY = "Noto Sans JP"
FONT_SAMPLE = "世帯訪問調査"


def no_japanese_fonts_env(folder: Path) -> dict[str, str]:
    """The environment of a Chromium that sees no font able to draw Japanese: the machine's own
    fontconfig, minus (rejectfont) every font that covers the ja orthography or has 世, あ or ア.
    Latin fonts stay: with no font at all, Chromium aborts (Skia's fontconfig interface has no
    per-character fallback) as soon as a web font lacks a glyph and it looks for another font."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "fonts.conf"
    charsets = "".join(
        f"<pattern><patelt name=\"charset\"><charset><int>{hex(ord(c))}</int></charset></patelt></pattern>"
        for c in "世あア"
    )
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        '  <selectfont><rejectfont><pattern><patelt name="lang"><string>ja</string></patelt></pattern>'
        f"{charsets}</rejectfont></selectfont>\n</fontconfig>\n",
        encoding="utf-8",
    )
    return {**os.environ, "FONTCONFIG_FILE": str(conf)}


@contextmanager
def chromium_page(tmp_path: Path) -> Iterator[Any]:
    """A page of a fresh Chromium without Japanese fonts; page.errors (uncaught exceptions) and
    page.log (console, failed requests, HTTP errors) for the assertions' messages."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, env=no_japanese_fonts_env(tmp_path / "fc"))
        page = browser.new_page(viewport={"width": 1280, "height": 820}, locale="ja-JP", timezone_id="Asia/Tokyo")
        page.errors, page.log = [], []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: page.log.append(f"console {msg.type}: {msg.text}"))
        page.on("requestfailed", lambda req: page.log.append(f"failed {req.url}: {req.failure}"))
        page.on("response", lambda r: r.status >= 400 and page.log.append(f"HTTP {r.status} {r.url}"))
        try:
            yield page
        finally:
            browser.close()


def save_screenshot(page: Any, tmp_path: Path, name: str, *, full_page: bool = False) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=full_page)
    target = os.environ.get("TSUNAGU_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


_FONT_STATE_JS = r"""
async ([family, sample]) => {
  await document.fonts.ready;
  const faces = [...document.fonts].filter((f) => f.family.replace(/^["']|["']$/g, "") === family);
  const covers = (face, cp) => face.unicodeRange.split(",").some((part) => {
    const [low, high] = part.trim().replace(/^U\+/i, "").split("-").map((x) => parseInt(x, 16));
    return cp >= low && cp <= (high ?? low);
  });
  const loaded = faces.filter((f) => f.status === "loaded");
  return {
    check: document.fonts.check(`16px "${family}"`, sample),
    // Characters of the sample that no loaded face of the family covers.
    uncovered: [...sample].filter((ch) => !loaded.some((f) => covers(f, ch.codePointAt(0)))),
    loaded: loaded.map((f) => `${f.weight} ${f.unicodeRange.slice(0, 40)}`),
    faces: faces.length,
  };
}
"""

# Each string drawn on a canvas, black on transparent, in the web font and in a family nobody has:
# a hash of the alpha channel and the count of inked pixels. Drawn by a real font, two different
# words give two different images; as missing glyphs (tofu boxes, or nothing at all on a machine
# without fonts) they give the same one.
_GLYPHS_JS = """
async ([family, words]) => {
  const draw = (font, text) => {
    const canvas = document.createElement("canvas");
    canvas.width = 160; canvas.height = 48;
    const g = canvas.getContext("2d");
    g.font = font; g.fillStyle = "#000"; g.textBaseline = "top";
    g.fillText(text, 4, 4);
    const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 0, ink = 0;
    for (let i = 3; i < data.length; i += 4) { hash = (Math.imul(hash, 31) + data[i]) >>> 0; if (data[i]) ink += 1; }
    return { hash, ink };
  };
  const web = `32px "${family}"`;
  await document.fonts.load(web, words.join(""));
  return {
    web: words.map((w) => draw(web, w)),
    missing: words.map((w) => draw('32px "tsunagu-no-such-font"', w)),
  };
}
"""


def assert_japanese_drawn_with_web_font(page: Any, selectors: list[str], sample: str = FONT_SAMPLE) -> None:
    """The three checks that Japanese is really rendered, by the web font, on a machine with no
    Japanese font: (a) the font's faces for the sample text are loaded and document.fonts.check
    agrees (`sample`: Japanese the page shows; a browser fetches only the subsets its text needs);
    (b) every glyph of each selected element was drawn with the web font (Chromium's own
    account of the fonts it used, over the DevTools protocol); (c) on a canvas, two Japanese words
    drawn with the web font make different pixels, where a font without the glyphs makes the same."""
    state = page.evaluate(_FONT_STATE_JS, [FONT_FAMILY, sample])
    assert state["faces"] > 0, f"no @font-face of {FONT_FAMILY} on the page: {state}; log {page.log[-10:]}"
    assert state["loaded"], f"no face of {FONT_FAMILY} was loaded: {state}; log {page.log[-10:]}"
    assert state["check"] is True and state["uncovered"] == [], state
    # No other font can draw Japanese here; Latin text is the web font's too (it comes first).
    for selector in selectors:
        fonts = rendered_fonts(page, selector)
        # A web font (isCustomFont) named as the font file names itself ("Noto Sans JP Thin" for
        # Fontsource's files, whatever the weight), never a system font.
        assert all(custom and name.startswith(FONT_FAMILY) for name, custom in fonts), f"{selector} drawn with {fonts}"
    glyphs = page.evaluate(_GLYPHS_JS, [FONT_FAMILY, ["訪問", "世帯", "自治会"]])
    web_hashes = {g["hash"] for g in glyphs["web"]}
    assert all(g["ink"] > 50 for g in glyphs["web"]), glyphs
    assert len(web_hashes) == 3, f"the web font drew the same pixels for different words: {glyphs}"
    # ...and without it the same words are indistinguishable (tofu: Chromium has no Japanese glyphs).
    assert len({(g["hash"], g["ink"]) for g in glyphs["missing"][:2]}) == 1, glyphs


def rendered_fonts(page: Any, selector: str) -> set[tuple[str, bool]]:
    """The fonts Chromium drew the element's text with, as (family name, whether a web font): its
    own account over the DevTools protocol (CSS.getPlatformFontsForNode)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, f"no element {selector}"
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        assert fonts and all(f["glyphCount"] > 0 for f in fonts), f"{selector}: nothing drawn ({fonts})"
        return {(f["familyName"], f["isCustomFont"]) for f in fonts}
    finally:
        cdp.detach()
