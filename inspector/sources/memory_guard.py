"""Guards the whole run needs: memory before weights exist, absurd sizes, signals, library warnings.

* **Memory.** Before random or pretrained weights are materialized, their bytes are predicted
  (from the models built on ``meta``, or from the safetensors headers), and when they take at
  least half the memory available, the activations of one pipeline call too (the architecture
  built on ``meta`` at the requested size, batch and dtype, see :mod:`inspector.measure.memory_plan`). The sum
  is compared with what the device has: ``psutil``'s available memory on a CPU, free CUDA memory
  on a GPU. A run that cannot fit is refused in one line ("needs X GiB (weights W + peak
  activations A at HxW, batch B), Y GiB available") unless ``--force``.
* **Absurd sizes.** Config values that only make sense as attacks or typos (a tokenizer padding
  to a billion tokens, ten billion training timesteps) are refused before anything allocates.
* **Signals.** SIGTERM and SIGHUP are turned into the same path as Ctrl-C (a :class:`Terminated`,
  which is a ``KeyboardInterrupt``), so partial results are kept; the exit code says which signal
  it was (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP). See :mod:`inspector.runtime.signals`.
* **Warnings.** torch, diffusers and transformers warn about their own deprecations while we call
  them; :func:`library_warnings` captures those at the call, so stderr carries our one line only.
  ``LDM_INSPECTOR_DEBUG=1`` prints them.

No torch at module level: the CLI imports this before it knows whether it will need torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from inspector.errors import OptionError
from inspector.results.units import human_bytes

GIB = 2**30
#: the activations are predicted before loading only when the weights alone take this share of the
#: available memory: the prediction costs about a second on a full-size model, and more than the
#: whole run on a tiny one (``docs/benchmarks.md``)
PREDICT_FROM = 0.5

# --- memory ----------------------------------------------------------------------------


def available_bytes(device: str) -> list[tuple[str, int]]:
    """(where, bytes available) for every memory the weights must fit in."""
    import psutil

    found = [("in memory", int(psutil.virtual_memory().available))]
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        found.append((f"free on {device}", int(free)))
    return found


@dataclass(frozen=True)
class PredictedActivations:
    """The activation part of a predicted peak: bytes above the weights under the pipeline's
    default placement (everything on the device), and the inputs it was predicted for."""

    bytes: int
    #: "512x512, batch 1"
    at: str


#: source of the activation prediction; ``None`` when the architecture cannot be built on meta
Predictor = Callable[[], "PredictedActivations | None"]


def check_memory(needed: int, device: str, *, force: bool, what: str, predict: Predictor | None = None) -> None:
    """Refuse to materialize ``needed`` bytes of weights, plus the activations of one call of the
    pipeline when ``predict`` can predict them, that the device does not have (unless ``force``).

    The prediction (building the architecture on ``meta`` and tracking one example call of each
    component) runs only when the weights alone take at least :data:`PREDICT_FROM` of the memory
    available (and not more than all of it: then the weights alone decide). Below that the check
    is the weights' alone: a run whose activations need more than the other half is not caught
    before loading (it fails as an out-of-memory error when it runs)."""
    if force:
        return

    found = available_bytes(device)
    device_free = found[-1][1]  # the device's own memory: host memory on a CPU, free CUDA memory on a GPU
    activations = None
    if predict is not None and PREDICT_FROM * device_free <= needed <= device_free:
        activations = predict()
    total = needed + (activations.bytes if activations else 0)
    if activations is not None:
        detail = (f"weights {human_bytes(needed)} + peak activations {human_bytes(activations.bytes)} at "
                  f"{activations.at}")
    else:  # refused only when the weights alone do not fit
        detail = "the weights alone; activations not predicted"
    on_gpu = str(device).startswith("cuda")
    for index, (where, available) in enumerate(found):
        if on_gpu and index == 0:  # host memory holds the weights while they load, not the activations
            if needed > available:
                raise OptionError(f"{what} needs {human_bytes(needed)} (weights, while loading), "
                                  f"{human_bytes(available)} available {where}; pass --force to try anyway")
            continue
        if total > available:
            raise OptionError(f"{what} needs {human_bytes(total)} ({detail}), {human_bytes(available)} available "
                              f"{where}; pass --force to try anyway")


def check_cost(predicted: Any, max_seconds: float, what: str) -> None:
    """Refuse a run whose predicted work (:class:`inspector.measure.cost.PredictedCost`, a lower
    bound) takes longer than ``max_seconds``, in one line that names the cost and the ways out."""
    if predicted is None or predicted.seconds <= max_seconds:
        return
    from inspector.measure.cost import human_seconds
    from inspector.results.units import human_flops

    raise OptionError(
        f"{what} is predicted to take at least {human_seconds(predicted.seconds)} ({human_flops(predicted.flops)} "
        f"at {predicted.at}, at this device's measured {predicted.rate / 1e9:.0f} GFLOP/s), over the "
        f"{human_seconds(max_seconds)} limit: lower --height/--width or --steps, use --weights meta for shapes "
        "and FLOPs without running it, raise --max-minutes, or pass --force")


def module_bytes(modules: list[Any], dtype: Any) -> int:
    """Bytes the parameters and buffers of ``modules`` will take in ``dtype`` once materialized."""
    import torch

    size = torch.empty((), dtype=dtype).element_size()
    total = 0
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            total += tensor.numel() * (size if tensor.is_floating_point() else tensor.element_size())
    return total


#: safetensors dtype names -> bytes per element
SAFETENSORS_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "U16": 2, "U32": 4, "U64": 8}
FLOAT_NAMES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0"}


def safetensors_bytes(header: dict[str, Any], dtype_size: int) -> int:
    """Bytes a checked safetensors header's tensors take once loaded with floats in ``dtype_size``."""
    total = 0
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        count = 1
        for dim in info.get("shape") or []:
            count *= int(dim)
        kind: Any = info.get("dtype")
        total += count * (dtype_size if kind in FLOAT_NAMES else SAFETENSORS_SIZES.get(kind, 4))
    return total
