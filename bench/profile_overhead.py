"""Instrumented vs bare end-to-end pipeline calls, and isolated components vs the whole.

For each model, ``run_profile`` times every component in isolation, then alternates bare
and instrumented ``pipe(...)`` calls in the same process. Printed per model:

* overhead = median instrumented total / median bare total (target 1.05 or lower);
* component sum = sum over components of isolated median x calls per run, as a fraction of
  the instrumented total (target: within 10%, i.e. 0.90 to 1.10).

    python bench/profile_overhead.py                 # tiny-sd and sd15 with random weights, CPU
    python bench/profile_overhead.py --only tiny-sd
"""
from __future__ import annotations

import argparse
import time

CASES = {
    # name: (model, height, steps, repeats, e2e_repeats)
    "tiny-sd": ("tiny-sd", 128, 20, 5, 5),
    "sd15-random": ("sd15", 256, 4, 2, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=CASES)
    args = parser.parse_args()

    from inspector.plugin.context import ProfileOptions
    from inspector.plugin.host import Host
    from inspector.profiling import run_profile
    from inspector.sources.loading import SourceSpec, quiet_libraries

    quiet_libraries()
    host = Host.default()
    print(f"{'case':<14}{'size':>6}{'steps':>6}{'bare ms':>11}{'instr. ms':>11}{'overhead':>10}"
          f"{'comp. sum':>11}{'wall s':>8}")
    for name, (model, size, steps, repeats, e2e) in CASES.items():
        if args.only and args.only != name:
            continue
        begin = time.perf_counter()
        run = run_profile(host, SourceSpec(model=model, weights="random"),
                          ProfileOptions(height=size, width=size, steps=steps, warmup=1, repeats=repeats,
                                         e2e_repeats=e2e))
        p = run.pipeline
        print(f"{name:<14}{size:>6}{steps:>6}{p.bare_total:>11.1f}{p.total:>11.1f}{p.overhead_ratio:>10.3f}"
              f"{p.component_sum_ratio:>11.3f}{time.perf_counter() - begin:>8.1f}")


if __name__ == "__main__":
    main()
