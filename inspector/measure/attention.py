"""Which attention processors a pipeline's denoiser runs, and switching them (``--attention``)."""
from __future__ import annotations

from typing import Any

from inspector.errors import OptionError

ATTENTION_PROCESSORS = {"sdpa": "AttnProcessor2_0", "eager": "AttnProcessor"}


def set_attention(pipe: Any, name: str) -> None:
    import diffusers.models.attention_processor as ap

    if name not in ATTENTION_PROCESSORS:
        raise OptionError(f"unknown --attention {name!r}; choose one of {', '.join(ATTENTION_PROCESSORS)}")
    for comp in pipe.components.values():
        if hasattr(comp, "set_attn_processor") and getattr(comp, "attn_processors", None):
            comp.set_attn_processor(getattr(ap, ATTENTION_PROCESSORS[name])())


def attention_in_use(pipe: Any) -> str | None:
    for name in ("unet", "transformer"):
        model = getattr(pipe, name, None)
        processors = getattr(model, "attn_processors", None)
        if processors:
            return ", ".join(sorted({type(p).__name__ for p in processors.values()}))
    return None
