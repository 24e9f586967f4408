"""``inspect``: load a pipeline and hand each of its components to the plugins."""
from __future__ import annotations

import inspect as pyinspect
import platform
import sys
from typing import Any, Iterator, Mapping

from inspector.errors import SourceError
from inspector.measure.attention import set_attention
from inspector.measure.devices import ROOFLINE_COLUMNS, lookup, resolve_target, roofline_rows
from inspector.measure.memory_plan import NOT_SEARCHED, fit_verdicts, plan_memory, plan_views
from inspector.measure.recording import _on_meta as on_meta
from inspector.plugin.context import (
    Component,
    InspectContext,
    InspectOptions,
    Progress,
    check_size,
    vae_scale_factor,
)
from inspector.plugin.host import HookCall, Host
from inspector.results.limits import MAX_SIZE
from inspector.results.records import ComponentResult, Environment, HookFailure, Inputs, ModelInfo, RunResult, View
from inspector.runtime.libraries import library_warnings, quiet
from inspector.sources.loading import LoadedPipeline, SourceSpec, build_from_configs, load
from inspector.sources.memory_guard import PredictedActivations


def environment(device: Any, dtype: Any) -> Environment:
    import diffusers
    import torch
    import transformers

    return Environment(
        python=platform.python_version(), torch=torch.__version__, diffusers=diffusers.__version__,
        transformers=transformers.__version__, device=str(device), dtype=str(dtype).replace("torch.", ""),
        platform=f"{sys.platform}-{platform.machine()}", threads=torch.get_num_threads(),
    )


def native_size(pipe: Any) -> tuple[int, int]:
    """The image size a pipeline was trained at: its ``__call__``'s default height and width where
    it has them (Wan, Sana, Kandinsky), else the denoiser's sample size times the VAE's scale factor."""
    h, w, _ = native_size_and_source(pipe)
    return h, w


def native_size_and_source(pipe: Any) -> tuple[int, int, str]:
    """:func:`native_size`, and where it comes from (said when it is refused)."""
    try:
        params: Mapping[str, pyinspect.Parameter] = pyinspect.signature(type(pipe).__call__).parameters
    except (TypeError, ValueError):
        params = {}
    h, w = (getattr(params.get(k), "default", None) for k in ("height", "width"))
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return h, w, f"{type(pipe).__name__}'s default height and width"

    scale = vae_scale_factor(pipe)
    for name in ("unet", "transformer"):
        model = getattr(pipe, name, None)
        size = getattr(getattr(model, "config", None), "sample_size", None)
        if size:
            h, w = (size, size) if isinstance(size, int) else size
            return h * scale, w * scale, f"{name} config sample_size {_short(size)} x the VAE's scale factor {scale}"
    vae = getattr(pipe, "vae", None)
    size = getattr(getattr(vae, "config", None), "sample_size", None) or 512
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return h, w, f"vae config sample_size {_short(size)}"


def run_size(pipe: Any, height: int | None, width: int | None) -> tuple[int, int]:
    """The height and width a run uses: those given, else the pipeline's native size, which is held
    to the same limit as ``--height``/``--width`` (a config's ``sample_size`` of 4096 would make
    32768 x 32768)."""
    native_h, native_w, source = native_size_and_source(pipe)
    h, w = height or native_h, width or native_w
    for label, value, given in (("height", h, height), ("width", w, width)):
        if given is None and not (isinstance(value, int) and 0 < value <= MAX_SIZE):
            raise SourceError(f"the default {label} {_short(value)} (from the {source}) is not a size up to "
                              f"{MAX_SIZE}: pass --height and --width")
    return h, w


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def declared_components(pipe: Any) -> dict[str, tuple[str | None, str | None]]:
    """Library and class each component slot expects, from the pipeline's ``__init__`` annotations."""
    found: dict[str, tuple[str | None, str | None]] = {}
    try:
        hints = pyinspect.signature(type(pipe).__init__).parameters
    except (TypeError, ValueError):
        return found
    for name, param in hints.items():
        ann = param.annotation
        if isinstance(ann, type):
            found[name] = (ann.__module__.split(".")[0], ann.__name__)
    return found


def pipeline_device_dtype(pipe: Any) -> tuple[Any, Any]:
    import torch

    for comp in pipe.components.values():
        if isinstance(comp, torch.nn.Module):
            for p in comp.parameters():
                return p.device, p.dtype
    return torch.device("cpu"), torch.float32


def pipeline_notes(pipe: Any, components: list[ComponentResult], recording: Any = None) -> list[str]:
    """Run-level notes: how the components' inputs were obtained, and every component a plugin
    failed on (plugin, hook and reason), so a fallback to the generic report is never silent."""
    # a step count that differs from --steps is explained where every front end shows it
    notes = [c.details["timesteps_note"] for c in components
             if c.kind == "scheduler" and isinstance(c.details.get("timesteps_note"), str)]
    name = type(pipe).__name__
    if recording is not None:
        if getattr(recording, "note", None):
            notes.append(recording.note)
        elif recording.error and not recording.calls:
            notes.append(f"inputs synthesized: the recording call of {name} failed ({recording.error})")
        elif recording.error and _on_meta(pipe):
            notes.append(_meta_stop(name, recording))
        elif recording.error:
            notes.append(f"inputs recorded from {name}'s own call, which stopped after {recording.steps} step(s): "
                         f"{recording.error}")
        else:
            notes.append(f"inputs recorded from one {recording.steps}-step call of {name} "
                         f"({recording.seconds:.2f} s)")
    for comp in components:
        for error in comp.errors:
            if error.get("hook") in ("inspect_component", "profile_component") and comp.plugin == "generic":
                notes.append(f"{comp.name}: plugin {error.get('plugin')} failed in {error.get('hook')} "
                             f"({error.get('error')}); the generic report was used")
    return notes


def _on_meta(pipe: Any) -> bool:
    try:
        return on_meta(pipe)
    except Exception:  # noqa: BLE001 - a pipeline without components is not on meta
        return False


def _meta_stop(name: str, recording: Any) -> str:
    """Where a recording call on meta weights stopped, in words: what ran, what was skipped and why,
    then the library's own message. The call always stops where it first needs real values."""
    decoded = any(key[0] == "vae" and key[1] == "decode" for key in recording.counts)
    ran = f"{recording.steps} denoising step(s)" + (" and the VAE decode" if decoded else "")
    skipped = "the image post-processing" if decoded else "the rest of the call"
    return (f"inputs recorded from {name}'s own call on meta weights: it ran {ran}; {skipped} was skipped, "
            f"because it needs real values and meta tensors hold no data: {recording.error}")


def components_of(pipe: Any) -> Iterator[Component]:
    """Every entry of ``pipe.components``, absent ones with the class their slot expects."""
    declared = declared_components(pipe)
    for name, obj in pipe.components.items():
        library, class_name = declared.get(name, (None, None))
        yield Component(name=name, obj=obj, library=None if obj is not None else library, declared_class=class_name)


def new_run(loaded: LoadedPipeline, ctx: InspectContext, command: str) -> RunResult:
    """A run's header: what was loaded, on what, with which inputs; components come after."""
    o = ctx.options
    return RunResult(
        # one model given alone (kind "model") is named by its own class, not its holder's
        model=ModelInfo(source=loaded.source, weights=loaded.weights,
                        pipeline_class=loaded.source if loaded.kind == "model" else type(loaded.pipe).__name__,
                        kind=loaded.kind, preset=loaded.preset, path=loaded.path),
        environment=environment(ctx.device, ctx.dtype),
        inputs=Inputs(height=ctx.height, width=ctx.width, batch_size=o.batch_size, prompt=o.prompt,
                      negative_prompt=o.negative_prompt, guidance_scale=o.guidance_scale, steps=o.steps, seed=o.seed,
                      frames=o.frames),
        command=command,
    )


@quiet
def inspect_loaded(host: Host, loaded: LoadedPipeline, options: InspectOptions,
                   progress: Progress | None = None) -> RunResult:
    """Inspect a loaded pipeline; ``progress(stage, fraction, detail)`` hears of each step."""
    usage = host.usage()
    pipe = loaded.pipe
    device, dtype = pipeline_device_dtype(pipe)
    height, width = run_size(pipe, options.height, options.width)
    ctx = InspectContext(pipe=pipe, options=options, device=device, dtype=dtype,
                         height=height, width=width,
                         weights=loaded.weights, recording=loaded.recording)
    check_size(ctx.height, ctx.width, ctx.size_multiple)
    run = new_run(loaded, ctx, "inspect")
    components = list(components_of(pipe))
    if progress:
        progress("recording", 0.0, f"one short call of {type(pipe).__name__}")
    run.recording = ctx.record_calls().info()
    for i, component in enumerate(components):
        if progress:
            progress(component.name, i / max(len(components), 1), "shapes and FLOPs")
        run.components.append(inspect_component(host, ctx, component))
    if progress:
        progress("memory plan", 1.0, "predicted peak memory")
    run.notes = pipeline_notes(pipe, run.components, ctx.recording)
    add_memory_plan(host, ctx, run, fits=options.fits)
    run.plugins = host.plugin_records(since=usage)
    return run


def add_memory_plan(host: Host, ctx: InspectContext, run: RunResult, fits: str | None = None) -> None:
    """Predict peak memory per component and placement (and, with ``fits``, judge a device);
    a failure becomes a run note, never a failed inspection."""
    import dataclasses

    target = resolve_target(fits) if fits else None  # a bad value fails before any work below
    # a named device gets its own plan: a CPU's counts convolution workspace, a GPU's does not;
    # without one, the plan is for the device the run's tensors are on
    cpu = fits.strip().lower() == "cpu" if fits else None
    try:
        plan = plan_memory(ctx.pipe, ctx, run.components, cpu=cpu)
    except Exception as exc:  # noqa: BLE001 - a prediction we cannot make must not cost the inspection
        run.notes.append(f"memory not predicted: {type(exc).__name__}: {exc}")
        return
    if target is not None:
        label, capacity, reserve = target
        multiple = max(ctx.size_multiple, 64)

        components_at: dict[tuple[int, int, int], list[ComponentResult]] = {}

        def probe(batch: int, height: int, width: int, vae_variant: str):  # noqa: ANN202
            options = dataclasses.replace(ctx.options, batch_size=batch, height=height, width=width)
            probe_ctx = dataclasses.replace(ctx, options=options, height=height, width=width,
                                            shared={"memory_only": True})
            key = (batch, height, width)
            if key not in components_at:
                components_at[key] = [inspect_component(host, probe_ctx, c, augment=False)
                                      for c in components_of(ctx.pipe)]
            return plan_memory(ctx.pipe, probe_ctx, components_at[key], (vae_variant,), cpu=cpu)

        plan.target, plan.capacity, plan.reserve = label, capacity, reserve
        plan.verdicts = fit_verdicts(plan, capacity - reserve, probe if ctx.on_meta else None,
                                     ctx.options.batch_size, ctx.height, ctx.width, multiple)
        if not ctx.on_meta:
            plan.notes.append(NOT_SEARCHED)
    run.memory_plan = plan
    run.views = plan_views(plan)
    add_roofline(run, fits)


def add_roofline(run: RunResult, device_name: str | None) -> None:
    """A roofline bound per component for a named device (``--fits h100``, or the CUDA device a
    profile ran on), as a view about the whole pipeline."""

    device = lookup(device_name) if device_name else None
    if device is None:
        return
    dtype = run.environment.dtype
    # the denoiser's one call, the VAE's encode+decode example: the FLOPs the inspection counted
    rows = roofline_rows(run.components, device, dtype, {})
    if rows:
        run.views.append(View(
            title=f"Roofline bound: {device.label}, {dtype}", columns=ROOFLINE_COLUMNS, rows=rows))
        run.views.append(View(title="Roofline", kind="note", text=(
            f"bound = max(FLOPs / {device.tflops.get(dtype)} TFLOP/s, "
            f"bytes / {(device.bandwidth or 0) / 1e9:.0f} GB/s) "
            f"({device.source}); bytes: weights read once plus the call's activation peak written once, a lower "
            "bound; FLOPs of the example call each component's inspection ran")))


def inspect_component(host: Host, ctx: InspectContext, component: Component, *,
                      augment: bool = True) -> ComponentResult:
    """Ask the plugins for this component's result; a plugin that raises is recorded and the next one tries.

    ``augment=False`` leaves the ``augment_component`` hook to the caller (profile runs it after timing)."""
    errors: list[HookFailure] = []

    def on_error(call: HookCall) -> None:
        errors.append(call.failure())

    result = host.inspect_component(ctx, component, on_error=on_error)
    if result is None:
        result = ctx.base_result(component, "other", None)  # type: ignore[arg-type]
    if augment:
        host.augment_component(ctx, component, result, on_error=on_error)
    result.errors.extend(errors)
    return result


def run_inspect(host: Host, spec: SourceSpec, options: InspectOptions,
                progress: Progress | None = None) -> RunResult:
    spec.libraries = spec.libraries or host.libraries()
    if spec.activations is None:
        spec.activations = activation_predictor(host, options)
    if spec.cost is None:
        spec.cost = cost_predictor(host, options, "inspect")
    if progress:
        progress("loading", 0.0, spec.model or "the default model")
    loaded = load(spec, host.presets())
    return inspect_loaded(host, loaded, options, progress)


def predict_memory(host: Host, spec: SourceSpec, options: InspectOptions) -> Any:
    """The memory plan of ``spec`` before any weight is loaded: the same architecture built on
    ``meta``, each component's example call tracked for activations only (no layer hooks, no
    FLOPs). ``None`` when the source cannot be built without its weights (a single file without
    ``--arch``, say); a single file with ``--arch`` is predicted from that preset's configs."""
    import dataclasses

    meta_spec = dataclasses.replace(spec, weights="meta", activations=None)
    if spec.arch and spec.arch in host.presets():
        meta_spec.model = spec.arch  # the checkpoint's architecture, never its weights
    try:
        loaded = load(meta_spec, host.presets())
    except Exception:  # noqa: BLE001 - no prediction; the caller's own check still runs
        return None
    return plan_on_meta(host, loaded.pipe, options, spec.device or "cpu")[0]


def plan_on_meta(host: Host, pipe: Any, options: InspectOptions, run_device: str | None = None
                 ) -> tuple[Any, InspectContext]:
    """The memory plan of a pipeline built on ``meta`` at ``options``' size and batch (the
    pipeline's native size where none is given), and the context it was predicted in, for the
    ``run_device`` the run will use (a CPU's plan counts convolution workspace; the default: a GPU's)."""

    attention = getattr(options, "attention", None)  # profile's --attention changes what is held
    if attention:
        set_attention(pipe, attention)
    device, dtype = pipeline_device_dtype(pipe)
    height, width = run_size(pipe, options.height, options.width)
    ctx = InspectContext(pipe=pipe, options=options, device=device, dtype=dtype,
                         height=height, width=width,
                         weights="meta", shared={"memory_only": True})
    check_size(ctx.height, ctx.width, ctx.size_multiple)
    components = [inspect_component(host, ctx, c, augment=False) for c in components_of(pipe)]
    return plan_memory(pipe, ctx, components, cpu=str(run_device or "").startswith("cpu")), ctx


def activation_predictor(host: Host, options: InspectOptions) -> Any:
    """What the memory guard calls before weights are materialized (``SourceSpec.activations``):
    ``(config folder, spec) -> PredictedActivations``, the activations one call of that
    architecture needs above its weights under the default placement (everything on the device,
    the VAE decoding whole), at ``options``' size and batch; ``None`` when it cannot be predicted."""
    import dataclasses

    def predict(folder: Any, spec: SourceSpec) -> PredictedActivations | None:
        try:
            with library_warnings():
                pipe = build_from_configs(folder, "meta", dataclasses.replace(spec, weights="meta", activations=None))
                plan, ctx = plan_on_meta(host, pipe, options, spec.device or "cpu")
        except Exception:  # noqa: BLE001 - no prediction: the guard falls back to the weights alone
            return None
        row = next((p for p in plan.placements if p.mode == "all on device" and p.vae == "plain"), None)
        if row is None or not any(m.activations for m in plan.components):
            return None
        return PredictedActivations(bytes=row.peak - row.weights_on_device,
                                    at=f"{ctx.height}x{ctx.width}, batch {options.batch_size}")

    return predict


#: the longest a run may be predicted to take before it is refused (``--max-minutes``)
DEFAULT_MAX_MINUTES = 5.0


def cost_predictor(host: Host, options: Any, command: str) -> Any:
    """What the loader calls before weights are materialized (``SourceSpec.cost``):
    ``(config folder, spec) -> PredictedCost``, the FLOPs of every call ``command`` will make at
    ``options``' size, batch and steps (the architecture built on ``meta``, its own call recorded
    there, every component's example call counted), over this device's measured matmul rate
    (:mod:`inspector.measure.cost`); ``None`` when the architecture cannot be built on meta."""
    import dataclasses

    from inspector.measure.cost import PredictedCost, device_rate, run_flops
    from inspector.sources.loading import torch_dtype

    def predict(folder: Any, spec: SourceSpec) -> PredictedCost | None:
        try:
            with library_warnings():
                pipe = build_from_configs(folder, "meta", dataclasses.replace(spec, weights="meta", activations=None,
                                                                              cost=None))
                attention = getattr(options, "attention", None)
                if attention:
                    set_attention(pipe, attention)
                device, dtype = pipeline_device_dtype(pipe)
                height, width = run_size(pipe, options.height, options.width)
                ctx = InspectContext(pipe=pipe, options=options, device=device, dtype=dtype, height=height,
                                     width=width, weights="meta", shared={"flops_only": True})
                check_size(ctx.height, ctx.width, ctx.size_multiple)
                ctx.record_calls()
                components = [inspect_component(host, ctx, c, augment=False) for c in components_of(pipe)]
                denoise_calls = ctx.denoise_calls()
        except Exception:  # noqa: BLE001 - no prediction: the run is not refused for its cost
            return None
        flops = {c.name: (c.kind, c.flops or 0) for c in components}
        total = run_flops(command, flops, denoise_calls=denoise_calls,
                          **{k: getattr(options, k) for k in ("warmup", "repeats", "e2e_repeats", "end_to_end",
                                                              "operators") if hasattr(options, k)})
        rate = device_rate(spec.device or "cpu", torch_dtype(spec.dtype))
        return PredictedCost(flops=total, seconds=total / rate, rate=rate,
                             at=f"{ctx.height}x{ctx.width}, batch {options.batch_size}, {options.steps} steps")

    return predict
