"""`--help` as a CLI's help, not a Python signature's: every value named by an UPPER_CASE
metavar (REPOSITORY, BUILD_ID, FILE, N), never by a Python type (`<str>`, `<bool>`,
`<list[str]>`, `<int range>`), arguments written one way (REPOSITORY, [BUILD_ID]).

Typer (0.20 on) shows `<type>` beside every argument and every option without a metavar,
and braces around required arguments in the usage line; `use()` replaces those three
display methods of its parameter classes (display only: parsing is untouched). The
commands' help is click's plain formatter (`rich_markup_mode=None` on each Typer), which
re-wraps each paragraph to the terminal, so help text written over several source lines
never breaks mid-sentence. tests/cli/test_cli_help.py walks every command's help."""

from __future__ import annotations

from typing import Any

from typer import core

MARKUP_MODE = None  # click's plain help: paragraphs re-wrapped, no `<type>` column


def option_metavar(param: Any) -> str:
    """An option's value as help shows it: its metavar, else a name for its kind."""
    if param.metavar:
        return str(param.metavar)
    described = getattr(param, "type_descriptor", None)
    if described is not None and getattr(described, "is_path", False):
        return "FILE"
    if described is not None and getattr(described, "annotation", None) in (int, float):
        return "N"
    return str(param.name or "value").upper()


def _argument_type(self: Any, ctx: Any) -> str | None:
    return None  # the metavar and the help say what the argument is


def _argument_usage(self: Any) -> str:
    name = str(self.metavar or (self.name or "").upper())
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


def _option_type(self: Any, ctx: Any) -> str | None:
    if getattr(self, "is_flag", False) or getattr(self, "count", False):
        return None
    return option_metavar(self)


def use() -> None:
    """Install the display methods (idempotent)."""
    argument: Any = core.TyperArgument
    option: Any = core.TyperOption
    argument.display_type_rich = _argument_type
    if hasattr(argument, "_usage_display_name"):
        argument._usage_display_name = _argument_usage
    option.display_type_rich = _option_type

