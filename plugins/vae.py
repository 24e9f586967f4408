"""VAEs, used through ``encode`` and ``decode`` as pipelines do (hooks on ``forward`` never fire there)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.api import TensorInfo, View, hookimpl, tabs_from_views, window

if TYPE_CHECKING:
    import numpy as np

    from inspector.api import Component, ComponentResult, InspectContext, ProfileContext, RunResult, Tab

ENCODE_PARTS = ("encoder", "quant_conv")
DECODE_PARTS = ("decoder", "post_quant_conv")


def is_vae(obj: Any) -> bool:
    import torch

    return isinstance(obj, torch.nn.Module) and callable(getattr(obj, "encode", None)) and \
        callable(getattr(obj, "decode", None)) and hasattr(obj, "config") and \
        (hasattr(obj.config, "latent_channels") or hasattr(obj.config, "z_dim"))


def latent_of(encoded: Any) -> Any:
    """The latent of ``vae.encode(...)``: KL VAEs give a distribution (its mode), VQ and DC-AE a tensor."""
    dist = getattr(encoded, "latent_dist", None)
    if dist is not None:
        return dist.mode()
    for name in ("latents", "latent"):
        value = getattr(encoded, name, None)
        if value is not None:
            return value
    return encoded[0] if isinstance(encoded, (tuple, list)) else encoded


def sample_of(decoded: Any) -> Any:
    value = getattr(decoded, "sample", None)
    if value is not None:
        return value
    return decoded[0] if isinstance(decoded, (tuple, list)) else decoded


def latent_channels(vae: Any) -> int | None:
    cfg = vae.config
    return getattr(cfg, "latent_channels", None) or getattr(cfg, "z_dim", None)


@hookimpl
def inspect_component(context: InspectContext, component: Component) -> ComponentResult | None:
    if not component.present or not is_vae(component.obj):
        return None
    vae = component.obj
    result = context.base_result(component, "vae", "vae")
    decodes = context.recorded_calls(component.name, "decode")
    # the dtype the pipeline decodes in: SDXL's pipelines cast a float16 VAE whose config says
    # force_upcast to float32 for decode (and for encode, in image-to-image); the example runs so
    with run_as_called(decodes, vae) as cast:
        run_dtype = decodes[0].dtype if cast else None
        _inspect(context, component, result, vae, decodes, run_dtype)
    if run_dtype is not None:
        loaded = str(context.dtype).replace("torch.", "")
        run = str(run_dtype).replace("torch.", "")
        result.details["run_dtype"] = run
        why = " (its config sets force_upcast)" if getattr(vae.config, "force_upcast", False) else ""
        result.notes.append(f"run in {run}, as {type(context.pipe).__name__} runs it: it casts the {loaded} VAE "
                            f"to {run} to decode{why}, then back")
    return result


def run_as_called(decodes: list[Any], vae: Any) -> Any:
    """``with``: the VAE in the dtype the pipeline's first recorded decode ran it in (yields whether
    that took a cast); without a recorded decode, the VAE as it is."""
    import contextlib

    return decodes[0].as_called(vae) if decodes else contextlib.nullcontext(False)


def _inspect(context: InspectContext, component: Component, result: ComponentResult, vae: Any,
             decodes: list[Any], run_dtype: Any) -> None:
    decode_kwargs = {}
    if decodes:
        call = decodes[0]
        latent_in = next(t for _, t in call.tensors())
        decode_kwargs = {k: v for k, v in call.kwargs.items() if k not in ("z", "return_dict")}
        with_frames = latent_in.dim() == 5
        frames_out = None
        if with_frames:  # video VAEs compress time too: decode once to learn the frame count
            import torch

            with torch.no_grad():
                frames_out = sample_of(call.replay(vae)).shape[2]
        shape = (latent_in.shape[0], vae.config.get("in_channels", 3) if hasattr(vae.config, "get") else 3) + \
            ((frames_out,) if with_frames else ()) + (context.height, context.width)
        image = context.example(*shape, dtype=run_dtype)
        result.inputs_source = f"{context.origin(call)} (the image for encode has the decoded shape)"
    else:
        image = context.example(context.options.batch_size, vae.config.in_channels, context.height, context.width)


    decode_part = []

    def roundtrip() -> dict[str, Any]:
        latent = latent_of(vae.encode(image))
        with window() as part:  # the decode's own activation peak: the pipeline plan needs it apart
            if decodes:
                decoded = sample_of(decodes[0].replay(vae))
            else:
                decoded = sample_of(vae.decode(latent))
        decode_part.append(part)
        return {"latent": latent, "decoded": decoded}

    cap = context.capture(vae, roundtrip)
    result.inputs = [TensorInfo("image", list(image.shape), str(image.dtype).replace("torch.", ""))]
    if decodes:
        result.inputs += [TensorInfo(f"decode.{n}", list(t.shape), str(t.dtype).replace("torch.", ""))
                          for n, t in decodes[0].tensors()]
    else:
        context.synthesized(result, {"image": image}, "an image of the requested size, encoded then decoded")
    context.fill_capture(result, cap, cap.value)
    phase = {
        "encode": sum(layer.flops or 0 for layer in cap.layers if layer.depth == 1 and layer.name in ENCODE_PARTS),
        "decode": sum(layer.flops or 0 for layer in cap.layers if layer.depth == 1 and layer.name in DECODE_PARTS),
    }
    cfg = vae.config
    latent = cap.value["latent"]
    spatial = context.height // latent.shape[-2] if latent.shape[-2] else None
    result.details.update({
        "latent_shape": list(latent.shape),
        "decoded_shape": list(cap.value["decoded"].shape),
        "latent_channels": latent_channels(vae),
        "spatial_compression": spatial,
        "temporal_compression": (image.shape[2] - 1) // max(latent.shape[2] - 1, 1) if image.dim() == 5 else None,
        "scaling_factor": getattr(cfg, "scaling_factor", None),
        "shift_factor": getattr(cfg, "shift_factor", None),
        "force_upcast": getattr(cfg, "force_upcast", None),
        "encode_flops": phase["encode"],
        "decode_flops": phase["decode"],
        "called_as": "vae.encode(image) then vae.decode(latent)" if not decodes else
        "vae.encode(image), then vae.decode as the pipeline calls it",
    })
    result.views.append(View(title="Encode and decode", columns=["phase", "input shape", "output shape", "flops"],
                             tab="VAE", rows=[
        ["encode", "x".join(map(str, image.shape)), "x".join(map(str, latent.shape)), phase["encode"]],
        ["decode", "x".join(map(str, (next(t for _, t in decodes[0].tensors()) if decodes else latent).shape)),
         "x".join(map(str, cap.value["decoded"].shape)), phase["decode"]],
    ]))
    result.views.append(View(title="Compression", kind="table", columns=["latent channels", "spatial factor",
                                                                          "temporal factor", "scaling factor"],
                             rows=[[latent_channels(vae), spatial, result.details["temporal_compression"],
                                    getattr(cfg, "scaling_factor", None)]], tab="VAE"))
    if decode_part and decode_part[-1].tracked:
        decode_in = next(t for _, t in decodes[0].tensors()) if decodes else latent
        result.details["decode_activation_bytes"] = decode_part[-1].peak
        result.details["decode_cpu_activation_bytes"] = decode_part[-1].cpu_peak
        result.details["decode_input_shape"] = list(decode_in.shape)
    if decode_kwargs:
        result.details["decode_kwargs"] = {k: v for k, v in decode_kwargs.items()
                                           if isinstance(v, (bool, int, float, str))}


def test_image(height: int, width: int) -> np.ndarray:
    """A deterministic synthetic picture (gradients, stripes, a disc) in [0, 1], HxWx3."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width].astype("float32")
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    r = u
    g = 0.5 + 0.5 * np.sin(2 * np.pi * 6 * v)
    disc = ((u - 0.6) ** 2 + (v - 0.4) ** 2) < 0.05
    b = np.where(disc, 1.0, 0.25 * (1 - v))
    return np.stack([r, g, b], axis=-1)


def load_image(path: str, height: int, width: int) -> np.ndarray:
    """An image file as HxWx3 floats in [0, 1], resized to the run's size."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        return np.asarray(img, dtype="float32") / 255.0


def psnr(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1]."""
    import math

    import numpy as np

    mse = float(np.mean((np.clip(reference, 0, 1) - np.clip(reconstruction, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


@hookimpl
def profile_component(context: ProfileContext, component: Component, result: ComponentResult) -> bool | None:
    if not component.present or not is_vae(component.obj):
        return None
    vae = component.obj
    decodes = context.recorded_calls(component.name, "decode")
    with run_as_called(decodes, vae) as cast:  # in the dtype the pipeline decodes in, as inspect measures it
        return _profile(context, component, result, vae, decodes[0].dtype if cast else context.dtype)


def _profile(context: ProfileContext, component: Component, result: ComponentResult, vae: Any, dtype: Any) -> bool:
    import numpy as np
    import torch

    opts = context.options
    pixels = load_image(opts.image_path, context.height, context.width) if opts.image_path else \
        test_image(context.height, context.width)
    batch = np.repeat(pixels[None], opts.batch_size, axis=0)
    image = torch.from_numpy(batch).permute(0, 3, 1, 2).mul(2).sub(1).to(device=context.device, dtype=dtype)
    decoded_shape = result.details.get("decoded_shape") or []
    frames = decoded_shape[2] if len(decoded_shape) == 5 else None
    if frames:  # a video VAE: the same picture in every frame
        image = image.unsqueeze(2).repeat(1, 1, frames, 1, 1)
    flops = {d: result.details.get(f"{d}_flops") for d in ("encode", "decode")}
    encoded = context.measure(result, "encode", lambda: latent_of(vae.encode(image)), flops=flops["encode"])
    if encoded is None:
        return True
    latent = encoded.value
    decodes = context.recorded_calls(component.name, "decode")
    if decodes:  # the pipeline's own decode call, as often as one run makes it
        calls = context.calls_per_run(component.name, "decode") or 1
        decoded = context.measure(result, "decode", lambda: sample_of(decodes[0].replay(vae)),
                                  flops=flops["decode"], calls_per_run=calls)
    else:
        decoded = context.measure(result, "decode", lambda: sample_of(vae.decode(latent)), flops=flops["decode"],
                                  calls_per_run=1)
    result.timing, result.memory = (decoded.timing, decoded.memory) if decoded else (result.timing, result.memory)
    if decoded is not None:
        with torch.no_grad():
            roundtrip = sample_of(vae.decode(latent))
        if roundtrip.dim() == 5:
            roundtrip = roundtrip[:, :, 0]
        recon = roundtrip.float().add(1).div(2).permute(0, 2, 3, 1).cpu().numpy()
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
        try:
            enable()
        except NotImplementedError:  # diffusers' VQModel (Kandinsky's MoVQ) has the method, not the feature
            result.notes.append(f"{name}: not implemented for {type(vae).__name__}")
            continue
        try:
            context.measure(result, name, lambda: sample_of(vae.decode(latent)), flops=flops["decode"])
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
                                      "error"], rows=rows, tab="VAE"))
    return True


@hookimpl
def component_tabs(component: ComponentResult, run: RunResult) -> list[Tab] | None:
    if component.kind != "vae":
        return None
    d = component.details
    lines = [f"latent shape {d.get('latent_shape')}, scaling factor {d.get('scaling_factor')}",
             f"decoded shape {d.get('decoded_shape')}"]
    if d.get("psnr_db") is not None:
        lines.append(f"reconstruction PSNR {d['psnr_db']:.2f} dB on {d.get('image')}")
    decode = [m for m in component.measurements if m.name.startswith("decode")]
    for m in decode:
        peak = f"{m.memory.peak / 2**20:.1f} MiB" if m.memory else "-"
        lines.append(f"{m.name}: {m.timing.median:.2f} ms median, peak memory {peak}")

    return tabs_from_views(component, lead={"VAE": [View(title="VAE", kind="note", text="\n".join(lines))]})
