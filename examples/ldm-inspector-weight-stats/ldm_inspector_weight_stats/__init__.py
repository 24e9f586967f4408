"""Weight statistics for every model component: an example ldm-inspector plugin."""
from __future__ import annotations

from inspector.api import Tab, View, hookimpl

#: The plugin API this plugin was written for; a host with an older API skips it cleanly.
LDM_INSPECTOR_API = 1

NEAR_ZERO = 1e-3
TITLE = "Weight statistics"
NOT_ON_META = "not measurable on meta"


def statistics(parameters) -> tuple[int, float, float, float]:
    """(count, mean |w|, max |w|, % of weights with |w| < NEAR_ZERO) over floating-point tensors."""
    import torch

    count, abs_sum, abs_max, near_zero = 0, 0.0, 0.0, 0
    with torch.no_grad():
        for p in parameters:
            if not p.dtype.is_floating_point or p.is_meta or p.numel() == 0:
                continue
            a = p.detach().abs().float()
            count += a.numel()
            abs_sum += float(a.sum())
            abs_max = max(abs_max, float(a.max()))
            near_zero += int((a < NEAR_ZERO).sum())
    if count == 0:
        return 0, float("nan"), float("nan"), float("nan")
    return count, abs_sum / count, abs_max, 100.0 * near_zero / count


@hookimpl
def augment_component(component, result):
    if not component.present or not component.is_module:
        return
    module = component.obj
    if any(p.is_meta for p in module.parameters()):
        # say why there is no number, in the place the number would be (never an empty value)
        result.metrics.update(weight_abs_mean=NOT_ON_META, weight_near_zero_pct=NOT_ON_META)
        result.notes.append("weight_stats: weights are on meta (shapes only, no values), nothing to measure")
        return
    count, mean, _, near_zero = statistics(module.parameters())
    result.metrics.update(weight_abs_mean=mean, weight_near_zero_pct=near_zero)
    rows = []
    for name, child in module.named_children():
        n, m, mx, nz = statistics(child.parameters())
        if n:
            rows.append([name, n, round(m, 6), round(mx, 6), round(nz, 3)])
    result.views.append(View(title=TITLE, columns=["block", "parameters", "abs_mean", "abs_max", "near_zero_pct"],
                             rows=rows))


@hookimpl
def component_tabs(component, run):
    views = [v for v in component.views if v.title == TITLE]
    mean, near_zero = component.metrics.get("weight_abs_mean"), component.metrics.get("weight_near_zero_pct")
    if not views and mean is None:
        return None
    text = (f"weights: {mean}" if isinstance(mean, str)
            else f"mean |w| {mean}, {near_zero}% of weights below {NEAR_ZERO}")
    summary = View(title="weight_stats", kind="note", text=text)
    return [Tab("Weights", [summary, *views])]
