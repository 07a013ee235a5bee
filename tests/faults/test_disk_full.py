"""DATA_DIR full (issue 25): the embedded default (SQLite and uploaded contexts in
DATA_DIR) on a small tmpfs, filled up while builds run. Writes are answered 507 with the
API's JSON error naming DATA_DIR and "disk full", an upload that did not fit leaves
nothing behind, reads go on, /readyz says so; once space is freed everything works again
without a restart, the database is intact and every accepted build completes once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.fault_figures import FaultFigures
from support.outage import ScriptedBuilds, api_client, running_servers, server_config, wait_until

TMPFS_SIZE = "8m"
ARCHIVE = {"archive_url": "https://example.com/context.tar.gz"}
UPLOAD_BYTES = 2 * 1024 * 1024


@pytest.fixture
def small_data_dir(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for DATA_DIR."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for DATA_DIR needs root")
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                              str(data)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], capture_output=True)


def fill(path: Path) -> None:
    """Write `path` until the file system has no block left."""
    with open(path, "wb", buffering=0) as f:
        for size in (1024 * 1024, 64 * 1024, 4096, 512, 1):
            block = b"\0" * size
            while True:
                try:
                    f.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break


def checkpoint(db: Path) -> None:
    """Move the WAL into the database and empty it: from here on, each write needs new
    blocks (a WAL keeps its size, and room in it, otherwise)."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def test_a_full_data_dir_answers_507_keeps_the_database_and_recovers(
    tmp_path: Path, small_data_dir: Path, fault_figures: FaultFigures,
) -> None:
    builds = ScriptedBuilds()
    config = server_config(tmp_path, "unused", manager={"ALLOWED_WORKER_COUNT": 60})
    config["DATA_DIR"] = str(small_data_dir)
    db = small_data_dir / "slipway.db"
    filler = small_data_dir / "filler"
    async with running_servers([config], builds) as (server,):
        assert server.admin_token is not None
        async with api_client(server, server.admin_token) as api:
            accepted: list[tuple[str, str]] = []
            for i in range(3):
                response = await api.post(f"/api/v1/repository/ns/repo{i}/build/",
                                          json=ARCHIVE)
                assert response.status_code == 201, response.text
                accepted.append((f"repo{i}", response.json()["id"]))
            drop = await api.post("/api/v1/filedrop/", json={"mimeType": "application/gzip"})
            assert drop.status_code == 200, drop.text
            upload_url, file_id = drop.json()["url"], drop.json()["file_id"]

            async def all_building() -> bool:
                for repo, build_id in accepted:
                    status = await api.get(
                        f"/api/v1/repository/ns/{repo}/build/{build_id}/status")
                    if status.json()["phase"] != "building":
                        return False
                return True

            await wait_until(all_building, "the builds to be building", within=60)

            # the disk fills up while the builds log
            await asyncio.to_thread(checkpoint, db)
            await asyncio.to_thread(fill, filler)
            answers: Counter[int] = Counter()
            full_answer = None
            for i in range(100):  # the first writes may still fit in the WAL's blocks
                response = await api.post(f"/api/v1/repository/ns/full{i}/build/",
                                          json=ARCHIVE)
                answers[response.status_code] += 1
                if response.status_code == 201:
                    accepted.append((f"full{i}", response.json()["id"]))
                    continue
                full_answer = response
                break
            assert full_answer is not None and full_answer.status_code == 507, answers
            body = full_answer.json()
            assert body["error_type"] == "insufficient_storage"
            assert "disk full" in body["error_message"]
            assert str(small_data_dir) in body["error_message"]
            assert full_answer.headers.get("retry-after")

            upload = await api.put(upload_url, content=os.urandom(UPLOAD_BYTES))
            answers[upload.status_code] += 1
            assert upload.status_code == 507, upload.text
            assert "disk full" in upload.json()["error_message"]
            assert f"DATA_DIR {small_data_dir}" in upload.json()["error_message"]
            uploads = small_data_dir / "uploads"
            assert not (uploads.exists() and any(uploads.iterdir()))  # nothing half-written

            status = await api.get(
                f"/api/v1/repository/ns/{accepted[0][0]}/build/{accepted[0][1]}/status")
            assert status.status_code == 200  # reads go on
            ready = await api.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["data_dir"] is False

            # space comes back: no restart
            await asyncio.to_thread(filler.unlink)
            builds.release.set()
            await wait_until(lambda: ready_now(api), "/readyz to be ready", within=30)
            upload = await api.put(upload_url, content=os.urandom(UPLOAD_BYTES))
            assert upload.status_code == 200, upload.text
            response = await api.post("/api/v1/repository/ns/after/build/",
                                      json={"file_id": file_id})
            assert response.status_code == 201, response.text
            accepted.append(("after", response.json()["id"]))

            async def all_final() -> bool:
                for repo, build_id in accepted:
                    status = await api.get(
                        f"/api/v1/repository/ns/{repo}/build/{build_id}/status")
                    if status.json()["phase"] not in ("complete", "error",
                                                      "internalerror", "cancelled"):
                        return False
                return True

            await wait_until(all_final, "every accepted build to end", within=60)
            phases: Counter[str] = Counter()
            lost = 0
            for repo, build_id in accepted:
                build = (await api.get(f"/api/v1/repository/ns/{repo}/build/{build_id}")
                         ).json()
                phases[build["phase"]] += 1
                lost += sum(1 for a in build["attempts"] if a["outcome"] != "completed")
            fault_figures({
                "accepted": len(accepted), "complete": phases["complete"],
                "attempts_lost": lost, "status_507": answers[507],
                "status_500": answers[500],
                "workers_gave_up": sum(1 for _, code in builds.exits if code)})
            assert phases == {"complete": len(accepted)}
            assert lost == 0
            assert answers[500] == 0
    assert integrity(db) == "ok"


async def ready_now(api: httpx.AsyncClient) -> bool:
    response = await api.get("/readyz")
    return bool(response.status_code == 200)
