"""The machine's state while we measure: load, CPU frequency, other processes' CPU use.

pyperf's lesson: a figure taken while something else eats the CPU is not the same
figure. This module reads what Linux exposes without privileges (``/proc/loadavg``,
``/proc/stat``, ``/proc/self/stat``, ``cpufreq`` in sysfs or ``cpu MHz`` in
``/proc/cpuinfo``) at the start of a run, on a sampler thread during it, and at the
end. Where a file is missing (macOS, containers without ``/proc``) the figure is
``None``: unknown is never reported as idle.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from inspector.results.records import MachineSample, MachineState

#: Other processes using more than this share of all CPUs, on average, make a run "busy".
BUSY_OTHER_CPU = 0.10
#: A 1-minute load average above this share of the CPU count at the start makes a run "busy".
BUSY_LOAD_PER_CPU = 0.5


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def load_average() -> float | None:
    text = _read("/proc/loadavg")
    try:
        return float(text.split()[0]) if text else os.getloadavg()[0]
    except (ValueError, IndexError, OSError, AttributeError):
        return None


def cpu_mhz() -> float | None:
    """Mean current frequency over all CPUs, in MHz (sysfs cpufreq, else /proc/cpuinfo)."""
    values = []
    for path in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        try:
            values.append(int(path.read_text()) / 1000.0)
        except (OSError, ValueError):
            continue
    if not values:
        for line in (_read("/proc/cpuinfo") or "").splitlines():
            if line.lower().startswith("cpu mhz"):
                try:
                    values.append(float(line.split(":", 1)[1]))
                except (ValueError, IndexError):
                    continue
    return round(sum(values) / len(values), 1) if values else None


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs together since boot."""
    text = _read("/proc/stat")
    if not text or not text.startswith("cpu "):
        return None
    try:
        fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    except ValueError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return total - idle, total


def _own_ticks() -> int | None:
    text = _read("/proc/self/stat")
    if not text:
        return None
    try:
        fields = text.rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, all threads
    except (IndexError, ValueError):
        return None


class _CpuShare:
    """Share of all CPUs that *other* processes used between two readings."""

    def __init__(self) -> None:
        self.last = (_cpu_ticks(), _own_ticks())

    def read(self) -> float | None:
        now = (_cpu_ticks(), _own_ticks())
        (before, own_before), (after, own_after) = self.last, now
        self.last = now
        if before is None or after is None or own_before is None or own_after is None:
            return None
        total = after[1] - before[1]
        if total <= 0:
            return None
        other = (after[0] - before[0]) - (own_after - own_before)
        return round(min(1.0, max(0.0, other / total)), 3)


def sample(share: _CpuShare | None = None, started: float | None = None) -> MachineSample:
    now = time.monotonic()
    return MachineSample(seconds=round(now - started, 2) if started is not None else 0.0, load=load_average(),
                         cpu_mhz=cpu_mhz(), other_cpu=share.read() if share is not None else None)


class MachineMonitor:
    """``with MachineMonitor() as m:`` samples the machine every ``interval`` seconds;
    ``m.state`` is the summary afterwards (also readable while running)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: list[MachineSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._share = _CpuShare()
        self._start: MachineSample | None = None

    def __enter__(self) -> MachineMonitor:
        self._started = time.monotonic()
        self._share = _CpuShare()
        self._start = sample(None, self._started)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ldm-inspector-machine", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(sample(self._share, self._started))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.samples.append(sample(self._share, self._started))

    @property
    def state(self) -> MachineState:
        return summarize_machine(self._start or sample(), list(self.samples), os.cpu_count() or 1)


def summarize_machine(start: MachineSample, samples: list[MachineSample], cpus: int) -> MachineState:
    """The run's machine state and, when it was busy, why (each reason one short sentence)."""
    others = [s.other_cpu for s in samples if s.other_cpu is not None]
    loads = [s.load for s in samples if s.load is not None]
    mean_other = round(sum(others) / len(others), 3) if others else None
    reasons = []
    if start.load is not None and start.load > BUSY_LOAD_PER_CPU * cpus:
        reasons.append(f"load average {start.load:.2f} at start on {cpus} CPUs")
    if mean_other is not None and mean_other > BUSY_OTHER_CPU:
        reasons.append(f"other processes used {100 * mean_other:.0f}% of all CPUs during the run")
    return MachineState(cpus=cpus, start=start, end=samples[-1] if samples else None, samples=_thin(samples),
                        other_cpu_mean=mean_other, other_cpu_max=max(others) if others else None,
                        load_max=max(loads) if loads else None, busy=bool(reasons), reasons=reasons)


def _thin(samples: list[MachineSample], keep: int = 240) -> list[MachineSample]:
    """At most ``keep`` samples in the run file (a long run samples every half second)."""
    if len(samples) <= keep:
        return samples
    step = len(samples) / keep
    return [samples[int(i * step)] for i in range(keep - 1)] + [samples[-1]]
