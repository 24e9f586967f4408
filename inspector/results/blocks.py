"""The top-level blocks of a denoiser, from its layer records (shared by plugins and reports)."""
from __future__ import annotations

import statistics
import time
from typing import Any, Iterable, TypeVar

from inspector.results.records import LayerRecord, View

CONTAINERS = ("down_blocks", "up_blocks", "transformer_blocks", "single_transformer_blocks",
              "joint_transformer_blocks", "blocks", "layers", "noise_refiner", "context_refiner")

#: layer records, or the same records read back from JSON
Layer = TypeVar("Layer", LayerRecord, dict)


def top_level_blocks(layers: Iterable[Layer]) -> list[Layer]:
    """Depth-1 modules, with list containers (``down_blocks``, ``up_blocks``...) replaced by their items,
    in the order the forward pass runs them (modules never called last)."""
    found: list[Layer] = []
    for layer in layers:
        name = layer["name"] if isinstance(layer, dict) else layer.name
        depth = layer["depth"] if isinstance(layer, dict) else layer.depth
        parts = name.split(".")
        if (depth == 1 and name not in CONTAINERS) or (depth == 2 and parts[0] in CONTAINERS):
            found.append(layer)

    def order(layer: LayerRecord | dict) -> float:
        value = layer.get("order") if isinstance(layer, dict) else layer.order
        return float("inf") if value is None else value

    return sorted(found, key=order)


def block_modules(model: Any) -> list[tuple[str, Any]]:
    """(name, module) of the blocks a denoiser's forward passes through, list containers expanded."""
    blocks: list[tuple[str, Any]] = []
    for name, child in model.named_children():
        if name in CONTAINERS:
            blocks.extend((f"{name}.{i}", block) for i, block in enumerate(child))
        else:
            blocks.append((name, child))
    return blocks


def time_blocks(device: Any, model: Any, call: Any, repeats: int) -> dict[str, list[float]]:
    """Per-block wall time (ms) over ``repeats`` calls of ``call()``, synchronized on CUDA at each boundary."""
    import torch

    cuda = str(device).startswith("cuda")

    def now() -> float:
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    times: dict[str, list[float]] = {}
    started: dict[str, float] = {}
    handles = []
    for name, block in block_modules(model):
        def pre(_m: Any, _a: Any, name: str = name) -> None:
            started[name] = now()

        def post(_m: Any, _a: Any, _o: Any, name: str = name) -> None:
            times.setdefault(name, []).append((now() - started.pop(name)) * 1000.0)

        handles.append(block.register_forward_pre_hook(pre))
        handles.append(block.register_forward_hook(post))
    try:
        with torch.no_grad():
            for _ in range(max(1, repeats)):
                call()
    finally:
        for handle in handles:
            handle.remove()
    return times


def add_block_timing(context: Any, result: Any, model: Any, kwargs: dict, args: tuple = ()) -> None:
    """Time, FLOPs and FLOP/s by block, as a table and a chart on ``result``."""
    times = time_blocks(context.device, model, lambda: model(*args, **kwargs), context.options.repeats)
    flops = {layer.name: layer.flops or 0 for layer in result.layers}
    params = {layer.name: layer.parameters for layer in result.layers}
    total = sum(statistics.median(v) for v in times.values()) or 1.0
    rows = []
    for name, samples in times.items():
        ms = statistics.median(samples)
        rate = flops.get(name, 0) / (ms / 1000.0) if ms > 0 else None
        rows.append([name, params.get(name, 0), flops.get(name, 0), round(ms, 4),
                     round(rate / 1e9, 3) if rate else None, round(100.0 * ms / total, 2)])
    result.views.append(View(title="Time by block",
                             columns=["block", "parameters", "flops", "time_ms_median", "gflops_per_s", "share_pct"],
                             rows=rows, tab="Blocks"))
    result.views.append(View(title="Time by block (chart)", kind="series", x=[r[0] for r in rows], x_label="block",
                             series={"time_ms": [r[3] for r in rows]}, tab="Blocks"))
