"""Devices: which one a run uses (:func:`resolve_device`, one rule for the CLI, the TUI and
``prepare_profile`` with no heavy import at module level), and those a prediction can be judged
against: memory, peak FLOP/s and memory bandwidth.

Figures are the vendors' datasheet numbers (dense, no structured sparsity); float16 and
bfloat16 are tensor-core figures with float32 accumulation, float32 the non-tensor-core
figure. Memory is the datasheet size read as GiB; ``reserve`` is kept back for the CUDA
context, the driver and (L4) ECC, which the datasheet size does not leave free.

Sources:

* H100 SXM5 80GB: NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100/):
  989.4 TFLOP/s FP16/BF16 dense (1,979 with sparsity), 66.9 FP32, 3.35 TB/s HBM3.
* A100 SXM4 40GB and 80GB: NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/a100/):
  312 TFLOP/s FP16/BF16 dense, 19.5 FP32, 1,555 GB/s (40GB HBM2) and 2,039 GB/s (80GB HBM2e).
* L4: NVIDIA L4 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/l4/): 121 TFLOP/s
  FP16/BF16 dense (242 with sparsity), 30.3 FP32, 24 GB GDDR6 at 300 GB/s.
* GeForce RTX 4090: NVIDIA Ada Lovelace GPU architecture whitepaper, appendix table: 165.2
  TFLOP/s FP16 tensor with FP32 accumulate, 82.6 FP32, 24 GB GDDR6X at 1,008 GB/s.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from inspector.errors import OptionError, did_you_mean
from inspector.results.limits import MAX_MEMORY_BYTES

GiB = 2**30


@dataclass(frozen=True)
class Device:
    name: str
    label: str
    memory: int
    reserve: int
    #: dense peak TFLOP/s by dtype
    tflops: dict[str, float] = field(default_factory=dict)
    #: memory bandwidth in bytes per second
    bandwidth: float | None = None
    source: str = ""


DEVICES: dict[str, Device] = {d.name: d for d in (
    Device("h100", "NVIDIA H100 SXM5 80GB", 80 * GiB, 1 * GiB,
           {"float16": 989.4, "bfloat16": 989.4, "float32": 66.9}, 3.35e12, "NVIDIA H100 datasheet"),
    Device("a100-80", "NVIDIA A100 SXM4 80GB", 80 * GiB, 1 * GiB,
           {"float16": 312.0, "bfloat16": 312.0, "float32": 19.5}, 2.039e12, "NVIDIA A100 datasheet"),
    Device("a100-40", "NVIDIA A100 SXM4 40GB", 40 * GiB, 1 * GiB,
           {"float16": 312.0, "bfloat16": 312.0, "float32": 19.5}, 1.555e12, "NVIDIA A100 datasheet"),
    Device("l4", "NVIDIA L4 24GB", 24 * GiB, 2 * GiB,
           {"float16": 121.0, "bfloat16": 121.0, "float32": 30.3}, 300e9, "NVIDIA L4 datasheet"),
    Device("rtx4090", "NVIDIA GeForce RTX 4090 24GB", 24 * GiB, 1 * GiB,
           {"float16": 165.2, "bfloat16": 165.2, "float32": 82.6}, 1.008e12, "NVIDIA Ada Lovelace whitepaper"),
)}

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int | None:
    """``24GiB``, ``24 GB``, ``16000MiB`` or a plain byte count; ``None`` if it is not a size."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", text.lower())
    if not match:
        return None
    value = float(match.group(1)) * _UNITS[match.group(2) or ""]
    return int(value) if 1 <= value < float("inf") else None


def resolve_target(text: str) -> tuple[str, int, int]:
    """``--fits`` value -> (label, capacity bytes, reserve bytes). ``cpu`` is this machine's
    memory, with what is in use now reserved. Anything else unknown is refused."""
    key = text.strip().lower()
    if key in DEVICES:
        d = DEVICES[key]
        return d.label, d.memory, d.reserve
    if key == "cpu":
        import psutil

        vm = psutil.virtual_memory()
        return "this machine's memory", int(vm.total), int(vm.total - vm.available)
    size = parse_size(key)
    if size is None:
        hint = did_you_mean(key, [*DEVICES, "cpu"])
        raise OptionError(f"--fits {text!r}{hint}: give a size such as 24GiB, or one of "
                          f"{', '.join([*DEVICES, 'cpu'])}")
    if size > MAX_MEMORY_BYTES:
        raise OptionError(f"--fits {text.strip()[:40]!r} is more than {MAX_MEMORY_BYTES // 2**60} EiB: no device has "
                          "that much memory")
    return text.strip(), size, 0


def lookup(name: str) -> Device | None:
    """A table entry by its short name (``h100``) or by a CUDA device name fragment."""
    key = name.strip().lower()
    if key in DEVICES:
        return DEVICES[key]
    fragments = {"h100": "h100", "a100-sxm4-80gb": "a100-80", "a100 80gb": "a100-80", "a100": "a100-40",
                 "l4": "l4", "4090": "rtx4090"}
    for fragment, short in fragments.items():
        if re.search(rf"(^|\W){re.escape(fragment)}($|\W)", key):
            return DEVICES[short]
    return None


def roofline_rows(components: list, device: Device, dtype: str, activations: dict[str, int]) -> list[list]:
    """Per component: the time no implementation can beat on ``device`` (the larger of FLOPs over
    peak FLOP/s and bytes over bandwidth), next to the measured median where there is one.

    Bytes are a lower bound on traffic: every weight read once plus the peak of the call's
    activations written once. ``components`` are :class:`~inspector.results.records.ComponentResult`."""
    peak = device.tflops.get(dtype)
    rows = []

    def row(label: str, flops: int, moved: int, measured: float | None) -> list:
        compute_ms = flops / (peak * 1e12) * 1e3 if peak else None
        memory_ms = moved / device.bandwidth * 1e3 if device.bandwidth else None
        known = [t for t in (compute_ms, memory_ms) if t is not None]
        bound = max(known) if known else None
        limit = None if bound is None else ("compute" if bound == compute_ms else "memory")
        return [label, flops, moved, compute_ms, memory_ms, bound, limit, measured,
                bound / measured if bound and measured else None]

    for comp in components:
        if not comp.present or not comp.flops or comp.parameters is None:
            continue
        moved = comp.parameters.bytes + activations.get(comp.name, comp.activation_bytes or 0)
        timed = [m for m in comp.measurements if m.flops and m.error is None]
        if timed:  # each timed call with its own FLOPs, so bound and time describe the same call
            rows += [row(f"{comp.name} {m.name}", m.flops, moved, m.timing.median) for m in timed]
        else:
            rows.append(row(comp.name, comp.flops, moved, None))
    return rows


ROOFLINE_COLUMNS = ["component", "flops", "bytes_moved_min", "compute_bound_ms", "memory_bound_ms", "bound_ms",
                    "limited_by", "measured_ms", "bound_over_measured"]


def resolve_device(choice: str) -> str:
    """``auto``: CUDA when available, else the CPU; ``cuda`` without a device is refused."""
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda: no CUDA device is available")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice
