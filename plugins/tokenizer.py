"""Tokenizers: vocabulary, maximum length, and what the prompt becomes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.api import View, hookimpl, tabs_from_views, text_length

if TYPE_CHECKING:
    from inspector.api import Component, ComponentResult, InspectContext, ProfileContext, RunResult, Tab


def is_tokenizer(obj: Any) -> bool:
    try:
        from transformers import PreTrainedTokenizerBase
    except ImportError:  # pragma: no cover - transformers is a dependency
        return False
    return isinstance(obj, PreTrainedTokenizerBase)


def paired_encoder(pipe: Any, name: str) -> Any:
    """``tokenizer_2`` feeds ``text_encoder_2``; ``tokenizer`` feeds ``text_encoder``."""
    suffix = name[len("tokenizer"):] if name.startswith("tokenizer") else ""
    return getattr(pipe, "components", {}).get("text_encoder" + suffix)


def length_for(context: Any, name: str, tokenizer: Any) -> int:
    """The text length the prompt is padded to: the tokenizer's ``model_max_length``, or for a
    tokenizer saved without one (transformers writes ``int(1e30)``), the pipeline's own."""
    return text_length(tokenizer, context.pipe, paired_encoder(context.pipe, name))


def tokenize(tokenizer: Any, prompt: str, max_length: int | None = None) -> dict:
    """The pipeline's tokenization of ``prompt`` (padded to ``max_length``, by default the
    tokenizer's own), and what truncation drops."""
    max_length = max_length or text_length(tokenizer)
    full = tokenizer(prompt, add_special_tokens=True, truncation=False)["input_ids"]
    kept = full[: max_length - 1] + [full[-1]] if len(full) > max_length else full
    dropped_ids = full[max_length - 1 : -1] if len(full) > max_length else []
    return {
        "ids": kept,
        "tokens": tokenizer.convert_ids_to_tokens(kept),
        "count": len(full),
        "truncated": len(full) > max_length,
        "dropped_text": tokenizer.decode(dropped_ids) if dropped_ids else "",
    }


@hookimpl
def inspect_component(context: InspectContext, component: Component) -> ComponentResult | None:
    if not component.present or not is_tokenizer(component.obj):
        return None
    tok = component.obj
    result = context.base_result(component, "tokenizer", "tokenizer")
    length = length_for(context, component.name, tok)
    encoded = tokenize(tok, context.options.prompt, length)
    config = getattr(tok, "init_kwargs", {}) or {}
    declared = tok.model_max_length if tok.model_max_length == length else None
    result.details.update({
        "vocab_size": len(tok),
        "model_max_length": declared,
        "text_length": length,
        "pad_token": tok.pad_token,
        "prompt_tokens": encoded["tokens"],
        "prompt_ids": encoded["ids"],
        "prompt_token_count": encoded["count"],
        "truncated": encoded["truncated"],
        "dropped_text": encoded["dropped_text"],
    })
    if config.get("ldm_inspector_vocabulary"):
        result.details["vocabulary"] = config["ldm_inspector_vocabulary"]
    elif config.get("ldm_inspector_note"):
        result.details["vocabulary"] = config["ldm_inspector_note"]
        result.notes.append(f"{config['ldm_inspector_note']}: token ids differ from the real model's")
    if declared is None:
        result.notes.append(f"the tokenizer declares no maximum length (model_max_length "
                            f"{str(tok.model_max_length)[:40]}); prompts are padded to {length} tokens, "
                            "the pipeline's max_sequence_length or the text encoder's positions")
    if encoded["truncated"]:
        result.notes.append(f"prompt has {encoded['count']} tokens, over {length}: "
                            f"truncation drops {encoded['dropped_text']!r}")
    result.views.append(View(
        title="Prompt tokens",
        columns=["position", "token", "id"],
        rows=[[i, t, d] for i, (t, d) in enumerate(zip(encoded["tokens"], encoded["ids"]))],
        hint="tokens",
        tab="Tokenizer",
    ))
    context.shared.setdefault("token_ids", {})[component.name] = encoded["ids"]
    return result


@hookimpl
def profile_component(context: ProfileContext, component: Component, result: ComponentResult) -> bool | None:
    if not component.present or not is_tokenizer(component.obj):
        return None
    tok = component.obj
    prompts = [context.options.prompt] * context.options.batch_size
    length = length_for(context, component.name, tok)

    def encode() -> Any:
        return tok(prompts, padding="max_length", max_length=length, truncation=True,
                   return_tensors="pt")

    context.measure(result, "tokenize", encode, calls_per_run=2 if context.cfg else 1)
    return True


@hookimpl
def component_tabs(component: ComponentResult, run: RunResult) -> list[Tab] | None:
    if component.kind != "tokenizer":
        return None

    d = component.details
    summary = (f"{d.get('prompt_token_count', '?')} tokens of at most "
               f"{d.get('model_max_length') or d.get('text_length', '?')}; "
               f"vocabulary: {d.get('vocabulary', d.get('vocab_size', '?'))}")
    if d.get("truncated"):
        summary += f". Truncation drops: {d.get('dropped_text')!r}"
    return tabs_from_views(component, lead={"Tokenizer": [View(title="Prompt", kind="note", text=summary)]})
