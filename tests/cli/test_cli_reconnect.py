"""`slipway build` and `logs --follow` ride out a server that goes away (a restart, a
failover behind a load balancer): they reconnect, resume the log after the last line
printed (none missed, none twice), say what happened in one line each way, and exit with
the build's own result. A server gone for good is exit 3 with the command that re-attaches.

Here the API runs in the test (support/api_app.py) behind a TCP proxy the test cuts and
resumes, and the test plays the build through the store; test_cli_failover.py does the
same against real manager processes killed with SIGKILL."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_process import CliProcess, log_lines, printed_once_in_order
from support.api_app import LiveApi
from support.enqueue import enqueue
from support.tcp_proxy import TcpProxy
from test_cli_builds import DIGEST, write

from slipway.domain.phases import Phase
from slipway.store.records import BuildRecord, NewBuild


@pytest.fixture
def proxy(live: LiveApi) -> Iterator[TcpProxy]:
    front = TcpProxy([live.port])
    try:
        yield front
    finally:
        front.close()


def cli_env(live: LiveApi) -> dict[str, str]:
    return {"SLIPWAY_TOKEN": live.token({"demo": "admin"})}


def the_waiting_build(live: LiveApi) -> BuildRecord:
    assert live.env is not None
    env = live.env

    async def wait() -> BuildRecord:
        for _ in range(1200):  # a guard against hanging, not a timing assertion
            if waiting := await env.store.builds.list_in_phases([Phase.WAITING]):
                return waiting[0]
            await asyncio.sleep(0.05)
        raise AssertionError("no build was started")

    return live.run(wait(), timeout=120)  # type: ignore[no-any-return]


def server_log(live: LiveApi, build_id: str) -> list[str]:
    assert live.env is not None
    _, entries = live.run(live.env.store.logs.read(build_id))
    return log_lines([e.as_api() for e in entries])


def test_build_rides_out_a_lost_server_and_prints_every_line_once(
    tmp_path: Path, live: LiveApi, proxy: TcpProxy
) -> None:
    assert live.env is not None
    write(tmp_path / "ctx", {"Dockerfile": "FROM base\n"})
    cli = CliProcess(tmp_path, ["build", str(tmp_path / "ctx"), "-t", "127.0.0.1:5000/demo/hello",
                                "--server", proxy.url, "--reconnect-timeout", "2m"],
                     cli_env(live))
    try:
        build = the_waiting_build(live)
        live.run(live.env.advance(build.id, Phase.BUILDING, "line 1", "line 2"))
        cli.wait_for("line 2")
        proxy.cut()
        # written while the CLI cannot see the server: it must print them once it is back
        live.run(live.env.advance(build.id, Phase.BUILDING, "line 3 (while away)"))
        cli.wait_for("reconnecting (up to 2m)...", stream="stderr")
        proxy.resume()
        cli.wait_for(f"reconnected; following build {build.id}", stream="stderr")
        live.run(live.env.advance(build.id, Phase.PUSHING, "line 4"))
        live.run(live.env.advance(build.id, Phase.COMPLETE, image_digest=DIGEST))
        code = cli.wait()
    finally:
        cli.kill()
    assert code == 0, cli.stderr
    assert printed_once_in_order(cli.stdout, server_log(live, build.id)), cli.stdout
    assert "pushed 127.0.0.1:5000/demo/hello:latest" in cli.stdout
    notices = cli.stderr.splitlines()
    assert [line for line in notices if line.startswith("lost the server")] == [
        next(line for line in notices if line.startswith(f"lost the server at {proxy.url} ("))]
    assert notices.count(f"reconnected; following build {build.id}") == 1


def test_a_server_gone_for_good_is_exit_3_with_the_command_that_re_attaches(
    tmp_path: Path, live: LiveApi, proxy: TcpProxy
) -> None:
    assert live.env is not None
    env = cli_env(live)
    record = live.run(enqueue(live.env.control, NewBuild(
        namespace="demo", repository="hello", tags=["latest"], registry="r")))
    live.run(live.env.advance(record.id, Phase.BUILDING, "line 1"))
    cli = CliProcess(tmp_path, ["logs", "demo/hello", record.id[:8], "--follow",
                                "--server", proxy.url], {**env, "SLIPWAY_RECONNECT_TIMEOUT": "2s"})
    try:
        cli.wait_for("line 1")
        proxy.cut()
        code = cli.wait()
    finally:
        cli.kill()
    assert code == 3  # not 1, a build's failure
    assert f"error: lost the server at {proxy.url}: no answer for 2s" in cli.stderr
    assert f"build {record.id} may still be running there" in cli.stderr
    command = f"slipway logs demo/hello {record.id} --follow --server {proxy.url}"
    assert f"Re-attach when it is back: {command}\n" in cli.stderr

    # the command printed, run as printed, follows the build to its end
    proxy.resume()
    live.run(live.env.advance(record.id, Phase.BUILDING, "line 2"))
    live.run(live.env.advance(record.id, Phase.COMPLETE, image_digest=DIGEST))
    again = CliProcess(tmp_path, shlex.split(command)[1:], env, name="again")
    assert again.wait() == 0, again.stderr
    assert printed_once_in_order(again.stdout, server_log(live, record.id)), again.stdout
    assert f"build {record.id}: complete" in again.stdout


def test_a_bad_reconnect_timeout_is_explained(tmp_path: Path) -> None:
    cli = CliProcess(tmp_path, ["logs", "demo/hello", "abcd1234", "--follow",
                                "--reconnect-timeout", "five minutes"],
                     {"SLIPWAY_URL": "http://127.0.0.1:9", "SLIPWAY_TOKEN": "x"})
    assert cli.wait() == 1
    assert "--reconnect-timeout 'five minutes': write a duration such as 90s, 5m" in cli.stderr
