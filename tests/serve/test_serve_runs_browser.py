"""The queue page's run table (`heroforge serve --runs`) in a real browser, with the machinery
of test_browser.py (Debian's Chromium through Playwright; skipped where either is missing)."""

from __future__ import annotations

import re
import shutil

from heroforge import rundir
from heroforge.serve.app import create_app
from serve.test_browser import TOKEN, browser, expect, serving, shots, tab  # noqa: F401


def test_the_queue_page_lists_runs_outside_the_queue(root, trained_run, tmp_path, tab):  # noqa: F811
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / "00000-finished")
    shutil.copytree(trained_run, runs / "00001-damaged")
    (runs / "00001-damaged" / rundir.RUN_JSON).write_text("{")
    with serving(create_app(root, TOKEN, run_dirs=[runs])) as url:
        tab.page.goto(f"{url}/?token={TOKEN}")
        rows = tab.page.locator("#runs tbody tr[data-run]")
        expect(rows).to_have_count(2)
        done, damaged = rows.nth(0), rows.nth(1)
        expect(done).to_contain_text("finished")
        expect(done).to_contain_text("0.064 / 0.064 kimg")
        expect(done.locator(".bar > span")).to_have_attribute("style", "width: 100%;")
        tab.wait_loaded("#runs tbody tr[data-run] img.thumb")  # the grid, fetched with the token
        expect(done.locator("img.thumb")).to_have_attribute("src", re.compile(f"token={TOKEN}$"))
        expect(damaged).to_contain_text("run.json cannot be read")
        tab.screenshot("queue-with-runs")
        tab.assert_clean()
