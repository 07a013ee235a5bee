"""Why a build is not admitted: the refusal every way of submitting a build can raise
(admission's rules, and a store that does not take new builds, as in Quay mode), and
that the API maps to its status codes (api/errors.py)."""

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
