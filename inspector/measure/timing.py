"""The measurement core every plugin uses: timing, memory, achieved FLOP/s.

Timing
    A cold call (the first for this shape: on CUDA it pays for autotuning and
    allocator growth) is timed on its own; then ``warmup`` calls are run and
    discarded; then ``repeats`` calls are timed. Reported: median, IQR, min,
    max, count, and cold, in milliseconds, with the spread that says how far to trust
    them: relative spread (IQR / median) and p50/p90/p99 where there are enough samples.
    A measurement repeats until its relative spread is under a threshold or its time
    budget is spent; a figure still above the threshold is flagged ``unstable``. On CUDA every measured region is
    bracketed by CUDA events and synchronized (host timing alone measures kernel
    launches, not work); on CPU, ``time.perf_counter`` with the thread count recorded.

Memory
    CUDA: ``reset_peak_memory_stats`` before a component, then peak allocated
    and reserved, minus what was allocated before. CPU: peak RSS growth, read
    from ``/proc/self/status`` (``VmHWM``) after resetting the high-water mark
    through ``/proc/self/clear_refs``; where that is not possible, a sampler
    thread polls RSS every millisecond.
"""
from __future__ import annotations

import gc
import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from inspector.results.records import MemoryStats, TimingStats

#: Dense peak TFLOP/s by device-name fragment and dtype (vendor datasheets, no sparsity).
#: float32 is the non-tensor-core figure; matmuls may run faster through TF32.
DEVICE_PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"float16": 989.4, "bfloat16": 989.4, "float32": 66.9},
    "H100 PCIe": {"float16": 756.5, "bfloat16": 756.5, "float32": 51.2},
    "H100": {"float16": 989.4, "bfloat16": 989.4, "float32": 66.9},
    "A100": {"float16": 312.0, "bfloat16": 312.0, "float32": 19.5},
    "L40S": {"float16": 362.1, "bfloat16": 362.1, "float32": 91.6},
    "L40": {"float16": 181.0, "bfloat16": 181.0, "float32": 90.5},
    "L4": {"float16": 121.0, "bfloat16": 121.0, "float32": 30.3},
    "A10G": {"float16": 70.0, "bfloat16": 70.0, "float32": 31.2},
    "RTX 4090": {"float16": 165.2, "bfloat16": 165.2, "float32": 82.6},
    "V100": {"float16": 125.0, "float32": 15.7},
    "T4": {"float16": 65.0, "float32": 8.1},
}


def device_peak_flops(device_name: str, dtype: str, override_tflops: float | None = None) -> float | None:
    """The device's peak FLOP/s for ``dtype``, or ``None`` when unknown (CPUs included)."""
    if override_tflops:
        return override_tflops * 1e12
    for fragment in sorted(DEVICE_PEAK_TFLOPS, key=len, reverse=True):  # "H100 PCIe" before "H100"
        if fragment.lower() in device_name.lower():
            value = DEVICE_PEAK_TFLOPS[fragment].get(dtype)
            return value * 1e12 if value else None
    return None


#: Default threshold on IQR / median. pyperf warns above a 10% standard deviation; an IQR
#: of 10% of the median is a little stricter (IQR is about 1.35 standard deviations).
DEFAULT_MAX_SPREAD = 0.10
#: Fewest samples for each percentile; below that it is not reported (it would be the max).
PERCENTILE_MIN_SAMPLES = {"p50": 1, "p90": 10, "p99": 100}
#: Fewest samples for a spread to mean anything.
MIN_SAMPLES_FOR_SPREAD = 3
#: A measurement never repeats more than this, whatever the time budget.
MAX_SAMPLES = 1000


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (``q`` in 0..100), as numpy's default."""
    if not ordered:
        raise ValueError("no samples")
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def relative_spread(samples: list[float]) -> float | None:
    """IQR / median, or ``None`` with fewer than 2 samples or a median of 0."""
    if len(samples) < 2:
        return None
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=4, method="inclusive")
    median = statistics.median(ordered)
    return (q[2] - q[0]) / median if median > 0 else None


def is_unstable(samples: list[float], max_spread: float | None) -> bool:
    """Too few samples to know, or a relative spread above ``max_spread``."""
    if max_spread is None:
        return False
    spread = relative_spread(samples)
    return len(samples) < MIN_SAMPLES_FOR_SPREAD or spread is None or spread > max_spread


def summarize(samples_ms: list[float], cold_ms: float | None, max_spread: float | None = None) -> TimingStats:
    ordered = sorted(samples_ms)
    if len(ordered) >= 2:
        q = statistics.quantiles(ordered, n=4, method="inclusive")
        iqr = q[2] - q[0]
    else:
        iqr = 0.0
    pcts: dict[str, Any] = {name: percentile(ordered, float(name[1:])) if len(ordered) >= need else None
                            for name, need in PERCENTILE_MIN_SAMPLES.items()}
    return TimingStats(
        median=statistics.median(ordered) if ordered else (cold_ms or 0.0), iqr=iqr,
        min=ordered[0] if ordered else (cold_ms or 0.0), max=ordered[-1] if ordered else (cold_ms or 0.0),
        count=len(ordered), cold=cold_ms, samples=list(samples_ms), **pcts,
        rel_spread=relative_spread(ordered), unstable=is_unstable(ordered, max_spread),
    )


class Clock:
    """Times one region on a device, honestly: CUDA work is waited for."""

    def __init__(self, device: Any) -> None:
        self.cuda = str(device).startswith("cuda")

    def time_ms(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            value = fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end), value
        begin = time.perf_counter()
        value = fn()
        return (time.perf_counter() - begin) * 1000.0, value


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import psutil

        return psutil.Process().memory_info().rss


def _hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def release_free_heap() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``), so that RSS growth
    during a measured call is visible instead of being served from already-resident arenas."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class MemoryMeter:
    """Peak memory of what runs inside ``with meter:``, relative to what was held before."""

    def __init__(self, device: Any) -> None:
        self.cuda = str(device).startswith("cuda")
        self.stats: MemoryStats | None = None
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._peak = 0

    def __enter__(self) -> MemoryMeter:
        gc.collect()
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._before = torch.cuda.memory_allocated()
            self._before_reserved = torch.cuda.memory_reserved()
            return self
        release_free_heap()
        self._before = rss_bytes()
        self._use_hwm = _reset_hwm() and _hwm_bytes() is not None
        if not self._use_hwm:
            self._peak = self._before
            self._stop.clear()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self._peak = max(self._peak, rss_bytes())

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
            self.stats = MemoryStats(kind="cuda_allocated", peak=max(0, peak - self._before), before=self._before,
                                     reserved=torch.cuda.max_memory_reserved(), absolute_peak=peak)
            return
        if self._use_hwm:
            peak = _hwm_bytes() or self._before
        else:
            self._stop.set()
            if self._sampler is not None:
                self._sampler.join()
            peak = max(self._peak, rss_bytes())
        self.stats = MemoryStats(kind="cpu_rss", peak=max(0, peak - self._before), before=self._before,
                                 reserved=None, absolute_peak=peak)


@dataclass
class Measured:
    timing: TimingStats
    memory: MemoryStats | None
    value: Any = None


def measure(fn: Callable[[], Any], device: Any, *, warmup: int = 1, repeats: int = 5,
            on_call: Callable[[int, int], None] | None = None, max_time: float = 0.0,
            max_spread: float | None = DEFAULT_MAX_SPREAD) -> Measured:
    """Time ``fn``: one cold call, ``warmup`` discarded calls, at least ``repeats`` timed calls.

    Past ``repeats``, timed calls go on while the relative spread (IQR / median) is above
    ``max_spread`` and the timed calls have taken less than ``max_time`` seconds (at most
    :data:`MAX_SAMPLES`); a figure still above the threshold is marked ``unstable``.
    ``max_time=0`` gives exactly ``repeats`` calls.

    Memory is measured on calls that are not in the timing: the cold call
    (``memory.cold_peak``; on CUDA it can be several times the warm peak) and one
    extra warm call after the repeats (``memory.peak``). Measuring memory resets
    the CPU's high-water mark and trims the heap, which would make the next call
    pay page faults, so no timed call follows it directly.
    ``on_call(i, total)`` reports progress (``total`` grows when calls are added).
    """
    clock = Clock(device)
    total = 2 + warmup + repeats
    with MemoryMeter(device) as cold_meter:
        cold_ms, value = clock.time_ms(fn)
    if on_call:
        on_call(1, total)
    for i in range(warmup):
        clock.time_ms(fn)
        if on_call:
            on_call(2 + i, total)
    samples: list[float] = []
    spent_ms = 0.0
    while True:
        ms, value = clock.time_ms(fn)
        samples.append(ms)
        spent_ms += ms
        if len(samples) > repeats:
            total += 1
        if on_call:
            on_call(1 + warmup + len(samples), total)
        if len(samples) >= repeats and (spent_ms >= max_time * 1000.0 or len(samples) >= MAX_SAMPLES
                                        or not is_unstable(samples, max_spread)):
            break
    with MemoryMeter(device) as warm_meter:
        fn()
    if on_call:
        on_call(total, total)
    memory = warm_meter.stats
    if memory is not None and cold_meter.stats is not None:
        memory.cold_peak = cold_meter.stats.peak
    return Measured(timing=summarize(samples, cold_ms, max_spread), memory=memory, value=value)
