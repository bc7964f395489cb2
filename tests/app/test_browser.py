"""``afos serve`` in a real browser: Debian's Chromium, headless, driven by its ChromeDriver.

It opens the runs page, follows a search live (the page changes as the search writes, without a reload and
without moving the reader), types a function into the box and sees it plotted, and checks the browser
logged no error on any page. Screenshots of every page go to ``$AFOS_SCREENSHOTS`` (else the test's
temporary folder), for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.test_live import LIVE_SEARCH

pytestmark = pytest.mark.browser

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
#: Flags for a headless Chromium on a machine without network: no background connections, no sandbox (root).
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
         "--window-size=1300,900")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Any, str], None]:
    folder = Path(os.environ.get("AFOS_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(driver: Any, name: str) -> None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1300, min(max(900, height + 100), 4000))
        driver.save_screenshot(str(folder / f"{name}.png"))
        driver.set_window_size(1300, 900)

    return shoot


def _wait(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"waited {seconds:.0f} s for {what}")


def _errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _status(address: str, run: str) -> str | None:
    with urllib.request.urlopen(address + "/api/runs", timeout=30) as answer:
        rows = {row["run"]: row for row in json.loads(answer.read())["runs"]}
    return rows[run]["status"] if run in rows else None


def test_the_pages_in_a_real_browser(served: tuple[str, Path], browser: Any, shots: Callable[[Any, str], None]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    address, root = served
    search = subprocess.Popen([sys.executable, "-m", "afos", *LIVE_SEARCH, "--out", str(root / "live")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        browser.get(address + "/")
        names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#runs-table tbody td:nth-child(3) a")]
        assert {"search", "evaluate", "compare"} <= set(names)
        browser.find_element(By.XPATH, "//th[text()='run']").click()
        ordered = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#runs-table tbody td:nth-child(3) a")]
        assert ordered == sorted(ordered)
        shots(browser, "runs")
        assert not _errors(browser)

        for run in ("search", "compare", "evaluate"):
            browser.get(f"{address}/runs/{run}")
            assert browser.find_element(By.CSS_SELECTOR, "#status .badge").text == "finished"
            drawn = "#charts canvas" if run == "search" else "#statistics table.heatmap"
            assert browser.find_elements(By.CSS_SELECTOR, drawn), f"the {run} page lacks {drawn}"
            shots(browser, run)
            assert not _errors(browser), run

        _wait(lambda: _status(address, "live") == "running", 120, "the live search to start")
        browser.set_window_size(1300, 420)  # short, so that the reader has scrolled even on an early page
        browser.get(f"{address}/runs/live")
        browser.execute_script("window.afosMark = 'same page'; window.scrollTo(0, 120);")
        assert browser.execute_script("return window.scrollY") == 120
        before = browser.find_element(By.ID, "status").text
        _wait(lambda: browser.find_element(By.ID, "status").text != before, 180, "the live page to change")
        assert browser.execute_script("return window.afosMark") == "same page"  # updated in place, not reloaded
        assert browser.execute_script("return window.scrollY") == 120  # and the reader was not moved
        browser.set_window_size(1300, 900)
        _wait(lambda: search.poll() is not None, 240, "the live search to end")
        _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#status .badge").text == "finished", 30,
              "the live page to say finished")
        assert browser.find_elements(By.CSS_SELECTOR, "#charts canvas") and browser.find_elements(By.CSS_SELECTOR, "#hall svg")
        shots(browser, "live-search")
        assert not _errors(browser)

        box = browser.find_element(By.NAME, "expr")
        box.send_keys("x*tanh(softplus(x))", Keys.ENTER)
        _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#function-chart[data-drawn='401'] canvas"), 30, "the plot")
        assert "/functions/" in browser.current_url
        assert browser.find_elements(By.CSS_SELECTOR, ".math .katex"), "the LaTeX was not rendered"
        lo = browser.find_element(By.NAME, "lo")
        lo.clear()
        lo.send_keys("-1", Keys.ENTER)
        _wait(lambda: browser.execute_script(
            "const c = document.querySelector('#function-chart'); return c && c.dataset.drawn === '401' && "
            "document.querySelectorAll('#function-chart canvas').length === 1"), 30, "the replot")
        shots(browser, "function")
        assert not _errors(browser)
    finally:
        if search.poll() is None:
            search.kill()
        search.wait(timeout=60)
