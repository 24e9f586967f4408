"""Where the shipped presets live, for benchmarks that build models without the host."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def preset_dir(name: str) -> Path:
    return Path(str(resources.files("inspector") / "presets" / name))
