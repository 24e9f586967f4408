"""The pipeline's components as a tree, each with its share of parameters and, once profiled, of time."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree

from inspector.results import RunResult


def shares(run: RunResult) -> dict[str, tuple[float | None, float | None]]:
    params = {c.name: c.parameters.total for c in run.components if c.parameters}
    times = {c.name: c.timing.median for c in run.components if c.timing}
    p_total, t_total = sum(params.values()) or 0, sum(times.values()) or 0
    return {c.name: (params[c.name] / p_total if c.name in params and p_total else None,
                     times[c.name] / t_total if c.name in times and t_total else None) for c in run.components}


class ComponentTree(Tree):
    DEFAULT_CSS = "ComponentTree { width: 52; }"

    def __init__(self, **kwargs) -> None:
        super().__init__("pipeline", **kwargs)
        self.show_root = True

    def show_run(self, run: RunResult) -> None:
        self.clear()
        self.root.set_label(Text(f"{run.model.pipeline_class} · {run.model.source}", style="bold"))
        for comp in run.components:
            p_share, t_share = shares(run)[comp.name]
            width = max(len(c.name) for c in run.components) + 2
            label = Text(comp.name.ljust(width), style="" if comp.present else "dim")
            if p_share is not None:
                label.append(f"{100 * p_share:5.1f}% params", style="cyan")
            if t_share is not None:
                label.append(f" · {100 * t_share:.1f}% time", style="yellow")
            if not comp.present:
                label.append("absent", style="dim italic")
            if comp.errors:
                label.append("  !", style="bold red")
            self.root.add_leaf(label, data=comp.name)
        self.root.expand()
