"""The pipeline's components as a tree, each with its share of parameters and, once profiled, of time."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Tree

from inspector.results.records import RunResult


def shares(run: RunResult) -> dict[str, tuple[float | None, float | None]]:
    """Each component's share of the parameters and of the real pipeline run (not of the sum of
    isolated calls: a text encoder that takes 0.1 s of a 38 s run is 0.3%, whatever its own call)."""
    pipeline = run.pipeline if run.pipeline is not None and not run.pipeline.error else None
    return {c.name: (run.parameter_share(c.name), pipeline.component_share(c.name, c.kind) if pipeline else None)
            for c in run.components}


class ComponentTree(Tree):
    """The root is the pipeline (select it for the overview); the tree takes a share of the width."""

    # min-width 29: name, params% and run% at 80 columns
    DEFAULT_CSS = "ComponentTree { width: 30%; min-width: 29; max-width: 44; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("pipeline", **kwargs)
        self.show_root = True

    def show_run(self, run: RunResult) -> None:
        self.clear()
        self.root.set_label(Text(f"{run.model.source} · {run.model.pipeline_class}", style="bold"))
        self.root.data = None
        all_shares = shares(run)
        width = max((len(c.name) for c in run.components if c.present), default=0) + 1
        for comp in run.components:
            p_share, t_share = all_shares[comp.name]
            label = Text(comp.name.ljust(width), style="" if comp.present else "dim")
            if p_share is not None:
                label.append(f"{100 * p_share:3.0f}%", style="cyan")
            if t_share is not None:
                label.append(("    " if p_share is None else "") + f" {100 * t_share:3.0f}%", style="yellow")
            if comp.timing is not None and comp.timing.unstable:
                label.append(" !", style="bold yellow")
            if not comp.present:
                label.append(" absent", style="dim italic")
            if comp.errors:
                label.append("  !", style="bold red")
            self.root.add_leaf(label, data=comp.name)
        self.root.expand()
