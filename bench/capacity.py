"""Pure parts of the pipeline bench: the pass/fail rule of a run, the capacity search, the CPU
description and the ingest counters. No Django, no processes (tests/ml/test_bench_pipeline.py)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The bound: a window's end -> its score reaching the listeners, 95th percentile.
SCORED_P95_BOUND_SECONDS = 1.0
DEFAULT_LADDER = (8, 16, 24, 32, 48, 64, 96)
# The bisection between the last count that held and the first that failed stops when they
# are this close: finer steps cost a run each and measure noise on a shared machine.
DEFAULT_RESOLUTION = 4
INGEST_COUNTERS = (
    "packets",
    "frames_decoded",
    "frames_not_decoded",
    "frames_converted",
    "windows",
    "windows_still",
    # Left undecoded because a reader fell behind its stream (cameras.ingest.decoding
    # .DecodeShedder): also counted in frames_not_decoded.
    "frames_shed",
    "windows_shed",
    # The shard's window writer (cameras.ingest.writer): rows written, and in how many
    # transactions.
    "windows_stored",
    "store_batches",
)


def default_grace_seconds(*, window: float, stage2_budget: float | None) -> float:
    """How long the windows closed inside the measured span get to be decided once the
    cameras stop: two windows, at least 5 s; with a pose worker (`stage2_budget` its
    INFERENCE_STAGE2_MAX_LAG_SECONDS), also that budget and a window more. A window on the
    pose queue may rightly wait that long before it is decided (with stage 2 or without), so
    ending sooner counted windows still inside their budget as lost; their late scores count
    in the latency figures instead."""
    grace = max(5.0, window * 2)
    if stage2_budget is not None:
        grace = max(grace, stage2_budget + window)
    return grace


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_failures(
    figures: Mapping[str, Any], *, p95_bound: float = SCORED_P95_BOUND_SECONDS
) -> list[str]:
    """Why a bench run did not sustain its cameras; empty when it did."""
    reasons = []
    lost = figures.get("windows_lost")
    if lost is None or lost > 0:
        reasons.append(f"{lost} windows lost")
    gaps = figures.get("gaps_in_timelines_windows")
    if gaps is None or gaps > 0:
        reasons.append(f"{gaps} windows of gaps in timelines")
    p95 = figures.get("scored_latency_p95_s")
    if p95 is None or (isinstance(p95, float) and math.isnan(p95)):
        # Nothing scored in the measured span: nothing to show it kept up.
        reasons.append("no window scored")
    elif p95 > p95_bound:
        reasons.append(f"window end -> scored p95 {p95:.2f} s > {p95_bound:g} s")
    return reasons


def repeated_failures(runs: Sequence[Sequence[str]], planned: int) -> list[str]:
    """One camera count's verdict over its runs (`run_failures` of each, in order): it holds
    only if every planned run held. The same command varies from run to run on a busy 2-core
    box (p95 0.7 to 1.9 s at 32 cameras in four runs), so a claim on one run says little.
    A run that failed ends the count's runs; fewer runs than planned without a failure mean the
    count was not measured as asked."""
    if planned < 1:
        raise ValueError("a camera count needs at least one run")
    for number, failures in enumerate(runs, start=1):
        if failures:
            return [f"run {number} of {planned}: {reason}" for reason in failures]
    if len(runs) < planned:
        return [f"only {len(runs)} of {planned} runs made"]
    return []


@dataclass
class CapacitySearch:
    """Rising camera counts until one fails, then bisection between the last that held and the
    first that failed, to `resolution` cameras. Counts are tried one at a time:
    `next_count()` names the next (None: done), `record()` gives its result."""

    ladder: Sequence[int] = DEFAULT_LADDER
    resolution: int = DEFAULT_RESOLUTION
    results: dict[int, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.ladder or any(n < 1 for n in self.ladder):
            raise ValueError("the ladder needs camera counts of 1 or more")
        if self.resolution < 1:
            raise ValueError("the resolution is at least one camera")
        self.ladder = sorted(set(self.ladder))

    @property
    def largest_sustained(self) -> int | None:
        held = [n for n, ok in self.results.items() if ok and n < self.smallest_failed_or_inf()]
        return max(held, default=None)

    def smallest_failed_or_inf(self) -> float:
        return min((n for n, ok in self.results.items() if not ok), default=math.inf)

    def next_count(self) -> int | None:
        failed = self.smallest_failed_or_inf()
        if failed == math.inf:
            untried = [n for n in self.ladder if n not in self.results]
            return untried[0] if untried else None
        held = self.largest_sustained or 0
        if failed - held <= self.resolution:
            return None
        middle = (held + int(failed)) // 2
        return middle if middle not in self.results else None

    def record(self, count: int, sustained: bool) -> None:
        self.results[count] = sustained


def cpu_description(cpuinfo: str, cores: int | None) -> dict[str, Any]:
    """Model and the vector extensions the model's kernels depend on, from /proc/cpuinfo."""
    model = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {
        "model": model or "unknown",
        "cores": cores,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "flags_known": bool(flags),
    }


def this_cpu() -> dict[str, Any]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    return cpu_description(text, os.cpu_count())


def ingest_totals(stats: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The shards' counters added up; a missing or non-numeric counter counts 0."""
    totals = dict.fromkeys(INGEST_COUNTERS, 0)
    for shard in stats:
        for name in INGEST_COUNTERS:
            value = shard.get(name, 0)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[name] += int(value)
    return totals


def ingest_span(start: Mapping[str, int], end: Mapping[str, int]) -> dict[str, Any]:
    """Counters over the measured span, and the share of frames the motion gate left undecoded.
    A shard restarted in the span starts again from 0: its delta would be negative, so the
    span is then reported as unknown rather than wrong."""
    delta = {name: end.get(name, 0) - start.get(name, 0) for name in INGEST_COUNTERS}
    if any(value < 0 for value in delta.values()):
        return {"counters": None, "decoding_saved_share": None, "note": "a shard restarted"}
    seen = delta["frames_decoded"] + delta["frames_not_decoded"]
    return {
        "counters": delta,
        "decoding_saved_share": round(delta["frames_not_decoded"] / seen, 4) if seen else None,
    }
