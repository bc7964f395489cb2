"""The gallery, a genealogy and the overlay in a real browser (headless Chromium, as in test_browser.py):
the gallery's filter narrows the set, a genealogy's parent link leads to the parent's page, the overlay's
slider redraws the curve, and the browser logs no error. Screenshots go to ``$AFOS_SCREENSHOTS`` (else the
test's temporary folder), for a person to look at."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.app.test_browser import _errors, _wait, browser, shots  # noqa: F401  (fixtures, used by name)

pytestmark = pytest.mark.browser


def _api(address: str, path: str) -> Any:
    with urllib.request.urlopen(address + path, timeout=30) as answer:
        return json.loads(answer.read())


def _count(driver: Any, css: str) -> int:
    from selenium.webdriver.common.by import By

    return len(driver.find_elements(By.CSS_SELECTOR, css))


def test_the_gallery_filter_narrows_the_set(served: tuple[str, Path], browser: Any,  # noqa: F811
                                            shots: Callable[[Any, str], None]) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    address, _ = served
    browser.get(f"{address}/runs/search/gallery")
    everything = _count(browser, "#gallery li.card")
    assert everything == _api(address, "/api/runs/search/gallery")["total"] and everything > 1
    assert _count(browser, "#gallery svg.sketch path.value") == everything
    shots(browser, "gallery")
    Select(browser.find_element(By.NAME, "negative")).select_by_value("no")
    browser.find_element(By.CSS_SELECTOR, "#gallery-filters button").click()
    _wait(lambda: "negative=no" in browser.current_url, 30, "the filtered gallery")
    narrowed = _count(browser, "#gallery li.card")
    assert 0 < narrowed < everything
    assert narrowed == _api(address, "/api/runs/search/gallery?negative=no")["total"]
    assert Select(browser.find_element(By.NAME, "negative")).first_selected_option.text == "no"
    shots(browser, "gallery-filtered")
    assert not _errors(browser)


def test_a_genealogy_link_leads_to_the_parents_page(served: tuple[str, Path], browser: Any,  # noqa: F811
                                                   shots: Callable[[Any, str], None]) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    address, root = served
    rows = [row for row in _api(address, "/api/runs/search/gallery")["functions"] if row["fitness"] is not None]
    child, parents = rows[-1], rows[:2]
    lineage = {"made_by": "offspring", "operators": ["crossover", "node replacement"], "parents": [p["key"] for p in parents]}
    with sqlite3.connect(root / "search" / "afos.db") as db:  # a lineage known in advance, whatever the search made
        db.execute("UPDATE candidates SET lineage = ? WHERE activation_key = ?", (json.dumps(lineage), child["key"]))
    browser.get(f"{address}/runs/search")
    browser.find_element(By.CSS_SELECTOR, "#hall a.lineage").click()  # the hall of fame leads to a genealogy
    _wait(lambda: "/runs/search/functions/" in browser.current_url, 30, "the hall's genealogy link")
    browser.get(address + child["link"])
    assert browser.find_element(By.TAG_NAME, "h1").text == child["canonical"]
    assert _count(browser, "#parents a.genealogy-link") == 2 and _count(browser, "#runs tbody tr") >= child["runs"]
    shots(browser, "genealogy")
    link = browser.find_element(By.CSS_SELECTOR, "#parents a.genealogy-link")
    target = link.get_attribute("href")
    link.click()
    _wait(lambda: browser.current_url == target, 30, "the parent's page")
    assert browser.find_element(By.TAG_NAME, "h1").text == parents[0]["canonical"]
    children = browser.find_elements(By.CSS_SELECTOR, "#children a.genealogy-link")
    assert any(a.get_attribute("href").endswith(child["link"]) for a in children)
    shots(browser, "genealogy-parent")
    assert not _errors(browser)


def test_the_overlay_slider_redraws_the_curve(served: tuple[str, Path], browser: Any,  # noqa: F811
                                              shots: Callable[[Any, str], None]) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    address, _ = served
    browser.get(f"{address}/overlay?f=p0*tanh(p1*x)&f=x*tanh(softplus(x))&run=search&top=2")
    _wait(lambda: browser.execute_script("return document.getElementById('overlay').dataset.draws"), 30, "the overlay")
    assert _count(browser, "#overlay canvas") == 3  # f, f' and f'' sharing x
    assert "Mish" in browser.find_element(By.ID, "curves").text
    drawn, checksum = ("return document.querySelector('#overlay-f canvas').toDataURL()",
                       "return document.getElementById('overlay').dataset.checksum")
    before, total = browser.execute_script(drawn), browser.execute_script(checksum)
    shots(browser, "overlay")
    slider = browser.find_element(By.CSS_SELECTOR, "input.slider[data-curve='0'][data-name='p0']")
    slider.send_keys(Keys.END)
    _wait(lambda: browser.execute_script(checksum) != total, 30,
          "the redraw after the slider moved")
    assert browser.execute_script(drawn) != before
    assert slider.find_element(By.XPATH, "following-sibling::output").text == "5.00"
    # p0 scales f: the curve drawn is now 5 times the first
    assert float(browser.execute_script(checksum)) == pytest.approx(5 * float(total), rel=1e-4)
    browser.find_element(By.CSS_SELECTOR, "input.baseline[value='gelu']").click()
    browser.find_element(By.CSS_SELECTOR, "input.baseline[value='relu']").click()
    shots(browser, "overlay-moved")
    assert not _errors(browser)
