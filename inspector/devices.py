"""Which device a run uses: one rule for the CLI, the TUI and ``prepare_profile`` (no heavy imports
at module level, so ``inspect`` stays light)."""
from __future__ import annotations

from .errors import OptionError


def resolve_device(choice: str) -> str:
    """``auto``: CUDA when available, else the CPU; ``cuda`` without a device is refused."""
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda: no CUDA device is available")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice
