"""Signed, attested builds (docs/signing.md): what signing, the provenance and the SBOM add
to a build. The same build through two servers, one without SIGNING and one with it (SBOM
on), alternating, for a small build FROM the busybox base and one FROM the Debian minbase
(mmdebstrap, scripts/make-images.sh --base-only). Target: under 10% of the build.

Not in the default run (`--only signing`); alone: `python -m benchmarks.signing [RUNS]`."""

from __future__ import annotations

import asyncio
import datetime
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Backend, git_revision, rounded
from benchmarks.e2e import context_tar, ensure_base_image, podman_config, through_slipway
from benchmarks.harness import ServerProcess, machine_quiet
from benchmarks.trace_spans import span_medians_ms, span_seconds

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


def contexts(name: str, dockerfile: str, runs: int) -> dict[str, tuple[bytes, str]]:
    """One context per build, each Dockerfile its own (a LABEL after FROM): builds of
    the same Dockerfile would reuse each other's step images (the registry cache keeps
    them as the layer cache), so a build's time would depend on which ran before, and
    race with that build's clean-up removing them ("image not known")."""
    first, _, rest = dockerfile.partition("\n")
    return {f"/{name}-{flavor}{i}.tar.gz": (
                context_tar(f"{first}\nLABEL slipway.bench={name}-{flavor}{i}\n{rest}"),
                "application/gzip")
            for flavor in ("plain", "signed") for i in range(runs + 1)}


def _after_push(trace: dict[str, Any]) -> float | None:
    spans = trace.get("spans", ())
    pushed = [s["end"] for s in spans if s["name"] == "push"]
    done = [s["start"] for s in spans if s["name"] == "completion"]
    return max(0.0, done[-1] - max(pushed)) if pushed and done else None


def _push(trace: dict[str, Any]) -> float | None:
    return span_seconds(trace).get("push")


def _median_ms(traces: list[dict[str, Any]], measure: Callable[[dict[str, Any]],
               float | None]) -> float | None:
    values = [v for v in map(measure, traces) if v is not None]
    return rounded(statistics.median(values) * 1000, 1) if values else None


async def _pair(backend: Backend, workdir: Path, registry: str, name: str, files: str,
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
    traces: dict[str, list[dict[str, Any]]] = {"plain": [], "signed": []}
    cpu: dict[str, list[float]] = {"plain": [], "signed": []}
    try:
        # run 0 of each unmeasured (imports, page cache), then alternating; each build
        # starts on a quiet machine, not beside the last one's clean-up and the start of
        # its server's next standby worker (heavier for the signing one: its libraries)
        for i in range(runs + 1):
            kept: dict[str, list[dict[str, Any]]] = {"plain": [], "signed": []}
            spent: dict[str, list[float]] = {"plain": [], "signed": []}
            await machine_quiet()
            p = await through_slipway(plain, f"{files}/{name}-plain{i}.tar.gz", i,
                                      repository=f"bench/{name}-plain{i}",
                                      traces=kept["plain"], cpu=spent["plain"],
                                      image=f"{registry}/bench/{name}-plain{i}:latest")
            await machine_quiet()
            s = await through_slipway(signed, f"{files}/{name}-signed{i}.tar.gz", i,
                                      repository=f"bench/{name}-signed{i}",
                                      traces=kept["signed"], cpu=spent["signed"],
                                      image=f"{registry}/bench/{name}-signed{i}:latest")
            if i:
                plain_s.append(p)
                signed_s.append(s)
                for flavor in traces:
                    traces[flavor] += kept[flavor]
                    cpu[flavor] += spent[flavor]
    finally:
        await plain.stop()
        await signed.stop()
    p_med, s_med = statistics.median(plain_s), statistics.median(signed_s)
    cpu_med = {f: statistics.median(values) for f, values in cpu.items()}
    return {
        "plain_s": rounded(p_med, 2),
        "signed_s": rounded(s_med, 2),
        # where the difference is: from the last push's end to the end the manager
        # recorded (the signing after the push), the push itself, and every span
        "after_push_ms": {f: _median_ms(traces[f], _after_push) for f in traces},
        "push_ms": {f: _median_ms(traces[f], _push) for f in traces},
        "span_medians_ms": {f: span_medians_ms(traces[f]) for f in traces},
        # the machine's CPU time over each build (every process, the background too): a
        # cost the wall-clock times above, on a shared 2-core machine, show only in part
        "cpu_s": {f: rounded(value, 3) for f, value in cpu_med.items()},
        "cpu_overhead_pct": rounded(
            100 * (cpu_med["signed"] - cpu_med["plain"]) / cpu_med["plain"], 1),
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
        **contexts("small", SMALL, runs), **contexts("debian", DEBIAN, runs),
    }) as files:
        for name in ("small", "debian"):
            result[name] = await _pair(backend, workdir, registry.host, name, files, runs)
    result["small_overhead_pct"] = result["small"]["overhead_pct"]
    result["debian_overhead_pct"] = result["debian"]["overhead_pct"]
    return result


async def _alone(runs: int) -> None:
    from benchmarks.common import machine, open_backend
    from benchmarks.run import RESULTS, write_results

    backend = open_backend("sqlite_memory")
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="slipway-bench-") as tmp:
        result = await run(backend, Path(tmp), runs=runs)
    print(json.dumps(result, indent=1))
    meta = {"started": started, "backends": [backend.name], "git": git_revision(),
            "machine": machine(),
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    write_results(RESULTS, {"meta": meta, "signing": {backend.name: result}}, ["signing"])


if __name__ == "__main__":
    asyncio.run(_alone(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
