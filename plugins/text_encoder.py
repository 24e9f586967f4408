"""Text encoders (CLIP, OpenCLIP, T5...): one forward pass on the tokenized prompt."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.api import TensorInfo, View, hookimpl, tensor_infos, text_length

if TYPE_CHECKING:
    from inspector.api import Component, ComponentResult, InspectContext, ProfileContext, RecordedCall, TensorInfo


def is_text_encoder(obj: Any) -> bool:
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, PreTrainedModel) and hasattr(obj.config, "vocab_size") and \
        not type(obj).__name__.endswith(("VisionModel", "VisionModelWithProjection"))


def paired_tokenizer(context: InspectContext, name: str) -> Any:
    """``text_encoder_2`` reads ``tokenizer_2``; ``text_encoder`` reads ``tokenizer``."""
    suffix = name[len("text_encoder"):] if name.startswith("text_encoder") else ""
    return context.pipe.components.get("tokenizer" + suffix)


def input_ids(context: InspectContext, name: str, encoder: Any) -> Any:
    import torch

    tokenizer = paired_tokenizer(context, name)
    if tokenizer is not None:
        ids = tokenizer([context.options.prompt] * context.options.batch_size, padding="max_length",
                        max_length=text_length(tokenizer, context.pipe, encoder), truncation=True,
                        return_tensors="pt").input_ids
    else:
        length = text_length(None, None, encoder)  # the encoder's own positions
        ids = torch.zeros((context.options.batch_size, length), dtype=torch.long)
    return ids.to(context.device)


def recorded(context: InspectContext, component: Component) -> RecordedCall | None:
    calls = context.recorded_calls(component.name, "forward")
    return calls[0] if calls else None


@hookimpl
def inspect_component(context: InspectContext, component: Component) -> ComponentResult | None:
    if not component.present or not is_text_encoder(component.obj):
        return None
    encoder = component.obj
    result = context.base_result(component, "text_encoder", "text_encoder")
    call = recorded(context, component)
    if call is not None:
        cap = context.replay(result, encoder, call)
        ids = next((t for _, t in call.tensors()), None)
    else:
        ids = input_ids(context, component.name, encoder)
        cap = context.capture(encoder, lambda: encoder(ids))
        context.synthesized(result, {"input_ids": ids}, "the prompt, tokenized to the tokenizer's model_max_length")
        context.fill_capture(result, cap, cap.value)
    is_xl = "XL" in type(context.pipe).__name__
    config = encoder.config
    seen = context.recording.counts if context.recording is not None else {}
    calls_seen = sum(n for (name, method, _), n in seen.items() if name == component.name and method == "forward")
    result.details.update({
        "hidden_size": getattr(config, "hidden_size", getattr(config, "d_model", None)),
        "num_hidden_layers": getattr(config, "num_hidden_layers", getattr(config, "num_layers", None)),
        "num_attention_heads": getattr(config, "num_attention_heads", getattr(config, "num_heads", None)),
        "hidden_act": getattr(config, "hidden_act", getattr(config, "dense_act_fn", None)),
        "model_type": getattr(config, "model_type", None),
        "sequence_length": int(ids.shape[-1]) if ids is not None and ids.dim() >= 1 else None,
        "calls_per_run": calls_seen or None,
    })
    tokenizer = paired_tokenizer(context, component.name)
    limit = text_length(tokenizer, context.pipe, encoder) if tokenizer is not None else None
    if call is not None and ids is not None and limit and ids.dim() >= 1 and ids.shape[-1] != limit:
        result.notes.append(f"the pipeline encodes {ids.shape[-1]} tokens (its max_sequence_length or own rule), "
                            f"not the tokenizer's model_max_length {limit}")
    if is_xl:
        result.details["pipeline_uses"] = "hidden_states[-2]"
        result.notes.append("SDXL concatenates the penultimate hidden states of both text encoders; "
                            "the pooled output comes from the encoder with projection")
    result.views.append(View(title="Outputs", columns=["name", "shape", "dtype"],
                             rows=[[o.name, "x".join(map(str, o.shape)), o.dtype] for o in result.outputs]))
    return result


def _info(name: str, tensor: Any) -> TensorInfo:
    return TensorInfo(name, list(tensor.shape), str(tensor.dtype).replace("torch.", ""))


@hookimpl
def profile_component(context: ProfileContext, component: Component, result: ComponentResult) -> bool | None:
    if not component.present or not is_text_encoder(component.obj):
        return None
    encoder = component.obj
    call = recorded(context, component)
    if call is not None:
        run_once = lambda: call.replay(encoder)  # noqa: E731
    else:
        ids = input_ids(context, component.name, encoder)
        run_once = lambda: encoder(ids)  # noqa: E731
    # encode_prompt runs the encoder for the prompt and, under CFG, for the negative prompt: the
    # recording counted how often
    calls = context.calls_per_run(component.name) or (2 if context.cfg else 1)
    measured = context.measure(result, "forward", run_once, flops=result.flops, calls_per_run=calls)
    if measured is not None:
        result.details["pooled_output"] = next(
            ([o.name, o.shape] for o in tensor_infos(measured.value) if o.name in ("pooler_output", "text_embeds")),
            None)
    return True
