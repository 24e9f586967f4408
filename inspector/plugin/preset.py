"""What a plugin's ``register_presets`` hook registers: a named architecture, as a folder of configs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Weights = Literal["meta", "random", "pretrained"]


@dataclass(frozen=True)
class Preset:
    """A named architecture: a diffusers folder holding configs and tokenizer files, no weights."""

    name: str
    path: Path
    description: str = ""
    default_weights: Weights = "meta"
