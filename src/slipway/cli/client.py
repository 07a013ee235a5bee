"""HTTP client of the slipway API, and where the CLI finds the server and its token.

Server: --server, else SLIPWAY_URL, else the context (--context, else SLIPWAY_CONTEXT,
else the current one; see cli/contexts.py). Token: --token, else SLIPWAY_TOKEN, else the
token of the context, or of the saved context of the --server/SLIPWAY_URL given.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from slipway.cli.contexts import ContextsError, credentials_file, normal_url, read_contexts

DEFAULT_SERVER = "http://127.0.0.1:8700"
CHUNK = 1 << 20


class CliError(Exception):
    """A problem to show the user as is (one line, no traceback)."""


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str | None
    context: str | None = None  # the context they came from, if any


def load_credentials(
    server: str | None = None, token: str | None = None, context: str | None = None
) -> Credentials:
    server = server or os.environ.get("SLIPWAY_URL") or None
    token = token or os.environ.get("SLIPWAY_TOKEN") or None
    context = context or os.environ.get("SLIPWAY_CONTEXT") or None
    try:
        contexts = read_contexts()
        if server is None:
            name = context or contexts.current
            if name is None:
                return Credentials(DEFAULT_SERVER, token)
            chosen = contexts.get(name)
            return Credentials(chosen.server, token or chosen.token, chosen.name)
        saved = None if token else contexts.for_server(server)
    except ContextsError as exc:
        raise CliError(str(exc)) from None
    if saved is not None:
        return Credentials(saved.server, saved.token, saved.name)
    return Credentials(normal_url(server), token)


@dataclass(frozen=True)
class Event:
    kind: str
    data: Any
    id: str | None


def parse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-Sent Events from a line iterator."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield Event(fields.get("event", "message"), json.loads("\n".join(data)),
                            fields.get("id"))
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        else:
            fields[name] = value


class ApiClient:
    def __init__(self, creds: Credentials, *, timeout: float = 60.0) -> None:
        if not creds.token:
            raise CliError(
                f"no API token for {creds.server}: sign in with `slipway login {creds.server}` "
                f"(saved in {credentials_file()}), or pass --token or set SLIPWAY_TOKEN"
            )
        self.server = creds.server
        self.http = httpx.Client(
            base_url=creds.server,
            headers={"Authorization": f"Bearer {creds.token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach slipway at {self.server} ({exc.__class__.__name__}: {exc}); "
                "is `slipway serve` running? Point to it with --server or SLIPWAY_URL"
            ) from None
        if response.status_code >= 400:
            raise CliError(self.error_text(response))
        return response.json() if response.content else None

    def error_text(self, response: httpx.Response) -> str:
        text = _error_text(response)
        if response.status_code == 401:
            text += f"; sign in again with `slipway login {self.server}`"
        return text

    # -- routes ------------------------------------------------------------------
    @staticmethod
    def builds_path(repository: str) -> str:
        return f"/api/v1/repository/{repository}/build/"

    def info(self) -> dict[str, Any] | None:
        """The server's /api/v1/slipway/info (token, registries); None from a server
        without that route (an older slipway)."""
        try:
            response = self.http.get("/api/v1/slipway/info")
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach slipway at {self.server} ({exc.__class__.__name__}: {exc}); "
                "is `slipway serve` running? Point to it with --server or SLIPWAY_URL"
            ) from None
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise CliError(self.error_text(response))
        return dict(response.json())

    def upload(
        self, path: Path, mime_type: str, progress: Callable[[int], None] | None = None
    ) -> str:
        """PUT the file through the file drop; `progress(bytes)` after each chunk sent."""
        drop = self.request("POST", "/api/v1/filedrop/", json={"mimeType": mime_type})
        # the URL names the server as it saw us; use our own base (proxies, port-forwards)
        url = httpx.URL(drop["url"])
        target = url.raw_path.decode()
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as fh:
                yield from read_chunks(fh, progress)

        self.request("PUT", target, content=chunks(),
                     headers={"Content-Length": str(size), "Content-Type": mime_type})
        return str(drop["file_id"])

    def start_build(self, repository: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("POST", self.builds_path(repository), json=body))

    def get_build(self, repository: str, build_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"{self.builds_path(repository)}{build_id}"))

    def list_builds(self, repository: str, limit: int) -> list[dict[str, Any]]:
        body = self.request("GET", self.builds_path(repository), params={"limit": limit})
        return list(body["builds"])

    def logs(self, repository: str, build_id: str, start: int = 0) -> dict[str, Any]:
        return dict(self.request("GET", f"{self.builds_path(repository)}{build_id}/logs",
                                 params={"start": start}))

    def cancel(self, repository: str, build_id: str) -> None:
        self.request("DELETE", f"{self.builds_path(repository)}{build_id}")

    def stream(self, repository: str, build_id: str, start: int = 0) -> Iterator[Event]:
        """Log events then one `end` event; reconnects (resuming after the last entry)
        when the connection drops."""
        path = f"{self.builds_path(repository)}{build_id}/logs/stream"
        next_start = start
        failures = 0
        while True:
            try:
                with self.http.stream("GET", path, params={"start": next_start},
                                      timeout=httpx.Timeout(60.0, read=90.0)) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise CliError(self.error_text(response))
                    for event in parse_events(response.iter_lines()):
                        failures = 0
                        if event.kind == "log" and event.id is not None:
                            next_start = int(event.id) + 1
                        yield event
                        if event.kind == "end":
                            return
            except httpx.TransportError as exc:
                failures += 1
                if failures > 5:
                    raise CliError(f"lost the connection to {self.server}: {exc}") from None
                time.sleep(min(failures, 3))


def read_chunks(fh: BinaryIO, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    while block := fh.read(CHUNK):
        yield block
        if progress is not None:
            progress(len(block))


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("error_message") or body.get("detail") or response.text
    except ValueError:
        message = response.text.strip() or response.reason_phrase
    return f"{message} (HTTP {response.status_code})"
