"""VAEs, used through ``encode`` and ``decode`` as pipelines do (hooks on ``forward`` never fire there)."""
from __future__ import annotations

from inspector import hookimpl
from inspector.results import TensorInfo, View

ENCODE_PARTS = ("encoder", "quant_conv")
DECODE_PARTS = ("decoder", "post_quant_conv")


def is_vae(obj) -> bool:
    import torch

    return isinstance(obj, torch.nn.Module) and callable(getattr(obj, "encode", None)) and \
        callable(getattr(obj, "decode", None)) and hasattr(obj, "config") and \
        hasattr(obj.config, "latent_channels")


def latent_of(encoded):
    dist = getattr(encoded, "latent_dist", None)
    return dist.mode() if dist is not None else encoded.latents


@hookimpl
def inspect_component(context, component):
    if not component.present or not is_vae(component.obj):
        return None
    vae = component.obj
    result = context.base_result(component, "vae", "vae")
    image = context.example(context.options.batch_size, vae.config.in_channels, context.height, context.width)

    def roundtrip():
        latent = latent_of(vae.encode(image))
        return {"latent": latent, "decoded": vae.decode(latent).sample}

    cap = context.capture(vae, roundtrip)
    result.inputs = [TensorInfo("image", list(image.shape), str(image.dtype).replace("torch.", ""))]
    context.fill_capture(result, cap, cap.value)
    phase = {
        "encode": sum(l.flops or 0 for l in cap.layers if l.depth == 1 and l.name in ENCODE_PARTS),
        "decode": sum(l.flops or 0 for l in cap.layers if l.depth == 1 and l.name in DECODE_PARTS),
    }
    cfg = vae.config
    result.details.update({
        "latent_shape": list(cap.value["latent"].shape),
        "decoded_shape": list(cap.value["decoded"].shape),
        "scaling_factor": getattr(cfg, "scaling_factor", None),
        "shift_factor": getattr(cfg, "shift_factor", None),
        "force_upcast": getattr(cfg, "force_upcast", None),
        "encode_flops": phase["encode"],
        "decode_flops": phase["decode"],
        "called_as": "vae.encode(image) then vae.decode(latent)",
    })
    result.views.append(View(title="Encode and decode", columns=["phase", "input shape", "output shape", "flops"], rows=[
        ["encode", "x".join(map(str, image.shape)), "x".join(map(str, cap.value["latent"].shape)), phase["encode"]],
        ["decode", "x".join(map(str, cap.value["latent"].shape)), "x".join(map(str, cap.value["decoded"].shape)),
         phase["decode"]],
    ]))
    return result
