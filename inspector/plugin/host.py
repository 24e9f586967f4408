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
import dataclasses
import importlib
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterable, Literal

import pluggy

from inspector.errors import HookTimeout, InspectorError, describe_exception
from inspector.plugin import hookspecs
from inspector.plugin.preset import Preset
from inspector.plugin.validation import PluginOutputError, check_hook_output
from inspector.results.records import HookFailure, PluginRecord
from inspector.runtime.signals import real_interrupt
from inspector.version import __version__

ENTRY_POINT_GROUP = "ldm_inspector"
ENV_DISABLE_AUTOLOAD = "LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCK = "LDM_INSPECTOR_BLOCK_PLUGINS"
ENV_LOAD_ONLY = "LDM_INSPECTOR_LOAD_PLUGINS"
ENV_TRACE = "LDM_INSPECTOR_TRACE_PLUGINS"
ENV_TIMEOUT = "LDM_INSPECTOR_HOOK_TIMEOUT"
#: the built-in plugins, loaded through the same path as entry-point plugins (pytest keeps its
#: ``default_plugins`` the same way); each can be blocked by its last name
BUILTIN_PLUGINS = (
    "inspector.plugins.presets",
    "inspector.plugins.tokenizer",
    "inspector.plugins.text_encoder",
    "inspector.plugins.unet",
    "inspector.plugins.transformer",
    "inspector.plugins.vae",
    "inspector.plugins.scheduler",
    "inspector.plugins.safety_checker",
    "inspector.plugins.pipeline",
    "inspector.plugins.generic",
)
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


@dataclass
class HookCall:
    """One call of one hook implementation, recorded the same way for every call (as pytest's
    ``CallInfo`` records a test phase): which plugin, which hook, how long it took, what it
    returned (``value``, after the border checks) and what went wrong (``error``: what it raised,
    or a :class:`PluginOutputError` for a value the border refused). The tracer, ``on_error``
    callbacks and the plugin's record all read this one shape."""

    plugin: str
    hook: str
    seconds: float
    value: Any = None
    error: BaseException | None = None

    @property
    def kind(self) -> str:
        """``ok``, or the failure's kind as :class:`HookFailure` names it (exception, oom, timeout)."""
        return "ok" if self.error is None else self.failure().kind

    def failure(self) -> HookFailure:
        """The failure as a run records it on a component (only for a call with an ``error``)."""
        assert self.error is not None
        return HookFailure.from_exception(self.plugin, self.hook, self.error)

    def outcome(self) -> str:
        """What the call gave, in a word or two, for the hook trace."""
        if self.error is not None:
            return f"raised {type(self.error).__name__}"
        return "None" if self.value is None else type(self.value).__name__


OnError = Callable[[HookCall], None]


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
        #: when set, called with the :class:`HookCall` of every hook implementation call
        self.tracer: Callable[[HookCall], None] | None = (
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
        try:
            module = importlib.import_module(module_name)
        except BaseException as exc:  # noqa: BLE001 - a plugin that fails to import is recorded, not fatal
            _pass_on_real_interrupt(exc)
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
            except BaseException as exc:  # noqa: BLE001 - an entry point that fails to load is recorded, not fatal
                _pass_on_real_interrupt(exc)
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
        except BaseException as exc:  # noqa: BLE001 - a failed registration is recorded and undone
            _pass_on_real_interrupt(exc)
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
        wrappers = sorted({caller.name for caller in self.pm.get_hookcallers(plugin) or []
                           for impl in caller.get_hookimpls()
                           if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper)})
        if wrappers:  # each implementation is called on its own, so a wrapper would never run
            self.pm.unregister(name=name)
            record.hooks = []
            record.error = (f"registration failed: {', '.join(wrappers)} is a hook wrapper (wrapper=True or "
                            "hookwrapper=True); this host calls every implementation on its own, in isolation, "
                            "so wrappers are not supported")
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

    def usage(self) -> dict[str, tuple[int, float]]:
        """Each plugin's hook calls and seconds so far: a snapshot for :meth:`plugin_records`."""
        return {name: (record.calls, record.seconds) for name, record in self.records.items()}

    def plugin_records(self, since: dict[str, tuple[int, float]] | None = None) -> list[PluginRecord]:
        """Copies of every plugin's record; with ``since`` (a :meth:`usage` snapshot taken when a run
        began), ``calls`` and ``seconds`` count only that run's calls."""
        copies = []
        for name, record in self.records.items():
            calls, seconds = (since or {}).get(name, (0, 0.0))
            copies.append(dataclasses.replace(record, hooks=list(record.hooks), calls=record.calls - calls,
                                              seconds=max(0.0, record.seconds - seconds)))
        return copies

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
                  on_error: OnError | None = None, **kwargs: Any) -> Any:
        """Call every implementation of ``hook_name`` in pluggy's order, isolating failures.
        ``firstresult`` defaults to what the hook's spec says.

        pluggy's order is last registered first; ``registration_order=True`` reverses
        that, so built-ins (registered first) come first.

        Returns the list of non-``None`` results, or the first one when ``firstresult``.
        A failed call (it raised, or the border refused its value) is reported through ``on_error(call)``
        (default: recorded on the plugin's record) and the next one runs.
        """
        caller = getattr(self.pm.hook, hook_name)
        if firstresult is None:
            firstresult = self.is_firstresult(hook_name)
        results = []
        impls = caller.get_hookimpls()
        for impl in (impls if registration_order else reversed(impls)):
            call = self._call_one(hook_name, impl, kwargs)
            record = self.records.get(impl.plugin_name)
            if record is not None:
                record.calls += 1
                record.seconds += call.seconds
            if self.tracer:
                self.tracer(call)
            if call.error is not None:
                (on_error or self._record_error)(call)
            value = call.value
            if value is not None:
                if firstresult:
                    return value
                results.append(value)
        return None if firstresult else results

    def _call_one(self, hook_name: str, impl: Any, kwargs: dict[str, Any]) -> HookCall:
        """Call one implementation and record what happened; only a real interrupt (a signal our
        handler saw, the TUI's cancel) passes through. A plugin that raises ``KeyboardInterrupt``,
        ``SystemExit``, ``GeneratorExit`` or a bare ``BaseException`` itself has failed, like one
        that raises any other exception."""
        started = time.perf_counter()
        try:
            value = self._call(hook_name, impl, kwargs)
        except BaseException as exc:  # noqa: BLE001 - recorded on the call, blamed on the plugin
            _pass_on_real_interrupt(exc)
            return HookCall(impl.plugin_name, hook_name, time.perf_counter() - started, error=exc)
        value, problem = check_hook_output(hook_name, impl.plugin_name, value, kwargs)
        return HookCall(impl.plugin_name, hook_name, time.perf_counter() - started, value=value,
                        error=PluginOutputError(problem) if problem else None)

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

    def _record_error(self, call: HookCall) -> None:
        record = self.records.get(call.plugin)
        if record is not None and record.error is None and call.error is not None:
            record.error = describe_exception(call.error)

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


def _pass_on_real_interrupt(exc: BaseException) -> None:
    """Raise ``exc`` again when it is a real interrupt: a ``KeyboardInterrupt`` (or our
    ``Terminated``, or the TUI's ``Cancelled``) while our signal handler saw a signal or this thread
    was asked to stop. Anything else a plugin raised, ``SystemExit`` included, is its failure."""
    if isinstance(exc, KeyboardInterrupt) and real_interrupt():
        raise exc


def trace_to_stderr(call: HookCall) -> None:
    print(f"[hook] {call.hook:<20} {call.plugin:<24} {call.seconds * 1000:9.3f} ms -> {call.outcome()}",
          file=sys.stderr)
