"""Browser fixtures: Debian's chromium driven by Playwright, against a real ``facelocal serve`` on loopback.

``browser`` is one chromium per test module. ``open_page(url)`` opens the page in a fresh context (its own
memory, no shared key; ``prepare=`` can route its requests first) and records uncaught script errors and
console errors; a test whose page had either (bar the log of API error answers) fails at teardown.
``serve(**settings)`` runs
``facelocal serve`` as a subprocess with those ``FACELOCAL_*`` settings and waits until it is ready.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.local.serve import ServeProcess, start_serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A synthetic camera that needs no permission prompt, for the webcam test.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
# Chromium logs every 4xx/5xx answer as a console error; those are the API speaking, not the page failing.
NETWORK_STATUS_LOG = re.compile(r"^Failed to load resource: the server responded with a status of \d+")
VIEWPORT = {"width": 1280, "height": 900}
# How long a page assertion waits: generous, as the tests share 2 cores with everything else.
EXPECT_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium under Playwright; fails (never skips) with the fix when either is missing."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests drive Debian's chromium. "
            "Install it with `apt-get update && apt-get install -y chromium` (.ci/run does this).",
            pytrace=False,
        )
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'", pytrace=False)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class OpenPage:
    """A page under test with what its console said."""

    page: object
    script_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def record_console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def unexpected_console_errors(self) -> list[str]:
        """Console errors other than the network log of API error answers (a CSP violation, say)."""
        return [text for text in self.console_errors if not NETWORK_STATUS_LOG.match(text)]


@pytest.fixture
def open_page(browser) -> Iterator[Callable[[str], OpenPage]]:
    contexts = []
    opened: list[OpenPage] = []

    def open_(url: str, prepare: Callable | None = None) -> OpenPage:
        """Open ``url``; ``prepare(page)`` runs before it loads (to route requests, say)."""
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        if prepare is not None:
            prepare(page)
        result = OpenPage(page)
        page.on("pageerror", lambda error: result.script_errors.append(str(error)))
        page.on("console", result.record_console)
        page.goto(url)
        opened.append(result)
        return result

    yield open_
    for context in contexts:
        context.close()
    errors = [error for page in opened for error in page.script_errors + page.unexpected_console_errors()]
    assert not errors, f"uncaught script errors or console errors: {errors}"


@pytest.fixture(scope="module")
def serve(onnx_model_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Factory: ``serve(API_KEY="k")`` runs ``facelocal serve`` with those ``FACELOCAL_*`` settings on free
    loopback ports; every server it started is stopped with SIGTERM at the end of the module."""
    started: list[ServeProcess] = []

    def start(**settings: str) -> ServeProcess:
        env = {f"FACELOCAL_{name}": value for name, value in settings.items()}
        running = start_serve(onnx_model_path, "--intra-op-threads", "2", "--log-level", "warning", env=env)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
