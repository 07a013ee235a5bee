"""Per-span figures from build traces (docs/traces.md): where the time of a build goes,
so that the overhead left is named (`span_medians_ms`)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import httpx

from benchmarks.common import percentile, rounded


async def fetch_trace(client: httpx.AsyncClient, build_path: str) -> dict[str, Any]:
    """The trace of the build at `build_path` (`/api/v1/repository/NS/REPO/build/ID`)."""
    response = await client.get(f"{build_path}/trace")
    response.raise_for_status()
    return dict(response.json())


def span_seconds(trace: dict[str, Any]) -> dict[str, float]:
    """Each span name's time in one build, in seconds: spans of one name (a push per
    tag, a cache lookup per step) added up."""
    totals: dict[str, float] = defaultdict(float)
    for span in trace.get("spans", ()):
        totals[span["name"]] += max(0.0, span["end"] - span["start"])
    return dict(totals)


def span_medians_ms(traces: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median over builds of each span name's time, in ms, longest first; a name
    missing from a build counts 0 there (a cached build pushes no cache)."""
    per_build = [span_seconds(t) for t in traces if t.get("spans")]
    names = {name for build in per_build for name in build}
    medians = {name: statistics.median([b.get(name, 0.0) for b in per_build]) * 1000
               for name in names}
    return {name: rounded(value, 1)
            for name, value in sorted(medians.items(), key=lambda kv: -kv[1])}


def end_seen_after_ms(traces: list[dict[str, Any]]) -> float | None:
    """The median, over builds, of the time from the `build` span's end (the end recorded)
    to `end_seen_at`, when the client saw the end (epoch seconds, this machine's clock)."""
    gaps = [t["end_seen_at"] - span["end"] for t in traces if "end_seen_at" in t
            for span in t.get("spans", ()) if span["name"] == "build"]
    return rounded(statistics.median(gaps) * 1000, 1) if gaps else None


def span_p99_ms(traces: list[dict[str, Any]], name: str) -> float | None:
    values = [span_seconds(t).get(name) for t in traces]
    value = percentile([v for v in values if v is not None], 99)
    return rounded(None if value is None else value * 1000, 1)


__all__ = ["end_seen_after_ms", "fetch_trace", "span_medians_ms", "span_p99_ms", "span_seconds"]
