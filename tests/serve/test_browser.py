"""The four pages in a real browser: Debian's Chromium, headless, driven by Playwright, over
`heroforge serve`'s app listening with uvicorn on a free port, with the data of a tiny run.

Every test also checks that the page logged no console error, threw nothing and broke no rule
of its Content-Security-Policy. Screenshots go to $HEROFORGE_SCREENSHOTS if it is set, else
to a pytest temp folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from PIL import Image

from heroforge.commands.serve import _listen
from heroforge.data.overrides import read_overrides
from heroforge.serve.app import create_app

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'"
)
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH: `make chromium` installs Debian's", allow_module_level=True)

expect = sync_api.expect
TOKEN = "browser-token-0123456789"
# The network here is closed: without these Chromium keeps trying its own background services
# (updates, sync, QUIC probes) and logs the refusals.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Reports every CSP violation to the test; runs before the page's own scripts.
WATCH_CSP = """document.addEventListener("securitypolicyviolation",
  (e) => window.hfViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));"""
# An <img>'s pixels (RGBA, flat), through a canvas: blob: and data: pictures do not taint it.
PIXELS = """(img) => { const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(0, 0, c.width, c.height).data); }"""
LOADED = "(img) => img.complete && img.naturalWidth > 0"
WAIT_MS = 30_000  # a loaded 2-core machine draws and loads slowly; nothing here needs more


@contextmanager
def serving(app: object) -> Iterator[str]:
    """The app on 127.0.0.1, any free port, served by uvicorn in a thread (as `heroforge
    serve` does, on a socket bound the same way); yields the base URL."""
    import uvicorn

    sock = _listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def serve(root, prepared) -> Iterator[Callable[..., str]]:
    """serve(token=None) -> base URL of a live server over the conftest's root and prepared
    folder (fresh copies for each test: the tests write overrides and best.json)."""
    with ExitStack() as stack:
        yield lambda token=None: stack.enter_context(serving(create_app(root, token, [prepared])))


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    wanted = os.environ.get("HEROFORGE_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Tab:
    """A page with everything that went wrong on it collected in `problems`."""

    def __init__(self, page: sync_api.Page, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.problems: list[str] = []
        page.set_default_timeout(WAIT_MS)
        page.on("console", self._console)
        page.on("pageerror", lambda err: self.problems.append(f"uncaught: {err}"))
        page.on("response", self._response)
        page.expose_function("hfViolation", lambda text: self.problems.append(f"CSP: {text}"))
        page.add_init_script(WATCH_CSP)

    def _console(self, message: sync_api.ConsoleMessage) -> None:
        if message.type == "error":  # Chromium logs failed loads and CSP refusals here too
            self.problems.append(f"console: {message.text}")

    def _response(self, response: sync_api.Response) -> None:
        if response.status >= 400:  # the console says that a load failed, not which one
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def wait_loaded(self, selector: str) -> None:
        self.page.wait_for_function(f"() => ({LOADED})(document.querySelector({selector!r}))")

    def pixels(self, selector: str) -> list[int]:
        return self.page.locator(selector).evaluate(PIXELS)

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=path, full_page=full_page)
        with Image.open(path) as image:
            assert image.width == self.page.viewport_size["width"]
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 50, f"{path} is (nearly) blank"
        assert path.stat().st_size > 10_000, path
        return path

    def assert_clean(self) -> None:
        assert self.problems == []
        assert not self.page.locator("#message.show").count(), self.page.inner_text("#message")


@pytest.fixture
def tab(browser, shots) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield Tab(context.new_page(), shots)
    finally:
        context.close()


def test_queue_page_lists_the_jobs_and_keeps_the_token_on_its_links(serve, tab):
    url = serve(TOKEN)
    tab.page.goto(f"{url}/?token={TOKEN}")
    rows = tab.page.locator("#jobs tbody tr[data-job]")
    expect(rows).to_have_count(2)
    running, queued = rows.nth(0), rows.nth(1)
    expect(running).to_contain_text("running")
    expect(running).to_contain_text("0.064 / 0.064 kimg")
    expect(running.locator("td").nth(4)).to_have_text("0m13s")  # ETA 12.5 s
    expect(running.locator(".bar > span")).to_have_attribute("style", "width: 100%;")
    expect(queued).to_contain_text("queued")
    expect(queued.locator("button[data-action=resume]")).to_be_disabled()
    tab.screenshot("queue")
    running.locator("td").nth(1).locator("a").click()
    tab.page.wait_for_url(re.compile(rf"/job/1\?token={TOKEN}$"))
    expect(tab.page.locator("#title")).to_contain_text("job 1:")
    tab.assert_clean()


def test_job_page_draws_curves_grids_and_uses_a_snapshot_as_best(serve, tab, root):
    url = serve(TOKEN)  # the grid <img> and every fetch must carry the token
    tab.page.goto(f"{url}/job/1?token={TOKEN}")
    # a path per series; those with both ticks of the run are a line: "M x,y L x,y"
    point = r"[0-9.]+,[0-9.]+"
    for plot, names in (("losses", ["G", "D", "pl"]), ("ada", ["p", "r_t"]), ("speed", [])):
        paths = tab.page.locator(f"#plot-{plot} svg path")
        expect(paths.first).to_be_attached()
        shapes = paths.evaluate_all("(ps) => ps.map((p) => p.getAttribute('d'))")
        assert all(re.fullmatch(rf"M{point}(L{point})*", d) for d in shapes), (plot, shapes)
        assert any("L" in d for d in shapes), (plot, shapes)
        legend = tab.page.locator(f"#plot-{plot} .legend").inner_text().split()
        assert set(names) <= set(legend), (plot, legend)
    expect(tab.page.locator("#plot-fid")).to_contain_text("no data yet")  # tiny: no FID
    expect(tab.page.locator("#verdicts")).to_contain_text("stable")
    # the latest grid: 32 fixed seeds of 32 px, 8 a row
    grid = tab.page.locator("#grid")
    expect(grid).to_have_attribute("src", re.compile(r"grid-000000\.064kimg\.png\?token="))
    tab.wait_loaded("#grid")
    assert grid.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [256, 128]
    tab.page.locator("#grid-slider").fill("0")  # back through the history
    expect(grid).to_have_attribute("src", re.compile(r"grid-000000kimg\.png"))
    expect(tab.page.locator("#grid-label")).to_have_text("0 kimg (1 of 3)")
    tab.wait_loaded("#grid")
    tab.screenshot("job")

    # "use as best" on the older snapshot: best.json names it, and the table says so
    snapshots = tab.page.locator("#snapshots tr[data-snapshot]")
    expect(snapshots).to_have_count(2)
    older = snapshots.nth(1)  # newest first
    name = older.get_attribute("data-snapshot")
    marks = older.locator("td").nth(2)
    expect(marks).to_have_text("")  # the tiny run measures no FID: training marked none
    older.locator("button[data-action=best]").click()
    expect(marks).to_have_text("best (what generate uses)")
    expect(older.locator("button[data-action=best]")).to_be_disabled()
    checkpoints = next((root / "jobs" / "0001" / "runs").iterdir()) / "checkpoints"
    assert json.loads((checkpoints / "best.json").read_text())["file"] == name
    tab.assert_clean()


def test_explorer_child_follows_the_weight_slider(serve, tab):
    tab.page.goto(f"{serve()}/explore/1")
    cards = tab.page.locator("#heroes .card")
    expect(cards).to_have_count(8)  # seeds 0-7 drawn by the run's generator
    images = cards.locator("img")
    every_loaded = f"() => [...document.querySelectorAll('#heroes img')].every({LOADED})"
    tab.page.wait_for_function(every_loaded)
    assert images.evaluate_all("(imgs) => imgs.map((i) => i.naturalWidth)") == [32] * 8
    cards.nth(0).get_by_role("button", name="A", exact=True).click()
    with tab.page.expect_response(re.compile(r"/child\?a=0&b=3&weight=0\.5&")):
        cards.nth(3).get_by_role("button", name="B", exact=True).click()
    child = tab.page.locator("#child")
    expect(child).to_have_attribute("data-weight", "0.5")
    for selector in ("#child", "#parent-a", "#parent-b"):
        tab.wait_loaded(selector)
    half, half_src = tab.pixels("#child"), child.get_attribute("src")
    parent_a, parent_b = tab.pixels("#parent-a"), tab.pixels("#parent-b")
    assert half not in (parent_a, parent_b)
    tab.screenshot("explore")

    slider = tab.page.locator("#weight")
    slider.focus()
    with tab.page.expect_response(re.compile(r"/child\?.*weight=1&")) as last:
        tab.page.keyboard.press("End")  # the slider to B's end, as a user would
    assert last.value.ok
    assert last.value.headers["content-type"] == "image/png"
    expect(child).to_have_attribute("data-weight", "1")
    tab.wait_loaded("#child")
    assert child.get_attribute("src") != half_src
    # All B: the child is B itself, to within one level. The cards draw the seeds eight at a
    # time and the child alone, and a convolution may round a batch of eight differently.
    child_b = tab.pixels("#child")
    assert len(child_b) == len(parent_b)
    assert max(abs(c - p) for c, p in zip(child_b, parent_b, strict=True)) <= 1
    expect(tab.page.locator("#caption-child")).to_have_text("child, 100 % B")
    slider.fill("0.25")
    expect(child).to_have_attribute("data-weight", "0.25")
    tab.wait_loaded("#child")
    quarter = tab.pixels("#child")
    assert quarter not in (half, parent_a, parent_b)
    tab.assert_clean()


def test_review_clicks_write_the_overrides_that_prepare_reads(serve, tab, prepared):
    tab.page.goto(f"{serve()}/review")
    rows = len((prepared / "manifest.jsonl").read_text().splitlines())
    expect(tab.page.locator("#counts")).to_contain_text(f"{rows} shown of {rows}")
    expect(tab.page.locator("#cards .card")).to_have_count(min(rows, 200))  # a page at a time
    tab.wait_loaded("#cards .card img")
    tab.screenshot("review", full_page=False)  # 200 cards; those below load lazily

    # a click on an excluded picture includes it
    tab.page.locator("#decision").select_option("exclude")
    excluded = tab.page.locator("#cards .card:has(button[data-action=flip]:not([disabled]))")
    source = excluded.first.get_attribute("data-source")
    card = tab.page.locator(f'#cards .card[data-source="{source}"]')
    card.locator("img").click()
    expect(card).to_have_class(re.compile(r"\bchanged\b"))
    expect(card.locator("button[data-action=flip]")).to_have_text("exclude")
    assert read_overrides(prepared / "overrides.csv") == {source: "include"}

    # upper/full corrects a kept picture's body extent
    tab.page.locator("#decision").select_option("keep")
    kept = tab.page.locator("#cards .card").first
    kept_source = kept.get_attribute("data-source")
    button = kept.locator("button[data-action=body]")
    flipped = "upper" if button.inner_text() == "→ upper" else "full"
    button.click()
    expect(kept).to_contain_text(f"override: {flipped}")
    expect(tab.page.locator("#counts")).to_contain_text("2 changes waiting for prepare")
    assert read_overrides(prepared / "overrides.csv") == {source: "include", kept_source: flipped}

    # "clear" takes an override out of the file again
    kept.locator("button[data-action=clear]").click()
    expect(kept.locator("button[data-action=clear]")).to_be_disabled()
    assert read_overrides(prepared / "overrides.csv") == {source: "include"}
    tab.assert_clean()


def test_the_watch_sees_a_csp_violation(serve, tab):
    """The pages' "no violation" checks mean something: an inline script is caught."""
    tab.page.goto(f"{serve()}/")
    expect(tab.page.locator("#jobs tbody tr[data-job]")).to_have_count(2)
    tab.page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
        " document.body.append(s); }"
    )
    deadline = time.monotonic() + 10
    while not any(p.startswith("CSP: script-src") for p in tab.problems):
        assert time.monotonic() < deadline, tab.problems
        tab.page.wait_for_timeout(50)
    assert tab.page.evaluate("() => window.x") is None  # and the script did not run
