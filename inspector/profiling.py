"""``profile``: real forward passes per component and end to end.

For each component: the inspection pass (shapes, FLOPs), then the plugins'
``profile_component`` hook, which times calls through :meth:`ProfileContext.measure`.
Then the real pipeline call, instrumented (:mod:`inspector.measure.tracing`) and bare,
alternately, so the overhead of the instrumentation is measured, not assumed.

An out-of-memory error in one component is recorded on that component and the
others still run. Ctrl-C keeps what was measured and marks the run interrupted.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from inspector.errors import OptionError, describe_exception, did_you_mean, is_out_of_memory
from inspector.inspection import (
    activation_predictor,
    components_of,
    inspect_component,
    native_size,
    new_run,
    pipeline_device_dtype,
)
from inspector.measure.attention import attention_in_use, set_attention
from inspector.measure.devices import resolve_device  # re-exported: the one device rule
from inspector.measure.machine import MachineMonitor
from inspector.measure.timing import DEFAULT_MAX_SPREAD, Measured, device_peak_flops, measure
from inspector.plugin.context import Component, InspectContext, InspectOptions, check_size
from inspector.plugin.host import Host
from inspector.plugin.preset import Weights
from inspector.results.records import ComponentResult, HookFailure, Measurement, ProfileSettings, RunResult, TimingStats
from inspector.runtime.libraries import quiet
from inspector.sources.loading import DEFAULT_MODEL, LoadedPipeline, SourceSpec, load

#: progress(stage, fraction, detail): stage is a component name or "pipeline".
Progress = Callable[[str, float, str], None]


@dataclass
class ProfileOptions(InspectOptions):
    warmup: int = 1
    repeats: int = 5
    e2e_repeats: int = 3
    scheduler: str | None = None
    attention: str | None = None
    peak_tflops: float | None = None
    image_path: str | None = None
    image_out: str | None = None
    end_to_end: bool = True
    #: seconds one measurement may keep repeating to get its relative spread under
    #: ``max_spread`` (0: exactly ``repeats`` calls); the end-to-end pairs use the same budget
    max_time: float = 0.0
    max_spread: float = DEFAULT_MAX_SPREAD
    #: run each timed call once more under torch.profiler for its top operators (untimed)
    operators: bool = True
    #: write a Chrome/Perfetto trace of one extra end-to-end call here
    trace: str | None = None


@dataclass
class ProfileContext(InspectContext):
    """What a profiling plugin is handed: the inspection context (``options`` is a
    :class:`ProfileOptions`) plus ``measure``."""

    options: ProfileOptions
    peak_flops: float | None = None
    progress: Progress | None = None
    #: the machine monitor of this run (its ``state`` so far is readable at any time)
    machine: MachineMonitor | None = None

    def measure(self, result: ComponentResult, name: str, fn: Callable[[], Any], *, flops: int | None = None,
                calls_per_run: float | None = None, repeats: int | None = None,
                warmup: int | None = None) -> Measured | None:
        """Time ``fn`` and record a :class:`Measurement` named ``name`` on ``result``.

        Returns the measurement (its ``value`` is ``fn``'s last return value), or
        ``None`` when the call ran out of memory; that is recorded on the result.
        """
        import torch

        def tick(i: int, total: int) -> None:
            if self.progress:
                self.progress(result.name, i / total, name)

        oom: BaseException | None = None
        measured: Measured
        try:
            with torch.no_grad():
                measured = measure(fn, self.device, warmup=self.options.warmup if warmup is None else warmup,
                                   repeats=self.options.repeats if repeats is None else repeats, on_call=tick,
                                   max_time=self.options.max_time, max_spread=self.options.max_spread)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            oom = exc
        if oom is not None:
            # Free outside the except block: the traceback holds the frames' tensors until then.
            message = f"out of memory: {describe_exception(oom)}"
            del oom
            free_memory(self.device)
            result.measurements.append(Measurement(name=name, timing=_empty_timing(), error=message))
            result.errors.append(HookFailure(plugin=result.plugin or "", hook="profile_component", error=message,
                                             kind="oom"))
            return None
        per_second = flops / (measured.timing.median / 1000.0) if flops and measured.timing.median > 0 else None
        fraction = per_second / self.peak_flops if per_second and self.peak_flops else None
        result.measurements.append(Measurement(
            name=name, timing=measured.timing, memory=measured.memory, flops=flops,
            flops_per_second=per_second, fraction_of_peak=fraction, calls_per_run=calls_per_run))
        if result.timing is None:
            result.timing, result.memory = measured.timing, measured.memory
        if getattr(self.options, "operators", False):
            self._operators(result, name, fn)
        return measured

    def _operators(self, result: ComponentResult, name: str, fn: Callable[[], Any]) -> None:
        """One more call, untimed, under torch.profiler: the top operators as a view."""
        from inspector.measure.operators import top_operators

        try:
            result.views.append(top_operators(fn, self.device, f"Top operators: {name}"))
        except Exception as exc:  # noqa: BLE001 - the timing stands without the table
            result.notes.append(f"no operator table for {name}: {type(exc).__name__}: {exc}")


def _empty_timing() -> TimingStats:
    return TimingStats(median=float("nan"), iqr=float("nan"), min=float("nan"), max=float("nan"), count=0)


def free_memory(device: Any) -> None:
    gc.collect()
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def apply_profile_rules(spec: SourceSpec, presets: dict[str, Any], allow_cpu_float16: bool = False) -> SourceSpec:
    """The rules every way of starting a profile shares (CLI, TUI, pytest fixtures, ``run_profile``):
    the dtype (``auto``: float16 on CUDA, float32 on a CPU; float16 on a CPU only on request), no
    ``meta`` weights, and presets profile with seeded random weights unless told otherwise."""
    spec.dtype = resolve_dtype(spec.dtype, spec.device, allow_cpu_float16)
    if spec.weights == "meta":
        raise OptionError("profile runs real forward passes: use --weights random (presets) or a checkpoint")
    if spec.weights is None and (spec.model or DEFAULT_MODEL) in presets:
        spec.weights = "random"
    return spec


def prepare_profile(host: Host, model: str | None = None, *, weights: Weights | None = None, dtype: str = "auto",
                    device: str = "auto", allow_cpu_float16: bool = False, arch: str | None = None, seed: int = 0,
                    allow_download: bool = False, allow_pickle: bool = False, force: bool = False,
                    **options: Any) -> tuple[SourceSpec, ProfileOptions]:
    """What to load and how to profile it, from user-level choices: the one place profile's
    defaults and rules live. ``options`` are :class:`ProfileOptions` fields (an unknown one is
    refused); those not given keep the dataclass defaults."""
    unknown = sorted(set(options) - set(ProfileOptions.__dataclass_fields__))
    if unknown:
        raise OptionError(f"unknown profile option(s): {', '.join(unknown)}")
    resolved = resolve_device(device)
    spec = SourceSpec(model=model, weights=weights, arch=arch, dtype=dtype, device=resolved, seed=seed,
                      allow_download=allow_download, allow_pickle=allow_pickle, force=force,
                      libraries=host.libraries())
    apply_profile_rules(spec, host.presets(), allow_cpu_float16)
    return spec, ProfileOptions(seed=seed, **options)


def resolve_dtype(dtype: str, device: str, allow_cpu_float16: bool) -> str:
    if dtype == "auto":
        return "float16" if device.startswith("cuda") else "float32"
    if dtype == "float16" and device == "cpu" and not allow_cpu_float16:
        raise OptionError("--dtype float16 on a CPU: many kernels are missing or emulated there; choose "
                          "--dtype float32 or bfloat16, or pass --allow-cpu-float16 to run it anyway")
    return dtype


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    import platform

    return platform.processor() or platform.machine() or "cpu"


def set_scheduler(pipe: Any, name: str) -> None:
    compatibles = {c.__name__: c for c in getattr(pipe.scheduler, "compatibles", [])}
    compatibles[type(pipe.scheduler).__name__] = type(pipe.scheduler)
    if name not in compatibles:
        raise OptionError(f"unknown scheduler {name!r}{did_you_mean(name, compatibles)} for {type(pipe).__name__}; "
                          f"choose one of {', '.join(sorted(compatibles))}")
    pipe.scheduler = compatibles[name].from_config(pipe.scheduler.config)


@quiet
def run_profile(host: Host, spec: SourceSpec, options: ProfileOptions, *, allow_cpu_float16: bool = False,
                progress: Progress | None = None, loaded: LoadedPipeline | None = None) -> RunResult:
    """Load, profile every component, then the whole pipeline. Never raises KeyboardInterrupt:
    an interrupted run comes back with ``interrupted=True`` and what was measured."""
    import torch

    presets = host.presets()
    apply_profile_rules(spec, presets, allow_cpu_float16)
    if loaded is None:
        spec.libraries = spec.libraries or host.libraries()
        if spec.activations is None:
            spec.activations = activation_predictor(host, options)
        loaded = load(spec, presets)
    pipe = loaded.pipe
    pipe.set_progress_bar_config(disable=True)
    if options.scheduler:
        set_scheduler(pipe, options.scheduler)
    if options.attention:
        set_attention(pipe, options.attention)
    device, dtype = pipeline_device_dtype(pipe)
    native_h, native_w = native_size(pipe)
    name = device_name(str(device))
    dtype_name = str(dtype).replace("torch.", "")
    peak = device_peak_flops(name, dtype_name, options.peak_tflops)
    ctx = ProfileContext(pipe=pipe, options=options, device=device, dtype=dtype,
                         height=options.height or native_h, width=options.width or native_w,
                         weights=loaded.weights, peak_flops=peak, progress=progress)
    check_size(ctx.height, ctx.width, ctx.size_multiple)
    run = new_run(loaded, ctx, "profile")
    run.plugins = host.plugin_records()
    run.recording = ctx.record_calls().info()
    run.profile = ProfileSettings(device=str(device), device_name=name, dtype=dtype_name, warmup=options.warmup,
                                  repeats=options.repeats, threads=torch.get_num_threads(), peak_flops=peak,
                                  attention=attention_in_use(pipe), scheduler=type(pipe.scheduler).__name__,
                                  timer="cuda_events" if str(device).startswith("cuda") else "perf_counter",
                                  max_spread=options.max_spread, max_time=options.max_time)
    monitor = MachineMonitor()
    ctx.machine = monitor
    monitor.__enter__()
    try:
        for component in components_of(pipe):
            if progress:
                progress(component.name, 0.0, "inspect")
            result = inspect_component(host, ctx, component, augment=False)
            run.components.append(result)
            profile_one(host, ctx, component, result)
            host.augment_component(ctx, component, result, on_error=_error_recorder(result, "augment_component"))
        from inspector.inspection import pipeline_notes

        run.notes = pipeline_notes(pipe, run.components, ctx.recording)
        from inspector.inspection import add_memory_plan

        add_memory_plan(host, ctx, run)
        if str(device).startswith("cuda"):
            from inspector.inspection import add_roofline

            add_roofline(run, name)
        if options.end_to_end:
            from inspector.measure.tracing import profile_pipeline

            run.pipeline = profile_pipeline(ctx, run)
        if options.trace:
            write_pipeline_trace(ctx, run, options.trace)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        monitor.__exit__(None, None, None)
        run.machine = monitor.state
    return run


def write_pipeline_trace(ctx: ProfileContext, run: RunResult, path: str) -> None:
    """One extra, untimed end-to-end call under torch.profiler, written as a Chrome/Perfetto trace."""
    import torch

    from inspector.measure.operators import write_trace
    from inspector.measure.tracing import pipeline_kwargs

    kwargs = pipeline_kwargs(ctx)

    def call() -> Any:
        generator = torch.Generator("cpu").manual_seed(ctx.options.seed)
        with torch.no_grad():
            return ctx.pipe(**kwargs, generator=generator)

    if ctx.progress:
        ctx.progress("trace", 0.0, "one end-to-end call under torch.profiler")
    steps = write_trace(ctx.pipe, call, path, ctx.device)
    run.notes.append(f"trace of one end-to-end call ({steps} denoising steps) written to {path}: "
                     "open it in ui.perfetto.dev or chrome://tracing")


def _error_recorder(result: ComponentResult, hook: str) -> Callable[[str, BaseException], None]:
    def record(plugin: str, exc: BaseException) -> None:
        result.errors.append(HookFailure.from_exception(plugin, hook, exc))

    return record


def profile_one(host: Host, ctx: ProfileContext, component: Component, result: ComponentResult) -> None:
    if not component.present:
        return
    try:
        host.profile_component(ctx, component, result, on_error=_error_recorder(result, "profile_component"))
    finally:
        free_memory(ctx.device)


def default_image_out(json_path: str | None, html_path: str | None = None) -> str | None:
    for path in (json_path, html_path):
        if path:
            p = Path(path)
            return str(p.with_name(p.stem + ".png"))
    return None
