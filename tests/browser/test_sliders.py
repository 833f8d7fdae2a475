"""Real-browser test of the notebooks' sliders, in JupyterLab driven by headless Chromium.

For each entry of `CASES`: open the notebook (a copy, served by a private JupyterLab),
run all cells, check no cell shows an error, type a new value into the slider's number
box, then check that the figure's PNG changed and that still no output shows an error.
Screenshots before/after go to test-artifacts/browser/.

Add a slider: append `SliderCase(notebook=..., slider=<description>, value=<new value>)`.
Cases of one notebook reuse one opened, executed page (in table order).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class SliderCase:
    """One slider to move.

    notebook: path under notebooks/ (e.g. "00_start_here.ipynb"); None = the generated
        demo notebook (the harness's self-test, needs no project notebook).
    slider: the slider's description text (its label in the page).
    value: the new value typed into its number box; must differ from the start value
        and lie in range.
    nth: which match to use when several sliders share the description.
    """

    notebook: str | None
    slider: str
    value: str
    nth: int = 0

    def path(self, lab) -> str:
        """Path inside the served root (a temp copy of the repository's notebooks/)."""
        return lab.demo_notebook if self.notebook is None else f"notebooks/{self.notebook}"

    @property
    def id(self) -> str:
        return f"{self.notebook or 'demo'}::{self.slider}={self.value}"


CASES = [
    # Self-test of the harness on a generated notebook (no project notebook needed)
    SliderCase(notebook=None, slider="scale", value="2.5"),
    # 00: log slider 0.001..10, starts at 1.0; 0.01 squeezes the no-BN histogram to 0
    SliderCase(notebook="00_start_here.ipynb", slider="weight std", value="0.01"),
    # 01: the 2-D data sliders and the ZCA eps on MNIST
    SliderCase(notebook="01_whitening.ipynb", slider="correlation", value="-0.5"),
    SliderCase(notebook="01_whitening.ipynb", slider="scale ratio", value="1.5"),
    SliderCase(notebook="01_whitening.ipynb", slider="mean offset", value="-3"),
    SliderCase(notebook="01_whitening.ipynb", slider="whitening eps", value="0.001"),
    # 02: the explorer (diverges above 2/lambda_max), data sliders
    SliderCase(notebook="02_zigzag.ipynb", slider="learning rate", value="0.2"),
    SliderCase(notebook="02_zigzag.ipynb", slider="input offset c", value="3.5"),
    SliderCase(notebook="02_zigzag.ipynb", slider="scale ratio s", value="6"),
    SliderCase(notebook="02_zigzag.ipynb", slider="momentum", value="0.8"),
    # 03: the deep-network explorer (log std 0.001..10 from 0.01; depth 1..50 from 20)
    SliderCase(notebook="03_init.ipynb", slider="gaussian std", value="1"),
    SliderCase(notebook="03_init.ipynb", slider="depth", value="45"),
    # 04: one sample's input (-5..15, starts at 0.5); every other output moves
    SliderCase(notebook="04_bn_math.ipynb", slider="input of sample 0", value="15"),
    # 05: running averages, test batch size, test-time shift
    SliderCase(notebook="05_inference.ipynb", slider="momentum (weight on old)", value="0.99"),
    SliderCase(notebook="05_inference.ipynb", slider="test batch size", value="128"),
    SliderCase(notebook="05_inference.ipynb", slider="brightness", value="0"),
    SliderCase(notebook="05_inference.ipynb", slider="contrast", value="0.4"),
    SliderCase(notebook="05_inference.ipynb", slider="noise std", value="0.3"),
    # 06: precomputed runs, log sliders (learning rate 0.03..30; init std 0.001..1)
    SliderCase(notebook="06_paper_experiment.ipynb", slider="learning rate", value="30"),
    SliderCase(notebook="06_paper_experiment.ipynb", slider="init std", value="0.001"),
]

# The notebook on show (Playwright's :visible skips hidden tabs)
PANEL = ".jp-NotebookPanel:visible"

# Timeouts (ms): first jax import + compile in a cell takes ~10 s on 2 cores
OPEN_TIMEOUT = 90_000
RUN_ALL_TIMEOUT = 300_000
UPDATE_TIMEOUT = 60_000
SETTLE_QUIET_MS = 500
SETTLE_TIMEOUT = 60_000

# JS: the notebook panel on show (others, e.g. restored tabs, are hidden: zero-sized)
_ROOT_JS = """const root = Array.from(document.querySelectorAll('.jp-NotebookPanel')).find(p => {
    const r = p.getBoundingClientRect(); return r.width > 0 && r.height > 0; }) || document;"""

_SETTLE_JS = """() => {
  ROOT
  // A cheap fingerprint of every output area: changes while outputs are being refilled
  let h = 0;
  const s = Array.from(root.querySelectorAll('.jp-OutputArea'))
    .map(e => e.innerHTML).join('\\u0001');
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return s.length + ':' + h;
}"""

_ERRORS_JS = """() => {
  ROOT
  const found = new Map();
  const add = (el, why) => { if (!found.has(el)) found.set(el, why + ': ' + el.textContent.slice(0, 1500)); };
  for (const el of root.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
    if (el.textContent.includes('Traceback')) add(el, 'stderr traceback');
  // Printed text may mention an error on purpose (a caught ValueError); a traceback may not
  for (const el of root.querySelectorAll('.jp-RenderedText'))
    if (el.textContent.includes('Traceback (most recent call last)')) add(el, 'text');
  for (const el of root.querySelectorAll('.jp-OutputArea-output'))
    if (el.textContent.includes('Error displaying widget')) add(el, 'widget');
  // LiveFigure writes "Error: ..." into its readout when the update function raises
  for (const el of root.querySelectorAll('.jp-OutputArea-output .widget-html'))
    if (el.textContent.includes('Error:') || el.textContent.includes('Traceback')) add(el, 'readout');
  return Array.from(found.values());
}"""

_SETTLE_JS, _ERRORS_JS = (js.replace("ROOT", _ROOT_JS) for js in (_SETTLE_JS, _ERRORS_JS))

_IMG_DIGEST_JS = """async (img) => {
  if (!img.complete || !img.naturalWidth) await new Promise(r => { img.onload = r; img.onerror = r; });
  const buf = await (await fetch(img.src)).arrayBuffer();
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
  const hex = Array.from(d, b => b.toString(16).padStart(2, '0')).join('');
  return hex + ':' + img.naturalWidth + 'x' + img.naturalHeight;
}"""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "x"


def _expect():
    from playwright.sync_api import expect

    expect.set_options(timeout=UPDATE_TIMEOUT)
    return expect


def wait_settled(page, quiet_ms: int = SETTLE_QUIET_MS, timeout_ms: int = SETTLE_TIMEOUT):
    """Wait until no output area has changed for `quiet_ms`."""
    deadline = time.monotonic() + timeout_ms / 1000
    last, since = page.evaluate(_SETTLE_JS), time.monotonic()
    while time.monotonic() < deadline:
        page.wait_for_timeout(100)
        now = page.evaluate(_SETTLE_JS)
        if now != last:
            last, since = now, time.monotonic()
        elif (time.monotonic() - since) * 1000 >= quiet_ms:
            return
    raise AssertionError(f"outputs kept changing for {timeout_ms / 1000:.0f} s")


def assert_no_errors(page, when: str):
    errors = page.evaluate(_ERRORS_JS)
    assert not errors, f"error output(s) {when}:\n" + "\n---\n".join(errors)


def open_and_run(page, lab, nb_path: str):
    """Open `nb_path` in JupyterLab, wait for its kernel, Run All Cells, wait for the end."""
    expect = _expect()
    page.goto(lab.url(nb_path), wait_until="domcontentloaded", timeout=OPEN_TIMEOUT)
    panel = page.locator(PANEL)
    expect(panel).to_be_visible(timeout=OPEN_TIMEOUT)
    expect(panel.locator(".jp-Toolbar-kernelName")).to_have_text(
        lab.kernel_display_name, timeout=OPEN_TIMEOUT)
    expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=OPEN_TIMEOUT)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    wait_run_all_done(page)
    expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=RUN_ALL_TIMEOUT)
    wait_settled(page)


_RUN_STATE_JS = """() => {
  ROOT
  return {
    prompts: Array.from(root.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'),
                        p => p.textContent.trim()),
    status: root.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset?.status,
  };
}"""
_RUN_STATE_JS = _RUN_STATE_JS.replace("ROOT", _ROOT_JS)
STALLED_S = 15


def wait_run_all_done(page, timeout_ms: int = RUN_ALL_TIMEOUT):
    """Wait until every code cell shows "[n]:" (not "[ ]:" nor "[*]:").

    Fails early when a cell shows an error (Run All stops there) or when the kernel
    has been idle for STALLED_S seconds with cells still not run.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    idle_since = None
    while True:
        state = page.evaluate(_RUN_STATE_JS)
        prompts = state["prompts"]
        done = [bool(re.fullmatch(r"\[\d+\]:", p)) for p in prompts]
        if prompts and all(done):
            return
        assert_no_errors(page, "while running all cells")
        if state["status"] == "idle" and "[*]:" not in prompts:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > STALLED_S:
                raise AssertionError(f"Run All stopped: kernel idle, cell prompts {prompts}")
        else:
            idle_since = None
        if time.monotonic() > deadline:
            raise AssertionError(f"Run All not finished after {timeout_ms / 1000:.0f} s: "
                                 f"kernel {state['status']}, cell prompts {prompts}")
        page.wait_for_timeout(250)


def wait_image_replaced(page, img, old_src, what: str, timeout_ms: int = UPDATE_TIMEOUT):
    """Wait until the figure's <img> gets a new src; fail at once if an error shows up."""
    deadline = time.monotonic() + timeout_ms / 1000
    while img.get_attribute("src") == old_src:
        assert_no_errors(page, f"after setting {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the figure did not change within {timeout_ms / 1000:.0f} s "
                                 f"after setting {what}")
        page.wait_for_timeout(50)


def find_slider(page, case: SliderCase, where: str):
    label = re.compile(rf"^\s*{re.escape(case.slider)}\s*$")
    sliders = page.locator(f"{PANEL} .jp-OutputArea-output .widget-slider")
    by_text = sliders.filter(has=page.locator(".widget-label", has_text=label))
    # Labels rendered by MathJax ("$\\gamma$") keep the raw description in `title`
    by_title = sliders.filter(has=page.locator(f".widget-label[title={json.dumps(case.slider)}]"))
    match = by_text.or_(by_title)
    count = match.count()
    if count <= case.nth:
        labels = page.locator(f"{PANEL} .widget-slider .widget-label").all_inner_texts()
        raise AssertionError(f"no slider labelled {case.slider!r} (match #{case.nth}) in "
                             f"{where}; sliders on the page: {labels}")
    return match.nth(case.nth)


def _as_float(text: str):
    try:
        return float(text.strip().replace("\u2212", "-"))
    except ValueError:
        return None


class NotebookPages:
    """Keeps the last opened notebook's page, so consecutive cases of it share one run."""

    def __init__(self, lab, new_page):
        self.lab, self.new_page = lab, new_page
        self.path = self.page = None
        self.healthy = False

    def get(self, path: str, stem: str):
        if self.page is not None and self.path == path and self.healthy:
            return self.page, 0.0
        self.close()
        self.page, self.path, self.healthy = self.new_page(), path, False
        t0 = time.perf_counter()
        try:
            open_and_run(self.page, self.lab, path)
        except BaseException:
            self.page.screenshot(path=self.lab.artifacts / f"{stem}__FAILED.png")
            raise
        run_s = time.perf_counter() - t0
        self.page.screenshot(path=self.lab.artifacts / f"{stem}__executed.png")
        assert_no_errors(self.page, f"after running all cells of {path} (before any move)")
        if path == self.lab.demo_notebook:
            # The demo's last cell is a plain pyplot figure: the inline backend must show it
            _expect()(self.page.locator(
                f'{PANEL} .jp-OutputArea-output[data-mime-type="image/png"] img')).to_be_visible()
        self.healthy = True
        return self.page, run_s

    def close(self):
        if self.page is not None:
            from playwright.sync_api import Error as PlaywrightError

            with contextlib.suppress(PlaywrightError):
                self.page.close()
        self.page, self.healthy = None, False
        self.lab.shutdown_sessions()


@pytest.fixture(scope="module")
def notebook_pages(jupyter_lab, new_page_factory):
    pages = NotebookPages(jupyter_lab, new_page_factory)
    yield pages
    pages.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_slider_updates_figure(case: SliderCase, notebook_pages, jupyter_lab):
    path, artifacts = case.path(jupyter_lab), jupyter_lab.artifacts
    if not (jupyter_lab.root / path).exists():
        pytest.fail(f"{path} not found (listed in CASES)")
    expect = _expect()
    t_start = time.perf_counter()
    nb_stem = _slug((case.notebook or "demo").removesuffix(".ipynb"))
    page, run_s = notebook_pages.get(path, nb_stem)
    notebook_pages.healthy = False  # set back to True only if this case passes

    slider = find_slider(page, case, path)
    slider.scroll_into_view_if_needed()
    out = slider.locator("xpath=ancestor::div[contains(concat(' ', normalize-space(@class), ' '),"
                         " ' jp-OutputArea-output ')][1]")
    img = out.locator("img").first
    expect(img).to_be_visible()
    readout = slider.locator(".widget-readout")
    old_src, old_digest = img.get_attribute("src"), img.evaluate(_IMG_DIGEST_JS)
    old_value, old_text = readout.inner_text(), out.inner_text()
    stem = f"{nb_stem}__{_slug(case.slider)}"
    out.screenshot(path=artifacts / f"{stem}__before.png")

    # Type the value into the number box: click, select all, type, Enter
    t0 = time.perf_counter()
    readout.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(case.value)
    page.keyboard.press("Enter")
    try:
        wait_image_replaced(page, img, old_src, what=f"{case.slider!r} = {case.value} in {path}")
    except AssertionError:
        out.screenshot(path=artifacts / f"{stem}__after.png")
        raise
    update_ms = (time.perf_counter() - t0) * 1e3
    wait_settled(page)

    out.screenshot(path=artifacts / f"{stem}__after.png")
    page.screenshot(path=artifacts / f"{stem}__page.png")
    assert_no_errors(page, f"after setting {case.slider!r} to {case.value} in {path}")

    new_value, new_digest = readout.inner_text(), img.evaluate(_IMG_DIGEST_JS)
    assert new_value != old_value, (
        f"slider {case.slider!r} still reads {old_value!r} after typing {case.value!r}: "
        "pick a value in range that differs from the start value")
    want, got = _as_float(case.value), _as_float(new_value)
    if want is not None and got is not None:
        assert math.isclose(got, want, rel_tol=0.1, abs_tol=1e-12), (
            f"slider {case.slider!r} reads {new_value!r}, expected about {case.value!r}")
    assert new_digest != old_digest, "the image was re-sent but its pixels did not change"
    new_text = out.inner_text()
    size = img.evaluate("i => `${i.naturalWidth}x${i.naturalHeight} px shown at "
                        "${i.clientWidth}x${i.clientHeight}`")
    print(f"\n[{case.id}] run-all {run_s:.1f} s, slider->new image {update_ms:.0f} ms, "
          f"case total {time.perf_counter() - t_start:.1f} s; readout "
          f"{old_value!r}->{new_value!r}; widget text changed: {new_text != old_text}; "
          f"image {size}")
    notebook_pages.healthy = True
