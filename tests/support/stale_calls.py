"""Counting the worker calls a manager in this process refused because their attempt had
ended (metrics.STALE_CALLS_REFUSED, summed over the calls)."""

from __future__ import annotations

from slipway import metrics


def stale_calls_refused() -> int:
    return int(sum(sample.value
                   for family in metrics.STALE_CALLS_REFUSED.collect()
                   for sample in family.samples if sample.name.endswith("_total")))
