"""`slipway serve` as a real process: it serves, and on SIGTERM it stops its workers and
gives running builds back to the queue."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from support.processes import process_alive
from support.registry import free_port

from slipway.domain.phases import Phase
from slipway.store.facade import SqlStore


async def test_serve_then_sigterm_releases_builds(tmp_path: Path) -> None:
    never = tmp_path / "slow-worker.py"
    pid_file = tmp_path / "worker.pid"
    never.write_text(
        "import os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "while True:\n    time.sleep(1)\n"
    )
    api_port = free_port()
    config = {
        "DATA_DIR": str(tmp_path / "data"),
        "API_LISTEN_ADDRESS": f"127.0.0.1:{api_port}",
        "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
        "SERVER_HOSTNAME": "registry.invalid:5000",
        "BUILD_MANAGER": ["ephemeral", {"EXECUTORS": [{
            "EXECUTOR": "local", "BUILDER_BINARY_LOCATION": f"{sys.executable} {never}"}]}],
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "slipway.cli.main", "serve", "--config", str(config_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        base = f"http://127.0.0.1:{api_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "slipway serve never became ready"
                await asyncio.sleep(0.2)
            token = (tmp_path / "data" / "admin-token").read_text().strip()
            response = await client.post(
                "/api/v1/repository/team/app/build/",
                headers={"Authorization": f"Bearer {token}"},
                json={"archive_url": "https://example.invalid/context.tar.gz"},
            )
            assert response.status_code == 201, response.text
            build_id = response.json()["id"]
        deadline = time.monotonic() + 60
        while not pid_file.exists():
            assert time.monotonic() < deadline, "the worker was never started"
            await asyncio.sleep(0.1)
        worker_pid = int(pid_file.read_text())
        assert process_alive(worker_pid)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, output
        assert "stopping" in output
        assert not process_alive(worker_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = await SqlStore(f"sqlite:///{tmp_path}/data/slipway.db").open()
    try:
        record = await store.builds.get(build_id)
        item = await store.queue.get_for_build(build_id)
        assert record is not None and record.phase is Phase.WAITING
        assert item is not None and item.retries_remaining == 3 and item.processing_expires is None
    finally:
        await store.close()
