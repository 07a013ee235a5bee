"""The CLI's one exception: a problem to show the user as is."""

from __future__ import annotations


class CliError(Exception):
    """A problem to show the user as is (one line, no traceback)."""
