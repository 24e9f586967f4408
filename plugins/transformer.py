"""Diffusion transformers (SD3's MMDiT, Flux, PixArt, Sana, AuraFlow, Lumina2, Wan...): the pipeline's own
denoising call (recorded), FLOPs and time by block. Without a recording, inputs are synthesized for
SD3 and Flux only."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.api import View, add_block_timing, hookimpl, tabs_from_views, top_level_blocks
from inspector.api import text_length as padded_length

if TYPE_CHECKING:
    from inspector.api import Component, ComponentResult, InspectContext, ProfileContext, RecordedCall, RunResult, Tab


def kind_of(obj: Any) -> str | None:
    name = type(obj).__name__
    if name == "SD3Transformer2DModel":
        return "sd3"
    if name == "FluxTransformer2DModel":
        return "flux"
    if name.endswith(("Transformer2DModel", "Transformer3DModel", "TransformerModel")) and hasattr(obj, "config"):
        return "dit"
    return None


def recorded(context: InspectContext, component: Component) -> RecordedCall | None:
    calls = context.recorded_calls(component.name, "forward")
    return calls[0] if calls else None


def text_length(context: InspectContext, name: str, default: int) -> int:
    tok = context.pipe.components.get(name)
    if tok is None:
        return default
    suffix = name[len("tokenizer"):] if name.startswith("tokenizer") else ""
    return padded_length(tok, context.pipe, context.pipe.components.get("text_encoder" + suffix), default)


def example_inputs(context: InspectContext, model: Any) -> dict:
    """The keyword arguments the pipeline passes to its transformer for one denoising step."""
    import torch

    cfg = model.config
    h, w = context.latent_size
    if kind_of(model) == "dit":
        raise ValueError(f"no recorded call, and inputs are synthesized only for SD3 and Flux transformers, "
                         f"not {type(model).__name__}")
    if kind_of(model) == "sd3":
        batch = context.cfg_batch
        seq = 77 + text_length(context, "tokenizer_3", 256)  # CLIP tokens, then T5 tokens
        return {
            "hidden_states": context.example(batch, cfg.in_channels, h, w),
            "encoder_hidden_states": context.example(batch, seq, cfg.joint_attention_dim),
            "pooled_projections": context.example(batch, cfg.pooled_projection_dim),
            "timestep": torch.full((batch,), 999.0, device=context.device, dtype=context.dtype),
        }
    batch = context.options.batch_size  # Flux is guidance-distilled: no doubled batch
    seq = text_length(context, "tokenizer_2", 512)
    image_tokens = (h // 2) * (w // 2)
    kwargs = {
        "hidden_states": context.example(batch, image_tokens, cfg.in_channels),
        "encoder_hidden_states": context.example(batch, seq, cfg.joint_attention_dim),
        "pooled_projections": context.example(batch, cfg.pooled_projection_dim),
        "timestep": torch.full((batch,), 1.0, device=context.device, dtype=context.dtype),
        "img_ids": torch.zeros(image_tokens, 3, device=context.device, dtype=context.dtype),
        "txt_ids": torch.zeros(seq, 3, device=context.device, dtype=context.dtype),
    }
    if cfg.guidance_embeds:
        kwargs["guidance"] = torch.full((batch,), context.options.guidance_scale, device=context.device,
                                        dtype=torch.float32)
    return kwargs


@hookimpl
def inspect_component(context: InspectContext, component: Component) -> ComponentResult | None:
    if not component.present or kind_of(component.obj) is None:
        return None
    model = component.obj
    kind = kind_of(model)
    result = context.base_result(component, "transformer", "transformer")
    call = recorded(context, component)
    if call is not None:
        cap = context.replay(result, model, call)
        named = dict(call.tensors())
        hidden = named.get("hidden_states", next(iter(named.values())))
    else:
        kwargs = example_inputs(context, model)
        cap = context.capture(model, lambda: model(**kwargs))
        context.synthesized(result, kwargs, f"{type(model).__name__} inputs from the configs")
        context.fill_capture(result, cap, cap.value)
        named, hidden = kwargs, kwargs["hidden_states"]
    cfg = model.config
    text = named.get("encoder_hidden_states")
    batch = int(hidden.shape[0])
    images = context.options.batch_size
    architecture = {"sd3": "MMDiT (SD3)",
                    "flux": "Flux (double- and single-stream blocks)"}.get(kind or "", type(model).__name__)
    result.details.update({
        "architecture": architecture,
        "cfg": batch == 2 * images, "batch": batch,
        "hidden_states_shape": list(hidden.shape),
        "text_sequence_length": int(text.shape[1]) if text is not None and text.dim() >= 2 else None,
        "patch_size": getattr(cfg, "patch_size", None), "num_layers": getattr(cfg, "num_layers", None),
        "num_single_layers": getattr(cfg, "num_single_layers", None),
        "num_attention_heads": getattr(cfg, "num_attention_heads", None),
        "attention_head_dim": getattr(cfg, "attention_head_dim", None),
        "joint_attention_dim": getattr(cfg, "joint_attention_dim", None),
        "guidance_embeds": getattr(cfg, "guidance_embeds", None),
    })
    if kind in ("sd3", "flux"):
        patch = cfg.patch_size
        result.details["image_tokens"] = context.image_seq_len if kind == "flux" else \
            (context.latent_size[0] // patch) * (context.latent_size[1] // patch)
    if hidden.dim() == 5:
        result.details["frames"] = int(hidden.shape[2])
    if kind == "flux":
        result.notes.append("Flux is guidance-distilled: the guidance scale is an input, the batch is not doubled")
    elif batch == 2 * images:
        result.notes.append(f"classifier-free guidance: {images} image(s) run as a batch of {batch}")
    rows: list[list[Any]] = [[b.name, b.type, b.parameters, b.flops or 0] for b in top_level_blocks(cap.layers)]
    result.views.append(View(title="Blocks", columns=["block", "type", "parameters", "flops"], rows=rows,
                             tab="Blocks"))
    result.views.append(View(title="FLOPs by block", kind="series", x=[r[0] for r in rows], x_label="block",
                             series={"flops": [r[3] for r in rows]}, tab="Blocks"))
    return result


@hookimpl
def profile_component(context: ProfileContext, component: Component, result: ComponentResult) -> bool | None:
    if not component.present or kind_of(component.obj) is None:
        return None
    model = component.obj
    call = recorded(context, component)
    args, kwargs = (call.args, call.kwargs) if call is not None else ((), example_inputs(context, model))
    calls = context.calls_per_run(component.name) or context.denoise_calls()
    measured = context.measure(result, "forward", lambda: model(*args, **kwargs), flops=result.flops,
                               calls_per_run=calls)
    if measured is not None:
        add_block_timing(context, result, model, kwargs, args)
    return True


@hookimpl
def component_tabs(component: ComponentResult, run: RunResult) -> list[Tab] | None:
    if component.kind != "transformer" or component.plugin != "transformer":
        return None

    return tabs_from_views(component)
