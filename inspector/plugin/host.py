"""The plugin host: loads plugins and calls hooks with per-plugin isolation.

pluggy alone lets one broken entry point stop all loading, stops a hook call at
the first implementation that raises, and leaves a plugin half-registered when
validation fails. This host wraps each of those: every failure is recorded as a
:class:`~inspector.results.records.PluginRecord` error (or a component error) naming the
plugin, and the run goes on.

Environment variables:

``LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD``  set to ``1``: load no entry points.
``LDM_INSPECTOR_BLOCK_PLUGINS``  comma-separated names (built-in or entry point) not to load.
``LDM_INSPECTOR_LOAD_PLUGINS``  comma-separated names: load only these entry points.
``LDM_INSPECTOR_TRACE_PLUGINS``  set to ``1``: log every hook call, its plugin and duration to stderr
(the CLI's ``--trace-hooks`` does the same).
``LDM_INSPECTOR_HOOK_TIMEOUT``  seconds one hook implementation may take (default 1800; 0: no limit).
A plugin that takes longer is recorded as failed with a clear message and the run goes on; its
thread cannot be killed, so it is abandoned (a daemon thread) and what it still does is ignored.
"""
from __future__ import annotations

import contextvars
import copy
import importlib
import math
import os
import sys
import threading
import time
from importlib import metadata
from typing import Any, Callable, Iterable, Literal

import pluggy

from inspector.errors import HookTimeout, InspectorError, describe_exception
from inspector.plugin import hookspecs
from inspector.plugin.preset import Preset
from inspector.plugin.validation import PluginOutputError, check_hook_output
from inspector.results.records import PluginRecord

ENTRY_POINT_GROUP = "ldm_inspector"
ENV_DISABLE_AUTOLOAD = "LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCK = "LDM_INSPECTOR_BLOCK_PLUGINS"
ENV_LOAD_ONLY = "LDM_INSPECTOR_LOAD_PLUGINS"
ENV_TRACE = "LDM_INSPECTOR_TRACE_PLUGINS"
ENV_TIMEOUT = "LDM_INSPECTOR_HOOK_TIMEOUT"
DEFAULT_HOOK_TIMEOUT = 1800.0
#: a week; beyond this (or "inf") threading's wait overflows
MAX_HOOK_TIMEOUT = 7 * 24 * 3600.0


def hook_timeout_from_env() -> float | None:
    raw = os.environ.get(ENV_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_HOOK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise InspectorError(f"{ENV_TIMEOUT}={raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value > MAX_HOOK_TIMEOUT:
        raise InspectorError(f"{ENV_TIMEOUT}={raw!r}: give a number of seconds up to {MAX_HOOK_TIMEOUT:g} "
                             "(0 for no limit)")
    return value if value > 0 else None


OnError = Callable[[str, BaseException], None]


def _env_names(var: str) -> set[str]:
    return {n.strip() for n in os.environ.get(var, "").split(",") if n.strip()}


class Host:
    """Owns the ``PluginManager`` and the record of every plugin it tried to load."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        #: plugin name -> libraries it declares components come from (``LDM_INSPECTOR_LIBRARIES``)
        self.declared_libraries: dict[str, tuple[str, ...]] = {}
        #: when set, called with (hook, plugin, seconds, outcome) after every hook implementation call
        self.tracer: Callable[[str, str, float, str], None] | None = (
            trace_to_stderr if os.environ.get(ENV_TRACE, "") in ("1", "true", "yes") else None)
        #: seconds one hook implementation may take; None: no limit (and no extra thread)
        self.hook_timeout: float | None = hook_timeout_from_env()

    # --- loading ---------------------------------------------------------------

    @classmethod
    def default(cls, *, builtins: bool | Iterable[str] = True, entrypoints: bool | None = None) -> Host:
        """The host a run uses: the built-in plugins (all, or only those named in ``builtins``) and
        the entry-point plugins, minus those the environment blocks or leaves out."""
        host = cls()
        blocked = _env_names(ENV_BLOCK)
        for name in blocked:
            host.pm.set_blocked(name)
        if builtins:
            from inspector.plugins import BUILTIN_PLUGINS
            wanted = None if builtins is True else set(builtins)
            for module_name in BUILTIN_PLUGINS:
                short = module_name.rsplit(".", 1)[-1]
                if short in blocked or (wanted is not None and short not in wanted):
                    continue
                host.load_module(short, module_name, source="builtin")
        if entrypoints is None:
            entrypoints = os.environ.get(ENV_DISABLE_AUTOLOAD, "") not in ("1", "true", "yes")
        if entrypoints:
            host.load_entrypoints(blocked=blocked, only=_env_names(ENV_LOAD_ONLY) or None)
        return host

    def load_module(self, name: str, module_name: str, *, source: Literal["builtin", "entrypoint"]) -> None:
        from inspector import __version__

        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - a plugin that fails to import is recorded, not fatal
            self.records[name] = PluginRecord(name, None, source, error=f"import failed: {describe_exception(exc)}")
            return
        self.register(module, name=name, source=source, version=__version__ if source == "builtin" else None)

    def load_entrypoints(self, *, blocked: Iterable[str] = (), only: set[str] | None = None) -> None:
        blocked = set(blocked)
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or (only is not None and ep.name not in only):
                continue
            dist = getattr(ep, "dist", None)
            version = getattr(dist, "version", None)
            dist_name = getattr(dist, "name", None)
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - an entry point that fails to load is recorded, not fatal
                self.records[ep.name] = PluginRecord(ep.name, version, "entrypoint",
                                                     error=f"import failed: {describe_exception(exc)}",
                                                     distribution=dist_name)
                continue
            self.register(plugin, name=ep.name, source="entrypoint", version=version, distribution=dist_name)

    def register(self, plugin: Any, *, name: str, source: Literal["builtin", "entrypoint"] = "entrypoint",
                 version: str | None = None, distribution: str | None = None) -> bool:
        """Register ``plugin`` under ``name``; on failure record why and leave nothing behind."""
        record = PluginRecord(name, version, source, distribution=distribution)
        self.records[name] = record
        needed = getattr(plugin, "LDM_INSPECTOR_API", hookspecs.API_VERSION)
        if isinstance(needed, int) and needed > hookspecs.API_VERSION:
            record.error = f"needs plugin API {needed}, this host has {hookspecs.API_VERSION}"
            return False
        if self.pm.is_blocked(name):
            record.error = "blocked"
            return False
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - a failed registration is recorded and undone
            if self.pm.get_plugin(name) is not None or self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            record.error = f"registration failed: {describe_exception(exc)}"
            return False
        record.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        unknown = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [] if h.spec is None
                         and not all(i.optionalhook for i in h.get_hookimpls() if i.plugin is plugin))
        if unknown:  # a misspelled hook would otherwise be listed as "ok" and never run (pytest refuses too)
            self.pm.unregister(name=name)
            record.hooks = []
            record.error = (f"registration failed: unknown hook(s) {', '.join(unknown)}; this host has "
                            f"{', '.join(hookspecs.hook_names())}")
            return False
        libraries = getattr(plugin, "LDM_INSPECTOR_LIBRARIES", ())
        if libraries:
            if not (isinstance(libraries, (list, tuple)) and all(
                    isinstance(lib, str) and all(part.isidentifier() for part in lib.split(".")) for lib in libraries)):
                self.pm.unregister(name=name)
                record.hooks = []
                record.error = "registration failed: LDM_INSPECTOR_LIBRARIES must be a tuple of module names"
                return False
            self.declared_libraries[name] = tuple(libraries)
        return True

    def libraries(self) -> tuple[str, ...]:
        """Libraries registered plugins declare that model folders may name (beyond diffusers' own)."""
        return tuple(dict.fromkeys(lib for libs in self.declared_libraries.values() for lib in libs))

    def unregister(self, name: str) -> None:
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self.records.pop(name, None)
        self.declared_libraries.pop(name, None)

    def plugin_records(self) -> list[PluginRecord]:
        return list(self.records.values())

    # --- calling ---------------------------------------------------------------

    # --- one typed method per hook (call sites never name hooks as strings) -----------

    def register_presets(self, register: Callable[[Any], None]) -> None:
        """Every plugin's presets; built-ins first, so none can silently replace a built-in one."""
        self.call_each(hookspecs.register_presets.__name__, registration_order=True, register=register)

    def inspect_component(self, context: Any, component: Any, *, on_error: OnError | None = None) -> Any:
        """The first plugin result for this component (``ComponentResult``), or None."""
        return self.call_each(hookspecs.inspect_component.__name__, on_error=on_error, context=context,
                              component=component)

    def profile_component(self, context: Any, component: Any, result: Any, *,
                          on_error: OnError | None = None) -> bool | None:
        """True once a plugin profiled the component, else None."""
        return self.call_each(hookspecs.profile_component.__name__, on_error=on_error, context=context,
                              component=component, result=result)

    def augment_component(self, context: Any, component: Any, result: Any, *,
                          on_error: OnError | None = None) -> None:
        """Let every plugin add to ``result``."""
        self.call_each(hookspecs.augment_component.__name__, on_error=on_error, context=context,
                       component=component, result=result)

    def component_tabs(self, component: Any, run: Any, *, on_error: OnError | None = None) -> list[Any]:
        """Every plugin's list of tabs for this component, in pluggy's call order."""
        return self.call_each(hookspecs.component_tabs.__name__, on_error=on_error, component=component, run=run)

    def is_firstresult(self, hook_name: str) -> bool:
        """Whether the hook's spec says the first non-None result wins."""
        spec = getattr(self.pm.hook, hook_name).spec
        return bool(spec is not None and spec.opts.get("firstresult"))

    def call_each(self, hook_name: str, *, firstresult: bool | None = None, registration_order: bool = False,
                  on_error: Callable[[str, BaseException], None] | None = None, **kwargs: Any) -> Any:
        """Call every implementation of ``hook_name`` in pluggy's order, isolating failures.
        ``firstresult`` defaults to what the hook's spec says.

        pluggy's order is last registered first; ``registration_order=True`` reverses
        that, so built-ins (registered first) come first.

        Returns the list of non-``None`` results, or the first one when ``firstresult``.
        A raising implementation is reported through ``on_error(plugin_name, exc)``
        (default: recorded on the plugin's record) and the next one runs.
        """
        caller = getattr(self.pm.hook, hook_name)
        if firstresult is None:
            firstresult = self.is_firstresult(hook_name)
        results = []
        impls = caller.get_hookimpls()
        for impl in (impls if registration_order else reversed(impls)):
            if impl.hookwrapper or impl.wrapper:
                continue
            started = time.perf_counter()
            try:
                value = self._call(hook_name, impl, kwargs)
            except Exception as exc:  # noqa: BLE001 - a failing hook is recorded; the other plugins still run
                if self.tracer:
                    self.tracer(hook_name, impl.plugin_name, time.perf_counter() - started,
                                f"raised {type(exc).__name__}")
                (on_error or self._record_error)(impl.plugin_name, exc)
                continue
            value, problem = check_hook_output(hook_name, impl.plugin_name, value, kwargs)
            if problem:
                (on_error or self._record_error)(impl.plugin_name, PluginOutputError(problem))
            if self.tracer:
                self.tracer(hook_name, impl.plugin_name, time.perf_counter() - started,
                            "None" if value is None else type(value).__name__)
            if value is not None:
                if firstresult:
                    return value
                results.append(value)
        return None if firstresult else results

    def _call(self, hook_name: str, impl: Any, kwargs: dict[str, Any]) -> Any:
        """Call one implementation; a third-party one within the time limit. Whatever it raises
        (Ctrl-C and cancellation included) is raised again here, in the caller's thread.

        Built-in plugins run in the caller's thread with no limit: the tool's own measurements
        are never cut short. A third-party hook runs in a thread on a private copy of the
        ``result`` it is handed; the copy is merged back only when the hook returns in time, so
        a thread abandoned at the limit can no longer write into the run."""
        record = self.records.get(impl.plugin_name)
        if self.hook_timeout is None or (record is not None and record.source == "builtin"):
            return impl.function(*[kwargs[arg] for arg in impl.argnames])
        original = kwargs.get("result") if "result" in impl.argnames else None
        private = copy.deepcopy(original) if original is not None else None
        args = [private if arg == "result" and private is not None else kwargs[arg] for arg in impl.argnames]
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["value"] = impl.function(*args)
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
                outcome["error"] = exc

        # Run in a copy of the caller's context, as asyncio.to_thread does: context variables
        # (Textual's current worker, for one) must be visible to the plugin and its callbacks.
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(target,), daemon=True,
                                  name=f"{hook_name}:{impl.plugin_name}")
        worker.start()
        worker.join(self.hook_timeout)
        if worker.is_alive():
            raise HookTimeout(f"did not return from {hook_name} within {self.hook_timeout:g} s "
                              f"(limit: {ENV_TIMEOUT}); abandoned")
        if "error" in outcome:
            raise outcome["error"]
        if private is not None:
            original.__dict__.update(private.__dict__)
        return outcome.get("value")

    def _record_error(self, plugin_name: str, exc: BaseException) -> None:
        record = self.records.get(plugin_name)
        message = describe_exception(exc)
        if record is not None and record.error is None:
            record.error = message

    def presets(self) -> dict[str, Any]:
        found: dict[str, Preset] = {}

        def register(preset: Preset) -> None:
            if not isinstance(preset, Preset):
                raise TypeError(f"register() takes a Preset, got {type(preset).__name__}")
            if preset.name in found:
                raise ValueError(f"preset {preset.name!r} is already registered")
            found[preset.name] = preset

        # Built-ins register first, so a plugin cannot silently replace a built-in preset.
        self.register_presets(register)
        return found


def trace_to_stderr(hook: str, plugin: str, seconds: float, outcome: str) -> None:
    print(f"[hook] {hook:<20} {plugin:<24} {seconds * 1000:9.3f} ms -> {outcome}", file=sys.stderr)
