"""Debian's Chromium, headless, driven by Playwright (its driver comes in the PyPI wheel;
no browser is downloaded)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# as root, on a machine with no network but loopback
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# set to a directory (e.g. docs/images) to keep the screenshots the UI tests take
SCREENSHOTS_ENV = "SLIPWAY_UI_SCREENSHOTS"


def chromium_available() -> bool:
    return os.access(CHROMIUM, os.X_OK) and shutil.which("chromium") is not None


@asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: object, name: str, tmp_path: Path) -> Path:
    """A full-page screenshot, in SLIPWAY_UI_SCREENSHOTS when set (else in tmp_path)."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
