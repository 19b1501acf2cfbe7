"""`zoo serve` in a real headless browser: the system's Chromium driven by Playwright (nothing is downloaded).

One server for the module (conftest.py); each test opens the page as a person would, uses one tab and
checks what appears. Each tab's screenshot is kept (ZOO_SERVE_SCREENSHOTS, see conftest.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import picture

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright ([test] extra)")
expect = sync_api.expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TABS = ["gpt2-ml", "nice-mnist", "sgns-peoples-daily", "zhidao-tags", "ogan-mnist", "ganqp-mnist", "dgcnn-cloze",
        "lenet-mnist"]
TIMEOUT = 60_000  # ms: a 2-core CI machine running other tests
expect.set_options(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):  # .ci/run installs it: a CI run without it must not pass by skipping
            pytest.fail("no system Chromium (/usr/bin/chromium): .ci/run should have installed it")
        pytest.skip("no system Chromium: apt-get install chromium (.ci/run does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


class Page:
    """The zoo serve page in one browser tab, with every URL it requested."""

    def __init__(self, browser, server):
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.page.set_default_timeout(TIMEOUT)
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(server.url)
        expect(self.page.get_by_role("tab", name=TABS[0])).to_be_visible()

    def open(self, name: str):
        """Click the model's tab; wait until its status line says it is loaded; return the tab's panel."""
        self.page.get_by_role("tab", name=name).click()
        panel = self.panel()
        expect(panel.locator(".block.zoo-status")).to_contain_text(f"Ready: {name} loaded")
        return panel

    def panel(self):
        return self.page.locator("[role=tabpanel]:visible")

    def toast(self, text: str):
        """Wait for the error message ``text`` in the page."""
        expect(self.page.locator(".toast-body").filter(has_text=text).first).to_be_visible()

    def close_toasts(self):
        for button in self.page.locator(".toast-close").all():
            button.click()

    def shot(self, folder: Path, name: str):
        self.close_toasts()
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.fixture
def page(browser, server):
    p = Page(browser, server)
    yield p
    p.page.close()


def image_src(panel, label: str):
    return panel.locator(".block").filter(has_text=label).locator("img").first


def upload(panel, label: str, path: Path):
    panel.locator(".block").filter(has_text=label).locator("input[type=file]").set_input_files(str(path))


def test_the_page_has_a_tab_per_model_says_how_to_get_the_others_and_stays_offline(page, screenshots):
    assert page.page.get_by_role("tab").all_inner_texts() == TABS
    missing = page.page.locator("#zoo-missing")
    expect(missing).to_contain_text("ganqp-fashion")
    expect(missing).to_contain_text("zoo train ganqp-fashion")
    expect(missing).to_contain_text("zoo pull gpt2-ml-legacy")
    expect(page.panel().locator(".block.zoo-status")).to_contain_text("Ready: gpt2-ml loaded")  # the first tab
    page.page.wait_for_load_state("networkidle")
    assert page.requests and all(r.startswith(("http://127.0.0.1:", "data:", "blob:")) for r in page.requests), \
        [r for r in page.requests if not r.startswith("http://127.0.0.1:")]
    page.shot(screenshots, "page")


def test_a_sample_grid_is_drawn_and_drawn_again_for_a_new_seed(page, screenshots):
    panel = page.open("nice-mnist")
    grid = image_src(panel, "samples")
    expect(grid).to_be_visible()
    first = grid.get_attribute("src")
    panel.get_by_label("seed").fill("5")
    expect(grid).not_to_have_attribute("src", first)
    page.shot(screenshots, "nice-mnist")
    panel = page.open("ganqp-mnist")
    expect(image_src(panel, "samples")).to_be_visible()
    page.shot(screenshots, "ganqp-mnist")


def test_ogan_reconstructs_an_upload_and_refuses_what_is_not_a_picture(page, screenshots, tmp_path):
    panel = page.open("ogan-mnist")
    expect(image_src(panel, "samples")).to_be_visible()
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture\n" * 10)
    upload(panel, "your picture", notes)
    page.toast("the picture is not a picture this server can read")
    page.close_toasts()
    upload(panel, "your picture", picture(tmp_path / "huge.png", (1200, 1200)))
    page.toast("declares 1200 x 1200 pixels")
    page.close_toasts()
    upload(panel, "your picture", picture(tmp_path / "one.png", digit="1"))  # the server kept serving
    expect(image_src(panel, "picture -> reconstruction")).to_be_visible()
    mse = panel.locator(".block").filter(has_text="reconstruction MSE").locator("input")
    expect(mse).not_to_have_value("")
    assert float(mse.input_value()) > 0
    upload(panel, "first picture", picture(tmp_path / "a.png", digit="1"))
    upload(panel, "second picture", picture(tmp_path / "b.png"))
    panel.get_by_role("button", name="Interpolate").click()
    expect(image_src(panel, "interpolation")).to_be_visible()
    page.shot(screenshots, "ogan-mnist")


def test_dgcnn_answers_a_question_and_shows_where_the_answer_is(page, screenshots):
    panel = page.open("dgcnn-cloze")
    passages = "北京是中国的首都。\n上海是一个城市。"
    panel.get_by_label("passages (one per line)").fill(passages)
    panel.get_by_role("button", name="Answer").click()
    expect(panel.locator(".zoo-where").first).to_contain_text("Found in passage")
    answer = panel.get_by_label("answer").input_value()
    assert answer and answer in passages
    page.shot(screenshots, "dgcnn-cloze")
    panel.get_by_label("question").fill("")
    panel.get_by_role("button", name="Answer").click()
    page.toast("the question is empty")


def test_gpt2ml_generates_text_and_says_when_the_prompt_is_too_long(page, screenshots):
    panel = page.open("gpt2-ml")
    panel.get_by_role("button", name="Generate").click()
    text = panel.locator(".zoo-generated textarea")
    expect(text).not_to_have_value("")
    page.page.wait_for_function(
        "() => { const t = document.querySelector('.zoo-generated textarea'); return t && t.value.length > 10 }")
    assert text.input_value().startswith("今天天气")
    page.shot(screenshots, "gpt2-ml")
    panel.get_by_label("prompt").fill("今天" * 70)
    panel.get_by_role("button", name="Generate").click()
    page.toast("the model reads at most 128")


def draw(page, panel, strokes):
    """Draw ``strokes`` (lists of (x, y) in [0, 1] of the pad) with the brush."""
    panel.get_by_role("button", name="Brush").click()
    box = panel.locator(".zoo-sketchpad canvas").first.bounding_box()
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            for i in range(1, 11):
                page.mouse.move(x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * i / 10)
        page.mouse.up()


def test_lenet_reads_a_digit_drawn_on_the_sketch_pad(page, screenshots):
    panel = page.open("lenet-mnist")
    draw(page.page, panel, [[(0.42, 0.25), (0.58, 0.25), (0.47, 0.75)]])  # a 7: the bar, then the stem
    label = panel.locator(".block.zoo-label")
    expect(label.locator("h2, .output-class").first).to_have_text("7")
    page.shot(screenshots, "lenet-mnist")


def test_word2vec_solves_an_analogy_and_tags_suggest_for_a_question(page, screenshots):
    panel = page.open("sgns-peoples-daily")
    panel.get_by_role("button", name="Solve").click()
    expect(panel.locator(".zoo-analogy").first).to_contain_text("东京")
    page.shot(screenshots, "sgns-peoples-daily")
    panel = page.open("zhidao-tags")
    panel.get_by_role("button", name="Suggest tags").click()
    expect(panel.locator(".block.zoo-tags")).to_contain_text("电脑")
    page.shot(screenshots, "zhidao-tags")


def test_two_browser_tabs_generating_at_once_both_get_their_text(browser, server):
    pages = [Page(browser, server) for _ in range(2)]
    try:
        panels = [p.open("gpt2-ml") for p in pages]
        for panel in panels:
            panel.get_by_role("button", name="Generate").click()
        for p in pages:
            p.page.wait_for_function("() => { const t = document.querySelector('.zoo-generated textarea');"
                                     " return t && t.value.length > 10 }")
            assert p.page.locator(".zoo-generated textarea").input_value().startswith("今天天气")
    finally:
        for p in pages:
            p.page.close()
