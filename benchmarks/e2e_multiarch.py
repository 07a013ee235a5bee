"""Multi-arch builds (docs/multi-arch.md), end to end: one two-platform build through
slipway (linux/amd64 and linux/arm64, arm64 under QEMU user emulation, one manifest list
pushed) against two single-platform `podman build --platform` + `podman push` by hand,
alternating, in the same run. Skipped, saying why, where arm64 cannot be emulated.

Alone: `python -m benchmarks.e2e_multiarch` runs only this part and writes its numbers
into the e2e section of benchmarks/results/latest.json."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Backend, rounded
from benchmarks.e2e import _podman, context_tar, podman_config, side_by_side, through_slipway
from benchmarks.harness import ServerProcess

BASE = "localhost/slipway-base:multiarch"
PLATFORMS = ["linux/amd64", "linux/arm64"]
DOCKERFILE = f"""\
FROM {BASE}
RUN seq 1 20000 > /numbers.txt && uname -m > /built-on
RUN sha256sum /numbers.txt > /numbers.sha256
"""


def ensure_multiarch_base() -> None:
    """Built as the tests build it (scripts/make-multiarch-base.sh: the list made again
    whenever an image it names changes)."""
    from support.images import ensure_multiarch_base_image

    ensure_multiarch_base_image()


def by_hand(registry: str, run: int) -> float:
    """Each platform built and pushed on its own, as one would without a manifest list."""
    tags = [f"{registry}/hand/multi{run}:{p.split('/')[1]}" for p in PLATFORMS]
    with tempfile.TemporaryDirectory(prefix="slipway-bench-hand-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        start = time.perf_counter()
        for platform, tag in zip(PLATFORMS, tags, strict=True):
            subprocess.run(
                [*_podman(), "build", "--platform", platform, "--isolation", "chroot",
                 "--layers=false", "--format", "docker", "-f", str(ctx / "Dockerfile"),
                 "-t", tag, str(ctx)],
                check=True, capture_output=True,
            )
            subprocess.run([*_podman(), "push", "--tls-verify=false", tag, f"docker://{tag}"],
                           check=True, capture_output=True)
        elapsed = time.perf_counter() - start
    subprocess.run([*_podman(), "rmi", *tags], capture_output=True)
    return elapsed


async def run(backend: Backend, workdir: Path, *, runs: int = 3,
              settle: bool = True) -> dict[str, Any]:
    from support.fileserver import serve_files
    from support.registry import run_registry

    from slipway.worker.emulation import missing_emulation

    if missing_emulation(PLATFORMS):
        return {"skipped": "no QEMU user emulation for linux/arm64 on this host "
                           "(install qemu-user-static)"}
    await asyncio.to_thread(ensure_multiarch_base)
    with run_registry() as registry, serve_files(
        {"/context.tar.gz": (context_tar(DOCKERFILE), "application/gzip")}
    ) as files:
        config = podman_config(workdir / "e2e-multiarch", backend, registry.host)
        server = ServerProcess(config, None, workdir / "e2e-multiarch.log")
        await server.start()
        options = {"platforms": PLATFORMS}
        url = f"{files}/context.tar.gz"
        try:
            hand, slipway = await side_by_side(
                runs, lambda i: by_hand(registry.host, i),
                lambda i: through_slipway(server, url, i, repository=f"bench/multi{i}",
                                          options=options),
                settle=settle)
        finally:
            await server.stop()
            from support.images import remove_multiarch_list

            remove_multiarch_list()  # the host's `podman images` fails while it exists
    hand_s, slipway_s = statistics.median(hand), statistics.median(slipway)
    return {
        "runs": runs,
        "platforms": PLATFORMS,
        "slipway_two_platforms_s": rounded(slipway_s, 2),
        "by_hand_two_single_builds_s": rounded(hand_s, 2),
        "slipway_runs_s": [rounded(x, 2) for x in slipway],
        "by_hand_runs_s": [rounded(x, 2) for x in hand],
        "ratio_vs_hand": rounded(slipway_s / hand_s, 2),
    }


async def _alone(runs: int) -> None:
    from benchmarks.common import open_backend

    backend = open_backend("sqlite_memory")
    with tempfile.TemporaryDirectory(prefix="slipway-bench-") as tmp:
        result = await run(backend, Path(tmp), runs=runs)
    print(json.dumps(result, indent=1))
    latest = ROOT / "benchmarks" / "results" / "latest.json"
    data = json.loads(latest.read_text())
    data.setdefault("e2e", {}).setdefault(backend.name, {})["multi_arch"] = result
    latest.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(_alone(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
