"""CLI contexts: a second server's first start no longer takes the CLI away from the first;
`slipway login` checks a token before saving it; `slipway context` lists, switches and
removes; a cli.json of the single-server form keeps working."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.api_app import LiveApi
from support.enqueue import enqueue
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.server import bootstrap_admin
from slipway.store.records import NewBuild


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[LiveApi, LiveApi]]:
    a = LiveApi(tmp_path / "a").start()
    b = LiveApi(tmp_path / "b").start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def cli(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    env = {"SLIPWAY_URL": "", "SLIPWAY_TOKEN": "", "SLIPWAY_CONTEXT": ""}
    result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def cli_file() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "slipway" / "cli.json"


def submit(server: LiveApi, repository: str) -> str:
    assert server.env is not None
    record = server.run(enqueue(server.env.control, NewBuild(
        namespace="demo", repository=repository, tags=["latest"], registry="r")))
    return str(record.id)


def test_a_second_server_adds_its_context_without_taking_the_cli(
    two: tuple[LiveApi, LiveApi], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = two
    assert a.env is not None and b.env is not None
    name_a, name_b = (s.url.removeprefix("http://") for s in (a, b))
    caplog.set_level(logging.INFO, logger="slipway.server")
    a.run(bootstrap_admin(a.env.store, a.env.config))
    assert f"the CLI context '{name_a}' has it and is the current context" in caplog.text
    b.run(bootstrap_admin(b.env.store, b.env.config))
    assert (f"the CLI context '{name_b}' has it; the current context stays '{name_a}': run "
            f"`slipway context use {name_b}` to use this server") in caplog.text
    assert stat.S_IMODE(cli_file().stat().st_mode) == 0o600
    only_a, only_b = submit(a, "on-a"), submit(b, "on-b")

    # the CLI still talks to the first server
    code, out, err = cli("builds", "demo/on-a")
    assert code == 0, err
    assert only_a[:8] in out  # the short id
    code, out, _ = cli("context", "list")
    assert code == 0
    rows = {line.split()[-2]: line.split() for line in out.splitlines() if "http://" in line}
    assert rows[name_a] == ["*", name_a, a.url]
    assert rows[name_b] == [name_b, b.url]
    assert "slw_" not in out  # tokens are never shown

    # switch, and back by flag / environment
    code, out, _ = cli("context", "use", name_b)
    assert code == 0 and out.strip() == f"Current context: {name_b} ({b.url})"
    code, out, _ = cli("builds", "demo/on-b")
    assert code == 0 and only_b[:8] in out
    code, out, _ = cli("builds", "demo/on-a", "--context", name_a)
    assert code == 0 and only_a[:8] in out
    # --server alone finds the saved token of that server
    code, out, err = cli("builds", "demo/on-a", "--server", a.url)
    assert code == 0 and only_a[:8] in out, err

    code, _, err = cli("context", "use", "nope")
    known = ", ".join(sorted([name_a, name_b]))
    assert code == 1 and f"no CLI context named 'nope' (known: {known})" in err


def test_login_checks_the_token_then_saves_it(two: tuple[LiveApi, LiveApi]) -> None:
    a, _ = two
    assert a.env is not None
    token = a.token({"demo": "write"}, "ci-robot")
    name = a.url.removeprefix("http://")

    code, _, err = cli("login", a.url, "--token-stdin", stdin="slw_wrong\n")
    assert code == 1
    assert "the API token is not valid (HTTP 401)" in err
    assert not cli_file().exists()  # nothing saved

    code, out, err = cli("login", a.url + "/", "--token-stdin", stdin=token + "\n")
    assert code == 0, err
    assert out.strip() == (f"Logged in to {a.url} as 'ci-robot' (write on demo); context "
                           f"{name!r} is now current")
    saved = json.loads(cli_file().read_text())
    assert saved == {"current": name, "contexts": {name: {"server": a.url, "token": token}}}
    build_id = submit(a, "hello")
    code, out, _ = cli("builds", "demo/hello")
    assert code == 0 and build_id[:8] in out

    code, _, err = cli("login", "http://127.0.0.1:9", "--token-stdin", stdin="x\n")
    assert code == 1 and "cannot reach slipway at http://127.0.0.1:9" in err
    code, _, err = cli("login", "127.0.0.1:8700", "--token-stdin", stdin="x\n")
    assert code == 1 and "is not a URL" in err
    code, _, err = cli("login", a.url, "--token-stdin", stdin="")
    assert code == 1 and "standard input was empty" in err

    code, out, _ = cli("logout")
    assert code == 0 and out.strip() == f"Removed context {name!r} ({a.url})"
    code, _, err = cli("builds", "demo/hello")
    assert code == 1 and "no API token for http://127.0.0.1:8700: sign in with" in err


def test_single_server_cli_json_keeps_working_and_is_migrated(
    two: tuple[LiveApi, LiveApi],
) -> None:
    a, b = two
    assert a.env is not None and b.env is not None
    token_a = a.token({"*": "admin"})
    token_b = b.token({"*": "read"}, "reader")
    cli_file().parent.mkdir(parents=True)
    cli_file().write_text(json.dumps({"server": a.url, "token": token_a}))
    build_id = submit(a, "old")
    code, out, err = cli("builds", "demo/old")
    assert code == 0 and build_id[:8] in out, err
    code, out, _ = cli("context", "show")
    assert out.strip() == f"{a.url.removeprefix('http://')} {a.url}"

    code, _, err = cli("login", b.url, "--token-stdin", stdin=token_b)
    assert code == 0, err
    saved = json.loads(cli_file().read_text())
    name_a, name_b = a.url.removeprefix("http://"), b.url.removeprefix("http://")
    assert saved == {"current": name_b, "contexts": {
        name_a: {"server": a.url, "token": token_a},
        name_b: {"server": b.url, "token": token_b},
    }}
    code, out, _ = cli("context", "list", "--json")
    # listed by name: which of the two free ports sorts first is chance
    assert json.loads(out) == sorted([
        {"name": name_a, "server": a.url, "current": False},
        {"name": name_b, "server": b.url, "current": True},
    ], key=lambda c: str(c["name"]))


def test_an_unreadable_cli_json_is_explained() -> None:
    cli_file().parent.mkdir(parents=True)
    cli_file().write_text("{not json")
    code, _, err = cli("builds", "demo/x")
    assert code == 1 and f"cannot read {cli_file()}" in err and "fix or delete it" in err
