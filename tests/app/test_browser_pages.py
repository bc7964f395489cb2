"""A search's confirmation as a forest plot and the runs list's choices, in a real browser (headless Chromium,
as in test_browser.py): a finalist whose confirmation has not finished is drawn as pending, not as an
interval; ticking two searches in the runs list opens them on one anytime chart; dark mode follows the
system. Screenshots go to ``$AFOS_SCREENSHOTS`` (else the test's temporary folder)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from afos.records.evaluation import Phase
from afos.storage.store import RunStore
from tests.app.test_browser import _errors, _wait, browser, shots  # noqa: F401  (fixtures, used by name)

pytestmark = pytest.mark.browser


def test_an_unfinished_confirmation_is_drawn_pending(served: tuple[str, Path], browser: Any,  # noqa: F811
                                                     shots: Callable[[Any, str], None]) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    address, root = served
    browser.get(f"{address}/runs/search")
    drawn = browser.find_elements(By.CSS_SELECTOR, "table.forest svg.strip circle.mean")
    assert drawn and drawn[0].is_displayed()
    title = browser.find_element(By.CSS_SELECTOR, "table.forest svg.strip title").get_attribute("textContent")
    assert "points" in title and "p (Holm)" in title
    shots(browser, "forest")
    with RunStore(root / "search" / "afos.db", readonly=True) as store:
        finalist = next(e for e in store.evaluations(phase=Phase.CONFIRM) if e.expression not in ("relu", "silu"))
    with sqlite3.connect(root / "search" / "afos.db") as db:  # as a confirmation killed half-way leaves it
        db.execute("DELETE FROM evaluations WHERE phase = 'confirm' AND activation_key = ? AND seed = ?",
                   (finalist.activation_key, finalist.seed))
    browser.get(f"{address}/runs/search")
    forest = browser.find_element(By.CSS_SELECTOR, "table.forest")
    assert "pending: not every confirmation seed is trained" in forest.text
    assert not forest.find_elements(By.CSS_SELECTOR, "circle.mean")
    assert forest.find_element(By.CSS_SELECTOR, ".badge").text == "pending"
    assert "The confirmation has not finished" in browser.find_element(By.ID, "verdict").text
    shots(browser, "forest-pending")
    assert not _errors(browser)


def test_ticked_searches_open_on_one_chart_in_either_colour_scheme(served: tuple[str, Path], browser: Any,  # noqa: F811
                                                                    shots: Callable[[Any, str], None]) -> None:  # noqa: F811
    import shutil

    from selenium.webdriver.common.by import By

    address, root = served
    shutil.copytree(root / "search", root / "search-again")
    browser.get(f"{address}/")
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "input[name=run][value='search-again']"), 30,
          "the copied search in the runs list")
    for name in ("search", "search-again"):
        browser.find_element(By.CSS_SELECTOR, f"input[name=run][value='{name}']").click()
    browser.find_element(By.CSS_SELECTOR, "#compare button").click()
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-chart=anytime] canvas"), 30, "the anytime chart")
    query = parse_qs(urlparse(browser.current_url).query)
    assert urlparse(browser.current_url).path == "/searches" and sorted(query["run"]) == ["search", "search-again"]
    legend = browser.find_element(By.CSS_SELECTOR, ".u-legend").text
    assert "ga + knn: median of 2" in legend and "--" not in legend
    light = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    dark = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert light != dark
    shots(browser, "searches-dark")
    assert not _errors(browser)
