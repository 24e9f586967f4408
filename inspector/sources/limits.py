"""Config values that only make sense as attacks or typos (a tokenizer padding to a billion tokens,
ten billion training timesteps, a text encoder of a billion layers), refused before anything
allocates or builds.

Every limit is far above the largest value a real configuration carries (the figures beside each),
and what real libraries write is accepted: transformers saves a tokenizer without a maximum length
as ``model_max_length: int(1e30)`` (:data:`NO_LENGTH_LIMIT`), which means "no limit", not an attack.
"""
from __future__ import annotations

import re
from typing import Any

from inspector.errors import SourceError

# --- absurd sizes ----------------------------------------------------------------------

#: transformers' ``VERY_LARGE_INTEGER`` and ``LARGE_INTEGER``: what it writes as ``model_max_length``
#: for a tokenizer saved without one (Sana's and Lumina2's Gemma tokenizers, ByT5, many Mistral
#: and Llama tokenizers). They mean "no limit"; the length used then comes from elsewhere
#: (:func:`text_length`).
NO_LENGTH_LIMIT = (int(1e30), int(1e20))

#: The longest text a tokenizer may pad to: twice Qwen3-2507's 262,144 and four times the 131,072
#: of Llama 3.1 and Qwen2.5-VL. A text encoder runs the whole padded length, and attention over it
#: is quadratic: 999,999 tokens through a tiny CLIP with random weights ran for ten minutes.
MAX_TEXT_LENGTH = 2**19
#: Elsewhere (a model's config may carry ``model_max_length`` as metadata: KimiLinear's default is
#: 1,048,576), and for an embedding table of positions (on ``meta`` it costs nothing; random weights go through the
#: memory guard): Llama 4 Scout declares 10,485,760, MiniMax-Text-01 10,240,000.
MAX_POSITIONS = 2**24

#: config key -> largest value accepted: the largest any real pipeline uses, with a wide margin
CONFIG_LIMITS = {
    "model_max_length": MAX_POSITIONS,  # in a tokenizer's own config: MAX_TEXT_LENGTH
    "max_position_embeddings": MAX_POSITIONS,
    "n_positions": MAX_POSITIONS,
    "num_train_timesteps": 1_000_000,
    "vocab_size": 10_000_000,
}

#: config key -> smallest value accepted: a text encoder of no tokens cannot embed a prompt
CONFIG_MINIMUMS = {"vocab_size": 1}

#: Layer and block counts. Building a model on ``meta`` takes about 3 ms per layer, and a count
#: of a billion never ends (memory grows by 20 MB/s). Real stacks are at most 126 deep (Llama 3.1
#: 405B; diffusion models: QwenImage 60, Wan 40, Flux 19 + 38, HunyuanVideo 20 + 40, T5-XXL 24,
#: Gemma 2 46, Llama 3 70B 80).
MAX_LAYER_COUNT = 1000
#: Counts of layers inside each block (a UNet's ``layers_per_block`` is 1 to 3, SDXL's
#: ``transformer_layers_per_block`` at most 10, Stable Cascade's ``block_repeat`` at most 3).
MAX_PER_BLOCK_COUNT = 100
#: The layers one config makes: its stacks add up, the counts inside each block multiply (levels x
#: layers per block x transformer layers per layer). Real ones are in the hundreds (Flux 19 + 38,
#: SDXL's UNet 3 levels x 2 x 10, SeamlessM4T's five stacks 85, T5 24 + 24).
MAX_LAYER_PRODUCT = 2048
#: Entries of a list of block types or block widths: a UNet or VAE has 2 to 5 levels.
MAX_BLOCK_LEVELS = 64

#: keys that count layers or blocks: ``num_hidden_layers``, ``num_layers``, ``num_single_layers``,
#: ``encoder_layers``, ``n_layer``, ``depth``, ``num_res_blocks``, ``layers_per_block``,
#: ``transformer_layers_per_block``, ``block_repeat``, ... (index lists such as
#: ``mlp_only_layers`` hold layer numbers, which these bounds also fit)
COUNT_KEY = re.compile(r"^(?:[a-z0-9]+_)*(?:layers?|blocks|depths?|repeats?)(?:_per_(?:mid_)?block)?$")
PER_BLOCK_KEY = re.compile(r"(?:_per_(?:mid_)?block$|^num_res_blocks$|repeats?$)")
#: lists whose length is the number of levels (blocks) a model builds
LEVEL_KEY = re.compile(r"(?:_block_types$|^block_out_channels$)")
#: nested configs (``text_config``, ``vision_config``, ...) are checked as deep as this
MAX_NESTING = 8


def check_config_values(path: Any, data: Any, depth: int = 0) -> None:
    """Refuse a config whose sizes would make loading, building or tokenizing run without bound."""
    if not isinstance(data, dict) or depth > MAX_NESTING:
        return
    tokenizer = depth == 0 and str(path).endswith("tokenizer_config.json")
    for key, limit in CONFIG_LIMITS.items():
        if key == "model_max_length" and tokenizer:
            limit = MAX_TEXT_LENGTH  # what the prompt is padded to, and the text encoder runs
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key == "model_max_length" and value in NO_LENGTH_LIMIT and isinstance(value, int):
            continue  # transformers' own "no limit"
        if not (-limit <= value <= limit):  # NaN fails too
            raise SourceError(f"{path}: {key} = {value:g} is beyond any real pipeline (at most {limit:,}); refused "
                              "before allocating")
        if key in CONFIG_MINIMUMS and value < CONFIG_MINIMUMS[key]:
            raise SourceError(f"{path}: {key} = {value:g} is below any real model (at least {CONFIG_MINIMUMS[key]})")
    _check_layer_counts(path, data)
    for value in data.values():
        if isinstance(value, dict):
            check_config_values(path, value, depth + 1)


def _check_layer_counts(path: Any, data: dict[str, Any]) -> None:
    stacks = 0  # independent stacks add up (Flux: 19 double + 38 single blocks)
    nested = 1  # counts inside each block multiply (layers per block x transformer layers per layer)
    levels = 1  # and so do the levels (a UNet's down blocks)
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        if LEVEL_KEY.search(key) and isinstance(value, list):
            if len(value) > MAX_BLOCK_LEVELS:
                raise SourceError(f"{path}: {key} has {len(value):,} entries, beyond any real model (at most "
                                  f"{MAX_BLOCK_LEVELS}); refused before building")
            levels = max(levels, len(value))
            continue
        if not COUNT_KEY.match(key):
            continue
        counts = _ints(value)
        if not counts:
            continue
        per_block = bool(PER_BLOCK_KEY.search(key))
        limit = MAX_PER_BLOCK_COUNT if per_block else MAX_LAYER_COUNT
        worst = max(counts, key=abs)
        if abs(worst) > limit:
            raise SourceError(f"{path}: {key} = {worst:g} is beyond any real model (at most {limit:,}); refused "
                              "before building")
        if key.startswith(("max_", "min_")) or (isinstance(value, list) and not per_block):
            continue  # a threshold (max_window_layers) or a list of layer numbers (mlp_only_layers)
        if per_block:
            nested *= max(1, int(max(counts)))
        else:
            stacks += max(0, int(max(counts)))
    total = levels * nested * max(1, stacks)
    if total > MAX_LAYER_PRODUCT:
        raise SourceError(f"{path}: its layer and block counts make {total:,} layers, beyond any real "
                          f"model (at most {MAX_LAYER_PRODUCT:,}); refused before building")


def _ints(value: Any, depth: int = 0) -> list[int | float]:
    """The numbers in a count (an int, or a list of them, nested as SDXL's per-block lists are)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)) and value == value:  # NaN is left to the library
        return [value]
    if isinstance(value, list) and depth < 4:
        return [n for item in value[:MAX_LAYER_COUNT + 1] for n in _ints(item, depth + 1)]
    return []


# --- the text length a tokenizer stands for --------------------------------------------

def declared_length(tokenizer: Any) -> int | None:
    """The tokenizer's ``model_max_length`` when it is a real bound, else ``None`` (transformers'
    "no limit", or anything not a positive integer up to :data:`MAX_TEXT_LENGTH`)."""
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TEXT_LENGTH:
        return None
    return value


def text_length(tokenizer: Any, pipe: Any = None, encoder: Any = None, default: int = 77) -> int:
    """How many tokens a prompt is padded to for ``tokenizer``: its ``model_max_length`` when that
    is a bound; for a tokenizer without one (``int(1e30)``), the pipeline's own
    ``max_sequence_length`` default, else the text encoder's positions, else ``default``. Never
    more than :data:`MAX_TEXT_LENGTH`."""
    declared = declared_length(tokenizer)
    if declared is not None:
        return declared
    for candidate in (_pipeline_default(pipe), _encoder_positions(encoder)):
        if candidate is not None:
            return candidate
    return default


def _bounded(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TEXT_LENGTH:
        return None
    return value


def _pipeline_default(pipe: Any) -> int | None:
    if pipe is None:
        return None
    import inspect

    try:
        parameter = inspect.signature(type(pipe).__call__).parameters.get("max_sequence_length")
    except (TypeError, ValueError):
        return None
    return _bounded(parameter.default) if parameter is not None else None


def _encoder_positions(encoder: Any) -> int | None:
    config = getattr(encoder, "config", None)
    for key in ("max_position_embeddings", "n_positions"):
        found = _bounded(getattr(config, key, None))
        if found is not None:
            return found
    return None
