"""The server under test, in its own process so its CPU and memory are measured alone.

python -m benchmarks.server_proc SPEC_JSON
  SPEC_JSON: {"config": {...config.yaml keys...}, "null_socket": PATH or null}
Prints one JSON line {"pid", "api_port", "grpc_port", "token"} when serving; stops when
its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any


async def _main(spec: dict[str, Any]) -> None:
    from slipway.config.loader import parse_config
    from slipway.server import SlipwayServer

    config = parse_config(spec["config"]).config
    socket_path = spec.get("null_socket")
    factory = None
    if socket_path:
        from benchmarks.null_executor import NullExecutor

        def factory(app_config: Any, manager_config: Any, manager_id: str) -> list[Any]:
            return [NullExecutor(e, manager_id, socket_path) for e in manager_config.EXECUTORS]

    server = SlipwayServer(config, executor_factory=factory)
    await server.start()
    token = server.admin_token
    if token is None:
        from slipway.api.auth import create_token

        token = await create_token(server.store, "bench", {"*": "admin"})
    import os

    ready = {"pid": os.getpid(), "api_port": server.api_port, "grpc_port": server.grpc_port,
             "token": token}
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the driver closes stdin
    await server.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = json.loads(sys.argv[1])
    asyncio.run(_main(spec))


if __name__ == "__main__":
    main()
