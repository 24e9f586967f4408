"""Whatever no other plugin claims: identity, parameters, configuration. Runs last."""
from __future__ import annotations

from inspector import hookimpl

KINDS = {
    "safety_checker": "safety_checker",
    "feature_extractor": "feature_extractor",
    "image_encoder": "image_encoder",
    "transformer": "transformer",
}


@hookimpl(trylast=True)
def inspect_component(context, component):
    kind = KINDS.get(component.name.rstrip("_0123456789"), "other")
    result = context.base_result(component, kind, "generic")
    if not component.present:
        result.notes.append("absent: this pipeline was built without it")
        return result
    if component.is_module:
        result.notes.append(f"no example inputs are synthesized for {component.class_name}: parameters only")
    config = getattr(component.obj, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        config = config.to_dict()
    if isinstance(config, dict):
        from inspector.plugins.scheduler import json_safe

        result.details["config"] = json_safe(config)
    return result


@hookimpl(trylast=True)
def profile_component(context, component, result):
    if not component.present:
        return None
    if component.is_module:
        result.notes.append(f"not timed: no example inputs are synthesized for {component.class_name}")
    return True
