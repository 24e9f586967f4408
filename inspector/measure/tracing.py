"""The end-to-end pipeline call, instrumented: every step, every component, step 0 included.

Callback-based timers (``callback_on_step_end``) see N-1 intervals for N steps
and never time step 0. Here the denoiser (UNet, transformer or prior), the text
encoders and the safety checker get forward hooks, and ``scheduler.step`` and
``vae.decode`` (methods, not ``forward``) are wrapped on the instance with
:func:`functools.wraps`, so each step is bounded by the end of its
``scheduler.step`` call and step 0 starts where the latents were prepared.
Pipelines read these methods' signatures (``"generator" in signature(step)``)
to decide what to pass; a wrapper that hid them would change what is measured.
On CUDA each boundary synchronizes, so the figures are work, not launches.
Everything installed is removed afterwards, also when the call fails.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, TypedDict

from inspector.errors import describe_exception, is_out_of_memory
from inspector.files import atomic_path
from inspector.measure.calls import UnsupportedCall, pipeline_output
from inspector.measure.patches import Patches
from inspector.measure.timing import MemoryMeter, is_unstable, percentile, relative_spread
from inspector.results.records import PipelineRun, RunResult, StepRecord

MS = 1000.0
#: Component names of denoisers (called once or more per step) and of autoencoders (decoded once).
DENOISERS = ("unet", "transformer", "transformer_2", "prior", "decoder")
VAES = ("vae", "movq", "vqgan")

#: the end-to-end loop never runs more than this many bare + instrumented pairs
MAX_E2E_PAIRS = 50


@dataclass
class Trace:
    start: float = 0.0
    end: float = 0.0
    text: list[tuple[float, float]] = field(default_factory=list)
    denoiser: list[tuple[float, float, Any]] = field(default_factory=list)
    scheduler: list[tuple[float, float]] = field(default_factory=list)
    decode: list[tuple[float, float]] = field(default_factory=list)
    safety: list[tuple[float, float]] = field(default_factory=list)
    latents_ready: float | None = None


class PipelineTracer:
    """Installs timing hooks on a pipeline's components for the duration of ``with tracer:``."""

    def __init__(self, pipe: Any, device: Any) -> None:
        self.pipe = pipe
        self.cuda = str(device).startswith("cuda")
        self.trace = Trace()
        self._patches = Patches()

    def now(self) -> float:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    # --- installing ------------------------------------------------------------

    def _hook_module(self, module: Any, sink: Callable[[float, float, tuple, dict], None]) -> None:
        started: list[float] = []

        def pre(_m: Any, args: tuple, kwargs: dict) -> None:
            started.append(self.now())

        def post(_m: Any, args: tuple, kwargs: dict, output: Any) -> None:
            begin = started.pop() if started else self.now()
            sink(begin, self.now(), args, kwargs)

        self._patches.hook(module, pre, post)

    def _wrap_method(self, obj: Any, name: str, sink: Callable[[float, float], None]) -> None:
        def around(original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
            begin = self.now()
            try:
                return original(*args, **kwargs)
            finally:
                sink(begin, self.now())

        self._patches.wrap(obj, name, around)

    def __enter__(self) -> PipelineTracer:
        t = self.trace
        comps = self.pipe.components
        try:
            for name, comp in comps.items():
                if comp is None:
                    continue
                if name.startswith("text_encoder") and hasattr(comp, "register_forward_hook"):
                    self._hook_module(comp, lambda b, e, a, k: t.text.append((b, e)))
                elif name in DENOISERS and hasattr(comp, "register_forward_hook"):
                    self._hook_module(comp, lambda b, e, a, k: t.denoiser.append(
                        (b, e, _timestep(a, k))))
                elif name == "safety_checker" and hasattr(comp, "register_forward_hook"):
                    self._hook_module(comp, lambda b, e, a, k: t.safety.append((b, e)))
            if comps.get("scheduler") is not None:
                self._wrap_method(comps["scheduler"], "step", lambda b, e: t.scheduler.append((b, e)))
            for vae_name in VAES:
                if comps.get(vae_name) is not None and callable(getattr(comps[vae_name], "decode", None)):
                    self._wrap_method(comps[vae_name], "decode", lambda b, e: t.decode.append((b, e)))
            if hasattr(self.pipe, "prepare_latents"):
                self._wrap_method(self.pipe, "prepare_latents", lambda b, e: setattr(t, "latents_ready", e))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def remove(self) -> None:
        self._patches.remove()

    def call(self, fn: Callable[[], Any]) -> Any:
        self.trace = Trace()
        with self:
            self.trace.start = self.now()
            try:
                return fn()
            finally:
                self.trace.end = self.now()


def _timestep(args: tuple, kwargs: dict) -> Any:
    value: Any = kwargs.get("timestep", kwargs.get("r", args[1] if len(args) > 1 else None))
    try:
        return float(value.flatten()[0]) if hasattr(value, "flatten") else float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _span(pairs: list) -> float:
    return sum(p[1] - p[0] for p in pairs) * MS


class Totals(TypedDict):
    """Milliseconds of one end-to-end call by part (a part the pipeline has not: None)."""

    text_encoding: float
    prepare: float
    vae_decode: float | None
    safety_checker: float | None
    total: float


def breakdown(trace: Trace) -> tuple[list[StepRecord], Totals]:
    """Per-step records (every scheduler step, step 0 included) and per-component totals."""
    steps: list[StepRecord] = []
    loop_start = trace.latents_ready
    if loop_start is None:
        loop_start = trace.denoiser[0][0] if trace.denoiser else trace.start
    previous_end = loop_start
    denoiser_calls = list(trace.denoiser)
    for index, (s_begin, s_end) in enumerate(trace.scheduler):
        in_step = [c for c in denoiser_calls if previous_end <= c[0] < s_end]
        denoiser_ms = sum(c[1] - c[0] for c in in_step) * MS
        sched_ms = (s_end - s_begin) * MS
        total_ms = (s_end - previous_end) * MS
        steps.append(StepRecord(index=index, timestep=in_step[0][2] if in_step else None, denoiser=denoiser_ms,
                                scheduler=sched_ms, other=max(0.0, total_ms - denoiser_ms - sched_ms),
                                total=total_ms))
        previous_end = s_end
    text_ms = _span(trace.text)
    totals: Totals = {
        "text_encoding": text_ms,
        "prepare": max(0.0, (loop_start - trace.start) * MS - text_ms),
        "vae_decode": _span(trace.decode) if trace.decode else None,
        "safety_checker": _span(trace.safety) if trace.safety else None,
        "total": (trace.end - trace.start) * MS,
    }
    return steps, totals


def pipeline_kwargs(ctx: Any) -> dict[str, Any]:
    """The call's keyword arguments: one rule for every pipeline (:mod:`inspector.measure.calls`)."""
    return dict(ctx.pipeline_call())


def profile_pipeline(ctx: Any, run: RunResult) -> PipelineRun:
    """Bare and instrumented ``pipe(...)`` calls, alternated; breakdown of the median instrumented one."""
    import inspect

    import numpy as np
    import torch

    pipe = ctx.pipe
    repeats = max(1, ctx.options.e2e_repeats)
    result = PipelineRun(repeats=repeats)
    try:
        kwargs = pipeline_kwargs(ctx)
    except UnsupportedCall as exc:
        result.error = f"not run: {exc}"
        return result

    def call(**extra: Any) -> Any:
        generator = torch.Generator("cpu").manual_seed(ctx.options.seed)
        with torch.no_grad():
            return pipeline_output(pipe(**kwargs, **extra, generator=generator))

    def report(fraction: float, detail: str) -> None:
        if ctx.progress:
            ctx.progress("pipeline", fraction, detail)

    tracer = PipelineTracer(pipe, ctx.device)
    total_calls = 1 + 2 * repeats
    with_callback = "callback_on_step_end" in inspect.signature(type(pipe).__call__).parameters

    def stepping(call_index: int, label: str) -> dict[str, Any]:
        """Progress per step for the warm-up and instrumented calls; bare calls stay bare."""
        if not (ctx.progress and with_callback):
            return {}

        def on_step(_pipe: Any, step: int, _t: Any, callback_kwargs: dict) -> dict:
            calls = ctx.denoise_calls()
            report((call_index + (step + 1) / calls) / total_calls, f"{label} call, step {step + 1}/{calls}")
            return callback_kwargs

        return {"callback_on_step_end": on_step}

    traces = []
    max_time = float(getattr(ctx.options, "max_time", 0.0) or 0.0)
    max_spread = getattr(ctx.options, "max_spread", None)
    try:
        call(**stepping(0, "warm-up"))  # kept out of the figures
        with MemoryMeter(ctx.device) as meter:
            r = 0
            while True:
                # alternate which kind goes first, so drift and cache effects do not favour one
                for kind in (("bare", "instrumented") if r % 2 == 0 else ("instrumented", "bare")):
                    index = min(1 + 2 * r + (0 if kind == "bare" else 1), total_calls - 1)
                    if kind == "bare":
                        report(index / total_calls, f"bare call {r + 1}/{max(repeats, r + 1)}")
                        begin = tracer.now()
                        bare_images = call()
                        result.bare_totals.append((tracer.now() - begin) * MS)
                    else:
                        extra = stepping(index, "instrumented")
                        instrumented_images = tracer.call(partial(call, **extra))
                        traces.append(tracer.trace)
                r += 1
                if r < repeats:
                    continue
                spent = (sum(result.bare_totals) + sum(t.end - t.start for t in traces) * MS) / MS
                unsteady = is_unstable(result.bare_totals, max_spread) or is_unstable(
                    [(t.end - t.start) * MS for t in traces], max_spread)
                if not unsteady or spent >= max_time or r >= MAX_E2E_PAIRS:
                    break
        result.memory = meter.stats
        result.repeats = r
    except Exception as exc:  # noqa: BLE001 - the components' measurements stand; the run records why
        result.error = (f"out of memory: {type(exc).__name__}" if is_out_of_memory(exc)
                        else f"end-to-end call failed: {describe_exception(exc)}")
        return result
    finished = [breakdown(t) for t in traces]
    result.totals = [totals["total"] for _, totals in finished]
    mid = sorted(range(len(finished)), key=lambda i: result.totals[i])[(len(finished) - 1) // 2]
    steps, totals = finished[mid]
    result.steps = steps
    result.num_steps = len(steps)
    result.text_encoding = totals["text_encoding"]
    result.prepare = totals["prepare"]
    result.vae_decode = totals["vae_decode"]
    result.safety_checker = totals["safety_checker"]
    result.total = statistics.median(result.totals)
    result.bare_total = statistics.median(result.bare_totals)
    result.overhead_ratio = result.total / result.bare_total if result.bare_total else None
    loop_ms = sum(s.total for s in steps)
    result.it_per_s = len(steps) / (loop_ms / MS) if loop_ms else None
    bare_array, instrumented_array = np.asarray(bare_images), np.asarray(instrumented_images)
    result.identical_output = bool(np.array_equal(bare_array, instrumented_array,
                                                  equal_nan=bare_array.dtype.kind == "f"))
    result.image_shape = list(np.asarray(instrumented_images).shape)
    component_sum = sum(m.timing.median * m.calls_per_run for c in run.components for m in c.measurements
                        if m.calls_per_run and m.error is None)
    if component_sum:
        result.component_sum = component_sum
        result.component_sum_ratio = component_sum / result.total
    monitor = getattr(ctx, "machine", None)
    judge_stability(result, run, max_spread, monitor.state if monitor is not None else None)
    if ctx.options.image_out:
        picture = _picture(np.asarray(instrumented_images))
        if picture is not None:
            save_image(picture, ctx.options.image_out)
            result.image = ctx.options.image_out
    report(1.0, "done")
    return result


def _picture(output: Any) -> Any:
    """The first image of a pipeline's output as HxWx3 floats, or None when the output is not
    pictures (image embeddings, latents). Video frames give their first frame."""
    array = output
    while array.ndim > 3:
        array = array[0]
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # CHW tensors
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        return None
    return array if array.shape[-1] == 3 else array.repeat(3, axis=-1)


def paired_ratio_interval(numerators: list[float], denominators: list[float]) -> list[float] | None:
    """[low, high] of the ratios of paired calls: all of them up to 9 pairs, the middle 80% from 10."""
    ratios = sorted(a / b for a, b in zip(numerators, denominators) if b)
    if not ratios:
        return None
    if len(ratios) < 10:
        return [ratios[0], ratios[-1]]
    return [percentile(ratios, 10), percentile(ratios, 90)]


def _quartiles(timing: Any) -> tuple[float, float]:
    samples = sorted(getattr(timing, "samples", None) or [])
    if len(samples) < 2:
        return timing.median, timing.median
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return q[0], q[2]


def judge_stability(result: PipelineRun, run: RunResult, max_spread: float | None, machine: Any) -> None:
    """Give every derived figure its uncertainty, and flag the ones not to be trusted.

    A total is unstable when its relative spread is above ``max_spread`` (or there are too
    few calls to know). A ratio is unstable when its interval is wider than ``max_spread``
    of its value, when a figure it comes from is unstable, or when other processes competed
    for the CPU (``machine.busy``): then it says something about the machine, not the model.
    """
    result.total_rel_spread = relative_spread(result.totals)
    result.bare_rel_spread = relative_spread(result.bare_totals)
    result.overhead_interval = paired_ratio_interval(result.totals, result.bare_totals)
    measured = [m for c in run.components for m in c.measurements if m.calls_per_run and m.error is None]
    if result.component_sum and result.totals:
        low = sum(_quartiles(m.timing)[0] * m.calls_per_run for m in measured
                  if m.calls_per_run) / max(result.totals)
        high = sum(_quartiles(m.timing)[1] * m.calls_per_run for m in measured
                   if m.calls_per_run) / min(result.totals)
        result.component_sum_ratio_interval = [low, high]
    unstable: list[str] = []
    reasons: list[str] = []
    limit = max_spread if max_spread is not None else float("inf")
    for name, samples in (("total", result.totals), ("bare_total", result.bare_totals)):
        if is_unstable(samples, max_spread):
            unstable.append(name)
            spread = relative_spread(samples)
            reasons.append(f"{name}: relative spread {'unknown' if spread is None else f'{100 * spread:.0f}%'} "
                           f"over {len(samples)} calls")
    for name, value, interval, inputs in (
            ("overhead_ratio", result.overhead_ratio, result.overhead_interval, ("total", "bare_total")),
            ("component_sum_ratio", result.component_sum_ratio, result.component_sum_ratio_interval, ("total",))):
        if value is None:
            continue
        why = []
        if interval is None or not value or (interval[1] - interval[0]) / value > limit:
            why.append("interval " + (f"{interval[0]:.3f}-{interval[1]:.3f}" if interval else "unknown"))
        if any(i in unstable for i in inputs):
            why.append("comes from an unstable total")
        if name == "component_sum_ratio" and any(m.timing.unstable for m in measured):
            why.append("some isolated timings are unstable")
        if machine is not None and machine.busy:
            why.append("machine busy (" + "; ".join(machine.reasons) + ")")
        if why:
            unstable.append(name)
            reasons.append(f"{name}: " + ", ".join(why))
    result.unstable, result.unstable_reasons = unstable, reasons


def save_image(array: Any, path: str) -> None:
    import numpy as np
    from PIL import Image

    pixels = (np.clip(array, 0, 1) * 255).round().astype("uint8")
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
