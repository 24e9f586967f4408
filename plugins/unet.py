"""UNet denoisers (SD 1/2, SDXL, LCM, Kandinsky, AnimateDiff's motion UNet): the pipeline's own
call (recorded), FLOPs and time by block. Without a recording, SD-style inputs are synthesized."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.api import View, add_block_timing, hookimpl, iter_tensors, tabs_from_views, text_length, top_level_blocks

if TYPE_CHECKING:
    from inspector.api import (
        Component,
        ComponentResult,
        InspectContext,
        LayerRecord,
        ProfileContext,
        RecordedCall,
        RunResult,
        Tab,
    )

UNET_CLASSES = ("UNet2DConditionModel", "UNetMotionModel", "UNet3DConditionModel", "UNetSpatioTemporalConditionModel")


def is_unet(obj: Any) -> bool:
    try:
        import diffusers
    except ImportError:  # pragma: no cover
        return False
    classes = tuple(c for c in (getattr(diffusers, n, None) for n in UNET_CLASSES) if c is not None)
    return isinstance(obj, classes)


def denoiser_inputs(context: InspectContext, component: Component) -> RecordedCall | None:
    """The recorded step-0 call of this UNet, or None."""
    calls = context.recorded_calls(component.name, "forward")
    return calls[0] if calls else None


def example_inputs(context: InspectContext, unet: Any) -> dict:
    """The keyword arguments the pipeline passes to the UNet for one denoising step."""
    import torch
    from diffusers import UNet2DConditionModel

    if not isinstance(unet, UNet2DConditionModel):
        raise ValueError(f"no recorded call, and inputs are synthesized only for UNet2DConditionModel, "
                         f"not {type(unet).__name__}")
    cfg = unet.config
    batch = context.cfg_batch
    h, w = context.latent_size
    seq = 77
    tokenizer = context.pipe.components.get("tokenizer")
    if tokenizer is not None:
        seq = text_length(tokenizer, context.pipe, context.pipe.components.get("text_encoder"))
    kwargs = {
        "sample": context.example(batch, cfg.in_channels, h, w),
        "timestep": torch.full((), 999, device=context.device, dtype=torch.long),
        "encoder_hidden_states": context.example(batch, seq, cfg.cross_attention_dim),
    }
    if cfg.addition_embed_type == "text_time":
        pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        kwargs["added_cond_kwargs"] = {
            "text_embeds": context.example(batch, pooled),
            "time_ids": context.example(batch, 6, low=0, high=context.height),
        }
    elif cfg.addition_embed_type is not None:
        raise ValueError(f"no recorded call, and inputs cannot be synthesized for "
                         f"addition_embed_type={cfg.addition_embed_type!r}")
    if cfg.time_cond_proj_dim is not None:
        kwargs["timestep_cond"] = context.example(batch, cfg.time_cond_proj_dim)
    return kwargs


MOTION_COLUMNS = ["group", "modules", "parameters", "sequence length (frames)", "tokens per frame", "channels"]


def motion_module_rows(layers: list[LayerRecord], batch: int) -> list[list]:
    """One row per group of motion modules (``down_blocks.0.motion_modules``, ...), from the capture
    of the pipeline's recorded call: the sequence the temporal attention sees (its input is
    ``(batch x height x width, frames, channels)``: every spatial position of every image attends
    across the frames) and the positions per frame at that block's resolution. In the order they run."""
    by_name = {layer.name: layer for layer in layers}
    rows, order = [], []
    for group in (layer for layer in layers if layer.name.endswith("motion_modules")):
        prefix = group.name + "."
        modules = [layer for layer in layers if layer.name.startswith(prefix) and "." not in layer.name[len(prefix):]]
        attention = next((layer for layer in layers if layer.name.startswith(prefix)
                          and layer.name.endswith(".attn1") and layer.input_shapes), None)
        sequence = tokens = channels = None
        if attention is not None and len(attention.input_shapes[0]) == 3:
            rows_in, sequence, channels = attention.input_shapes[0]
            tokens = rows_in // batch if batch else None
        first = by_name.get(prefix + "0")
        if first is not None and first.input_shapes and len(first.input_shapes[0]) == 4:
            channels = first.input_shapes[0][1]
        rows.append([group.name, len(modules), group.parameters, sequence, tokens, channels])
        ran = [m.order for m in modules if m.order is not None]
        order.append(min(ran) if ran else len(layers))
    return [row for _, row in sorted(zip(order, rows), key=lambda pair: pair[0])]


def block_table(layers: list[LayerRecord]) -> list[list]:
    """Parameters and FLOPs per top-level block (down_blocks.N, mid_block, up_blocks.N, stems)."""
    return [[layer.name, layer.type, layer.parameters, layer.flops or 0,
             "x".join(map(str, layer.output_shapes[0])) if layer.output_shapes else ""]
            for layer in top_level_blocks(layers)]


@hookimpl
def inspect_component(context: InspectContext, component: Component) -> ComponentResult | None:
    if not component.present or not is_unet(component.obj):
        return None
    unet = component.obj
    result = context.base_result(component, "unet", "unet")
    call = denoiser_inputs(context, component)
    if call is not None:
        cap = context.replay(result, unet, call)
        sample = next(t for _, t in call.tensors())
    else:
        kwargs = example_inputs(context, unet)
        cap = context.capture(unet, lambda: unet(**kwargs))
        context.synthesized(result, kwargs, "SD-style UNet inputs from the configs")
        context.fill_capture(result, cap, cap.value)
        sample = kwargs["sample"]
    cfg = unet.config
    processors = sorted({type(p).__name__ for p in unet.attn_processors.values()})
    batch = int(sample.shape[0])
    images = context.options.batch_size
    frames = int(sample.shape[2]) if sample.dim() == 5 else None
    result.details.update({
        "cfg": batch == 2 * images,
        "cfg_batch": batch,
        "images_per_call": images,
        "latent_shape": [images, *sample.shape[1:]],
        "sample_shape": list(sample.shape),
        "frames": frames,
        "cross_attention_dim": getattr(cfg, "cross_attention_dim", None),
        "attention_head_dim": getattr(cfg, "attention_head_dim", None),
        "num_attention_heads": getattr(cfg, "num_attention_heads", None),
        "transformer_layers_per_block": getattr(cfg, "transformer_layers_per_block", None),
        "attention_processors": processors,
        "addition_embed_type": getattr(cfg, "addition_embed_type", None),
        "time_cond_proj_dim": getattr(cfg, "time_cond_proj_dim", None),
    })
    if frames is not None:
        rows = motion_module_rows(cap.layers, batch)
        result.details["motion_module_groups"] = len(rows)
        if rows:
            result.views.append(View(title="Motion modules", columns=MOTION_COLUMNS, rows=rows, tab="Motion"))
            sequences = sorted({row[3] for row in rows if row[3] is not None})
            if sequences and sequences != [frames]:
                result.notes.append(f"the motion modules attend over {', '.join(map(str, sequences))} frames "
                                    f"while the pipeline passes {frames}")
        else:
            result.views.append(View(title="Frames", kind="note", tab="Motion",
                                     text=f"{frames} frames per call; no motion modules found"))
    if batch == 2 * images:
        result.notes.append(f"classifier-free guidance: {images} image(s) run as a batch "
                            f"of {batch} (conditional + unconditional)")
    elif batch == images and context.options.guidance_scale > 1:
        result.notes.append(f"the pipeline calls its UNet with batch {batch}: no doubled classifier-free-guidance "
                            f"batch (guidance is an input or a separate call)")
    rows = block_table(cap.layers)
    result.views.append(View(title="Blocks", columns=["block", "type", "parameters", "flops", "output shape"],
                             rows=rows, tab="Blocks"))
    result.views.append(View(title="FLOPs by block", kind="series", x=[r[0] for r in rows], x_label="block",
                             series={"flops": [r[3] for r in rows]}, tab="Blocks"))
    return result


def _flat(kwargs: Any) -> list[tuple[str, Any]]:
    return list(iter_tensors(kwargs))


@hookimpl
def profile_component(context: ProfileContext, component: Component, result: ComponentResult) -> bool | None:
    if not component.present or not is_unet(component.obj):
        return None
    unet = component.obj
    call = denoiser_inputs(context, component)
    if call is not None:
        args, kwargs = call.args, call.kwargs
    else:
        args, kwargs = (), example_inputs(context, unet)
    calls = context.calls_per_run(component.name) or context.denoise_calls()
    measured = context.measure(result, "forward", lambda: unet(*args, **kwargs), flops=result.flops,
                               calls_per_run=calls)
    if measured is None:
        return True
    add_block_timing(context, result, unet, kwargs, args)
    return True


@hookimpl
def component_tabs(component: ComponentResult, run: RunResult) -> list[Tab] | None:
    if component.kind != "unet":
        return None

    return tabs_from_views(component)
