"""Whatever no other plugin claims: identity, parameters, configuration. Runs last.

A module the pipeline called during the recording call (a ControlNet, a prior, an image encoder)
is captured and timed on that very call, replayed; a module it never called directly (a motion
adapter whose layers were merged into the UNet) gets parameters only, and a note that says so.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.api import View, hookimpl, json_safe, tabs_from_views

if TYPE_CHECKING:
    from inspector.api import Component, ComponentResult, InspectContext, ProfileContext, RecordedCall, RunResult, Tab

KINDS = {
    "safety_checker": "safety_checker",
    "feature_extractor": "feature_extractor",
    "image_encoder": "image_encoder",
    "transformer": "transformer",
    "controlnet": "controlnet",
    "prior": "prior",
    "motion_adapter": "motion_adapter",
}


def recorded(context: InspectContext, component: Component) -> RecordedCall | None:
    calls = context.recorded_calls(component.name, "forward")
    return calls[0] if calls else None


@hookimpl(trylast=True)
def inspect_component(context: InspectContext, component: Component) -> ComponentResult:
    kind = KINDS.get(component.name.rstrip("_0123456789"), "other")
    result = context.base_result(component, kind, "generic")
    if not component.present:
        result.notes.append("absent: this pipeline was built without it")
        return result
    if component.is_module:
        call = recorded(context, component)
        if call is not None:
            context.replay(result, component.obj, call)
            add_kind_view(result, call)
        else:
            why = context.recording.error if context.recording is not None and context.recording.error else \
                "the pipeline did not call it directly in the recording call"
            result.notes.append(f"no forward pass: {why}; parameters only")
    config = getattr(component.obj, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        config = config.to_dict()
    if isinstance(config, dict):
        result.details["config"] = json_safe(config)
    return result


def add_kind_view(result: ComponentResult, call: RecordedCall) -> None:
    """Views for the kinds the generic plugin replays: a ControlNet's residuals per block and its
    conditioning scale, a prior's embedding shapes, an image encoder's embeddings."""
    shape = lambda info: "x".join(map(str, info.shape))  # noqa: E731
    if result.kind == "controlnet":
        scale = call.kwargs.get("conditioning_scale")
        cond: Any = call.kwargs.get("controlnet_cond")
        result.details["conditioning_scale"] = float(scale) if isinstance(scale, (int, float)) else None
        result.details["control_image_shape"] = list(cond.shape) if hasattr(cond, "shape") else None
        result.views.append(View(title="Residuals per block", columns=["output", "shape", "dtype"],
                                 rows=[[o.name, shape(o), o.dtype] for o in result.outputs], tab="ControlNet"))
        result.notes.append(f"the UNet adds these {len(result.outputs)} residuals"
                            + (f", scaled by {float(scale):g}" if isinstance(scale, (int, float)) else ""))
    elif result.kind in ("prior", "image_encoder"):
        title = "Embeddings" if result.kind == "image_encoder" else "Prior inputs and outputs"
        rows = [["in", i.name, shape(i)] for i in result.inputs] + [["out", o.name, shape(o)] for o in result.outputs]
        result.views.append(View(title=title, columns=["direction", "name", "shape"], rows=rows,
                                 tab="Prior" if result.kind == "prior" else "Image encoder"))


@hookimpl(trylast=True)
def profile_component(context: ProfileContext, component: Component, result: ComponentResult) -> bool | None:
    if not component.present:
        return None
    call = recorded(context, component) if component.is_module else None
    if call is not None:
        module = component.obj
        context.measure(result, "forward", lambda: call.replay(module), flops=result.flops,
                        calls_per_run=context.calls_per_run(component.name))
    elif component.is_module:
        result.notes.append(f"not timed: the pipeline's recording call did not call {component.class_name}")
    return True


@hookimpl(trylast=True)
def component_tabs(component: ComponentResult, run: RunResult) -> list[Tab] | None:
    if component.plugin != "generic":
        return None

    return tabs_from_views(component) or None
