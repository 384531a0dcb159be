"""The explorer page in a real browser: Debian's chromium driven by Playwright (no network, no downloads).

Each test writes a page from real scripted runs, opens it from disk, fails on any console error or page error
(a Content-Security-Policy violation is one), clicks through it as a user would, and saves a full-page
screenshot under ENGINE_TEST_ARTIFACTS (default tests/artifacts) to look at.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from engine.explorer import write_explorer
from engine.explorer.data import find_runs, load_run, page_data
from explorer_runs import HOSTILE, demo_folder, paired_runs

pytestmark = pytest.mark.browser

SET_UP = "run the README set-up command, which installs Debian's chromium and the dev extra (playwright)"


def artifacts() -> Path:
    """ENGINE_TEST_ARTIFACTS, a relative one taken from the project folder (tests run in a temporary folder)."""
    folder = Path(__file__).resolve().parent.parent / os.environ.get("ENGINE_TEST_ARTIFACTS", "tests/artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the Python package playwright is not installed: {SET_UP}")
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.fail(f"no chromium found (looked on PATH and at /usr/bin/chromium): {SET_UP}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


def open_page(browser, path: Path):
    """The page at `path`, and the list its console errors and uncaught exceptions are collected into."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("#item-list details.item")
    return page, problems


def test_browse_filter_search_and_compare_two_runs(browser, tmp_path):
    runs = paired_runs(tmp_path)
    path = write_explorer(list(runs), tmp_path / "explorer.html")
    data = page_data([load_run(folder) for folder in runs])
    page, problems = open_page(browser, path)
    listed = page.locator("#item-list > details.item")
    assert listed.count() == len(data["items"]) == 16

    page.click("button[data-status=wrong]")
    wrong = [item for item in data["items"] if item["status"] == "wrong"]
    assert listed.count() == len(wrong) and len(wrong) > 0
    assert set(listed.evaluate_all("nodes => nodes.map(n => n.dataset.status)")) == {"wrong"}
    assert page.text_content("#item-count").startswith(f"showing {len(wrong)} of {len(wrong)} items")

    first = listed.first
    first.locator(":scope > summary").click()
    item = next(i for i in wrong if (i["id"], str(i["run"])) == (first.get_attribute("data-id"),
                                                                  first.get_attribute("data-run")))
    model_step = next(step for step in item["steps"] if step.get("prompt"))
    prompt = first.locator("pre.prompt").first
    prompt.wait_for(state="visible", timeout=5000)  # an item's steps are drawn when it opens: wait for them
    assert prompt.inner_text() == model_step["prompt"]
    assert first.locator("pre.output").first.inner_text() == model_step["outputs"][0]

    page.click("button[data-status=all]")
    page.fill("#item-search", "pwned")
    assert listed.count() == 1
    hostile = listed.first
    hostile.locator(":scope > summary").click()
    output = hostile.locator("pre.output").first
    output.wait_for(state="visible", timeout=5000)
    assert HOSTILE in output.inner_text()  # shown as the text the model wrote
    assert page.locator("#items mark").first.inner_text().lower() == "pwned"
    assert page.locator("img").count() == 0 and page.evaluate("typeof window.__pwned") == "undefined"
    page.locator("#items").screenshot(path=str(artifacts() / "explorer-items.png"))  # the injection, as text
    page.fill("#item-search", "")
    assert listed.count() == 16

    (comparison,) = data["comparisons"]
    flips = page.locator("#flip-list > details")
    assert flips.count() == len(comparison["flipped"]) == 5
    page.click("button[data-flip=right_to_wrong]")
    expected = sorted(f["id"] for f in comparison["flipped"] if f["kind"] == "right_to_wrong")
    assert sorted(flips.evaluate_all("nodes => nodes.map(n => n.dataset.id)")) == expected
    assert comparison["mcnemar"]["b01"] == len(expected)
    flips.first.locator(":scope > summary").click()
    from playwright.sync_api import expect

    # the page renders an item's two sides when it opens: wait for them (a loaded machine took longer than none)
    expect(flips.first.locator(".side-by-side .item-body")).to_have_count(2)
    table = page.inner_text("#comparison table")
    assert f'{comparison["mcnemar"]["p_value"]:.3g}' in table and comparison["verdict"] in table

    page.click("button[data-status=wrong]")
    page.locator("#item-list > details.item").first.locator(":scope > summary").click()
    page.screenshot(path=str(artifacts() / "explorer.png"), full_page=True)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert problems == []


def test_demo_folder_plots_depth_and_filters_by_depth(browser, tmp_path):
    demo = demo_folder(tmp_path / "demo")
    path = write_explorer([demo])
    data = page_data([load_run(folder) for folder in find_runs([demo])])
    page, problems = open_page(browser, path)
    plot = page.locator('svg[aria-label="accuracy against depth"]')
    assert plot.is_visible()
    assert plot.locator("polyline").count() == 2 and plot.locator("circle").count() == len(data["runs"]) == 6
    assert set(plot.locator(".legend text").all_text_contents()) == {"cot", "direct"}

    page.select_option("#depth-filter", "2")
    listed = page.locator("#item-list > details.item")
    at_two = [item for item in data["items"] if item["depth"] == 2]
    assert listed.count() == len(at_two) == 8
    assert all(i.startswith("arith-d2-") for i in listed.evaluate_all("nodes => nodes.map(n => n.dataset.id)"))
    page.select_option("#run-filter", str(next(i for i, r in enumerate(data["runs"]) if r["label"] == "cot-d2")))
    assert listed.count() == 4
    page.click("button[data-status=correct]")
    assert listed.count() == sum(1 for i in at_two if data["runs"][i["run"]]["label"] == "cot-d2"
                                 and i["status"] == "correct") == 2

    page.click('a[href="#run-0"]')
    assert page.locator("#run-0").evaluate("node => node.open")
    page.screenshot(path=str(artifacts() / "explorer-demo.png"), full_page=True)
    assert problems == []
    assert json.loads(page.text_content("#explorer-data"))["depths"] == [1, 2, 3]


def test_the_demo_writes_an_explorer_that_opens(browser, tmp_path, monkeypatch):
    """`python -m engine demo`'s own code (models scripted): its explorer.html plots every strategy by depth,
    compares the fine-tuned model with the base on the same items, and filters by depth."""
    import argparse

    import engine.backends
    from engine.backends import ScriptedBackend
    from engine.cli.demo import run_demo
    from engine.synthetic import arithmetic

    golds = {e.question: e.gold for depth in (1, 2) for e in arithmetic.generate(6, depth, 0)}

    def load_backend(name, model, **_):
        def reply(request):
            question = next(q for q in golds if q in (request.messages or [("", request.prompt)])[-1][1])
            right = model == "tuned" or len(question) % 3 == 0  # the "tuned" model is always right
            return f"The answer is {golds[question] if right else '-1'}."

        return ScriptedBackend(reply)

    monkeypatch.setattr(engine.backends, "load_backend", load_backend)
    monkeypatch.setattr("engine.models.check_model", lambda model: ("hub", None))  # "tuned" is scripted, not a model
    args = argparse.Namespace(model=None, backend="hf", dtype="auto", limit=6, depths="1,2", strategies="direct,cot",
                              tuned="tuned", tuned_strategies="cot", bbh_items=0, bbh_tuned="",
                              out=str(tmp_path / "demo"))
    run_demo(args)
    path = tmp_path / "demo" / "explorer.html"
    data = page_data([load_run(folder) for folder in find_runs([tmp_path / "demo"])])
    assert len(data["runs"]) == 6 and data["depths"] == [1, 2]
    page, problems = open_page(browser, path)
    plot = page.locator('svg[aria-label="accuracy against depth"]')
    assert set(plot.locator(".legend text").all_text_contents()) == {"direct · smollm2-135m", "cot · smollm2-135m",
                                                                        "cot · tuned"}
    tuned_vs_base = [c for c in data["comparisons"] if {data["runs"][c["a"]]["label"], data["runs"][c["b"]]["label"]}
                     == {"cot-d1", "cot-tuned-d1"}]
    assert len(tuned_vs_base) == 1 and tuned_vs_base[0]["n"] == 6
    page.select_option("#depth-filter", "2")
    assert page.locator("#item-list > details.item").count() == 3 * 6
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts() / "explorer-demo-top.png"))
    assert problems == []
