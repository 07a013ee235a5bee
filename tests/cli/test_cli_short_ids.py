"""Build ids as the tables and the web UI show them (8 characters) work in every command
that takes one; an ambiguous or unknown start of an id is said so; the tables fit 80
columns with what matters still in them."""

from __future__ import annotations

import json
from pathlib import Path

from support.api_app import LiveApi
from support.enqueue import enqueue
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.domain.phases import Phase
from slipway.store.records import BuildRecord, NewBuild

TWINS = ("abcd1234-0000-4000-8000-000000000001", "abcd5678-0000-4000-8000-000000000002")
LONG_ERROR = ("RUN make all: exit status 2\nmake: *** [Makefile:12: all] Error 2 while "
              "building the documentation of every module of the project, again")


def env_for(live: LiveApi, scopes: dict[str, str] | None = None,
            columns: int = 200) -> dict[str, str]:
    token = live.token(scopes or {"demo": "admin"})
    return {"SLIPWAY_URL": live.url, "SLIPWAY_TOKEN": token, "COLUMNS": str(columns)}


def record_with_id(live: LiveApi, build_id: str, tags: list[str] | None = None) -> BuildRecord:
    """A build record with a chosen id (twins share a prefix)."""
    assert live.env is not None
    env = live.env

    async def create() -> BuildRecord:
        async with env.store.write() as conn:
            return await env.store.builds.create(conn, NewBuild(
                namespace="demo", repository="hello", tags=tags or ["latest"], registry="r"),
                build_id=build_id)

    return live.run(create())  # type: ignore[no-any-return]


def queued(live: LiveApi, tags: list[str] | None = None) -> BuildRecord:
    assert live.env is not None
    return live.run(enqueue(live.env.control, NewBuild(  # type: ignore[no-any-return]
        namespace="demo", repository="hello", tags=tags or ["latest"], registry="r")))


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_8_characters_shown_work_in_logs_builds_and_cancel(live: LiveApi) -> None:
    assert live.env is not None
    env = env_for(live)
    failed = queued(live, ["v1", "v2"])
    live.run(live.env.advance(failed.id, Phase.BUILDING, "STEP 1/2: FROM base", "compiling"))
    live.run(live.env.advance(failed.id, Phase.ERROR, error=LONG_ERROR))
    short = failed.id[:8]

    code, out, _ = run(env, "builds", "demo/hello")
    assert code == 0 and short in out and failed.id not in out

    code, out, err = run(env, "logs", "demo/hello", short)
    assert code == 0, err
    assert "compiling" in out
    code, out, err = run(env, "logs", "demo/hello", short.upper(), "--follow")
    assert code == 0, err
    assert "compiling" in out and f"build {failed.id}: error" in out

    code, out, err = run(env, "builds", "demo/hello", short)  # one build, in full
    assert code == 0, err
    assert failed.id in out and "v1, v2" in out
    assert "make: *** [Makefile:12: all] Error 2" in out  # the whole error
    code, out, _ = run(env, "builds", "demo/hello", short, "--json")
    assert json.loads(out)["error"] == LONG_ERROR

    waiting = queued(live)
    code, out, err = run(env, "cancel", "demo/hello", waiting.id[:8])
    assert code == 0, err
    assert f"build {waiting.id} cancelled" in out
    assert live.run(live.env.store.builds.get(waiting.id)).phase is Phase.CANCELLED


def test_ambiguous_unknown_and_malformed_ids_are_explained(live: LiveApi) -> None:
    env = env_for(live)
    for build_id in TWINS:
        record_with_id(live, build_id)

    code, out, err = run(env, "logs", "demo/hello", "abcd")
    assert code == 1 and out == ""
    assert "build id abcd is ambiguous in demo/hello" in err
    assert TWINS[0] in err and TWINS[1] in err and "give more of its characters" in err

    code, _, err = run(env, "logs", "demo/hello", "abcd5")  # unique: resolved
    assert code == 0, err

    code, _, err = run(env, "cancel", "demo/hello", "ffff0000")
    assert code == 1
    assert "no build in demo/hello has an id starting with ffff0000" in err

    code, _, err = run(env, "builds", "demo/hello", "ab")
    assert code == 1 and "too short: give at least 4 of its characters" in err
    code, _, err = run(env, "logs", "demo/hello", "latest")
    assert code == 1 and "'latest' is not a build id" in err

    # another repository's build is not found by its prefix
    code, _, err = run(env, "logs", "demo/other", "abcd1234")
    assert code == 1 and "no build in demo/other" in err


def test_the_api_resolves_a_prefix_within_the_repository(live: LiveApi) -> None:
    import httpx

    env = env_for(live)
    for build_id in TWINS:
        record_with_id(live, build_id)
    headers = {"Authorization": f"Bearer {env['SLIPWAY_TOKEN']}"}
    with httpx.Client(base_url=live.url, headers=headers) as http:
        path = "/api/v1/repository/demo/hello/build/"
        ids = [b["id"] for b in http.get(path, params={"id_prefix": "abcd"}).json()["builds"]]
        assert sorted(ids) == sorted(TWINS)
        found = http.get(path, params={"id_prefix": "ABCD1234"}).json()["builds"]
        assert [b["id"] for b in found] == [TWINS[0]]
        assert http.get(path, params={"id_prefix": "0000"}).json()["builds"] == []
        for bad in ("ab", "abcd%", "abcd_"):
            response = http.get(path, params={"id_prefix": bad})
            assert response.status_code == 400
            assert "id_prefix" in response.json()["error_message"]
        response = http.get(path, params={"id_prefix": "abcd", "phase": "waiting"})
        assert response.status_code == 400
        # Quay's routes: a full id as before, a prefix is no build there
        assert http.get(f"{path}{TWINS[0]}").json()["id"] == TWINS[0]
        assert http.get(f"{path}abcd1234").status_code == 404


def test_tables_fit_80_columns(live: LiveApi, tmp_path: Path) -> None:
    assert live.env is not None
    env = env_for(live, columns=80)
    tags = ["latest", "v1.2.3", "a-rather-long-tag-name-for-the-release-candidate"]
    failed = queued(live, tags)
    live.run(live.env.advance(failed.id, Phase.ERROR, error=LONG_ERROR))
    done = queued(live, ["a-rather-long-tag-name-for-the-release-candidate-of-2024"])
    live.run(live.env.advance(done.id, Phase.COMPLETE, image_digest="sha256:" + "c" * 64))
    waiting = queued(live)

    code, out, err = run(env, "builds", "demo/hello")
    assert code == 0, err
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    rows = {record.id: next(line for line in lines if line.startswith(record.id[:8]))
            for record in (failed, done, waiting)}
    assert len(lines) == 2 + 3  # header, rule, one line per build
    assert "error" in rows[failed.id] and "latest +2" in rows[failed.id]
    assert "RUN make all: exit" in rows[failed.id]  # the error's start...
    assert rows[failed.id].endswith("…")  # ...cut to one line
    assert "complete" in rows[done.id] and "sha256:cccc" in rows[done.id]
    assert "waiting" in rows[waiting.id]

    # the contexts' table too, with a long server URL
    xdg = tmp_path / "xdg"
    (xdg / "slipway").mkdir(parents=True)
    long_url = "https://slipway-manager.apps.cluster-with-a-long-name.example.com:8443"
    (xdg / "slipway" / "cli.json").write_text(json.dumps({
        "current": "prod", "contexts": {
            "prod": {"server": long_url, "token": "x"},
            "a-context-with-a-rather-long-name-too": {"server": long_url, "token": "y"}}}))
    code, out, err = run({**env, "XDG_CONFIG_HOME": str(xdg)}, "context", "list")
    assert code == 0, err
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert any(line.startswith("*") and "prod" in line for line in out.splitlines())
