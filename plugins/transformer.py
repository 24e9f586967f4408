"""Diffusion transformers: SD3's MMDiT and Flux. One denoising call, FLOPs and time by block."""
from __future__ import annotations

from inspector import hookimpl
from inspector.blocks import add_block_timing, top_level_blocks
from inspector.capture import iter_tensors
from inspector.results import TensorInfo, View


def kind_of(obj) -> str | None:
    name = type(obj).__name__
    if name == "SD3Transformer2DModel":
        return "sd3"
    if name == "FluxTransformer2DModel":
        return "flux"
    return None


def text_length(context, name: str, default: int) -> int:
    tok = context.pipe.components.get(name)
    return getattr(tok, "model_max_length", default) if tok is not None else default


def example_inputs(context, model) -> dict:
    """The keyword arguments the pipeline passes to its transformer for one denoising step."""
    import torch

    cfg = model.config
    h, w = context.latent_size
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
def inspect_component(context, component):
    if not component.present or kind_of(component.obj) is None:
        return None
    model = component.obj
    result = context.base_result(component, "transformer", "transformer")
    kwargs = example_inputs(context, model)
    cap = context.capture(model, lambda: model(**kwargs))
    result.inputs = [TensorInfo(n, list(t.shape), str(t.dtype).replace("torch.", "")) for n, t in iter_tensors(kwargs)]
    context.fill_capture(result, cap, cap.value)
    cfg = model.config
    result.details.update({
        "architecture": "MMDiT (SD3)" if kind_of(model) == "sd3" else "Flux (double- and single-stream blocks)",
        "cfg": context.cfg, "batch": kwargs["hidden_states"].shape[0],
        "patch_size": cfg.patch_size, "num_layers": cfg.num_layers,
        "num_single_layers": getattr(cfg, "num_single_layers", None),
        "num_attention_heads": cfg.num_attention_heads, "attention_head_dim": cfg.attention_head_dim,
        "joint_attention_dim": cfg.joint_attention_dim, "image_tokens": context.image_seq_len
        if kind_of(model) == "flux" else (context.latent_size[0] // cfg.patch_size) * (context.latent_size[1] // cfg.patch_size),
        "guidance_embeds": getattr(cfg, "guidance_embeds", None),
    })
    if kind_of(model) == "flux":
        result.notes.append("Flux is guidance-distilled: the guidance scale is an input, the batch is not doubled")
    rows = [[b.name, b.type, b.parameters, b.flops or 0] for b in top_level_blocks(cap.layers)]
    result.views.append(View(title="Blocks", columns=["block", "type", "parameters", "flops"], rows=rows))
    result.views.append(View(title="FLOPs by block", kind="series", x=[r[0] for r in rows], x_label="block",
                             series={"flops": [r[3] for r in rows]}))
    return result


@hookimpl
def profile_component(context, component, result):
    if not component.present or kind_of(component.obj) is None:
        return None
    model = component.obj
    kwargs = example_inputs(context, model)
    measured = context.measure(result, "forward", lambda: model(**kwargs), flops=result.flops,
                               calls_per_run=context.denoise_calls())
    if measured is not None:
        add_block_timing(context, result, model, kwargs)
    return True


@hookimpl
def component_tabs(component, run):
    if component.kind != "transformer" or component.plugin != "transformer":
        return None
    from inspector.results import Tab

    wanted = ("Blocks", "FLOPs by block", "Time by block", "Time by block (chart)")
    return [Tab("Blocks", [v for title in wanted for v in component.views if v.title == title])]
