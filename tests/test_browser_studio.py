"""End to end in a real browser: `streamlit run app.py`, stop a starting run, train from the Train
page, then explore.

Skips (with the reason) when Playwright or the system Chromium is missing. Saves the screenshots
screenshot_train_new_run.png, screenshot_train.png and screenshot_explore.png in
$GAN_STUDIO_SCREENSHOTS (the README's come from GAN_STUDIO_SCREENSHOTS=docs/images), else in a
temporary folder.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

import engine

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
IMAGES = Path(os.environ.get("GAN_STUDIO_SCREENSHOTS") or tempfile.mkdtemp(prefix="screenshots-"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.is_file():
    pytest.skip(f"no system Chromium at {CHROMIUM}", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def studio_server(runs: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port over the runs root ``runs``; stopped (with its workers) at
    the end."""
    port = free_port()
    env = dict(os.environ, GAN_STUDIO_RUNS=str(runs), HF_HUB_OFFLINE="1", GAN_STUDIO_READONLY="0")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless",
         "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("streamlit did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        for run in engine.list_runs(runs):
            pid = run.status().get("pid")
            if run.is_live() and pid and pid != os.getpid():  # a test may stand in for a worker itself
                os.kill(pid, signal.SIGTERM)


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """The studio over its own runs root."""
    with studio_server(tmp_path / "runs") as url:
        yield url


def assert_no_problem_shown(page: "sync_api.Page") -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    for words in ("Traceback", "Could not", "Training failed"):
        assert page.get_by_text(words).count() == 0, words


def test_stop_while_starting_then_train_with_progress_live_metric_and_explore_in_chromium(app_url: str) -> None:
    """The recommended CPU recipe on the built-in faces, as a newcomer gets it: Stop pressed while the run
    starts ends it; a second run shows progress within 15 s of Start, then the live quality curve next
    to generated and real images."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.set_default_timeout(120_000)
        page.goto(app_url)
        page.get_by_text("Real images at").wait_for()
        assert page.get_by_role("combobox", name="Recipe").input_value().endswith(" · Recommended for this CPU")
        page.get_by_text("Expected:").wait_for()
        assert_no_problem_shown(page)
        page.screenshot(path=str(IMAGES / "screenshot_train_new_run.png"))

        page.get_by_role("button", name="Start training").click()
        page.get_by_text(re.compile(r"^Starting: ")).wait_for()
        page.get_by_role("button", name="Stop", exact=True).click()
        page.get_by_text("Stopped", exact=True).wait_for()
        page.wait_for_timeout(3000)  # the page reruns once the run has ended; let it settle

        start = page.get_by_role("button", name="Start training")
        if not start.is_visible():
            page.get_by_text("New training run").click()
        start.click()
        started = time.monotonic()
        try:
            page.get_by_text(re.compile(r"^running for .* images seen")).first.wait_for(timeout=15_000)
        except sync_api.TimeoutError:
            page.screenshot(path=str(IMAGES / "no_progress.png"))
            raise AssertionError("no progress 15 s after Start; the page showed:\n"
                                 + page.locator("body").inner_text()[:2000]) from None
        print(f"progress text {time.monotonic() - started:.1f} s after Start")
        page.locator(".stPlotlyChart", has_text="live").wait_for(timeout=300_000)
        print(f"live metric curve {time.monotonic() - started:.1f} s after Start")
        page.get_by_text("Real: training images").wait_for()
        page.get_by_text("Generated: fixed latents at step").wait_for()
        page.wait_for_timeout(1500)
        assert_no_problem_shown(page)
        page.set_viewport_size({"width": 1400, "height": 1250})
        page.screenshot(path=str(IMAGES / "screenshot_train.png"))
        page.set_viewport_size({"width": 1400, "height": 1600})
        page.get_by_role("button", name="Stop", exact=True).click()
        # At once, as a user who stops to look at the results: when Stop's handler called st.rerun(), its
        # rerun took the Train page back over a navigation that arrived meanwhile and this click was lost.
        page.get_by_role("link", name="Explore").click()
        page.get_by_text("trained on 1,000,064 images").wait_for()  # the shipped demo generator
        page.get_by_role("tab", name="Interpolation").click()
        page.get_by_text("t = 0.50").wait_for()
        page.get_by_role("slider", name="t (0 = A, 1 = B)").focus()
        for _ in range(20):
            page.keyboard.press("ArrowRight")
        page.get_by_text("t = 0.70").wait_for()
        page.wait_for_timeout(1000)
        assert_no_problem_shown(page)
        page.screenshot(path=str(IMAGES / "screenshot_explore.png"))
        browser.close()
