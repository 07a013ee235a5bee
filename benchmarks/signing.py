"""Signed, attested builds (docs/signing.md): what signing, the provenance and the SBOM add
to a build. The same build through two servers, one without SIGNING and one with it (SBOM
on), alternating, for a small build FROM the busybox base and one FROM the Debian minbase
(mmdebstrap, scripts/make-images.sh --base-only). Target: under 10% of the build.

Not in the default run (`--only signing`); alone: `python -m benchmarks.signing [RUNS]`."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Backend, rounded
from benchmarks.e2e import context_tar, ensure_base_image, podman_config, through_slipway
from benchmarks.harness import ServerProcess

SMALL = """\
FROM localhost/slipway-base:latest
RUN seq 1 20000 > /numbers.txt
RUN sha256sum /numbers.txt > /numbers.sha256
"""
DEBIAN = """\
FROM localhost/slipway-debian:bookworm
RUN seq 1 20000 > /numbers.txt && dpkg-query -W > /packages.txt
"""
PASSPHRASE = "benchmark passphrase"


def _key(directory: Path) -> dict[str, str]:
    from slipway.signing.keys import generate

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cosign.key").write_text(generate(PASSPHRASE).encrypted_pem)
    (directory / "passphrase").write_text(PASSPHRASE)
    return {"KEY_FILE": str(directory / "cosign.key"),
            "PASSPHRASE_FILE": str(directory / "passphrase")}


async def _pair(backend: Backend, workdir: Path, registry: str, name: str, url: str,
                runs: int) -> dict[str, Any]:
    plain_config = podman_config(workdir / f"{name}-plain", backend, registry)
    signed_config = podman_config(workdir / f"{name}-signed", backend, registry)
    signed_config["SIGNING"] = _key(workdir / f"{name}-key")
    plain = ServerProcess(plain_config, None, workdir / f"{name}-plain.log")
    signed = ServerProcess(signed_config, None, workdir / f"{name}-signed.log")
    await plain.start()
    await signed.start()
    plain_s: list[float] = []
    signed_s: list[float] = []
    try:
        # run 0 of each unmeasured (imports, page cache), then alternating
        for i in range(runs + 1):
            p = await through_slipway(plain, url, i, repository=f"bench/{name}-plain{i}")
            s = await through_slipway(signed, url, i, repository=f"bench/{name}-signed{i}")
            if i:
                plain_s.append(p)
                signed_s.append(s)
    finally:
        await plain.stop()
        await signed.stop()
    p_med, s_med = statistics.median(plain_s), statistics.median(signed_s)
    return {
        "plain_s": rounded(p_med, 2),
        "signed_s": rounded(s_med, 2),
        "plain_runs_s": [rounded(x, 2) for x in plain_s],
        "signed_runs_s": [rounded(x, 2) for x in signed_s],
        "overhead_pct": rounded(100 * (s_med - p_med) / p_med, 1),
    }


async def run(backend: Backend, workdir: Path, *, runs: int = 3) -> dict[str, Any]:
    from support.fileserver import serve_files
    from support.images import ensure_debian_image
    from support.registry import run_registry

    await asyncio.to_thread(ensure_base_image)
    await asyncio.to_thread(ensure_debian_image)
    result: dict[str, Any] = {"runs": runs}
    with run_registry() as registry, serve_files({
        "/small.tar.gz": (context_tar(SMALL), "application/gzip"),
        "/debian.tar.gz": (context_tar(DEBIAN), "application/gzip"),
    }) as files:
        for name in ("small", "debian"):
            result[name] = await _pair(backend, workdir, registry.host, name,
                                       f"{files}/{name}.tar.gz", runs)
    result["small_overhead_pct"] = result["small"]["overhead_pct"]
    result["debian_overhead_pct"] = result["debian"]["overhead_pct"]
    return result


async def _alone(runs: int) -> None:
    from benchmarks.common import open_backend

    backend = open_backend("sqlite_memory")
    with tempfile.TemporaryDirectory(prefix="slipway-bench-") as tmp:
        result = await run(backend, Path(tmp), runs=runs)
    print(json.dumps(result, indent=1))
    latest = ROOT / "benchmarks" / "results" / "latest.json"
    data = json.loads(latest.read_text()) if latest.exists() else {}
    data.setdefault("signing", {})[backend.name] = result
    latest.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(_alone(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
