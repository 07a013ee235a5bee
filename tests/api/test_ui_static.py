"""The web UI's files: colour contrast (WCAG AA) of the palette, and that every file
is package data (a wheel without one would serve a broken page)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath

import pytest

import slipway.api.ui as ui

ROOT = Path(__file__).resolve().parents[2]
CSS = (ui.STATIC / "style.css").read_text()

# (text, background) pairs the stylesheet puts together
PAIRS = [
    ("fg", "bg"), ("muted", "bg"), ("fg", "panel"), ("muted", "panel"), ("link", "bg"),
    ("accent-fg", "accent"), ("danger", "danger-bg"), ("ok", "ok-bg"), ("info", "info-bg"),
    ("idle", "idle-bg"), ("warn", "warn-bg"), ("danger", "bg"), ("log-fg", "log-bg"),
    ("log-muted", "log-bg"), ("log-command", "log-bg"), ("log-phase", "log-bg"),
    ("log-error-fg", "log-error-bg"), ("log-fg", "log-mark-bg"), ("log-command", "log-mark-bg"),
    ("log-phase", "log-mark-bg"),
]


def variables() -> dict[str, str]:
    root = CSS[CSS.index(":root {"):CSS.index("}", CSS.index(":root {"))]
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", root))


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(("text", "background"), PAIRS)
def test_text_colours_have_aa_contrast(text: str, background: str) -> None:
    colours = variables()
    ratio = contrast(colours[text], colours[background])
    assert ratio >= 4.5, f"--{text} on --{background}: {ratio:.2f}:1, below 4.5:1"


def test_ansi_colours_are_readable_on_the_log() -> None:
    log_bg = variables()["log-bg"]
    for index, colour in re.findall(r"\.ansi-fg-(\d+) \{ color: (#[0-9a-f]{6}); \}", CSS):
        assert contrast(colour, log_bg) >= 4.5, f"ANSI colour {index} ({colour})"
    assert len(re.findall(r"\.ansi-fg-\d+ \{", CSS)) == 16


def test_every_ui_file_is_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["*"]
    files = [p.relative_to(ui.STATIC.parent) for p in ui.STATIC.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for path in files:
        # setuptools globs: '*' does not cross a '/', so the folder must stay flat
        assert any(PurePosixPath(path.as_posix()).match(p) and
                   len(PurePosixPath(p).parts) == len(path.parts) for p in patterns), path
