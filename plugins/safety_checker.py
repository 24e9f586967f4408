"""SD 1.x's safety checker (``StableDiffusionSafetyChecker``): a CLIP vision tower, a projection,
and cosine distances to the concept embeddings, on the feature extractor's crop of the image.

The pipeline's own call is replayed when it was recorded. Its ``forward`` ends in numpy (it scores
concepts image by image), which ``meta`` tensors cannot reach, so without a recording (always on
``meta``: the pipeline stops converting the decoded image) the tensor part is captured on a
synthesized ``clip_input`` of the feature extractor's crop size: the same modules and FLOPs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.api import View, hookimpl, tabs_from_views, tensor_infos

if TYPE_CHECKING:
    from inspector.api import Component, ComponentResult, InspectContext, ProfileContext, RunResult, Tab


def is_safety_checker(obj: Any) -> bool:
    return type(obj).__name__ == "StableDiffusionSafetyChecker" and hasattr(obj, "vision_model")


def crop_size(context: InspectContext) -> int:
    extractor = context.pipe.components.get("feature_extractor")
    crop = getattr(extractor, "crop_size", None)
    if isinstance(crop, dict):
        crop = crop.get("height")
    return int(crop) if isinstance(crop, int) else 224


def tensor_part(checker: Any, clip_input: Any) -> dict[str, Any]:
    """Everything ``forward`` computes before it turns to numpy."""
    from diffusers.pipelines.stable_diffusion.safety_checker import cosine_distance

    pooled = checker.vision_model(clip_input)[1]
    image_embeds = checker.visual_projection(pooled)
    return {"image_embeds": image_embeds,
            "special_cos_dist": cosine_distance(image_embeds, checker.special_care_embeds),
            "cos_dist": cosine_distance(image_embeds, checker.concept_embeds)}


@hookimpl
def inspect_component(context: InspectContext, component: Component) -> ComponentResult | None:
    if not component.present or not is_safety_checker(component.obj):
        return None
    checker = component.obj
    result = context.base_result(component, "safety_checker", "safety_checker")
    calls = context.recorded_calls(component.name, "forward")
    if calls:
        clip_input = calls[0].kwargs.get("clip_input", calls[0].args[0] if calls[0].args else None)
        cap = context.capture(checker, lambda: tensor_part(checker, clip_input))
        result.inputs_source = f"recorded: {type(context.pipe).__name__}'s own call of {component.name}(...)"

        result.inputs = tensor_infos(calls[0].kwargs) or tensor_infos(list(calls[0].args))
    else:
        size = crop_size(context)
        clip_input = context.example(context.options.batch_size, 3, size, size)
        cap = context.capture(checker, lambda: tensor_part(checker, clip_input))
        context.synthesized(result, {"clip_input": clip_input}, f"the feature extractor's {size}x{size} crop")
    context.fill_capture(result, cap, cap.value)
    result.details.update({
        "clip_input_shape": list(clip_input.shape),
        "concepts": int(checker.concept_embeds.shape[0]),
        "special_care_concepts": int(checker.special_care_embeds.shape[0]),
        "vision_hidden_size": checker.config.vision_config.hidden_size,
        "vision_layers": checker.config.vision_config.num_hidden_layers,
        "projection_dim": checker.config.projection_dim,
    })
    result.views.append(View(title="Safety checker", kind="table", columns=["input", "concepts", "special care",
                                                                            "vision layers", "flops"],
                             rows=[["x".join(map(str, clip_input.shape)), result.details["concepts"],
                                    result.details["special_care_concepts"], result.details["vision_layers"],
                                    cap.flops]], tab="Safety checker"))
    return result


@hookimpl
def profile_component(context: ProfileContext, component: Component, result: ComponentResult) -> bool | None:
    if not component.present or not is_safety_checker(component.obj):
        return None
    checker = component.obj
    calls = context.recorded_calls(component.name, "forward")
    if calls:  # the whole forward, numpy scoring included, as the pipeline calls it
        call = calls[0]
        context.measure(result, "forward", lambda: call.replay(checker), flops=result.flops,
                        calls_per_run=context.calls_per_run(component.name) or 1)
    else:
        size = crop_size(context)
        clip_input = context.example(context.options.batch_size, 3, size, size)
        context.measure(result, "forward (tensor part)", lambda: tensor_part(checker, clip_input), flops=result.flops,
                        calls_per_run=1)
    return True


@hookimpl
def component_tabs(component: ComponentResult, run: RunResult) -> list[Tab] | None:
    if component.kind != "safety_checker" or component.plugin != "safety_checker":
        return None

    return tabs_from_views(component)
