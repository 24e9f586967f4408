"""``profile``: real forward passes per component and end to end.

For each component: the inspection pass (shapes, FLOPs), then the plugins'
``profile_component`` hook, which times calls through :meth:`ProfileContext.measure`.
Then the real pipeline call, instrumented (:mod:`inspector.measure.tracing`) and bare,
alternately, so the overhead of the instrumentation is measured, not assumed.

An out-of-memory error in one component is recorded on that component and the
others still run. Ctrl-C keeps what was measured and marks the run interrupted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from inspector.errors import OptionError, did_you_mean
from inspector.inspection import (
    activation_predictor,
    add_memory_plan,
    add_roofline,
    components_of,
    cost_predictor,
    inspect_component,
    new_run,
    pipeline_device_dtype,
    pipeline_notes,
    run_size,
)
from inspector.measure.attention import attention_in_use, set_attention
from inspector.measure.devices import resolve_device
from inspector.measure.flags import flag_run
from inspector.measure.machine import MachineMonitor
from inspector.measure.operators import write_trace
from inspector.measure.timing import device_peak_flops
from inspector.measure.tracing import pipeline_kwargs, profile_pipeline
from inspector.plugin.context import (
    Component,
    ProfileContext,
    ProfileOptions,
    Progress,
    check_size,
    free_memory,
)
from inspector.plugin.host import HookCall, Host
from inspector.plugin.preset import Weights
from inspector.results.records import ComponentResult, ProfileSettings, RunResult
from inspector.runtime.libraries import quiet
from inspector.sources.loading import DEFAULT_MODEL, LoadedPipeline, SourceSpec, load


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
                    max_minutes: float | None = None, **options: Any) -> tuple[SourceSpec, ProfileOptions]:
    """What to load and how to profile it, from user-level choices: the one place profile's
    defaults and rules live. ``options`` are :class:`ProfileOptions` fields (an unknown one is
    refused); those not given keep the dataclass defaults."""
    unknown = sorted(set(options) - set(ProfileOptions.__dataclass_fields__))
    if unknown:
        raise OptionError(f"unknown profile option(s): {', '.join(unknown)}")
    resolved = resolve_device(device)
    spec = SourceSpec(model=model, weights=weights, arch=arch, dtype=dtype, device=resolved, seed=seed,
                      allow_download=allow_download, allow_pickle=allow_pickle, force=force,
                      libraries=host.libraries(), max_seconds=60 * max_minutes if max_minutes else None)
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

    usage = host.usage()
    presets = host.presets()
    apply_profile_rules(spec, presets, allow_cpu_float16)
    if loaded is None:
        spec.libraries = spec.libraries or host.libraries()
        if spec.activations is None:
            spec.activations = activation_predictor(host, options)
        if spec.cost is None:
            spec.cost = cost_predictor(host, options, "profile")
        loaded = load(spec, presets)
    pipe = loaded.pipe
    single = loaded.kind == "model"
    if single and (options.scheduler or options.trace):
        raise OptionError(f"a {'scheduler swap (--scheduler)' if options.scheduler else 'trace (--trace)'} "
                          "needs a pipeline; one model was given")
    pipe.set_progress_bar_config(disable=True)
    if options.scheduler:
        set_scheduler(pipe, options.scheduler)
    if options.attention:
        set_attention(pipe, options.attention)
    device, dtype = pipeline_device_dtype(pipe)
    height, width = run_size(pipe, options.height, options.width)
    name = device_name(str(device))
    dtype_name = str(dtype).replace("torch.", "")
    peak = device_peak_flops(name, dtype_name, options.peak_tflops)
    ctx = ProfileContext(pipe=pipe, options=options, device=device, dtype=dtype,
                         height=height, width=width,
                         weights=loaded.weights, peak_flops=peak, progress=progress, recording=loaded.recording)
    check_size(ctx.height, ctx.width, ctx.size_multiple)
    run = new_run(loaded, ctx, "profile")
    run.plugins = host.plugin_records()
    run.recording = ctx.record_calls().info()
    run.profile = ProfileSettings(device=str(device), device_name=name, dtype=dtype_name, warmup=options.warmup,
                                  repeats=options.repeats, threads=torch.get_num_threads(), peak_flops=peak,
                                  attention=attention_in_use(pipe),
                                  scheduler=type(pipe.scheduler).__name__ if not single else None,
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
            host.augment_component(ctx, component, result, on_error=_error_recorder(result))

        run.notes = pipeline_notes(pipe, run.components, ctx.recording)

        add_memory_plan(host, ctx, run)
        if str(device).startswith("cuda"):
            add_roofline(run, name)
        if options.end_to_end and single:
            run.notes.append("no end-to-end call: one model was given, not a pipeline")
        elif options.end_to_end:
            run.pipeline = profile_pipeline(ctx, run)
        if options.trace:
            write_pipeline_trace(ctx, run, options.trace)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        monitor.__exit__(None, None, None)
        run.machine = monitor.state
        run.plugins = host.plugin_records(since=usage)
        flag_run(run)  # a busy machine or an isolated time far from its in-pipeline one: flagged everywhere
    return run


def write_pipeline_trace(ctx: ProfileContext, run: RunResult, path: str) -> None:
    """One extra, untimed end-to-end call under torch.profiler, written as a Chrome/Perfetto trace."""
    import torch

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


def _error_recorder(result: ComponentResult) -> Callable[[HookCall], None]:
    def record(call: HookCall) -> None:
        result.errors.append(call.failure())

    return record


def profile_one(host: Host, ctx: ProfileContext, component: Component, result: ComponentResult) -> None:
    if not component.present:
        return
    try:
        host.profile_component(ctx, component, result, on_error=_error_recorder(result))
    finally:
        free_memory(ctx.device)


def default_image_out(json_path: str | None, html_path: str | None = None) -> str | None:
    for path in (json_path, html_path):
        if path:
            p = Path(path)
            return str(p.with_name(p.stem + ".png"))
    return None
