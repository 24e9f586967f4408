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


def test_image(height: int, width: int):
    """A deterministic synthetic picture (gradients, stripes, a disc) in [0, 1], HxWx3."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width].astype("float32")
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    r = u
    g = 0.5 + 0.5 * np.sin(2 * np.pi * 6 * v)
    disc = ((u - 0.6) ** 2 + (v - 0.4) ** 2) < 0.05
    b = np.where(disc, 1.0, 0.25 * (1 - v))
    return np.stack([r, g, b], axis=-1)


def load_image(path: str, height: int, width: int):
    """An image file as HxWx3 floats in [0, 1], resized to the run's size."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        return np.asarray(img, dtype="float32") / 255.0


def psnr(reference, reconstruction) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1]."""
    import math

    import numpy as np

    mse = float(np.mean((np.clip(reference, 0, 1) - np.clip(reconstruction, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


@hookimpl
def profile_component(context, component, result):
    if not component.present or not is_vae(component.obj):
        return None
    import numpy as np
    import torch

    vae = component.obj
    opts = context.options
    pixels = load_image(opts.image_path, context.height, context.width) if opts.image_path else \
        test_image(context.height, context.width)
    batch = np.repeat(pixels[None], opts.batch_size, axis=0)
    image = torch.from_numpy(batch).permute(0, 3, 1, 2).mul(2).sub(1).to(device=context.device, dtype=context.dtype)
    flops = {d: result.details.get(f"{d}_flops") for d in ("encode", "decode")}
    encoded = context.measure(result, "encode", lambda: latent_of(vae.encode(image)), flops=flops["encode"])
    if encoded is None:
        return True
    latent = encoded.value
    decoded = context.measure(result, "decode", lambda: vae.decode(latent).sample, flops=flops["decode"],
                              calls_per_run=1)
    result.timing, result.memory = (decoded.timing, decoded.memory) if decoded else (result.timing, result.memory)
    if decoded is not None:
        recon = decoded.value.float().add(1).div(2).permute(0, 2, 3, 1).cpu().numpy()
        result.details["psnr_db"] = psnr(batch, recon)
        result.details["image"] = opts.image_path or "built-in synthetic test image"
        if context.weights == "random":
            result.notes.append("random weights: the reconstruction PSNR says nothing about the model")
    variants = []
    if callable(getattr(vae, "enable_tiling", None)):
        variants.append(("decode (tiled)", vae.enable_tiling, vae.disable_tiling))
    if opts.batch_size > 1 and callable(getattr(vae, "enable_slicing", None)):
        variants.append(("decode (sliced)", vae.enable_slicing, vae.disable_slicing))
    for name, enable, disable in variants:
        enable()
        try:
            context.measure(result, name, lambda: vae.decode(latent).sample, flops=flops["decode"])
        finally:
            disable()
    tile = getattr(vae, "tile_latent_min_size", None)
    if tile and max(latent.shape[-2:]) <= tile:
        result.notes.append(f"tiled decode only splits latents larger than {tile}x{tile}; "
                            f"at {latent.shape[-2]}x{latent.shape[-1]} it decodes in one tile")
    rows = [[m.name, m.timing.median, m.timing.iqr, m.memory.peak if m.memory else None,
             m.memory.kind if m.memory else None, m.error or ""] for m in result.measurements]
    result.views.append(View(title="VAE timing and memory",
                             columns=["call", "time_ms_median", "time_ms_iqr", "memory_bytes_peak", "memory_kind",
                                      "error"], rows=rows))
    return True


@hookimpl
def component_tabs(component, run):
    if component.kind != "vae":
        return None
    from inspector.results import Tab

    d = component.details
    lines = [f"latent shape {d.get('latent_shape')}, scaling factor {d.get('scaling_factor')}",
             f"decoded shape {d.get('decoded_shape')}"]
    if d.get("psnr_db") is not None:
        lines.append(f"reconstruction PSNR {d['psnr_db']:.2f} dB on {d.get('image')}")
    decode = [m for m in component.measurements if m.name.startswith("decode")]
    for m in decode:
        peak = f"{m.memory.peak / 2**20:.1f} MiB" if m.memory else "-"
        lines.append(f"{m.name}: {m.timing.median:.2f} ms median, peak memory {peak}")
    views = [View(title="VAE", kind="note", text="\n".join(lines))]
    views += [v for v in component.views if v.title in ("Encode and decode", "VAE timing and memory")]
    return [Tab("VAE", views)]
