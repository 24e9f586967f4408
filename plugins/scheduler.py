"""Schedulers: configuration and the timesteps/sigmas for ``--steps`` (on a copy: the pipeline's is untouched)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.api import Measurement, View, describe_exception, hookimpl, json_safe, planned_scheduler, tabs_from_views

if TYPE_CHECKING:
    from inspector.api import Component, ComponentResult, InspectContext, ProfileContext, RunResult, Tab, TimingStats


def is_scheduler(obj: Any) -> bool:
    try:
        from diffusers import SchedulerMixin
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, SchedulerMixin)


def compatible_names(scheduler: Any) -> list[str]:
    """The names ``scheduler.compatibles`` would give, without importing every scheduler module
    (resolving the classes imports scipy.stats, a second, for a list of names)."""
    import diffusers

    exported = set(dir(diffusers))
    cls = type(scheduler)
    return sorted({cls.__name__, *(name for name in getattr(cls, "_compatibles", []) if name in exported)})


def timesteps_note(scheduler_name: str, steps: int, timesteps: list) -> str | None:
    """Say why a scheduler runs more (or fewer) timesteps than ``--steps`` asked for."""
    if len(timesteps) == steps:
        return None
    repeated = sorted({t for t in timesteps if timesteps.count(t) > 1}, reverse=True)
    why = ""
    if repeated:
        shown = ", ".join(str(t) for t in repeated[:3]) + (" …" if len(repeated) > 3 else "")
        why = (f": it repeats timestep{'s' if len(repeated) > 1 else ''} {shown} (multistep and higher-order "
               "schedulers evaluate some timesteps twice; PNDM's PLMS warm-up adds one step)")
    return (f"{scheduler_name} runs {len(timesteps)} timesteps for --steps {steps}{why}, so the denoiser is "
            f"called {len(timesteps)} times per image")


def schedule(scheduler: Any, steps: int, image_seq_len: int = 4096) -> dict:
    copy = planned_scheduler(scheduler, steps, image_seq_len)
    timesteps = [float(t) for t in copy.timesteps]
    sigmas = getattr(copy, "sigmas", None)
    return {
        "timesteps": [int(t) if t.is_integer() else t for t in timesteps],
        "sigmas": [float(s) for s in sigmas] if sigmas is not None else None,
        "init_noise_sigma": float(getattr(copy, "init_noise_sigma", 1.0)),
        "order": getattr(copy, "order", 1),
    }


@hookimpl
def inspect_component(context: InspectContext, component: Component) -> ComponentResult | None:
    if not component.present or not is_scheduler(component.obj):
        return None
    sched = component.obj
    result = context.base_result(component, "scheduler", "scheduler")
    plan = schedule(sched, context.options.steps, context.image_seq_len)
    result.details.update({
        "config": json_safe(dict(sched.config)),
        "steps": context.options.steps,
        **plan,
        "compatibles": compatible_names(sched),
    })
    note = timesteps_note(type(sched).__name__, context.options.steps, plan["timesteps"])
    if note:
        result.details["timesteps_note"] = note
        result.notes.append(note)
    sigmas = plan["sigmas"] or []
    series = {"timestep": [float(t) for t in plan["timesteps"]]}
    if sigmas:
        series["sigma"] = sigmas[: len(plan["timesteps"])]
    result.views.append(View(title="Schedule", kind="series", x=list(range(len(plan["timesteps"]))),
                             x_label="step", series=series, tab="Scheduler"))
    result.views.append(View(
        title="Timesteps", columns=["step", "timestep", "sigma"],
        rows=[[i, t, sigmas[i] if i < len(sigmas) else None] for i, t in enumerate(plan["timesteps"])],
        tab="Scheduler",
    ))
    return result


def denoise_loop(scheduler_cls: Any, config: Any, steps: int, sample: Any, noise: Any,
                 image_seq_len: int = 4096) -> int:
    """Every ``step()`` of a fresh scheduler over its timesteps, as a pipeline makes them."""
    import inspect


    sched = planned_scheduler(scheduler_cls.from_config(config), steps, image_seq_len)
    accepts_generator = "generator" in inspect.signature(sched.step).parameters
    latents = sample * getattr(sched, "init_noise_sigma", 1.0)
    for t in sched.timesteps:
        if hasattr(sched, "scale_model_input"):  # flow-matching schedulers have none
            sched.scale_model_input(latents, t)
        kwargs = {"generator": None} if accepts_generator else {}
        latents = sched.step(noise, t, latents, return_dict=False, **kwargs)[0]
    return len(sched.timesteps)


def scale_timing(timing: TimingStats, factor: float) -> TimingStats:
    from dataclasses import replace

    return replace(timing, median=timing.median * factor, iqr=timing.iqr * factor, min=timing.min * factor,
                   max=timing.max * factor, cold=timing.cold * factor if timing.cold is not None else None,
                   samples=[s * factor for s in timing.samples],
                   **{q: getattr(timing, q) * factor for q in ("p50", "p90", "p99")
                      if getattr(timing, q, None) is not None})  # rel_spread and unstable do not scale


@hookimpl
def profile_component(context: ProfileContext, component: Component, result: ComponentResult) -> bool | None:
    if not component.present or not is_scheduler(component.obj):
        return None
    import statistics
    import time

    sched = component.obj
    vae = context.pipe.components.get("vae")
    channels = getattr(getattr(vae, "config", None), "latent_channels", 4)
    shape = (context.options.batch_size, channels, *context.latent_size)
    sample = context.example(*shape)
    noise = context.example(*shape) * 0.1
    steps = context.options.steps
    config = sched.config
    n_calls = len(result.details.get("timesteps") or []) or steps
    seq = context.image_seq_len
    try:
        measured = context.measure(result, "loop", lambda: denoise_loop(type(sched), config, steps, sample, noise, seq))
    except Exception as exc:  # noqa: BLE001 - a scheduler with its own calling convention (Wuerstchen's)
        result.notes.append(f"step() not timed in isolation: a synthetic loop cannot drive {type(sched).__name__} "
                            f"({describe_exception(exc)}); the end-to-end profile times every real step() call")
        return True
    if measured is not None:
        # one measurement per step() call, which is what a pipeline run makes `steps` of
        per_step = scale_timing(measured.timing, 1.0 / n_calls)

        result.measurements.append(Measurement(name="step", timing=per_step, memory=measured.memory,
                                               calls_per_run=n_calls))
        result.timing = per_step
    rows = []
    candidates = {c.__name__: c for c in getattr(sched, "compatibles", [])}
    candidates[type(sched).__name__] = type(sched)
    for name in sorted(candidates):
        cls = candidates[name]
        try:
            calls = denoise_loop(cls, config, steps, sample, noise, seq)  # warm-up, and the step count
            samples = []
            for _ in range(3):
                begin = time.perf_counter()
                denoise_loop(cls, config, steps, sample, noise, seq)
                samples.append((time.perf_counter() - begin) * 1000.0)
            plan = schedule(cls.from_config(config), steps, seq)
            sigmas = plan["sigmas"] or []
            rows.append([name, calls, round(statistics.median(samples) / calls, 5),
                         plan["timesteps"][0] if plan["timesteps"] else None,
                         plan["timesteps"][-1] if plan["timesteps"] else None,
                         max(sigmas) if sigmas else None, plan["order"], name == type(sched).__name__, ""])
        except Exception as exc:  # noqa: BLE001 - one scheduler that cannot take this config does not stop the table
            rows.append([name, None, None, None, None, None, None, name == type(sched).__name__,
                         f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"])
    result.views.append(View(title="Compatible schedulers",
                             columns=["scheduler", "step_calls", "step_ms_median", "first_timestep",
                                      "last_timestep", "sigma_max", "order", "in_use", "error"], rows=rows,
                             tab="Scheduler"))
    result.details["compatible_schedulers"] = [r[0] for r in rows]
    return True


@hookimpl
def component_tabs(component: ComponentResult, run: RunResult) -> list[Tab] | None:
    if component.kind != "scheduler":
        return None

    return tabs_from_views(component)
