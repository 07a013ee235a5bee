"""A benchmark-only executor: it starts nothing, it only tells the benchmark driver.

Each `start_worker` call writes one JSON line (build id, job id, registration token, the
time of the call, the executor's NAME) to a UNIX socket the driver listens on; the
driver's protocol clients then register and run the build over real gRPC, like a worker
would.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from slipway.executors.base import Executor, WorkerSpec


class NullExecutor(Executor):
    def __init__(self, config: Any, manager_id: str, socket_path: str) -> None:
        super().__init__(config, manager_id)
        self.socket_path = socket_path
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._started = 0
        self._stopped = 0

    async def _connection(self) -> asyncio.StreamWriter:
        if self._writer is None:
            async with self._lock:
                if self._writer is None:
                    _, self._writer = await asyncio.open_unix_connection(self.socket_path)
        return self._writer

    async def start_worker(self, spec: WorkerSpec) -> str:
        called = time.time()
        writer = await self._connection()
        # "e": the executor's NAME, which tells the driver of several managers which one
        line = {"b": spec.build_id, "j": spec.job_id, "t": spec.registration_token,
                "at": called, "e": self.name}
        writer.write(json.dumps(line).encode() + b"\n")
        self._started += 1
        return f"null-{self._started}"

    async def stop_worker(self, worker_id: str) -> None:
        self._stopped += 1

    async def running_count(self) -> int:
        return self._started - self._stopped

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
