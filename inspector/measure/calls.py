"""What a pipeline is called with, and what it gives back, for any diffusers pipeline class.

One rule for every pipeline: start from the options the user gave (prompt, size, steps, guidance,
batch), keep only what ``__call__`` accepts, then add what the signature requires and the
components imply: an init image (img2img), a mask (inpainting), a control image (ControlNet),
image embeddings (Kandinsky 2.2's decoder), a frame count (video pipelines). Anything not set here
keeps the pipeline's own default (``max_sequence_length`` among them), so the pipeline decides
what its components see. ``pipeline_output`` reads whatever the call returned (images, frames,
image embeddings, latents) as one numpy array, so outputs of two calls can be compared.
"""
from __future__ import annotations

import inspect
from typing import Any

#: Names of ``__call__`` parameters this module knows how to fill. A required parameter not in
#: this list makes :func:`call_kwargs` raise :class:`UnsupportedCall`.
SYNTHESIZED = ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "height", "width",
               "output_type", "image", "mask_image", "control_image", "image_embeds", "negative_image_embeds",
               "num_frames", "use_resolution_binning")

#: Which attribute of a pipeline's output holds its result, in the order they are tried.
OUTPUT_FIELDS = ("images", "frames", "image_embeds", "image_embeddings", "latents", "audios")


class UnsupportedCall(Exception):
    """The pipeline's ``__call__`` requires an argument this module cannot synthesize."""


def call_parameters(pipe: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(type(pipe).__call__).parameters)


def _pil_image(height: int, width: int, seed: int, *, mask: bool = False) -> Any:
    """A deterministic RGB picture (or a mask: its right half white) of the run's size."""
    import numpy as np
    from PIL import Image

    if mask:
        pixels = np.zeros((height, width), dtype="uint8")
        pixels[:, width // 2:] = 255
        return Image.fromarray(pixels, mode="L").convert("RGB")
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype="uint8")
    return Image.fromarray(pixels, mode="RGB")


def _embeds_dim(pipe: Any) -> int | None:
    """The width of the image embeddings a decoder pipeline (Kandinsky 2.2) conditions on."""
    unet = getattr(pipe, "unet", None)
    config = getattr(unet, "config", None)
    for key in ("encoder_hid_dim", "cross_attention_dim"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None


def call_kwargs(pipe: Any, *, prompt: str, negative_prompt: str, steps: int, guidance_scale: float, height: int,
                width: int, batch_size: int = 1, seed: int = 0,
                frames: int | None = None) -> tuple[dict[str, Any], list[str]]:
    """The keyword arguments for ``pipe(...)`` and notes on what was synthesized (no generator:
    the caller adds a freshly seeded one per call)."""
    import torch

    params = call_parameters(pipe)
    notes: list[str] = []
    kwargs: dict[str, Any] = {"num_inference_steps": steps, "guidance_scale": guidance_scale,
                              "height": height, "width": width}
    if "prompt" in params:
        kwargs["prompt"] = [prompt] * batch_size
    elif batch_size > 1 and "num_images_per_prompt" in params:
        kwargs["num_images_per_prompt"] = batch_size
    if negative_prompt and "negative_prompt" in params:
        kwargs["negative_prompt"] = [negative_prompt] * batch_size
    output_type = params.get("output_type")
    if output_type is not None and output_type.default not in ("pt", "latent"):
        kwargs["output_type"] = "np"
    image_param = params.get("image")
    if "controlnet" in pipe.components and pipe.components.get("controlnet") is not None:
        kwargs["image"] = _pil_image(height, width, seed)
        notes.append(f"control image: a seeded {width}x{height} random picture")
    elif (image_param is not None and image_param.default is not None
          and image_param.default is not inspect.Parameter.empty):
        pass  # an optional image with a real default: leave it
    elif image_param is not None and (_has_image_role(pipe) or image_param.default is inspect.Parameter.empty):
        kwargs["image"] = _pil_image(height, width, seed)
        notes.append(f"init image: a seeded {width}x{height} random picture")
    if "mask_image" in params and "image" in kwargs:
        kwargs["mask_image"] = _pil_image(height, width, seed, mask=True)
        notes.append("mask: the right half of the image")
    if params.get("image_embeds") is not None and params["image_embeds"].default is inspect.Parameter.empty:
        dim = _embeds_dim(pipe)
        if dim is None:
            raise UnsupportedCall(f"{type(pipe).__name__} needs image_embeds and its width is unknown")
        gen = torch.Generator().manual_seed(seed)
        kwargs["image_embeds"] = torch.randn(batch_size, dim, generator=gen)
        if "negative_image_embeds" in params:
            kwargs["negative_image_embeds"] = torch.randn(batch_size, dim, generator=gen)
        notes.append(f"image embeddings: seeded random ({batch_size}x{dim}), as a prior would give")
    if "num_frames" in params and frames is not None:
        kwargs["num_frames"] = frames
    if "use_resolution_binning" in params:
        kwargs["use_resolution_binning"] = False
        notes.append("resolution binning off: the requested size is used as given")
    kwargs = {k: v for k, v in kwargs.items() if k in params}
    missing = [name for name, p in params.items() if p.default is inspect.Parameter.empty and name != "self"
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and name not in kwargs]
    if missing:
        raise UnsupportedCall(f"{type(pipe).__name__}.__call__ requires {', '.join(missing)}, which ldm-inspector "
                              f"cannot synthesize")
    return kwargs, notes


def _has_image_role(pipe: Any) -> bool:
    """Image-to-image and inpainting pipelines take ``image`` as their starting point."""
    name = type(pipe).__name__
    return any(part in name for part in ("Img2Img", "Inpaint", "ImageToImage", "Image2Image"))


def pipeline_output(output: Any) -> Any:
    """The main result of a pipeline call as a numpy array, whatever its output class calls it."""

    value = None
    for field_name in OUTPUT_FIELDS:
        value = getattr(output, field_name, None)
        if value is not None:
            break
    if value is None and isinstance(output, (tuple, list)) and output:
        value = output[0]
    if value is None:
        raise TypeError(f"cannot read a result from {type(output).__name__} "
                        f"(none of {', '.join(OUTPUT_FIELDS)})")
    return to_numpy(value)


def to_numpy(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):
        return value.detach().float().cpu().numpy()
    if isinstance(value, (list, tuple)):
        return np.stack([to_numpy(v) for v in value])
    if hasattr(value, "size") and hasattr(value, "mode"):  # PIL image
        return np.asarray(value)
    return np.asarray(value)
