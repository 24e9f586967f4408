"""Flags on every time figure they concern, set once, after a profile, for every front end to show.

A figure is flagged (``TimingStats.unstable``, with the reason in ``TimingStats.flags``) when:

* the machine was busy while the profile ran (other processes competed for the CPU): then every
  time of the run says something about the machine, not the model, and is flagged, the
  end-to-end totals and the per-step times included (``PipelineRun.unstable`` names them);
* a component's isolated time disagrees with its time inside the pipeline's own call by more than
  :data:`DISAGREEMENT` either way (per call: the isolated median against the pipeline's part for
  that component divided by the calls one run makes). One of the two is then not what a user of
  the pipeline would see, and neither is stated as a fact.

The spread rule (IQR / median above ``--max-spread``) is applied where the figures are measured
(:mod:`inspector.measure.timing`); this module only adds to it.
"""
from __future__ import annotations

from typing import Any

from inspector.results.records import ComponentResult, Measurement, PipelineRun, RunResult, TimingStats
from inspector.results.units import human_ms

#: an isolated time more than this many times its in-pipeline time (or less than its inverse) is flagged
DISAGREEMENT = 2.0
BUSY = "machine busy"


def flag(timing: TimingStats | None, reason: str) -> None:
    if timing is None:
        return
    timing.unstable = True
    if reason not in timing.flags:
        timing.flags.append(reason)


def in_pipeline_ms(pipeline: PipelineRun, comp: ComponentResult) -> float | None:
    """The time the pipeline's own (median instrumented) call spent in ``comp``, all its calls."""
    if comp.kind in ("unet", "transformer"):
        return pipeline.denoiser_total()
    if comp.kind == "vae":
        return pipeline.vae_decode
    if comp.kind == "safety_checker":
        return pipeline.safety_checker
    return None


def disagreement(isolated_ms: float, pipeline_ms: float) -> str | None:
    """Why an isolated per-call time and the in-pipeline one disagree, or None."""
    if isolated_ms <= 0 or pipeline_ms <= 0:
        return None
    ratio = isolated_ms / pipeline_ms
    if 1 / DISAGREEMENT <= ratio <= DISAGREEMENT:
        return None
    return (f"isolated {human_ms(isolated_ms)} per call vs {human_ms(pipeline_ms)} in the pipeline's own call "
            f"({ratio:.1f}x)")


def flag_run(run: RunResult) -> None:
    """Flag every time figure of ``run`` that a busy machine or a disagreement makes untrustworthy."""
    busy = run.machine is not None and run.machine.busy
    pipeline = run.pipeline if run.pipeline is not None and not run.pipeline.error else None
    for comp in run.components:
        timings = [m.timing for m in comp.measurements] + [comp.timing]
        if busy:
            for timing in timings:
                flag(timing, BUSY)
        if pipeline is not None:
            _flag_disagreement(pipeline, comp)
    if pipeline is not None:
        _flag_text_encoding(pipeline, run.components)
        if busy:
            reason = f"{BUSY} (" + "; ".join(run.machine.reasons) + ")" if run.machine else BUSY
            for name in ("total", "bare_total", "steps"):
                if name not in pipeline.unstable:
                    pipeline.unstable.append(name)
            if not any(r.startswith(("total: " + BUSY, BUSY)) for r in pipeline.unstable_reasons):
                pipeline.unstable_reasons.append(f"every time of this run: {reason}")


def _timed(comp: ComponentResult) -> Measurement | None:
    call = comp.timed_call()
    return call if call is not None and call.calls_per_run and call.error is None else None


def _flag_disagreement(pipeline: PipelineRun, comp: ComponentResult) -> None:
    call = _timed(comp)
    total = in_pipeline_ms(pipeline, comp)
    if call is None or not total or call.calls_per_run is None:
        return
    why = disagreement(call.timing.median, total / call.calls_per_run)
    if why:
        flag(call.timing, why)
        if comp.timing is not call.timing:
            flag(comp.timing, why)


def _flag_text_encoding(pipeline: PipelineRun, components: list[ComponentResult]) -> None:
    """Text encoders share one part of the pipeline's call: their isolated times together against it."""
    encoders = [(c, _timed(c)) for c in components if c.kind == "text_encoder"]
    timed: list[tuple[ComponentResult, Any]] = [(c, m) for c, m in encoders if m is not None]
    if not timed or not pipeline.text_encoding:
        return
    isolated = sum(m.timing.median * m.calls_per_run for _, m in timed)
    calls = sum(m.calls_per_run for _, m in timed)
    why = disagreement(isolated / calls, pipeline.text_encoding / calls)
    if why:
        for comp, m in timed:
            flag(m.timing, "text encoders together: " + why)
            if comp.timing is not m.timing:
                flag(comp.timing, "text encoders together: " + why)
