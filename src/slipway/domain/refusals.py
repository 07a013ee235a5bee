"""Refusals: why a build is not admitted (the refusal every way of submitting a build can
raise: admission's rules, and a store that does not take new builds, as in Quay mode;
the API maps it to its status codes, api/errors.py), and why a worker's call is not
served (the gRPC service maps it to a status code, manager/servicer.py)."""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """Why a build was refused (the values are the API's error types)."""

    INVALID = "invalid_request"  # the request is wrong: fix it and submit again
    DISABLED = "feature_disabled"  # builds are off on this server
    QUEUE_FULL = "too_many_builds"  # retry later


class Refused(Exception):
    """The build is not admitted; `message` says what is wrong and how to fix it."""

    def __init__(self, reason: Refusal, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class CallRefused(Exception):
    """A worker's call the manager will not serve (a spent token, an ended job): an
    answer to the worker, not a failure. `code` is the gRPC status name to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
