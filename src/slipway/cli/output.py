"""The CLI's consoles. On a terminal rich colours and fits the width; written to a pipe or
a file, nothing is coloured, wrapped or cut: a line of output is a line for the script
reading it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

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


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


@contextlib.contextmanager
def transfer(
    console: Console | None, description: str, total: int
) -> Iterator[Callable[[int], None]]:
    """A progress bar of `total` bytes on a terminal (gone when done), a line before and
    after elsewhere; yields the function to call with each amount done. `console` None:
    quiet."""
    if console is None:
        yield lambda _n: None
        return
    if not console.is_terminal:
        console.print(f"{description}: {megabytes(total)}", markup=False)
        yield lambda _n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
    console.print(f"{description}: {megabytes(total)} done", markup=False)
