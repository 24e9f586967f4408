"""The architecture presets shipped with the package (configs only, no weights)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable

from inspector.api import Preset, Weights, hookimpl

PRESETS_DIR = Path(str(resources.files("inspector") / "presets"))

DESCRIPTIONS: dict[str, tuple[str, Weights]] = {
    "tiny-sd": ("Tiny Stable-Diffusion-shaped pipeline, seeded random weights; runs on a CPU in seconds", "random"),
    "sd15": ("Stable Diffusion 1.5 architecture (UNet 859.5M, CLIP ViT-L/14 text encoder)", "meta"),
    "sd21": ("Stable Diffusion 2.1 architecture (UNet 865.9M, OpenCLIP ViT-H text encoder), 768px, v-prediction",
             "meta"),
    "sdxl": ("Stable Diffusion XL base 1.0 architecture (UNet 2.57B, two text encoders), 1024px", "meta"),
    "sd3": ("Stable Diffusion 3 Medium architecture (MMDiT 2.03B; CLIP-L, CLIP-G and T5-XXL encoders), 1024px",
            "meta"),
    "flux": ("FLUX.1-dev architecture (transformer 11.9B; CLIP-L and T5-XXL encoders), 1024px", "meta"),
    "tiny-sdxl": ("Tiny SDXL-shaped pipeline (two text encoders, text_time conditioning), random weights",
                  "random"),
    "tiny-sd3": ("Tiny SD3-shaped pipeline (MMDiT, three text encoders incl. T5), random weights", "random"),
    "tiny-flux": ("Tiny Flux-shaped pipeline (double/single-stream transformer, CLIP + T5), random weights",
                  "random"),
}


@hookimpl
def register_presets(register: Callable[[Preset], None]) -> None:
    for name, (description, weights) in DESCRIPTIONS.items():
        register(Preset(name=name, path=PRESETS_DIR / name, description=description, default_weights=weights))
