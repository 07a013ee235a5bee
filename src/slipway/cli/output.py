"""The CLI's consoles. On a terminal rich colours and fits the width; written to a pipe or
a file, nothing is coloured, wrapped or cut: a line of output is a line for the script
reading it."""

from __future__ import annotations

import sys
from typing import NoReturn, TextIO

import typer
from rich.console import Console
from rich.markup import escape

UNWRAPPED = 1_000_000  # a width no line reaches


def make_console(file: TextIO) -> Console:
    if file.isatty():
        return Console(file=file, highlight=False)
    return Console(file=file, highlight=False, width=UNWRAPPED, soft_wrap=True,
                   no_color=True, color_system=None)


def stdout_console() -> Console:
    return make_console(sys.stdout)


def stderr_console() -> Console:
    return make_console(sys.stderr)


def fail(message: str) -> NoReturn:
    """The error on stderr, exit status 1."""
    stderr_console().print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(1)
