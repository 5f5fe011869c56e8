"""The viewer in headless Chromium: runs, a response's heatmap and alternatives, comparison,
calibration, hostile data, a 100k-token response. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from web_data import XSS, XSS_SCRIPT, ViewerData
from web_support import screenshot

from logprobe.store import Store

pytestmark = pytest.mark.browser
Viewer = tuple[str, Store, ViewerData]


def test_runs_page_lists_filters_and_picks_two_to_compare(viewer: Viewer, page: Any) -> None:
    base, _, _ = viewer
    page.goto(base)
    page.wait_for_selector("a.run-link")
    names = page.locator("a.run-link").all_text_contents()
    assert {"baseline", "candidate", "calib", f"evil {XSS}"} <= set(names)
    page.fill("input[name=search]", "cand")
    page.wait_for_function("document.querySelectorAll('a.run-link').length === 1")
    assert page.locator("a.run-link").all_text_contents() == ["candidate"]
    page.fill("input[name=search]", "")
    page.wait_for_function("document.querySelectorAll('a.run-link').length >= 4")
    page.check("input[aria-label='select baseline']")
    page.check("input[aria-label='select candidate']")
    screenshot(page, "runs")
    page.click("#compare-selected")
    page.wait_for_url("**/compare.html?a=baseline&b=candidate")
    page.wait_for_selector("#comparison table.grid")


def test_response_page_shows_heatmap_and_alternatives_on_hover(viewer: Viewer, page: Any) -> None:
    base, _, data = viewer
    page.goto(f"{base}response.html?id={data.paris_b}")
    paris = page.locator(".heatmap .tok", has_text="Paris").first
    paris.wait_for()
    assert page.locator("#decision .badge").inner_text().lower() in ("publish", "review", "reject")
    assert page.locator("#prompt-text").inner_text() == "The capital of France is"
    paris.hover()
    tip = page.locator("#lp-tip")
    tip.wait_for(state="visible")
    alts = tip.locator("table.alts td.mono").all_text_contents()
    assert alts[:3] == ['" Paris"', '" Lyon"', '" London"']
    assert "31.0%" in tip.inner_text() and "probability" in tip.inner_text()
    bg = paris.evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg == "rgb(254, 224, 139)"  # p = 0.31: the 0.2-0.5 bucket
    screenshot(page, "response")
    page.mouse.move(5, 5)
    tip.wait_for(state="hidden")
    paris.click()  # a click pins the tooltip until Escape
    page.mouse.move(5, 5)
    assert tip.is_visible()
    page.keyboard.press("Escape")
    tip.wait_for(state="hidden")


def test_a_longer_response_flags_spans_and_jumps_to_them(viewer: Viewer, page: Any) -> None:
    base, _, data = viewer
    page.goto(f"{base}response.html?id={data.story}")
    page.wait_for_selector(".heatmap .tok")
    assert page.locator(".heatmap").inner_text().startswith(" Apollo 11 landed on the Moon")
    flagged = page.locator(".heatmap .tok[data-flag]")
    assert flagged.count() >= 1  # low-confidence or critical spans from logprobe.analysis
    low = page.locator(".heatmap .tok", has_text="19").nth(1)
    page.evaluate("window.scrollTo(0, document.querySelector('.heatmap').offsetTop - 560)")
    low.hover()
    tip = page.locator("#lp-tip")
    tip.wait_for(state="visible")
    assert '" 20"' in tip.inner_text() and "8.0%" in tip.inner_text()
    screenshot(page, "story", readme=True)
    page.locator(".spans li a").first.click()  # the low-confidence span "about 19"
    focused = page.locator(".heatmap .tok:focus")
    focused.wait_for()
    assert focused.get_attribute("data-index") == "22" and focused.inner_text() == " about"


def test_compare_page_sides_by_side(viewer: Viewer, page: Any) -> None:
    base, _, data = viewer
    page.goto(f"{base}compare.html?a=baseline&b=candidate")
    rows = page.locator("#comparison table.grid tbody tr")
    rows.first.wait_for()
    statuses = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
    assert statuses == ["regressed", "regressed", "improved"]
    assert "capital of France" in rows.first.inner_text()
    rows.first.click()
    page.wait_for_selector("#detail .side-b .tok")
    assert page.locator("#detail .side-a .tok").first.inner_text() == " Paris"
    assert page.locator("#detail .side-b .tok.delta-down").first.inner_text() == " Paris"
    page.locator("#detail .side-b .tok").first.hover()
    page.locator("#lp-tip").wait_for(state="visible")
    screenshot(page, "compare")
    rows.nth(1).click()  # moon: different answers, tokens struck through
    page.wait_for_selector("#detail .side-b .tok.changed")


def test_calibration_page_draws_reliability_and_risk_coverage(viewer: Viewer, page: Any) -> None:
    base, _, _ = viewer
    page.goto(f"{base}calibration.html?run=calib")
    page.wait_for_selector("#reliability rect.barrect")
    assert page.locator("#reliability rect.barrect").count() >= 5
    assert page.locator("#risk-coverage polyline.curve").count() == 1
    stats = page.locator("#calibration .stats").inner_text()
    assert "artifact" in stats and "60" in stats
    screenshot(page, "calibration")
    page.select_option("select[name=source]", "responses")
    page.wait_for_function(
        "document.querySelector('#calibration .stats') && "
        "document.querySelector('#calibration .stats').innerText.includes('responses')"
    )
    assert page.locator("#reliability rect.barrect").count() >= 3


def test_hostile_strings_are_shown_as_text_and_never_run(viewer: Viewer, page: Any) -> None:
    base, _, data = viewer
    run = f"evil {XSS}"
    for url in (
        base,
        f"{base}run.html?name={quote(run)}",
        f"{base}response.html?id={data.xss_response}",
        f"{base}compare.html?a={quote(run)}&b=baseline",
        f"{base}calibration.html?run={quote(run)}",
    ):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__pwned") is None, url
        assert page.locator("#app img").count() == 0 and page.locator("#app script").count() == 0
    page.goto(f"{base}response.html?id={data.xss_response}")
    tok = page.locator(".heatmap .tok").first
    tok.wait_for()
    assert tok.inner_text() == XSS
    assert page.locator("#prompt-text").inner_text() == f"{XSS_SCRIPT} {XSS}"
    tok.hover()
    page.locator("#lp-tip").wait_for(state="visible")
    assert f'"{XSS_SCRIPT}"' in page.locator("#lp-tip").inner_text()
    page.locator(".heatmap .tok").nth(1).hover()
    assert page.evaluate("window.__pwned") is None
    page.goto(f"{base}run.html?name={quote(run)}")
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == f"Run {run}"
    screenshot(page, "hostile")


@pytest.mark.parametrize(
    "path",
    [
        "",
        "run.html?name=baseline",
        "response.html?id=1",
        "compare.html?a=baseline&b=candidate",
        "calibration.html?run=calib",
        "playground.html",
    ],
)
def test_pages_work_under_the_content_security_policy(
    viewer: Viewer, strict_page: Any, path: str
) -> None:
    base, _, _ = viewer
    response = strict_page.goto(base + path)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    strict_page.wait_for_load_state("networkidle")
    assert strict_page.locator("#app").inner_text() != "Loading…"


def test_unknown_names_show_clear_errors(viewer: Viewer, page: Any) -> None:
    base, _, _ = viewer
    page.goto(f"{base}run.html?name=nope")
    assert page.locator(".error").inner_text().startswith("error: no run named 'nope'")
    page.goto(f"{base}response.html?id=987654")
    assert page.locator(".error").inner_text() == "error: no response with id 987654"


@pytest.mark.slow
def test_huge_response_page_stays_usable(viewer: Viewer, huge_response: int, page: Any) -> None:
    base, _, _ = viewer
    t0 = time.perf_counter()
    page.goto(f"{base}response.html?id={huge_response}")
    page.wait_for_selector(".heatmap .tok")
    first_paint = time.perf_counter() - t0
    assert page.locator(".heatmap .tok").count() == 1000  # one page, not 100k nodes
    assert "of 100000" in page.locator("#tokens .pager").inner_text()
    assert first_paint < 30, f"first page of a 100k-token response took {first_paint:.1f}s"
    t0 = time.perf_counter()
    page.locator("#tokens .pager button", has_text="next").click()
    page.wait_for_selector(".heatmap .tok[data-index='1000']")
    next_page = time.perf_counter() - t0
    page.locator("#tokens .pager input.pageno").fill("100")
    page.locator("#tokens .pager input.pageno").dispatch_event("change")
    page.wait_for_selector(".heatmap .tok[data-index='99999']")
    page.locator(".heatmap .tok[data-index='99999']").hover()
    page.locator("#lp-tip").wait_for(state="visible")
    assert next_page < 10
    print(f"\n100k-token response page: first page {first_paint:.2f}s, next page {next_page:.2f}s")
