"""Config values that only make sense as attacks or typos (a tokenizer padding to a billion tokens,
ten billion training timesteps), refused before anything allocates."""
from __future__ import annotations

from typing import Any

from inspector.errors import SourceError

# --- absurd sizes ----------------------------------------------------------------------

#: config key -> largest value any real pipeline uses, with a wide margin
CONFIG_LIMITS = {
    "model_max_length": 1_000_000,
    "max_position_embeddings": 1_000_000,
    "num_train_timesteps": 1_000_000,
    "vocab_size": 10_000_000,
}


def check_config_values(path: Any, data: Any) -> None:
    """Refuse a config whose sizes would make loading or tokenizing allocate without bound."""
    if not isinstance(data, dict):
        return
    for key, limit in CONFIG_LIMITS.items():
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not (-limit <= value <= limit):  # NaN fails too
            raise SourceError(f"{path}: {key} = {value:g} is beyond any real pipeline (at most {limit:,}); refused "
                              "before allocating")
