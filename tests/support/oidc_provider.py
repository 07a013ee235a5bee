"""A real OpenID provider for the tests: npm's oidc-provider (tests/support/oidc/,
installed by `make setup`) run by node on a free 127.0.0.1 port."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.ports import free_port

FOLDER = Path(__file__).with_name("oidc")
CLIENT_ID = "slipway"
CLIENT_SECRET = "oidc-client-s3cret-never-shown"


@dataclass(frozen=True)
class OidcProvider:
    issuer: str

    def access_config(self, group_roles: dict[str, dict[str, str]],
                      session_lifetime: str = "8h") -> dict[str, object]:
        """slipway's ACCESS with OIDC pointing here."""
        return {"OIDC": {"ISSUER": self.issuer, "CLIENT_ID": CLIENT_ID,
                         "CLIENT_SECRET": CLIENT_SECRET,
                         "SCOPES": ["openid", "email", "profile", "groups"],
                         "GROUP_ROLES": group_roles,
                         "SESSION_LIFETIME": session_lifetime}}




@contextmanager
def oidc_provider(redirect_uris: list[str],
                  accounts: dict[str, dict[str, object]]) -> Iterator[OidcProvider]:
    node = shutil.which("node")
    if node is None or not (FOLDER / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("node or tests/support/oidc/node_modules is missing (make setup)")
    port = free_port()
    config = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "redirect_uris": redirect_uris, "accounts": accounts}
    process = subprocess.Popen(
        [node, str(FOLDER / "provider.mjs"), str(port), json.dumps(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=FOLDER)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30  # a guard against a hang, not a timing test
        output: list[str] = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if line.startswith("listening on "):
                break
        else:
            raise AssertionError("oidc-provider did not start: " + "".join(output))
        if process.poll() is not None:
            raise AssertionError("oidc-provider exited: " + "".join(output))
        yield OidcProvider(issuer=f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
