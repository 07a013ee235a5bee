"""`slipway build --timeout` and the ends a build's time limits make, as the CLI shows them
(issue 29): a bad or too long timeout refused, a build stopped at its timeout or expired
in the queue exits 1 with the server's reason."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.api_app import ApiEnv, LiveApi
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.domain.build_limits import BuildLimit, timed_out_message
from slipway.domain.phases import Phase
from slipway.manager.phase_log import phase_entry
from slipway.manager.queue_expiry import QueueExpiry
from slipway.store.records import BuildRecord, LogEntry

TARGET = "127.0.0.1:5000/demo/hello"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveApi]:
    server = LiveApi(tmp_path, SERVER_HOSTNAME="127.0.0.1:5000",
                     QUEUE_TTL={"NAMESPACES": {"slow": "1m"}}).start()
    try:
        yield server
    finally:
        server.stop()


def _context(tmp_path: Path) -> Path:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM base\n")
    return tmp_path / "ctx"


def _build(live: LiveApi, tmp_path: Path, *args: str) -> tuple[int, str]:
    assert live.env is not None
    token = live.run(live.env.token({"*": "write"}))
    result = CliRunner().invoke(
        app, ["build", str(_context(tmp_path)), *args],
        env={"SLIPWAY_URL": live.url, "SLIPWAY_TOKEN": token, "COLUMNS": "300"},
    )
    return result.exit_code, result.output


async def _waiting(env: ApiEnv) -> BuildRecord:
    for _ in range(600):  # a guard against hanging, not a timing assertion
        if waiting := await env.store.builds.list_in_phases([Phase.WAITING]):
            return waiting[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no build was queued")


def test_a_bad_timeout_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    result = CliRunner().invoke(
        app, ["build", str(tmp_path), "-t", TARGET, "--timeout", "20x"],
        env={"SLIPWAY_URL": "http://127.0.0.1:9", "SLIPWAY_TOKEN": "x"})
    assert result.exit_code == 1, result.output
    assert "--timeout: '20x' is not a duration; write 90s, 20m or 1h30m" in result.output


def test_a_timeout_past_machine_max_time_is_refused_naming_both(
    tmp_path: Path, live: LiveApi
) -> None:
    code, output = _build(live, tmp_path, "-t", TARGET, "--timeout", "3h")
    assert code == 1, output
    assert "timeout: 3h is longer than this server lets a build run (MACHINE_MAX_TIME, " \
        "2h); ask for 2h or less" in output
    assert live.env is not None
    assert live.run(live.env.store.builds.list_in_phases(list(Phase))) == []


def test_a_build_stopped_at_its_timeout_exits_1_naming_it(tmp_path: Path, live: LiveApi) -> None:
    env = live.env
    assert env is not None and live.loop is not None

    async def stop_at_the_timeout() -> BuildRecord:
        """Play the manager's end of a build past its deadline, with the message the
        deadline's handler writes for the timeout the build was given."""
        build = await _waiting(env)
        limit = BuildLimit.from_option(build.options.get("timeout"))
        assert limit is not None
        error = timed_out_message(limit)
        async with env.store.db.write() as conn:
            await env.store.builds.update(conn, build.id, phase=Phase.INTERNAL_ERROR,
                                          error=error)
            await env.store.logs.append(build.id, [
                LogEntry(error, "error"), phase_entry(Phase.INTERNAL_ERROR)], conn)
        return build

    played = asyncio.run_coroutine_threadsafe(stop_at_the_timeout(), live.loop)
    code, output = _build(live, tmp_path, "-t", TARGET, "--timeout", "20m")
    build = played.result(30)
    assert build.options["timeout"] == {"seconds": 1200, "set_by": "submission"}
    assert code == 1, output
    assert (f"build {build.id} internalerror: the build ran past its timeout of 20m (set "
            "at submission); it was stopped") in output


def test_a_build_expired_in_the_queue_exits_1_with_the_reason(
    tmp_path: Path, live: LiveApi
) -> None:
    env = live.env
    assert env is not None and live.loop is not None

    async def expire() -> BuildRecord:
        build = await _waiting(env)
        assert await QueueExpiry(env.store).look(time.time() + 61) == 1
        return build

    played = asyncio.run_coroutine_threadsafe(expire(), live.loop)
    code, output = _build(live, tmp_path, "-t", "127.0.0.1:5000/slow/hello")
    build = played.result(30)
    assert code == 1, output
    assert (f"build {build.id} expired: the build waited 1m in the queue "
            "(QUEUE_TTL.NAMESPACES.slow) without starting; submit it again or raise "
            "QUEUE_TTL.NAMESPACES.slow") in output
