"""UNet denoisers: one call with the classifier-free-guidance batch, FLOPs by block."""
from __future__ import annotations

from inspector import hookimpl
from inspector.blocks import add_block_timing, top_level_blocks
from inspector.results import TensorInfo, View


def is_unet(obj) -> bool:
    try:
        from diffusers import UNet2DConditionModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, UNet2DConditionModel)


def example_inputs(context, unet) -> dict:
    """The keyword arguments the pipeline passes to the UNet for one denoising step."""
    import torch

    cfg = unet.config
    batch = context.cfg_batch
    h, w = context.latent_size
    seq = 77
    tokenizer = context.pipe.components.get("tokenizer")
    if tokenizer is not None:
        seq = tokenizer.model_max_length
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
        raise ValueError(f"cannot synthesize inputs for addition_embed_type={cfg.addition_embed_type!r}")
    if cfg.time_cond_proj_dim is not None:
        kwargs["timestep_cond"] = context.example(batch, cfg.time_cond_proj_dim)
    return kwargs


def block_table(layers) -> list[list]:
    """Parameters and FLOPs per top-level block (down_blocks.N, mid_block, up_blocks.N, stems)."""
    return [[layer.name, layer.type, layer.parameters, layer.flops or 0,
             "x".join(map(str, layer.output_shapes[0])) if layer.output_shapes else ""]
            for layer in top_level_blocks(layers)]


@hookimpl
def inspect_component(context, component):
    if not component.present or not is_unet(component.obj):
        return None
    unet = component.obj
    result = context.base_result(component, "unet", "unet")
    kwargs = example_inputs(context, unet)
    cap = context.capture(unet, lambda: unet(**kwargs))
    result.inputs = [TensorInfo(n, list(t.shape), str(t.dtype).replace("torch.", ""))
                     for n, t in _flat(kwargs)]
    context.fill_capture(result, cap, cap.value)
    cfg = unet.config
    processors = sorted({type(p).__name__ for p in unet.attn_processors.values()})
    result.details.update({
        "cfg": context.cfg,
        "cfg_batch": context.cfg_batch,
        "images_per_call": context.options.batch_size,
        "latent_shape": [context.options.batch_size, cfg.in_channels, *context.latent_size],
        "cross_attention_dim": cfg.cross_attention_dim,
        "attention_head_dim": cfg.attention_head_dim,
        "num_attention_heads": cfg.num_attention_heads,
        "transformer_layers_per_block": cfg.transformer_layers_per_block,
        "attention_processors": processors,
        "addition_embed_type": cfg.addition_embed_type,
    })
    if context.cfg:
        result.notes.append(f"classifier-free guidance: {context.options.batch_size} image(s) run as a batch "
                            f"of {context.cfg_batch} (conditional + unconditional)")
    rows = block_table(cap.layers)
    result.views.append(View(title="Blocks", columns=["block", "type", "parameters", "flops", "output shape"],
                             rows=rows))
    result.views.append(View(title="FLOPs by block", kind="series", x=[r[0] for r in rows], x_label="block",
                             series={"flops": [r[3] for r in rows]}))
    return result


def _flat(kwargs):
    from inspector.capture import iter_tensors

    return list(iter_tensors(kwargs))


@hookimpl
def profile_component(context, component, result):
    if not component.present or not is_unet(component.obj):
        return None
    unet = component.obj
    kwargs = example_inputs(context, unet)
    measured = context.measure(result, "forward", lambda: unet(**kwargs), flops=result.flops,
                               calls_per_run=context.denoise_calls())
    if measured is None:
        return True
    add_block_timing(context, result, unet, kwargs)
    return True


@hookimpl
def component_tabs(component, run):
    if component.kind != "unet":
        return None
    from inspector.results import Tab

    wanted = ("Blocks", "FLOPs by block", "Time by block", "Time by block (chart)")
    return [Tab("Blocks", [v for title in wanted for v in component.views if v.title == title])]
