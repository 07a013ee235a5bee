"""HTTP client of the slipway API, and where the CLI finds the server and its token.

Order: --server/--token flags, then SLIPWAY_URL / SLIPWAY_TOKEN, then
`$XDG_CONFIG_HOME/slipway/cli.json` (written by `slipway serve` on first start).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_SERVER = "http://127.0.0.1:8700"
CHUNK = 1 << 20


class CliError(Exception):
    """A problem to show the user as is (one line, no traceback)."""


def credentials_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "slipway" / "cli.json"


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str | None


def load_credentials(server: str | None = None, token: str | None = None) -> Credentials:
    saved: dict[str, Any] = {}
    path = credentials_file()
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read {path}: {exc}; fix or delete it") from None
    server = server or os.environ.get("SLIPWAY_URL") or saved.get("server") or DEFAULT_SERVER
    token = token or os.environ.get("SLIPWAY_TOKEN") or saved.get("token")
    return Credentials(server.rstrip("/"), token)


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
                "no API token: pass --token, set SLIPWAY_TOKEN, or use the credentials file "
                f"{credentials_file()} that `slipway serve` writes on first start"
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
            raise CliError(_error_text(response))
        return response.json() if response.content else None

    # -- routes ------------------------------------------------------------------
    @staticmethod
    def builds_path(repository: str) -> str:
        return f"/api/v1/repository/{repository}/build/"

    def upload(self, path: Path, mime_type: str) -> str:
        drop = self.request("POST", "/api/v1/filedrop/", json={"mimeType": mime_type})
        # the URL names the server as it saw us; use our own base (proxies, port-forwards)
        url = httpx.URL(drop["url"])
        target = url.raw_path.decode()
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as fh:
                while block := fh.read(CHUNK):
                    yield block

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
                        raise CliError(_error_text(response))
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


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("error_message") or body.get("detail") or response.text
    except ValueError:
        message = response.text.strip() or response.reason_phrase
    return f"{message} (HTTP {response.status_code})"
