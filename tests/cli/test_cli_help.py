"""Every command's `--help` reads as a CLI's help: values named by UPPER_CASE metavars,
no Python types, every option and argument described, paragraphs re-wrapped to the
terminal (never broken mid-sentence where the source line ended)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from slipway.cli.help_format import option_metavar
from slipway.cli.main import app

PYTHON_TYPE = re.compile(r"<[a-z][a-z_\[\], |]*(?: range)?>")
SECTIONS = ("Arguments:", "Options:", "Commands:")
# a line of a re-wrapped paragraph this short, followed by more of the paragraph, is a
# line break where the source had one
SHORTEST_FILLED_LINE = 45


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group (typer may bring its own copy of click: duck-typed)."""
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from commands(sub, (*path, name))


ALL = list(commands(typer.main.get_command(app)))


def help_of(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"},
                                prog_name="slipway")
    assert result.exit_code == 0, result.output
    return result.output


def description(text: str) -> list[str]:
    """The lines between the usage line and the first section."""
    lines = text.splitlines()[1:]
    end = next((i for i, line in enumerate(lines) if line in SECTIONS), len(lines))
    return lines[:end]


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "slipway" for p, _ in ALL])
def test_help_reads_as_a_cli_help(path: tuple[str, ...], command: Any) -> None:
    text = help_of(path)
    assert not PYTHON_TYPE.search(text), PYTHON_TYPE.search(text)
    usage = text.splitlines()[0]
    assert "{" not in usage, usage  # required arguments are written NAME, optional [NAME]
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        described = (getattr(param, "help", "") or "").strip()
        assert described, f"{' '.join(path)}: {param.name} has no description"
        if param.param_type_name == "argument":
            assert param.metavar and param.metavar == param.metavar.upper(), param.name
            assert param.metavar in usage
        elif not getattr(param, "is_flag", False):
            metavar = option_metavar(param)
            assert metavar == metavar.upper(), f"{' '.join(path)}: {param.name}: {metavar}"
            assert f"{max(param.opts, key=len)} {metavar}" in text
    lines = description(text)
    for line, following in itertools.pairwise(lines):
        if line.strip() and following.strip():
            assert len(line) >= SHORTEST_FILLED_LINE, f"broken mid-paragraph: {line!r}"


def test_the_issue_examples_are_gone() -> None:
    build_help = help_of(("build",))
    assert "--platform OS/ARCH" in build_help and "--build-arg NAME=VALUE" in build_help
    assert "exit" in build_help.lower() and "3 the server went away" in " ".join(
        build_help.split())
    deploy_help = help_of(("deploy", "manifests"))
    assert "--cpu-request CPU" in deploy_help
    assert "CPU each manager pod requests" in " ".join(deploy_help.split())
    assert "--limit N" in help_of(("builds",))
