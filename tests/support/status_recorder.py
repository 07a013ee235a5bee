"""A local HTTP server standing in for GitHub's and GitLab's commit-status routes (no real
forge runs here): it records what it receives and answers as the forges do (201 with the
status), or fails the next requests on demand."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from support.local_http import serving

GITHUB_ROUTE = re.compile(r"^/api/v3/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$")
GITLAB_ROUTE = re.compile(r"^/api/v4/projects/(?P<repo>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$")


@dataclass
class Received:
    forge: str  # github | gitlab
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class StatusRecorder:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with 502 first
    failed: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(state: StatusRecorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if state.fail_next > 0:
                state.fail_next -= 1
                state.failed += 1
                self._answer(502, {"message": "Bad Gateway"})
                return
            forge = ("github" if GITHUB_ROUTE.match(self.path)
                     else "gitlab" if GITLAB_ROUTE.match(self.path) else None)
            if forge is None:
                self._answer(404, {"message": "Not Found"})
                return
            body = json.loads(raw)
            state.received.append(Received(forge, self.path,
                                         {k.lower(): v for k, v in self.headers.items()},
                                         body))
            self._answer(201, {"id": len(state.received), **body})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextlib.contextmanager
def status_recorder() -> Iterator[StatusRecorder]:
    state = StatusRecorder()
    with serving(_handler(state)) as port:
        state.port = port
        yield state
