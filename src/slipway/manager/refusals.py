"""A worker call the manager refuses (its own module: the context, which logs background
failures, must know it without importing the worker calls, which import the context)."""

from __future__ import annotations


class CallRefused(Exception):
    """The call cannot be served; `code` is the gRPC status name to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
