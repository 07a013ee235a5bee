"""Tables that fit the terminal (80 columns and up): one line per row, long cells cut
with an ellipsis, the full text left to `--json` and to the single-item views."""

from __future__ import annotations

import os
import sys

from rich import box
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from slipway.cli.output import UNWRAPPED, make_console


def table_console() -> Console:
    """Standard output for a table: the terminal's width; on a pipe, $COLUMNS when set
    (else lines are left whole, as all the CLI's output on a pipe)."""
    columns = os.environ.get("COLUMNS", "")
    if not sys.stdout.isatty() and columns.isdigit() and int(columns) > 0:
        return Console(file=sys.stdout, highlight=False, width=int(columns), no_color=True,
                       color_system=None)
    return make_console(sys.stdout)


def fixed(header: str) -> Column:
    """A column of short, fixed-size values (ids, phases, dates): never cut."""
    return Column(header, no_wrap=True)


def elided(header: str, max_width: int | None = None) -> Column:
    """A column of free text, the one rich narrows when the row is too wide (it narrows
    wrappable columns first, and would squash the fixed ones to nothing otherwise); its
    cells, `cut()`, stay on one line and end with an ellipsis."""
    return Column(cut(header), overflow="ellipsis", max_width=max_width)


def cut(text: str) -> Text:
    """A cell of an elided column: one line, an ellipsis where it is cut (no markup)."""
    return Text(text, no_wrap=True, overflow="ellipsis")


def is_bounded(console: Console) -> bool:
    """Whether lines are cut to a width (a terminal, $COLUMNS), not left whole."""
    return console.width < UNWRAPPED


def make_table(*columns: Column) -> Table:
    # two spaces between columns (a right pad and the separator), not three: at 80
    # columns the free-text column gets the difference
    return Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                 padding=(0, 1, 0, 0))


def tags_cell(tags: list[str]) -> str:
    """The first tag and how many more: `latest +2`."""
    if not tags:
        return ""
    return tags[0] + (f" +{len(tags) - 1}" if len(tags) > 1 else "")


def one_line(text: str) -> str:
    """Text on one line (an error's own line breaks become spaces)."""
    return " ".join(text.split())
