"""The predicted cost of a run (``--max-minutes``) against the time the run really takes.

For each case: the prediction the loader makes before any weight exists (the architecture on
``meta``, every call the command makes counted in FLOPs, over this device's measured matmul rate)
and the wall time of the same call through ``inspector.inspect``/``inspector.profile``, with the
time the prediction itself took. The prediction is meant as a lower bound: ``actual / predicted``
should be at least 1 (tiny models are all overhead, so far above 1); a ratio under 1 means the
tool could refuse a run that would have finished within the limit.
Usage: ``python bench/cost_prediction.py [--quick]``.
"""
from __future__ import annotations

import argparse
import os
import time


def cases(quick: bool) -> list[tuple[str, str, dict]]:
    found = [
        ("inspect", "tiny-sd", {"steps": 2}),
        ("inspect", "tiny-sd", {"steps": 2, "height": 512, "width": 512}),
        ("profile", "tiny-sd", {"steps": 2, "height": 64, "width": 64, "repeats": 2, "max_time": 0}),
    ]
    if not quick:
        found += [
            ("inspect", "tiny-sd", {"steps": 2, "height": 1024, "width": 1024}),
            ("profile", "tiny-sd", {"steps": 4, "height": 256, "width": 256, "repeats": 2, "max_time": 0}),
        ]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the three smallest cases only")
    args = parser.parse_args()

    import inspector
    from inspector.inspection import cost_predictor
    from inspector.plugin.context import InspectOptions
    from inspector.profiling import ProfileOptions
    from inspector.python_api import default_host
    from inspector.sources.loading import SourceSpec

    host = default_host()
    print(f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'command':8} {'case':44} {'predict s':>9} {'predicted':>10} {'actual':>8} {'actual/pred':>11}")
    for command, model, options in cases(args.quick):
        fields = InspectOptions.__dataclass_fields__ if command == "inspect" else ProfileOptions.__dataclass_fields__
        run_options = (InspectOptions if command == "inspect" else ProfileOptions)(
            **{k: v for k, v in options.items() if k in fields})
        spec = SourceSpec(model=model, weights="random", libraries=host.libraries())
        started = time.perf_counter()
        predicted = cost_predictor(host, run_options, command)(host.presets()[model].path, spec)
        predict_seconds = time.perf_counter() - started
        started = time.perf_counter()
        getattr(inspector, command)(model, progress=False, force=True, **options)
        actual = time.perf_counter() - started
        label = f"{model} " + " ".join(f"{k}={v}" for k, v in options.items())
        print(f"{command:8} {label:44} {predict_seconds:9.2f} {predicted.seconds:10.3f} {actual:8.2f} "
              f"{actual / predicted.seconds:11.1f}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
