"""Errors of one build."""

from __future__ import annotations


class BuildError(Exception):
    """The user's build failed (bad archive, bad Dockerfile, failing RUN, missing base
    image, push refused). Reported as phase ERROR with this message: not retried. The
    message is shown to the user, so it never carries a secret."""


class CacheUnavailable(BuildError):
    """The build failed on its registry cache (buildah fails a build whose --cache-to
    push fails): the build is run again without the cache, never failed for it."""


class ManagerUnreachable(Exception):
    """The manager could not be reached (or refused us) for longer than the retry window."""


class StopRequested(Exception):
    """The manager answered a heartbeat with false: the job is gone, stop at once."""


class AttemptEnded(StopRequested):
    """The manager refused a call (FAILED_PRECONDITION): this build attempt was ended (its
    heartbeat lost while the worker was cut off or paused, cancelled, timed out) and
    perhaps runs again elsewhere. Stop the build, clean up, report nothing more."""
