"""One real manager process with its HTTP API, for the CLI's failover tests:

    python tests/cli/manager_with_api.py CONFIG.json

It runs SlipwayServer (API, gRPC, manager) on CONFIG.json, its workers the in-process
protocol clients of tests/support/manager_process.py (they dial the managers listed in
SLIPWAY_TEST_MANAGERS and stay SLIPWAY_TEST_BUILD_SECONDS in `building`). Prints
`ready` once serving; SIGTERM stops it, SIGKILL is what the tests mostly send."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: support.*

from support.manager_process import InProcessExecutor, Stubs

from slipway.config.loader import parse_config
from slipway.executors.base import Executor
from slipway.manager import scheduler
from slipway.server import SlipwayServer


async def main(config_path: Path) -> None:
    config = parse_config(json.loads(config_path.read_text())).config
    scheduler.BACKSTOP_SECONDS = 2.0
    stubs = Stubs([a for a in os.environ["SLIPWAY_TEST_MANAGERS"].split(",") if a])
    seconds = float(os.environ.get("SLIPWAY_TEST_BUILD_SECONDS", "3"))

    def executors(_app: Any, manager_config: Any, manager_id: str) -> list[Executor]:
        return [InProcessExecutor(entry, manager_id, stubs, config_path.parent, seconds)
                for entry in manager_config.EXECUTORS]

    server = SlipwayServer(config, executor_factory=executors)
    await server.start()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()
    await stubs.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
