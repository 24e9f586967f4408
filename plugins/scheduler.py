"""Schedulers: configuration and the timesteps/sigmas for ``--steps`` (on a copy: the pipeline's is untouched)."""
from __future__ import annotations

from inspector import hookimpl
from inspector.results import View


def is_scheduler(obj) -> bool:
    try:
        from diffusers import SchedulerMixin
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, SchedulerMixin)


def json_safe(value):
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def schedule(scheduler, steps: int) -> dict:
    copy = type(scheduler).from_config(scheduler.config)
    copy.set_timesteps(steps)
    timesteps = [float(t) for t in copy.timesteps]
    sigmas = getattr(copy, "sigmas", None)
    return {
        "timesteps": [int(t) if t.is_integer() else t for t in timesteps],
        "sigmas": [float(s) for s in sigmas] if sigmas is not None else None,
        "init_noise_sigma": float(getattr(copy, "init_noise_sigma", 1.0)),
        "order": getattr(copy, "order", 1),
    }


@hookimpl
def inspect_component(context, component):
    if not component.present or not is_scheduler(component.obj):
        return None
    sched = component.obj
    result = context.base_result(component, "scheduler", "scheduler")
    plan = schedule(sched, context.options.steps)
    result.details.update({
        "config": json_safe(dict(sched.config)),
        "steps": context.options.steps,
        **plan,
        "compatibles": sorted(c.__name__ for c in getattr(sched, "compatibles", [])),
    })
    sigmas = plan["sigmas"] or []
    result.views.append(View(
        title="Timesteps", columns=["step", "timestep", "sigma"],
        rows=[[i, t, sigmas[i] if i < len(sigmas) else None] for i, t in enumerate(plan["timesteps"])],
    ))
    series = {"timestep": [float(t) for t in plan["timesteps"]]}
    if sigmas:
        series["sigma"] = sigmas[: len(plan["timesteps"])]
    result.views.append(View(title="Schedule", kind="series", x=list(range(len(plan["timesteps"]))),
                             x_label="step", series=series))
    return result
