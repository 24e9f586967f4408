"""Terminal charts (plotext through textual-plotext) for bar and line series."""
from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot


class SeriesChart(PlotextPlot):
    """A bar chart for categorical x, a line chart for numeric x; several series overlay."""

    DEFAULT_CSS = "SeriesChart { height: 16; min-height: 10; }"

    def __init__(self, title: str, x: list, series: dict[str, list], x_label: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._title, self._x, self._series, self._x_label = title, list(x), dict(series), x_label

    def on_mount(self) -> None:
        plt = self.plt
        plt.title(self._title)
        numeric = all(isinstance(v, (int, float)) for v in self._x)
        if numeric:
            for name, values in self._series.items():
                points = [(x, y) for x, y in zip(self._x, values) if y is not None]
                if points:
                    plt.plot([p[0] for p in points], [p[1] for p in points], label=name, marker="braille")
            if len(self._x) <= 25 and all(isinstance(v, int) for v in self._x):
                plt.xticks(self._x)
        else:
            labels = [str(x) for x in self._x]
            names = list(self._series)
            if len(names) == 1:
                plt.bar(labels, [v or 0 for v in self._series[names[0]]])
            elif names:
                # textual-plotext's stub names the keyword label; plotext's multiple_bar takes labels
                plt.multiple_bar(labels, [[v or 0 for v in self._series[n]] for n in names],
                                 labels=names)  # type: ignore[call-arg]
        if self._x_label:
            plt.xlabel(self._x_label)
        self.refresh()
