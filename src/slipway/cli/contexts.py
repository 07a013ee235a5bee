"""The CLI's contexts: the slipway servers it knows, each with its API token, one of them
current (as kubectl's and docker's contexts). They live in
`$XDG_CONFIG_HOME/slipway/cli.json` (mode 0600):

    {"current": "127.0.0.1:8700",
     "contexts": {"127.0.0.1:8700": {"server": "http://127.0.0.1:8700", "token": "slw_..."}}}

A file of the single-server form earlier versions wrote, {"server": ..., "token": ...}, is
read as one context (the current one) and rewritten in this form at the next change.
Changes hold a lock on `cli.json.lock`, so servers starting together lose none.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from slipway.private_files import write_private


class ContextsError(Exception):
    """cli.json cannot be read or a context is unknown; the message says what to do."""


def credentials_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "slipway" / "cli.json"


@dataclass(frozen=True)
class Context:
    name: str
    server: str
    token: str = field(repr=False)


@dataclass
class Contexts:
    current: str | None = None
    entries: dict[str, Context] = field(default_factory=dict)

    def get(self, name: str) -> Context:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries)) or "none yet"
            raise ContextsError(
                f"no CLI context named {name!r} (known: {known}); add one with "
                "`slipway login URL`"
            ) from None

    def for_server(self, server: str) -> Context | None:
        """The context of this server URL: the current one if it is, else the first."""
        server = normal_url(server)
        matches = [c for c in self.entries.values() if c.server == server]
        matches.sort(key=lambda c: c.name != self.current)
        return matches[0] if matches else None

    def put(self, context: Context) -> None:
        self.entries[context.name] = context
        if self.current not in self.entries:
            self.current = context.name

    def remove(self, name: str) -> Context:
        removed = self.get(name)
        del self.entries[name]
        if self.current == name:
            self.current = None
        return removed

    def dumps(self) -> str:
        return json.dumps(
            {
                "current": self.current,
                "contexts": {
                    c.name: {"server": c.server, "token": c.token}
                    for c in sorted(self.entries.values(), key=lambda c: c.name)
                },
            },
            indent=2,
        ) + "\n"


def normal_url(url: str) -> str:
    return url.strip().rstrip("/")


def name_for(server: str) -> str:
    """A context's default name: the server's host:port."""
    parts = urlsplit(normal_url(server))
    return parts.netloc or normal_url(server)


def _parse(raw: Any, path: Path) -> Contexts:
    if not isinstance(raw, dict):
        raise ContextsError(f"{path} is not a JSON object; fix or delete it")
    if "contexts" not in raw and "server" in raw:  # the single-server form
        server = normal_url(str(raw["server"]))
        token = str(raw.get("token") or "")
        name = name_for(server)
        return Contexts(current=name, entries={name: Context(name, server, token)})
    entries: dict[str, Context] = {}
    contexts = raw.get("contexts") or {}
    if not isinstance(contexts, dict):
        raise ContextsError(f"{path}: 'contexts' is not an object; fix or delete it")
    for name, entry in contexts.items():
        if not isinstance(entry, dict) or not entry.get("server"):
            raise ContextsError(f"{path}: context {name!r} has no server; fix or delete it")
        entries[str(name)] = Context(
            str(name), normal_url(str(entry["server"])), str(entry.get("token") or "")
        )
    current = raw.get("current")
    return Contexts(current=current if current in entries else None, entries=entries)


def read_contexts(path: Path | None = None) -> Contexts:
    path = path or credentials_file()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Contexts()
    except OSError as exc:
        raise ContextsError(f"cannot read {path}: {exc}") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ContextsError(f"cannot read {path}: {exc}; fix or delete it") from None
    return _parse(raw, path)


@contextlib.contextmanager
def edit_contexts(path: Path | None = None) -> Iterator[Contexts]:
    """The contexts, locked against other writers; saved when the block ends normally."""
    path = path or credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        contexts = read_contexts(path)
        yield contexts
        write_private(path, contexts.dumps())
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True)
class Added:
    name: str
    current: str | None  # the current context after the change
    replaced: bool  # a context of this name and server had another token

    def news(self) -> str:
        what = f"the CLI context {self.name!r}"
        if self.replaced:
            what += " (a server started earlier at this address had it) has the new token"
        else:
            what += " has it"
        if self.current == self.name:
            return f"{what} and is the current context"
        return (f"{what}; the current context stays {self.current!r}: run `slipway context "
                f"use {self.name}` to use this server")


def add_server_context(server: str, token: str, path: Path | None = None) -> Added:
    """A server's first start: its context is added (named host:port); it becomes current
    only when there is no current context. A context of the same name and URL (a server
    started afresh at the same address) gets the new token."""
    server = normal_url(server)
    with edit_contexts(path) as contexts:
        name = name_for(server)
        existing = contexts.entries.get(name)
        suffix = 2
        while existing is not None and existing.server != server:
            name = f"{name_for(server)}-{suffix}"
            existing = contexts.entries.get(name)
            suffix += 1
        contexts.put(Context(name, server, token))
        return Added(name, contexts.current, existing is not None and existing.token != token)
