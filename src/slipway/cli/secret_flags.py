"""`slipway build --secret`, as docker writes it: id=NAME,src=FILE or id=NAME,env=VAR
(id=NAME alone reads $NAME)."""

from __future__ import annotations

import os
from pathlib import Path

from slipway.build_secrets import InvalidSecret, check_id, check_value
from slipway.cli.client import CliError

HOW = "write id=NAME,src=FILE or id=NAME,env=VARIABLE"


def _fields(flag: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in flag.split(","):
        key, eq, value = part.partition("=")
        key = {"source": "src", "target": "id"}.get(key.strip(), key.strip())
        if not eq or key not in ("id", "src", "env", "type") or key in fields:
            raise CliError(f"--secret {flag}: {HOW}")
        fields[key] = value
    return fields


def _value(flag: str, fields: dict[str, str]) -> str:
    secret_id = fields["id"]
    kind = fields.get("type") or ("env" if "env" in fields or "src" not in fields else "file")
    if kind == "file" and "src" in fields:
        path = Path(fields["src"]).expanduser()
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise CliError(f"--secret {flag}: cannot read {path} ({reason})") from None
    if kind == "env":
        variable = fields.get("env") or fields.get("src") or secret_id
        if variable not in os.environ:
            raise CliError(f"--secret {flag}: ${variable} is not set")
        return os.environ[variable]
    raise CliError(f"--secret {flag}: type must be file or env; {HOW}")


def parse_secrets(flags: list[str]) -> dict[str, str]:
    """{id: value} of the --secret flags; the values are never part of an error."""
    secrets: dict[str, str] = {}
    for flag in flags:
        fields = _fields(flag)
        if "id" not in fields:
            raise CliError(f"--secret {flag}: no id; {HOW}")
        try:
            check_id(fields["id"])
            value = _value(flag, fields)
            check_value(fields["id"], value)
        except InvalidSecret as exc:
            raise CliError(f"--secret {flag}: {exc}") from None
        if fields["id"] in secrets:
            raise CliError(f"--secret: id {fields['id']!r} is given twice; give each id once")
        secrets[fields["id"]] = value
    return secrets
