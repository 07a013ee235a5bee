"""The audit log of a scenario of two users, through the HTTP API and the CLI of a live
server: tokens made and revoked, builds started, rebuilt and cancelled, a refused
sign-in. The export holds every action, in order, with its actor and address, and no
token anywhere in it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from support.api_app import LiveApi
from typer.testing import CliRunner

from slipway.cli.main import app

BUILDS = "/api/v1/repository/team/web/build/"


def cli(live: LiveApi, token: str, *args: str) -> str:
    r = CliRunner().invoke(app, list(args), env={"SLIPWAY_URL": live.url,
                                                 "SLIPWAY_TOKEN": token, "COLUMNS": "200"})
    assert r.exit_code == 0, r.stderr
    return r.stdout


def test_the_audit_log_holds_a_two_user_scenario_in_order(tmp_path: Path) -> None:
    live = LiveApi(tmp_path, SERVER_HOSTNAME="127.0.0.1:5000").start()
    try:
        root = live.token({"*": "admin"}, "root")
        alice = cli(live, root, "token", "create", "alice", "--scope", "team=write").strip()
        bob = cli(live, root, "token", "create", "bob", "--scope", "team=admin").strip()
        with httpx.Client(base_url=live.url) as http:
            def start(token: str) -> str:
                r = http.post(BUILDS, headers={"Authorization": f"Bearer {token}"},
                              json={"archive_url": "https://example.com/app.tar.gz"})
                assert r.status_code == 201, r.text
                return str(r.json()["id"])

            first = start(alice)
            second = start(alice)
            cli(live, bob, "cancel", "team/web", second)
            again = http.post(f"{BUILDS}{first}/rebuild",
                              headers={"Authorization": f"Bearer {bob}"})
            assert again.status_code == 201, again.text
            rebuilt = again.json()["id"]
            ci = cli(live, bob, "token", "create", "ci", "--scope", "team=read").strip()
            cli(live, bob, "token", "revoke", "ci")
            refused = http.get(BUILDS, headers={"Authorization": f"Bearer {ci}"})
            assert refused.status_code == 401
        exported = cli(live, root, "audit", "--jsonl")
    finally:
        live.stop()
    entries = [json.loads(line) for line in exported.splitlines()]
    seen = [(e["actor"], e["action"], e["namespace"], e["target"]) for e in entries]
    expected = [
        ("root", "token.create", None),
        ("root", "token.create", None),
        ("alice", "build.start", "team"),
        ("alice", "build.start", "team"),
        ("bob", "build.cancel", "team"),
        ("bob", "build.rebuild", "team"),
        ("bob", "token.create", None),
        ("bob", "token.revoke", None),
        ("(unknown)", "auth.failed", None),
    ]
    assert [s[:3] for s in seen] == expected
    assert [s[3] for s in seen[2:6]] == [first, second, second, rebuilt]
    assert entries[5]["details"]["again_of"] == first
    assert entries[6]["target"] == entries[7]["target"]  # the ci token, made and revoked
    assert [e["details"]["name"] for e in entries[:2]] == ["alice", "bob"]
    assert entries[8]["details"]["route"] == BUILDS
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert all(e["source"] == "127.0.0.1" for e in entries)
    for secret in (root, alice, bob, ci):
        assert secret not in exported
    assert "slw_" not in exported
