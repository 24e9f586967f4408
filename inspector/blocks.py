"""The top-level blocks of a denoiser, from its layer records (shared by plugins and reports)."""
from __future__ import annotations

from typing import Iterable

from .results import LayerRecord

CONTAINERS = ("down_blocks", "up_blocks", "transformer_blocks", "single_transformer_blocks")


def top_level_blocks(layers: Iterable[LayerRecord | dict]) -> list[LayerRecord | dict]:
    """Depth-1 modules, with list containers (``down_blocks``, ``up_blocks``...) replaced by their items,
    in the order the forward pass runs them (modules never called last)."""
    found = []
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
