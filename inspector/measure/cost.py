"""What a run will cost, predicted before its weights exist: the FLOPs of every call it makes,
from the architecture built on ``meta``, over this device's measured matrix-multiply rate.

The rate is the best a device does (a square float matmul, timed here for a fraction of a
second); convolutions, attention and Python overhead only run slower. So the prediction is a
lower bound, stated as "at least", and a run refused by it would certainly have run past the
limit. Tiny models are all overhead and predict to almost nothing: they are never refused.

What a run calls, per command (``F`` the FLOPs of one example call of a component; the
denoiser's already holds its classifier-free-guidance batch):

* ``inspect``: the recording call (the text encoders, :data:`RECORD_STEPS` denoiser steps and
  a VAE decode), then one capture of every component's example call (the VAE's encodes and
  decodes).
* ``profile``: the inspection, then for every component its cold call, the warm-up calls, the
  timed repeats and the operator-table call (the VAE's encode, decode and tiled decode), then
  the end-to-end calls (bare and instrumented, ``e2e_repeats`` each, plus the identical-output
  check), each a whole generation at ``steps``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from inspector.measure.recording import RECORD_STEPS

#: seconds of matmul the calibration runs, at most
CALIBRATION_SECONDS = 0.15
_rates: dict[tuple[str, str], float] = {}


@dataclass(frozen=True)
class PredictedCost:
    """The work of a run: ``flops`` in all, ``seconds`` at least (at ``rate`` FLOP/s), and what
    it was predicted for (``"512x512, batch 1, 50 steps"``)."""

    flops: int
    seconds: float
    rate: float
    at: str


def device_rate(device: str, dtype: Any) -> float:
    """FLOP/s of a square matmul in ``dtype`` on ``device``: the best this device does, measured
    once per process (a few tenths of a second at most)."""
    import torch

    key = (str(device), str(dtype))
    if key in _rates:
        return _rates[key]
    on_cuda = str(device).startswith("cuda")
    n = 4096 if on_cuda else 512
    # float16 on a CPU is emulated: time it as what it will be, but never below float32's shape
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    deadline = time.perf_counter() + CALIBRATION_SECONDS
    with torch.no_grad():
        torch.mm(a, b)  # warm-up: kernels chosen, memory touched
        for _ in range(20):
            if on_cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            torch.mm(a, b)
            if on_cuda:
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
            if time.perf_counter() > deadline:
                break
    _rates[key] = 2 * n**3 / max(best, 1e-9)
    return _rates[key]


def run_flops(command: str, flops: dict[str, tuple[str, int]], *, denoise_calls: int, warmup: int = 1,
              repeats: int = 5, e2e_repeats: int = 3, end_to_end: bool = True, operators: bool = True) -> int:
    """The FLOPs of the calls a run makes (module docstring), from ``flops``: component name ->
    (kind, FLOPs of its example call)."""
    text = sum(f for kind, f in flops.values() if kind == "text_encoder")
    denoiser = sum(f for kind, f in flops.values() if kind in ("unet", "transformer"))
    vae = sum(f for kind, f in flops.values() if kind == "vae")  # one encode and one decode
    other = sum(f for kind, f in flops.values() if kind not in ("text_encoder", "unet", "transformer", "vae"))
    decode = vae // 2  # the decode alone: about half the round trip (a lower bound's share)
    examples = text + denoiser + vae + other
    total = text + RECORD_STEPS * denoiser + decode + examples  # the recording call, then the captures
    if command == "profile":
        calls = 1 + warmup + repeats + (1 if operators else 0)
        total += calls * (text + denoiser + other + vae + decode)  # the VAE: encode, decode, tiled decode
        if end_to_end:
            generation = text + denoise_calls * denoiser + decode
            total += (2 * e2e_repeats + 1) * generation
    return int(total)


def human_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
