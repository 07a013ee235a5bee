"""The audit log of a scenario of two users, through the HTTP API and the CLI of a live
server: tokens made and revoked, builds started, rebuilt and cancelled, a refused
sign-in. The export holds every action, in order, with its actor and address, and no
token anywhere in it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from support.api_app import LiveApi
from support.git_server import bare_repository, commit_files, git, http_git_server
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


TRIGGERS = "/api/v1/repository/team/web/trigger/"
DEPLOY_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
              "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB4dGVzdGtleWJvZHk=\n"
              "-----END OPENSSH PRIVATE KEY-----\n")


def test_trigger_changes_are_in_the_audit_log_with_no_secret(tmp_path: Path) -> None:
    """A trigger made (CLI), disabled and enabled again, its secret rotated, its token
    replaced, run now, and deleted (API): each is an entry with its actor; none of the
    webhook secrets, the clone token, the deploy key or a slipway token is exported."""
    live = LiveApi(tmp_path, SERVER_HOSTNAME="127.0.0.1:5000").start()
    try:
        root = live.token({"*": "admin"}, "root")
        carol = live.token({"team": "write"}, "carol")
        with http_git_server(tmp_path / "git") as forge, \
                httpx.Client(base_url=live.url,
                             headers={"Authorization": f"Bearer {carol}"}) as http:
            bare_repository(tmp_path / "git", "web.git")
            work = tmp_path / "work"
            git("clone", "--quiet", forge.authed_url("web.git"), str(work))
            head = commit_files(work, {"Dockerfile": "FROM scratch\n"}, "first")
            git("push", "--quiet", "origin", "HEAD:main", cwd=work)
            token_file = tmp_path / "clone-token"
            token_file.write_text(forge.token + "\n")
            made = cli(live, carol, "trigger", "create", "team/web", "--name", "main",
                       "--git", forge.url("web.git"), "--branch", "main",
                       "--token-file", str(token_file))
            [first_secret] = [line.split(":", 1)[1].strip()
                              for line in map(str.strip, made.splitlines())
                              if line.startswith("webhook secret (shown once):")]
            [trigger] = http.get(TRIGGERS).json()["triggers"]
            path = f"{TRIGGERS}{trigger['id']}"
            steps = [{"enabled": False}, {"enabled": True}, {"rotate_webhook_secret": True}]
            answers = [http.patch(path, json=step) for step in steps]
            run = http.post(f"{path}/run", json={"ref": "main"})
            assert run.status_code == 201, run.text
            answers.append(http.patch(path, json={"token": "glpat-n3wCloneToken4567"}))
            assert [a.status_code for a in answers] == [200] * 4, answers[-1].text
            second_secret = answers[2].json()["webhook_secret"]
            assert second_secret and second_secret != first_secret
            keyed = http.post(TRIGGERS, json={
                "name": "by-ssh", "kind": "gitlab", "git_url": "git@gitlab.example.com:t/w.git",
                "ssh_key": DEPLOY_KEY})
            assert keyed.status_code == 201, keyed.text
            assert http.delete(path).status_code == 204
            assert http.delete(f"{TRIGGERS}{keyed.json()['id']}").status_code == 204
        exported = cli(live, root, "audit", "--jsonl", "--namespace", "team")
    finally:
        live.stop()
    entries = [json.loads(line) for line in exported.splitlines()]
    assert [(e["actor"], e["action"], e["namespace"]) for e in entries] == [
        ("carol", "trigger.create", "team"),
        *[("carol", "trigger.update", "team")] * 3,
        ("carol", "trigger.run", "team"),
        ("carol", "trigger.update", "team"),
        ("carol", "trigger.create", "team"),
        ("carol", "trigger.delete", "team"),
        ("carol", "trigger.delete", "team"),
    ]
    assert {e["target"] for e in entries[:6]} == {trigger["id"]}
    assert entries[0]["details"]["credentials"] == ["token", "webhook_secret"]
    updates = [e["details"] for e in (*entries[1:4], entries[5])]
    assert [(u["fields"], u["enabled"]) for u in updates] == [
        (["enabled"], False), (["enabled"], True), (["rotate_webhook_secret"], True),
        (["token"], True)]
    assert [u["webhook_secret_rotated"] for u in updates] == [False, False, True, False]
    assert updates[3]["set"] == ["token"]
    run_entry = entries[4]["details"]
    assert (run_entry["ref"], run_entry["commit"]) == ("refs/heads/main", head)
    assert run_entry["build"] == run.json()["id"]
    assert entries[6]["details"]["credentials"] == ["ssh_key", "webhook_secret"]
    assert [e["details"]["name"] for e in entries[7:]] == ["main", "by-ssh"]
    for secret in (first_secret, second_secret, forge.token, "glpat-n3wCloneToken4567",
                   "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", root, carol):
        assert secret not in exported
    assert "slw_" not in exported and "PRIVATE KEY" not in exported
