"""Errors of one build."""

from __future__ import annotations


class BuildError(Exception):
    """The user's build failed (bad archive, bad Dockerfile, failing RUN, missing base
    image, push refused). Reported as phase ERROR with this message: not retried. The
    message is shown to the user, so it never carries a secret."""


class ManagerUnreachable(Exception):
    """The manager could not be reached (or refused us) for longer than the retry window."""


class StopRequested(Exception):
    """The manager answered a heartbeat with false: the job is gone, stop at once."""
