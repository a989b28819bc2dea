"""The HTML report in a real browser: Debian's chromium, driven headless by playwright.

Skipped, with the reason, only where chromium or playwright is not installed (`.ci/run` installs
chromium with apt; playwright comes with the dev extra). Playwright's own browser download is
not used: the system browser is launched by its path.
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from wsvad.evaluate.html_report import write_html_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _why_no_browser() -> str | None:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        return f"chromium is not installed ({CHROMIUM}; apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


pytestmark = pytest.mark.skipif(_why_no_browser() is not None, reason=str(_why_no_browser()))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if CHROMIUM.is_file() else Path(shutil.which("chromium"))
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(executable), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def reports(report_runs, tmp_path_factory) -> dict[str, Path]:
    """Two runs with data/a.mp4 reachable from the report's folder; one run with no video."""
    folder = tmp_path_factory.mktemp("html")
    two = write_html_report(
        [report_runs["run_a"], report_runs["run_b"]], report_runs["data"].parent / "two.html"
    )
    tiny = write_html_report([report_runs["run_tiny"]], folder / "tiny.html")
    return {"two": two, "tiny": tiny}


class Page:
    """A loaded report with every request, console message and page error recorded."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.requests: list[str] = []
        self.errors: list[str] = []

        def route(r):  # record every request; anything that is not a local file is refused
            self.requests.append(r.request.url)
            return r.continue_() if r.request.url.startswith("file://") else r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.url = path.as_uri()
        self.page.goto(self.url)
        self.wait_for("window.wsvadReport !== undefined")

    def js(self, expression: str):
        return self.page.evaluate(expression)

    def wait_for(self, expression: str, seconds: float = 20.0) -> None:
        """Poll ``expression`` until true (playwright's wait_for_function evaluates a string in
        the page, which the report's Content-Security-Policy forbids; evaluate() is allowed)."""
        deadline = time.monotonic() + seconds
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {seconds} s: {expression}")
            time.sleep(0.05)

    def close(self):
        self.context.close()


@pytest.fixture
def open_page(browser):
    pages = []

    def opener(path: Path) -> Page:
        pages.append(Page(browser, path))
        return pages[-1]

    yield opener
    for page in pages:
        page.close()


def test_page_loads_offline_without_errors(open_page, reports):
    page = open_page(reports["tiny"])
    page.page.wait_for_timeout(300)
    assert page.errors == []
    assert page.requests == [page.url]  # the file itself: no script, style, font or data fetched
    # The page's Content-Security-Policy is in force: an image from the network is refused
    # before any request is made.
    probe = """new Promise(resolve => {
        document.addEventListener("securitypolicyviolation", e => resolve(e.effectiveDirective));
        new Image().src = "http://127.0.0.1:9/probe.png";
        setTimeout(() => resolve("no violation"), 3000);
    })"""
    assert page.js(probe) == "img-src" and page.requests == [page.url]
    note = page.page.inner_text("#player")
    assert note == "No player: no video file is recorded for this video (imported features?)."


def test_curves_of_both_runs_render_with_their_figures(open_page, reports):
    page = open_page(reports["two"])
    roc = page.js("document.getElementById('roc').data.map(t => [t.name, t.line.color])")
    assert roc == [
        ["run_a · AUC 87.50", "#0072B2"],
        ["run_b seed-0 · AUC 87.50", "#D55E00"],
        ["run_b seed-1 · AUC 100.00", "#D55E00"],
        ["chance", "#999"],
    ]
    pr = page.js("document.getElementById('pr').data.map(t => t.name)")
    assert pr[0] == "run_a · AP (sklearn) 86.67 · PR-AUC (trapezoid) 87.78"
    # Drawn, not just declared: one SVG path per trace in each plot.
    assert (
        page.js("document.querySelectorAll('#roc .scatterlayer .trace path.js-line').length") == 4
    )
    assert page.page.inner_text("#warnings") == (
        "run_b: model selected on the TEST SET (test-best); "
        "its figures are optimistic, not a held-out result"
    )
    assert "SELECTED ON THE TEST SET" in page.page.inner_text(".run[data-run='run_b'] h2")
    assert "SELECTED ON THE TEST SET" not in page.page.inner_text(".run[data-run='run_a']")
    assert page.errors == []


def test_video_table_rows_and_sorting(open_page, reports):
    page = open_page(reports["two"])
    rows = "Array.from(document.querySelectorAll('#videos tbody tr')).map(r => r.dataset.video)"
    assert page.js(rows) == ["a", "b", "c"]
    header = "#videos thead th[data-key='max0']"  # run_a's highest score: a .9, b .3, c .8
    page.page.click(header)
    assert page.js(rows) == ["b", "c", "a"]
    assert page.page.get_attribute(header, "aria-sort") == "ascending"
    page.page.click(header)
    assert page.js(rows) == ["a", "c", "b"]
    page.page.click("#videos thead th[data-key='auc0']")  # b has no AUC (normal): last
    assert page.js(rows) == ["a", "c", "b"]


def test_clicking_a_row_shows_its_timeline(open_page, reports):
    page = open_page(reports["two"])
    trace = "document.getElementById('timeline').data[0]"
    assert page.js("document.getElementById('timeline').dataset.video") == "a"
    assert page.js(f"{trace}.x") == pytest.approx([0, 0.64, 1.28, 1.92])  # frames / 25 fps
    assert page.js("document.getElementById('timeline').layout.shapes[0].x0") == 0.64
    page.page.click("#videos tbody tr[data-video='b']")
    assert page.js("document.getElementById('timeline').dataset.video") == "b"
    assert page.js(f"{trace}.x") == pytest.approx([0, 0.64, 1.28])
    assert page.js(f"{trace}.y") == [0.2, 0.3, 0.3]
    names = page.js("document.getElementById('timeline').data.map(t => t.name)")
    assert names == ["run_a", "run_b seed-0", "run_b seed-1"]
    assert "video file not found" in page.page.inner_text("#player")
    assert page.errors == []


def test_player_seeks_where_the_timeline_is_clicked(open_page, reports):
    page = open_page(reports["two"])
    page.wait_for("document.querySelector('#player video').readyState >= 1")
    assert page.js("document.querySelector('#player video').getAttribute('src')") == "data/a.mp4"
    box = page.page.locator("#timeline .nsewdrag").bounding_box()
    page.page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)
    page.wait_for("document.querySelector('#player video').currentTime > 0")
    # 75% of the axis [0, 1.92 s] is 1.44 s; the cursor (the last shape) follows the player.
    assert page.js("document.querySelector('#player video').currentTime") == pytest.approx(
        1.44, abs=0.05
    )
    page.wait_for(
        "(s => s[s.length - 1].x0 > 1.3)(document.getElementById('timeline').layout.shapes)"
    )
    local = {page.url, (Path(page.url.removeprefix("file://")).parent / "data/a.mp4").as_uri()}
    assert set(page.requests) <= local and page.errors == []


def test_tiny_scores_get_an_axis_that_shows_them(open_page, reports):
    page = open_page(reports["tiny"])
    top = page.js("document.getElementById('timeline').layout.yaxis.range[1]")
    assert 0.0009 < top < 0.001  # a's highest score .9e-3, plus 5%
    note = page.page.inner_text("#axis-note")
    assert note == "threshold 0.5 is above the axis (highest score 0.000900)"
    page.page.select_option("#y-mode", "unit")
    assert page.js("document.getElementById('timeline').layout.yaxis.range[1]") == 1.02


def test_screenshot_is_not_blank(open_page, reports):
    from PIL import Image

    page = open_page(reports["two"])
    png = page.page.screenshot()
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int64)
    assert pixels.shape == (1000, 1400, 3) and pixels.std() > 20
    colours = np.unique((pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2])
    assert len(colours) > 200  # curves, text, tables: anti-aliased lines of many colours
