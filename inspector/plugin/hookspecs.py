"""Every hook a plugin can implement, grouped by phase.

A plugin is any module or object with functions marked ``@inspector.hookimpl``
whose names match the stubs below; it may take any subset of a hook's
arguments. Built-in plugins (``inspector.plugins``) and third-party ones (the
``ldm_inspector`` entry-point group) are registered the same way.

The host calls each implementation on its own and records an exception as that
plugin's failure, so one broken plugin never stops the others (see
``inspector.plugin.host``). ``firstresult`` hooks stop at the first implementation
that returns something other than ``None``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    from inspector.plugin.context import Component, InspectContext, ProfileContext
    from inspector.plugin.preset import Preset
    from inspector.results.records import ComponentResult, RunResult, Tab

PROJECT = "ldm_inspector"
#: The plugin API this host implements. A plugin may declare
#: ``LDM_INSPECTOR_API = N``; one that needs a newer API is not registered.
API_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- sources -----------------------------------------------------------------

@hookspec
def register_presets(register: Callable[[Preset], None]) -> None:
    """Offer named model presets.

    :param register: call it once per :class:`inspector.plugin.preset.Preset`; the host
        checks names and rejects duplicates, so a plugin need not.
    :return: nothing. Every implementation is called.
    """


# --- inspection --------------------------------------------------------------

@hookspec(firstresult=True)
def inspect_component(context: InspectContext, component: Component) -> ComponentResult | None:
    """Inspect one pipeline component (``pipe.components[name]``).

    :param context: the run: pipeline, options, device, and helpers to make
        example inputs and capture a forward pass (``context.capture``).
    :param component: name, object, and whether it is present.
    :return: a :class:`~inspector.results.records.ComponentResult` if this plugin handles
        the component, else ``None``. First non-``None`` result wins; the
        built-in ``generic`` plugin runs last and handles anything.
    """


@hookspec(firstresult=True)
def profile_component(context: ProfileContext, component: Component, result: ComponentResult) -> bool | None:
    """Time one component (``ldm-inspector profile``), after it was inspected.

    Use ``context.measure(result, name, fn, ...)`` for every timed call: it runs
    the warm-up, repeats, cold call and memory measurement the same way for all
    plugins, computes achieved FLOP/s, and records an out-of-memory error on
    the measurement instead of raising. Add details and views to ``result``.

    :param context: the run (a :class:`~inspector.plugin.context.ProfileContext`).
    :param component: name, object, and whether it is present.
    :param result: the component's inspection result, with FLOPs and shapes.
    :return: ``True`` if this plugin profiled the component, else ``None``.
        First non-``None`` result wins.
    """


@hookspec
def augment_component(context: InspectContext, component: Component, result: ComponentResult) -> None:
    """Add to a component's result after it was inspected.

    Add values to ``result.details``, views to ``result.views`` (tables, series,
    notes that every front end shows) or notes to ``result.notes``.

    :param context: the run.
    :param component: name, object, and whether it is present.
    :param result: the result another plugin produced; mutate it in place.
    :return: nothing. Every implementation is called.
    """


# --- front ends --------------------------------------------------------------

@hookspec
def component_tabs(component: ComponentResult, run: RunResult) -> list[Tab] | None:
    """Tabs to show for one component in the TUI, described as data.

    Called by the TUI for the selected component, on live and on saved runs alike
    (there may be no model loaded: use only ``component`` and ``run``). Each
    :class:`~inspector.results.records.Tab` is a title and a list of views (tables,
    series, notes) that the TUI renders; the same views appear in the HTML and
    CSV reports through ``component.views``. The built-in tokenizer, scheduler
    and VAE tabs come through this hook too.

    :param component: the component's result.
    :param run: the whole run.
    :return: a list of tabs, or ``None``. Every implementation is called; tabs
        appear in plugin order.
    """


def hook_names() -> list[str]:
    """Names of the hooks this module specifies, in definition order."""
    return [name for name, obj in globals().items() if callable(obj) and hasattr(obj, PROJECT + "_spec")]


