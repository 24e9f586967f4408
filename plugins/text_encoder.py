"""Text encoders (CLIP, OpenCLIP, T5...): one forward pass on the tokenized prompt."""
from __future__ import annotations

from inspector import hookimpl
from inspector.results import View


def is_text_encoder(obj) -> bool:
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, PreTrainedModel) and hasattr(obj.config, "vocab_size") and \
        not type(obj).__name__.endswith(("VisionModel", "VisionModelWithProjection"))


def paired_tokenizer(context, name: str):
    """``text_encoder_2`` reads ``tokenizer_2``; ``text_encoder`` reads ``tokenizer``."""
    suffix = name[len("text_encoder"):] if name.startswith("text_encoder") else ""
    return context.pipe.components.get("tokenizer" + suffix)


def input_ids(context, name: str, encoder):
    import torch

    tokenizer = paired_tokenizer(context, name)
    if tokenizer is not None:
        ids = tokenizer([context.options.prompt] * context.options.batch_size, padding="max_length",
                        max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    else:
        length = getattr(encoder.config, "max_position_embeddings", 77)
        ids = torch.zeros((context.options.batch_size, length), dtype=torch.long)
    return ids.to(context.device)


@hookimpl
def inspect_component(context, component):
    if not component.present or not is_text_encoder(component.obj):
        return None
    encoder = component.obj
    result = context.base_result(component, "text_encoder", "text_encoder")
    ids = input_ids(context, component.name, encoder)
    cap = context.capture(encoder, lambda: encoder(ids))
    result.inputs = [_info("input_ids", ids)]
    context.fill_capture(result, cap, cap.value)
    is_xl = "XL" in type(context.pipe).__name__
    config = encoder.config
    result.details.update({
        "hidden_size": getattr(config, "hidden_size", None),
        "num_hidden_layers": getattr(config, "num_hidden_layers", None),
        "num_attention_heads": getattr(config, "num_attention_heads", None),
        "hidden_act": getattr(config, "hidden_act", None),
        "pipeline_uses": "hidden_states[-2]" if is_xl else "last_hidden_state",
        "negative_prompt": "encoded in a second call of the same shape" if context.cfg else "not used",
    })
    if is_xl:
        result.notes.append("SDXL concatenates the penultimate hidden states of both text encoders; "
                            "the pooled output comes from the encoder with projection")
    result.views.append(View(title="Outputs", columns=["name", "shape", "dtype"],
                             rows=[[o.name, "x".join(map(str, o.shape)), o.dtype] for o in result.outputs]))
    return result


def _info(name, tensor):
    from inspector.results import TensorInfo

    return TensorInfo(name, list(tensor.shape), str(tensor.dtype).replace("torch.", ""))


@hookimpl
def profile_component(context, component, result):
    if not component.present or not is_text_encoder(component.obj):
        return None
    encoder = component.obj
    ids = input_ids(context, component.name, encoder)
    # encode_prompt runs the encoder once for the prompt and, under CFG, once for the negative prompt
    calls = 2 if context.cfg else 1
    measured = context.measure(result, "forward", lambda: encoder(ids), flops=result.flops, calls_per_run=calls)
    if measured is not None:
        from inspector.capture import tensor_infos

        result.details["pooled_output"] = next(
            ([o.name, o.shape] for o in tensor_infos(measured.value) if o.name in ("pooler_output", "text_embeds")),
            None)
    return True
