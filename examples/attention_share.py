"""Attention share: the fraction of one denoiser call spent inside its attention modules.

Replays the call the pipeline itself made to its denoiser (``context.recorded_calls``), with
timing hooks on every attention module (diffusers' ``Attention`` runs its processor inside its
``forward``), and reports the share of the call's time spent there. Runs during ``profile`` only:
on ``meta`` weights or during ``inspect`` nothing is timed.
"""
from __future__ import annotations

import statistics
import time

from inspector.api import View, hookimpl

LDM_INSPECTOR_API = 1
DENOISERS = ("unet", "transformer", "prior")


def attention_modules(model):
    """(name, module) of every module that owns an attention processor."""
    return [(name, m) for name, m in model.named_modules() if hasattr(m, "processor") and hasattr(m, "to_q")]


@hookimpl
def augment_component(context, component, result):
    if component.name not in DENOISERS or not component.present or not hasattr(context, "measure"):
        return
    if context.on_meta:
        return
    calls = context.recorded_calls(component.name, "forward")
    if not calls:
        return
    import torch

    cuda = str(context.device).startswith("cuda")

    def now():
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    model, call = component.obj, calls[0]
    inside: dict[str, float] = {}
    started: dict[str, float] = {}
    handles = []
    for name, module in attention_modules(model):
        def pre(_m, _args, name=name):
            started[name] = now()

        def post(_m, _args, _out, name=name):
            inside[name] = inside.get(name, 0.0) + now() - started.pop(name)

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    shares, totals = [], []
    try:
        with torch.no_grad():
            call.replay(model)  # warm-up, not counted
            for _ in range(max(1, context.options.repeats)):
                inside.clear()
                begin = now()
                call.replay(model)
                total = now() - begin
                totals.append(total)
                shares.append(sum(inside.values()) / total if total > 0 else 0.0)
    finally:
        for handle in handles:
            handle.remove()
    result.metrics["attention_share"] = round(statistics.median(shares), 4)
    rows = [[name, round(seconds * 1000.0, 4)] for name, seconds in sorted(inside.items(), key=lambda kv: -kv[1])]
    result.views.append(View(title="Time in attention (last replay)", columns=["module", "time_ms"], rows=rows,
                             tab="Attention"))
    result.notes.append(f"attention share {statistics.median(shares):.1%} of a denoiser call "
                        f"(median of {len(shares)}; timing hooks add a little to both sides)")
