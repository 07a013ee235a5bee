"""Recognising the manager's refusal of a call whose attempt was ended."""

from __future__ import annotations

import grpc

from slipway.worker.errors import AttemptEnded


def attempt_ended(exc: BaseException, what: str) -> AttemptEnded | None:
    """The AttemptEnded a failed call of the job means, or None. The manager answers an
    ended attempt's calls FAILED_PRECONDITION (docs/protocol.md); no other failure of a
    call made with the job token has that status."""
    if isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.FAILED_PRECONDITION:
        return AttemptEnded(f"{what}: {exc.details() or 'this build attempt was ended'}")
    return None
