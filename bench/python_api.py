"""``inspector.inspect(pipe)`` on a pipeline already loaded, and the notebook view's payload.

Prints the time of ``inspector.inspect(pipe)`` and ``inspector.inspect(pipe.unet)`` on a loaded
tiny-sd pipeline (three calls each after a warm-up; the machine's load before and after), and the
bytes of the HTML a notebook cell shows for a tiny-sd inspection and profile and an sd21 inspection
(on ``meta``), beside the full HTML report of the same sd21 run.
Usage: ``python bench/python_api.py``.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time


def timed(call, runs: int = 3) -> list[float]:
    found = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        found.append(time.perf_counter() - started)
    return found


def main() -> None:
    import inspector
    from inspector.plugin.host import Host
    from inspector.python_api import notebook_html
    from inspector.sources.loading import SourceSpec, load

    print(f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    pipe = load(SourceSpec(model="tiny-sd", weights="random"), Host.default().presets()).pipe
    run = inspector.inspect(pipe, progress=False)  # warm-up
    for label, call in (("inspect(pipe), steps=50", lambda: inspector.inspect(pipe, progress=False)),
                        ("inspect(pipe.unet)", lambda: inspector.inspect(pipe.unet, progress=False))):
        times = timed(call)
        print(f"{label:28} {', '.join(f'{t:.2f}' for t in times)} s (median {statistics.median(times):.2f} s)")
    profiled = inspector.profile(pipe, steps=2, height=64, width=64, progress=False)
    sd21 = inspector.inspect("sd21", weights="meta", progress=False)
    with tempfile.TemporaryDirectory() as folder:
        full = os.path.join(folder, "sd21.html")
        inspector.save_run(sd21, full)
        full_bytes = os.path.getsize(full)
    for label, r in (("tiny-sd inspection", run), ("tiny-sd profile", profiled), ("sd21 inspection", sd21)):
        print(f"notebook view, {label:20} {len(notebook_html(r).encode()):>9,} bytes")
    print(f"full HTML report, sd21 inspection  {full_bytes:>9,} bytes")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
