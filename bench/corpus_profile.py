"""Profile every pipeline of the test corpus (``tests/corpus.py``) and print one row per class:
inspect ok, profile ok, instrumented == bare, the instrumentation's overhead (instrumented /
bare total in the same process) and the recording call's time.

    python bench/corpus_profile.py [NAME ...]

Tiny pipelines on the CPU: the ratios are noisy (a few milliseconds per call); the column says
what ran, not how fast a real model runs.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import corpus

FRAMES = {"animatediff": 2, "wan": 5}


def main(names: list[str]) -> None:
    warnings.filterwarnings("ignore")
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    from inspector.inspection import inspect_loaded
    from inspector.plugin.context import InspectOptions, ProfileOptions
    from inspector.plugin.host import Host
    from inspector.profiling import run_profile
    from inspector.sources.loading import LoadedPipeline, SourceSpec

    host = Host.default(entrypoints=False)
    print(f"{'pipeline class':<38} {'inspect':>7} {'profile':>7} {'same':>5} {'overhead':>8} {'record s':>8}  note")
    for name in names:
        entry = corpus.CORPUS[name]
        size = dict(height=entry.height, width=entry.width, steps=2, guidance_scale=5.0, frames=FRAMES.get(name))
        note = ""
        try:
            loaded = LoadedPipeline(pipe=corpus.build(name), source=name, kind="folder", weights="random")
            run = inspect_loaded(host, loaded, InspectOptions(**size))
            inspected = not any(c.errors for c in run.components)
            started = time.perf_counter()
            prof = run_profile(host, SourceSpec(model=name), ProfileOptions(**size, warmup=0, repeats=1, e2e_repeats=3),
                               loaded=loaded)
            p = prof.pipeline
            profiled = p is not None and p.error is None and not any(c.errors for c in prof.components)
            same = p.identical_output if p else None
            overhead = f"{p.overhead_ratio:.3f}" if p and p.overhead_ratio else "-"
            record = f"{prof.recording.seconds:.2f}" if prof.recording else "-"
            note = p.error or f"{time.perf_counter() - started:.0f} s to profile" if p else ""
        except Exception as exc:  # noqa: BLE001 - a row per class, whatever happens
            inspected = profiled = same = None
            overhead = record = "-"
            note = f"{type(exc).__name__}: {exc}"[:80]
        print(f"{entry.pipeline_class:<38} {str(inspected):>7} {str(profiled):>7} {str(same):>5} {overhead:>8} "
              f"{record:>8}  {note}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(corpus.CORPUS))
