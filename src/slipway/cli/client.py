"""HTTP client of the slipway API, and where the CLI finds the server and its token.

Server: --server, else SLIPWAY_URL, else the context (--context, else SLIPWAY_CONTEXT,
else the current one; see cli/contexts.py). Token: --token, else SLIPWAY_TOKEN, else the
token of the context, or of the saved context of the --server/SLIPWAY_URL given.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from slipway.backoff import Backoff
from slipway.cli.contexts import ContextsError, credentials_file, normal_url, read_contexts
from slipway.cli.errors import CliError
from slipway.cli.reconnect import (
    FIRST_PAUSE_S,
    LONGEST_PAUSE_S,
    Reconnect,
    ServerLost,
    format_duration,
)

DEFAULT_SERVER = "http://127.0.0.1:8700"
CHUNK = 1 << 20
# what a load balancer or proxy answers while no manager behind it is up (a failover)
NO_SERVER_BEHIND = {502, 503, 504}

__all__ = ["ApiClient", "CliError", "Credentials", "Event", "load_credentials"]


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


def _tls_for(server: str) -> ssl.SSLContext | bool:
    """What the client verifies TLS with: the default CAs for an https:// server. An
    http:// server's client never speaks TLS (its paths are relative, it follows no
    redirect), so it skips loading the CA bundle, 30-50 ms of every command's start,
    and trusts no certificate at all instead."""
    if server.startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, and trusts nothing
    return True


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
            verify=_tls_for(creds.server),
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

    def find_builds(self, repository: str, id_prefix: str, limit: int) -> list[dict[str, Any]]:
        """The repository's builds whose id starts with `id_prefix`, newest first."""
        body = self.request("GET", self.builds_path(repository),
                            params={"id_prefix": id_prefix, "limit": limit})
        # filtered here too: a server older than `id_prefix` lists the newest builds
        return [b for b in body["builds"] if str(b.get("id", "")).startswith(id_prefix)]

    def logs(self, repository: str, build_id: str, start: int = 0) -> dict[str, Any]:
        return dict(self.request("GET", f"{self.builds_path(repository)}{build_id}/logs",
                                 params={"start": start}))

    def cancel(self, repository: str, build_id: str) -> None:
        self.request("DELETE", f"{self.builds_path(repository)}{build_id}")

    # -- access (docs/access.md) --------------------------------------------------------
    def signed_in(self) -> None:
        """Tell the server of this sign-in (its audit log); an older server has no such
        route, which is no error."""
        try:
            self.http.post("/api/v1/slipway/signin")
        except httpx.TransportError:
            pass

    def create_token(self, name: str, scopes: dict[str, str],
                     expires_in: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "scopes": scopes}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return dict(self.request("POST", "/api/v1/slipway/tokens/", json=body))

    def tokens(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/v1/slipway/tokens/")["tokens"])

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/api/v1/slipway/tokens/{token_id}"))

    def audit(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("GET", "/api/v1/slipway/audit/", params=params))

    def audit_export(self, params: dict[str, Any]) -> Iterator[str]:
        """The matching entries as JSON Lines, line by line as they arrive."""
        try:
            with self.http.stream("GET", "/api/v1/slipway/audit/export",
                                  params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CliError(self.error_text(response))
                yield from response.iter_lines()
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach slipway at {self.server} ({exc.__class__.__name__}: {exc})"
            ) from None

    def stream(
        self, repository: str, build_id: str, start: int = 0, reconnect: Reconnect | None = None
    ) -> Iterator[Event]:
        """Log events then one `end` event. When the connection drops, or the server
        stops (it closes the stream without `end`), it connects again at once and
        resumes after the last entry seen, so no entry is missed or repeated; while the
        server stays away it keeps trying (slipway.backoff) for `reconnect.patience`
        seconds, saying so once when it goes and once when it is back, then raises
        ServerLost."""
        path = f"{self.builds_path(repository)}{build_id}/logs/stream"
        next_start = start
        patience = reconnect.patience if reconnect is not None else 0.0
        backoff = Backoff(FIRST_PAUSE_S, LONGEST_PAUSE_S)
        lost_since: float | None = None  # when the first try in a row failed
        announced = False
        while True:
            try:
                with self.http.stream("GET", path, params={"start": next_start},
                                      timeout=httpx.Timeout(60.0, read=90.0)) as response:
                    if response.status_code in NO_SERVER_BEHIND:
                        response.read()
                        raise _NoServer(self.error_text(response))
                    if response.status_code >= 400:
                        response.read()
                        raise CliError(self.error_text(response))
                    if announced and reconnect is not None:
                        reconnect.notify(f"reconnected; following build {build_id}")
                        announced = False
                    received = False
                    for event in parse_events(response.iter_lines()):
                        if not received:  # the server is back for good: start afresh
                            received, lost_since = True, None
                            backoff.reset()
                        if event.kind == "log" and event.id is not None:
                            next_start = int(event.id) + 1
                        yield event
                        if event.kind == "end":
                            return
                if received:
                    continue  # closed without `end`: the server stops; connect again at once
                # closed with nothing sent: paced like a failure, not retried in a loop
                reason = "the server closed the stream"
            except (httpx.TransportError, _NoServer) as exc:
                reason = _reason(exc)
            now = time.monotonic()
            if lost_since is None:
                # the first failure in a row is tried again at once, without a word:
                # a dropped idle connection is not worth a message
                lost_since = now
                continue
            waited = now - lost_since
            if waited >= patience:
                raise ServerLost(self.server, patience, reason)
            if not announced and reconnect is not None:
                reconnect.notify(f"lost the server at {self.server} ({reason}); "
                                 f"reconnecting (up to {format_duration(patience)})...")
                announced = True
            time.sleep(min(backoff.next(), patience - waited))


class _NoServer(Exception):
    """A proxy's 502/503/504: no server behind it right now."""


def _reason(exc: Exception) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if isinstance(exc, _NoServer) else f"{exc.__class__.__name__}: {text}"


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
