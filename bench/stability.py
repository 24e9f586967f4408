"""Do flagged figures mean what they say? The default tiny-sd profile on the machine as it is,
then with busy-loop processes this script starts, side by side.

For each condition it runs ``ldm-inspector profile --json`` (the defaults a user gets: 50
steps, 5 repeats, --max-time 1, --max-spread 0.10) in a fresh process and prints:

* the machine as the profiler recorded it (load at start, other processes' share of the CPUs);
* the instrumentation overhead with its interval, and whether the interval contains 1.0;
* the isolated components' sum as a fraction of the end-to-end total, with its interval, and
  whether it is within 10% of 1.0;
* how many component timings and which end-to-end figures were flagged unstable.

Expected: on an idle machine, overhead interval around 1.0, sum within 10%, nothing or little
flagged; under load, the machine is reported busy and the ratios are flagged. The machine is
not idled by this script: the "as is" row says how quiet it really was, so read it first.

    python bench/stability.py                  # as is, then one busy loop per CPU
    python bench/stability.py --rounds 2 --burners 4
    python bench/stability.py --steps 4 --repeats 3   # other arguments go to `profile`
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BURN = "while True: pass"


def profile(out: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "inspector", "profile", "--json", str(out), "--format", "plain", *extra]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"profile failed:\n{proc.stderr}")
    return json.loads(out.read_text())


def row(label: str, data: dict, wall: float) -> str:
    p, m = data["pipeline"], data.get("machine") or {}
    low, high = p.get("overhead_interval") or [float("nan")] * 2
    slow, shigh = p.get("component_sum_ratio_interval") or [float("nan")] * 2
    flagged = sum(1 for c in data["components"] if (c.get("timing") or {}).get("unstable"))
    timed = sum(1 for c in data["components"] if c.get("timing"))
    other = m.get("other_cpu_mean")
    load = (m.get("start") or {}).get("load")
    return (f"{label:<16}{load if load is not None else float('nan'):>6.2f}"
            f"{100 * other if other is not None else float('nan'):>7.0f}%{'yes' if m.get('busy') else 'no':>6}"
            f"{p['overhead_ratio']:>8.3f} {low:>5.3f}-{high:<6.3f}{'yes' if low <= 1.0 <= high else 'no':>5}"
            f"{p['component_sum_ratio']:>7.3f} {slow:>5.3f}-{shigh:<6.3f}"
            f"{'yes' if abs(p['component_sum_ratio'] - 1) <= 0.10 else 'no':>5}"
            f"{flagged:>4}/{timed:<3}{','.join(p.get('unstable') or []) or '-':<46}{wall:>6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="profiles per condition")
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 1,
                        help="busy-loop processes for the loaded condition (default: one per CPU)")
    args, extra = parser.parse_known_args()

    print(f"{'condition':<16}{'load':>6}{'other':>8}{'busy':>6}{'overhead':>8} {'interval':<12}{'∋1':>5}"
          f"{'sum':>7} {'interval':<12}{'±10%':>5}{'flagged':>8} {'unstable end-to-end figures':<42}{'wall s':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for condition in ("as is", f"{args.burners} busy loops"):
            burners = []
            if condition != "as is":
                burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(args.burners)]
                time.sleep(2.0)  # let the load average notice
            try:
                for r in range(args.rounds):
                    begin = time.perf_counter()
                    data = profile(Path(tmp) / f"run-{len(burners)}-{r}.json", extra)
                    print(row(condition, data, time.perf_counter() - begin), flush=True)
            finally:
                for proc in burners:
                    proc.kill()
                    proc.wait()
            if condition == "as is" and args.burners:
                time.sleep(5.0)


if __name__ == "__main__":
    main()
