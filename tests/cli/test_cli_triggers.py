"""`slipway trigger ...` against a live API, with a real `git http-backend` for `run`."""

from __future__ import annotations

import json
from pathlib import Path

from support.api_app import LiveApi
from support.git_server import bare_repository, commit_files, git, http_git_server
from typer.testing import CliRunner

from slipway.cli.main import app


def cli(live: LiveApi, token: str, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["trigger", *args], prog_name="slipway", env={
        "SLIPWAY_URL": live.url, "SLIPWAY_TOKEN": token, "COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


def test_trigger_commands(tmp_path: Path, live: LiveApi) -> None:
    token = live.token({"demo": "write"})
    with http_git_server(tmp_path / "git") as forge:
        bare_repository(tmp_path / "git", "hello.git")
        work = tmp_path / "work"
        git("clone", "--quiet", forge.authed_url("hello.git"), str(work))
        head = commit_files(work, {"Dockerfile": "FROM scratch\n"}, "first")
        git("push", "--quiet", "origin", "HEAD:main", cwd=work)
        token_file = tmp_path / "clone-token"
        token_file.write_text(forge.token + "\n")

        out = cli(live, token, "create", "demo/hello", "--name", "web",
                  "--git", forge.url("hello.git"), "--branch", "main", "--tag", "v*",
                  "--image-tag", "{branch},{sha:7}", "--token-file", str(token_file))
        assert "webhook secret (shown once):" in out and forge.token not in out
        assert "credentials: token, webhook_secret" in out
        assert "web" in cli(live, token, "list", "demo/hello")
        shown = json.loads(cli(live, token, "show", "demo/hello", "web", "--json"))
        assert shown["webhook_secret"] is None and shown["branches"] == ["main"]

        out = cli(live, token, "run", "demo/hello", "web", "main")
        assert f"refs/heads/main at {head[:7]}, tags main, {head[:7]}" in out
        out = cli(live, token, "run", "demo/hello", "web", "nope", code=1)
        assert "'nope' is neither a branch nor a tag" in out and forge.token not in out

        cli(live, token, "update", "demo/hello", "web", "--set", 'paths=["src/**"]')
        assert json.loads(cli(live, token, "show", "demo/hello", "web", "--json"))[
            "paths"] == ["src/**"]
        out = cli(live, token, "update", "demo/hello", "web",
                  "--set", "tag_templates=[\"{nope}\"]", code=1)
        assert "unknown field" in out
        assert json.loads(cli(live, token, "show", "demo/hello", "web", "--json"))[
            "tag_templates"] == ["{branch}", "{sha:7}"]
        cli(live, token, "disable", "demo/hello", "web")
        assert "disabled" in cli(live, token, "list", "demo/hello")
        cli(live, token, "delete", "demo/hello", "web")
        assert "No trigger in demo/hello." in cli(live, token, "list", "demo/hello")
        reader = live.token({"demo": "read"}, "viewer")
        out = cli(live, reader, "create", "demo/hello", "--name", "x", "--git",
                  forge.url("hello.git"), code=1)
        assert "lacks write access" in out
