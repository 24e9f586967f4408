"""``inspector.inspect(pipe)`` and ``inspector.profile(pipe)``: the tool from Python and notebooks.

The target is the pipeline already in hand (a diffusers ``DiffusionPipeline``) or any source the
command line takes (``"tiny-sd"``, a folder, a checkpoint, a cached repo id). Options have the
command line's names and defaults (``--batch-size`` is ``batch_size=``; ``--no-end-to-end`` is
``end_to_end=False``). The pipeline is left exactly as it was found (:mod:`inspector.pipeline_state`).

Both return the :class:`~inspector.results.records.RunResult` every front end renders; in Jupyter
it displays itself as a compact table (:func:`register_notebook_display`). Nothing heavy is
imported here: torch and diffusers come with the first call.
"""
from __future__ import annotations

import numbers
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from inspector.errors import InspectorError, OptionError, did_you_mean
from inspector.results import limits

#: The command line's limits, which also bound what a saved run holds (:mod:`inspector.results.limits`).
MAX_SIZE, MAX_BATCH, MAX_STEPS = limits.MAX_SIZE, limits.MAX_BATCH, limits.MAX_STEPS


@dataclass(frozen=True)
class Option:
    """One keyword option: its default, and what its values may be."""

    default: Any
    kind: str  # int, float, str, bool, choice, path
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    #: the options dataclass field it fills, where the name differs
    field: str | None = None

    def check(self, name: str, value: Any) -> Any:
        """``value`` if this option takes it, else ``ValueError`` saying what it takes."""
        if value is None and (self.optional or self.default is None):
            return None
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{name}={value!r}: expected True or False")
            return value
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name}={value!r}: expected a whole number")
            value = int(value)
        elif self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name}={value!r}: expected a number")
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"{name}={value!r}: expected a finite number")
        elif self.kind == "path":
            if not isinstance(value, (str, os.PathLike)):
                raise ValueError(f"{name}={value!r}: expected a path")
            return str(value)
        elif not isinstance(value, str):
            raise ValueError(f"{name}={value!r}: expected a string")
        if self.kind == "choice" and value not in self.choices:
            raise ValueError(f"{name}={value!r}{did_you_mean(value, self.choices)}: "
                             f"choose one of {', '.join(self.choices)}")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise ValueError(f"{name}={value!r}: must be {'above' if self.low_open else 'at least'} {_num(self.low)}")
        if self.high is not None and value > self.high:
            raise ValueError(f"{name}={value!r}: must be at most {_num(self.high)}")
        return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


#: Options of both commands that shape the run's inputs (``InspectOptions`` fields).
RUN_OPTIONS = {
    "height": Option(None, "int", low=1, high=MAX_SIZE),
    "width": Option(None, "int", low=1, high=MAX_SIZE),
    "batch_size": Option(1, "int", low=1, high=MAX_BATCH),
    "prompt": Option("a photo of an astronaut riding a horse on mars", "str"),
    "negative_prompt": Option("", "str"),
    "guidance_scale": Option(7.5, "float", low=-limits.MAX_GUIDANCE, high=limits.MAX_GUIDANCE),
    "steps": Option(50, "int", low=1, high=MAX_STEPS),
    "seed": Option(0, "int", low=limits.MIN_INT, high=limits.MAX_INT),
    "frames": Option(None, "int", low=1, high=limits.MAX_FRAMES),
}
#: Options that say how to load a source string; a pipeline object is taken as it is.
INSPECT_SOURCE = {
    "weights": Option(None, "choice", choices=("meta", "random", "pretrained")),
    "arch": Option(None, "str"),
    "dtype": Option("float32", "choice", choices=("float32", "float16", "bfloat16")),
    "device": Option("auto", "choice", choices=("auto", "cpu", "cuda")),
    "allow_download": Option(False, "bool"),
    "allow_pickle": Option(False, "bool"),
    "force": Option(False, "bool"),
    "max_minutes": Option(5.0, "float", low=0, low_open=True),
}
PROFILE_SOURCE = {
    **INSPECT_SOURCE,
    "weights": Option(None, "choice", choices=("random", "pretrained")),
    "dtype": Option("auto", "choice", choices=("auto", "float32", "float16", "bfloat16")),
}
INSPECT_OPTIONS = {**RUN_OPTIONS, "fits": Option(None, "str")}
PROFILE_OPTIONS = {
    **RUN_OPTIONS,
    "allow_cpu_float16": Option(False, "bool"),
    "warmup": Option(1, "int", low=0, high=limits.MAX_REPEATS),
    "repeats": Option(5, "int", low=1, high=limits.MAX_REPEATS),
    "e2e_repeats": Option(3, "int", low=1, high=limits.MAX_REPEATS),
    "scheduler": Option(None, "str"),
    "attention": Option(None, "choice", choices=("sdpa", "eager")),
    "peak_tflops": Option(None, "float", low=0, low_open=True, high=limits.MAX_PEAK_TFLOPS),
    "image": Option(None, "path", field="image_path"),
    "save_image": Option(None, "path", field="image_out"),
    "end_to_end": Option(True, "bool"),
    "trace": Option(None, "path"),
    "operators": Option(True, "bool"),
    "max_time": Option(1.0, "float", low=0, high=limits.MAX_SECONDS),
    "max_spread": Option(0.10, "float", low=0, low_open=True, high=limits.MAX_SPREAD),
}


def resolve_options(command: str, run_options: dict[str, Option], source_options: dict[str, Option],
                    given: dict[str, Any], *, from_source: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(run options, source options)``, every one given checked and the rest at its default.

    An unknown name is a ``TypeError`` (with the closest names), as for any Python call; a source
    option given with a pipeline object too, since that pipeline is used as it is."""
    known = {**run_options, **source_options}
    for name in given:
        if name not in known:
            raise TypeError(f"{command}() got an unexpected option {name!r}{did_you_mean(name, known)}")
        if name in source_options and not from_source:
            raise TypeError(f"{command}() option {name!r} says how to load a source; a pipeline object is "
                            "used as it is (set its device and dtype with pipe.to(...) first)")
    run = {(opt.field or name): opt.check(name, given.get(name, opt.default)) for name, opt in run_options.items()}
    source = {name: opt.check(name, given.get(name, opt.default)) for name, opt in source_options.items()}
    return run, source


# --- the host -----------------------------------------------------------------------------

_host: Any = None


def default_host() -> Any:
    """The plugin host these functions use: built once per process (built-ins and entry points)."""
    global _host
    if _host is None:
        from inspector.plugin.host import Host

        _host = Host.default()
    return _host


# --- targets ------------------------------------------------------------------------------

def _is_source(target: Any) -> bool:
    return target is None or isinstance(target, (str, os.PathLike))


def _is_module(target: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(target, torch.nn.Module)


def loaded_from_object(pipe: Any, inputs: Any = None) -> Any:
    """A :class:`~inspector.sources.loading.LoadedPipeline` for an object the caller built: a
    diffusers pipeline (its source is its class name, its weights ``pretrained``, ``meta`` when its
    parameters are), or one ``torch.nn.Module`` (``pipe.unet``), held as the only component of a
    :class:`~inspector.sources.single_model.SingleModel`, its ``inputs`` replayed as its own call."""
    from inspector.sources.loading import LoadedPipeline

    if isinstance(pipe, LoadedPipeline):
        return pipe
    if _is_module(pipe):
        from inspector.sources.single_model import SingleModel, recording_of

        holder = SingleModel(pipe)
        return LoadedPipeline(pipe=holder, source=type(pipe).__name__, kind="model",
                              weights="meta" if _on_meta(holder) else "pretrained",
                              recording=recording_of(holder, inputs))
    if inputs is not None:
        raise TypeError("inputs= goes with a single model (inspector.inspect(pipe.unet, inputs=...)); "
                        "a pipeline's components get the inputs its own call passes them")
    diffusers = sys.modules.get("diffusers")
    pipeline_type = getattr(diffusers, "DiffusionPipeline", None) if diffusers is not None else None
    if pipeline_type is None or not isinstance(pipe, pipeline_type):
        raise TypeError(f"expected a diffusers pipeline (DiffusionPipeline), a model (torch.nn.Module, such as "
                        f"pipe.unet) or a source string such as 'tiny-sd' or a folder, not {type(pipe).__name__}")
    return LoadedPipeline(pipe=pipe, source=type(pipe).__name__, kind="object",
                          weights="meta" if _on_meta(pipe) else "pretrained")


def _on_meta(pipe: Any) -> bool:
    from inspector.measure.recording import _on_meta as on_meta  # the rule the recording itself uses

    return on_meta(pipe)


def check_source_target(model: str | None, *, arch: str | None = None, weights: str | None = None,
                        allow_pickle: bool = False, allow_download: bool = False, height: int | None = None,
                        width: int | None = None) -> Any:
    """The checks run before anything is loaded (or torch imported): the source resolves and the
    sizes fit it. Returns the precheck's answer (``configs``: the folder its configs are in)."""
    from inspector.sources.precheck import check_sizes, check_source

    checked = check_source(model, arch=arch, weights=weights, allow_pickle=allow_pickle,
                           allow_download=allow_download)
    check_sizes(height, width, checked.configs)
    for label, value in (("height", height), ("width", width)):
        if value is not None and value > MAX_SIZE:
            raise OptionError(f"--{label} {value} is more than {MAX_SIZE}: refused before allocating")
    return checked


# --- the one code path of both commands ---------------------------------------------------

def run_command(command: str, target: Any, options: dict[str, Any], *, host: Any = None, inputs: Any = None,
                progress: Any = None, checked: Any = None) -> Any:
    """Run ``inspect`` or ``profile`` on ``target`` (a source string, ``None`` for the default
    model, a pipeline object or one model) with ``options`` by their Python names: the one path
    the command line and :func:`inspect`/:func:`profile` both take. Raises ``TypeError`` and
    ``ValueError`` for options the Python caller got wrong, :class:`~inspector.errors.InspectorError`
    for the rest (which the command line prints in one line). ``checked``: the precheck's answer,
    where the caller already ran :func:`check_source_target`."""
    from_source = _is_source(target)
    tables = (INSPECT_OPTIONS, INSPECT_SOURCE) if command == "inspect" else (PROFILE_OPTIONS, PROFILE_SOURCE)
    run_options, source = resolve_options(command, *tables, options, from_source=from_source)
    if inputs is not None and from_source:
        raise TypeError("inputs= goes with a single model (inspector.inspect(pipe.unet, inputs=...)), not a source")
    host = host or default_host()
    model = None if target is None or not from_source else str(target)
    if from_source and checked is None:
        checked = check_source_target(model, arch=source["arch"], weights=source["weights"],
                                      allow_pickle=source["allow_pickle"], allow_download=source["allow_download"],
                                      height=run_options["height"], width=run_options["width"])
    from inspector.pipeline_state import preserved

    if command == "inspect":
        from inspector.inspection import inspect_loaded, run_inspect
        from inspector.plugin.context import InspectOptions

        if run_options["fits"] is not None:
            from inspector.measure.devices import resolve_target

            resolve_target(run_options["fits"])  # a bad value fails before loading
        inspect_options = InspectOptions(**run_options)
        if from_source:
            from inspector.measure.devices import resolve_device
            from inspector.sources.loading import SourceSpec

            spec = SourceSpec(model=model, weights=source["weights"], arch=source["arch"], dtype=source["dtype"],
                              device=resolve_device(source["device"]), seed=run_options["seed"],
                              allow_download=source["allow_download"], allow_pickle=source["allow_pickle"],
                              force=source["force"], max_seconds=60 * source["max_minutes"])
            with preserved(None):
                return run_inspect(host, spec, inspect_options, progress)
        loaded = loaded_from_object(target, inputs)
        with preserved(loaded.pipe):
            return inspect_loaded(host, loaded, inspect_options, progress)

    from inspector.profiling import ProfileOptions, prepare_profile, run_profile

    allow_cpu_float16 = run_options.pop("allow_cpu_float16")
    if run_options["image_path"] is not None:
        from inspector.files import check_image_file

        check_image_file(Path(run_options["image_path"]))
    if from_source:
        from inspector.sources.precheck import check_scheduler

        check_scheduler(checked.configs, run_options["scheduler"])
        seed = run_options.pop("seed")
        spec, profile_options = prepare_profile(host, model, allow_cpu_float16=allow_cpu_float16, seed=seed,
                                                **source, **run_options)
        with preserved(None):
            return run_profile(host, spec, profile_options, allow_cpu_float16=allow_cpu_float16, progress=progress)
    from inspector.inspection import pipeline_device_dtype
    from inspector.sources.loading import SourceSpec

    loaded = loaded_from_object(target, inputs)
    with preserved(loaded.pipe):
        device, dtype = pipeline_device_dtype(loaded.pipe)
        spec = SourceSpec(model=loaded.source, weights=loaded.weights, dtype=str(dtype).replace("torch.", ""),
                          device=str(device), seed=run_options["seed"])
        return run_profile(host, spec, ProfileOptions(**run_options), allow_cpu_float16=allow_cpu_float16,
                           loaded=loaded, progress=progress)


def inspect(target: Any, *, inputs: Any = None, progress: Any = True, **options: Any) -> Any:
    """Parameters, per-layer shapes and FLOPs of every component, and the predicted peak memory.

    ``target``: a diffusers pipeline; one model (``pipe.unet``, any ``torch.nn.Module``), its
    inputs synthesized as for a pipeline or given as ``inputs=`` (a dict of keyword arguments, a
    tuple of positional ones, or one tensor; an autoencoder's are the latents it decodes); or a
    source string as the command line takes (``"tiny-sd"``, a folder). ``options``:
    ``ldm-inspector inspect``'s, by the same names and with the same defaults: ``height``,
    ``width``, ``batch_size``, ``prompt``, ``negative_prompt``, ``guidance_scale``, ``steps`` (50),
    ``seed``, ``frames``, ``fits``; for a source string also ``weights``, ``arch``, ``dtype``,
    ``device``, ``allow_download``, ``allow_pickle``, ``force``. ``progress``: shown where the
    call runs (a widget or a line in a notebook, a line on a terminal's stderr) unless ``False``;
    a callable gets ``(stage, fraction, detail)``. The object given comes back exactly as it was.
    Returns the run (:class:`~inspector.results.records.RunResult`)."""
    return _call("inspect", target, inputs, progress, options)


def profile(target: Any, *, inputs: Any = None, progress: Any = True, **options: Any) -> Any:
    """Time and measure the memory of every component, and of the whole pipeline, step by step.

    ``target``, ``inputs`` and ``progress`` as for :func:`inspect` (one model gets no end-to-end
    call). ``options``: ``ldm-inspector profile``'s, by the same names and with the same defaults:
    those of :func:`inspect` (but ``fits``) and ``warmup`` (1), ``repeats`` (5), ``e2e_repeats``
    (3), ``scheduler``, ``attention``, ``peak_tflops``, ``image``, ``save_image``, ``end_to_end``
    (True; ``--no-end-to-end``), ``trace``, ``operators`` (True; ``--no-operators``), ``max_time``
    (1.0), ``max_spread`` (0.10), ``allow_cpu_float16``; a source string's ``dtype`` defaults to
    ``auto`` (float16 on CUDA, float32 on a CPU). A pipeline object comes back exactly as it was
    (a ``scheduler`` or ``attention`` swapped for the run included). An interrupt (Ctrl-C,
    Jupyter's stop) returns what was measured, with ``interrupted`` set."""
    return _call("profile", target, inputs, progress, options)


def _call(command: str, target: Any, inputs: Any, progress: Any, options: dict[str, Any]) -> Any:
    register_notebook_display()
    from inspector.progress import progress_display

    try:
        with progress_display(progress, command) as report:
            return run_command(command, target, options, inputs=inputs, progress=report)
    except InspectorError as exc:
        raise ValueError(python_spelling(str(exc))) from exc


#: ``--name VALUE`` in a message, as the command line spells an option
_FLAG = re.compile(r"--([a-z][a-z0-9-]*)(?: (\S+))?")
_WORD = re.compile(r"[a-z]+")


def _is_value(option: Option, text: str) -> bool:
    """Whether ``text``, after a flag in a message, is that option's value (``--height 20000``)
    rather than the next word of the sentence (``--height or``)."""
    if not text:
        return False
    if option.kind in ("int", "float"):
        try:
            float(text)
        except ValueError:
            return False
        return True
    if option.kind == "choice":
        return text in option.choices
    return not _WORD.fullmatch(text)


def python_spelling(message: str) -> str:
    """A message written for the command line, with its options spelled as keyword arguments:
    ``use --weights random`` is ``use weights='random'``, ``pass --force`` is ``pass force=True``.
    Flags that are no option of these functions stay as they are."""
    known = {**INSPECT_OPTIONS, **PROFILE_OPTIONS, **INSPECT_SOURCE, **PROFILE_SOURCE}
    known = {name: option if name not in INSPECT_SOURCE else  # inspect's and profile's choices both
             replace(option, choices=tuple(dict.fromkeys(INSPECT_SOURCE[name].choices + option.choices)))
             for name, option in known.items()}
    flags = {f"no-{name.replace('_', '-')}": name for name, o in known.items() if o.kind == "bool" and o.default}

    def spell(match: re.Match[str]) -> str:
        flag, value = match.group(1), match.group(2)
        if flag in flags:
            return f"{flags[flag]}=False" + (f" {value}" if value else "")
        name = flag.replace("-", "_")
        option = known.get(name)
        if option is None:
            return match.group(0)
        if option.kind == "bool":
            return f"{name}=True" + (f" {value}" if value else "")
        if value is None:
            return f"{name}="
        tail = ""
        while value and value[-1] in ":,;.)":
            value, tail = value[:-1], value[-1] + tail
        if not _is_value(option, value):  # a word of the sentence, not the option's value
            return f"{name}= {value}{tail}" if value else f"{name}={tail}"
        if option.kind in ("int", "float") or value[:1] in ("'", '"'):
            return f"{name}={value}{tail}"
        return f"{name}={value!r}{tail}"

    return _FLAG.sub(spell, message)


# --- saved runs ---------------------------------------------------------------------------

def load_run(path: str | os.PathLike[str]) -> Any:
    """A run saved as JSON (``--json``, :func:`save_run`), checked against the schema."""
    from inspector.reports import json_report

    try:
        return json_report.load(Path(path))
    except InspectorError as exc:
        raise ValueError(str(exc)) from exc


def compare(a: Any, b: Any, a_label: str | None = None, b_label: str | None = None) -> Any:
    """Differences and ratios (B / A) of two runs, per component and per block. ``a`` and ``b``:
    runs, or paths of saved ones (then labelled by file name)."""
    from inspector.reports.compare import compare as compare_runs

    def run_of(x: Any, default: str) -> tuple[Any, str]:
        if isinstance(x, (str, os.PathLike)):
            return load_run(x), Path(x).name
        return x, default

    run_a, label_a = run_of(a, "A")
    run_b, label_b = run_of(b, "B")
    return compare_runs(run_a, run_b, a_label or label_a, b_label or label_b)


def save_run(run: Any, path: str | os.PathLike[str]) -> list[Path]:
    """Write ``run`` with the command line's writers, by what ``path`` names: ``.json`` the run,
    ``.html`` the self-contained report, a folder (no suffix, or an existing folder) the CSV
    tables. Returns the files written."""
    target = Path(path)
    suffix = target.suffix.lower()
    try:
        if suffix == ".json":
            from inspector.reports import json_report

            json_report.write(run, target)
            return [target]
        if suffix in (".html", ".htm"):
            from inspector.reports import html_report

            html_report.write(run, target)
            return [target]
        if not suffix or target.is_dir():
            from inspector.reports import csv_report

            return list(csv_report.write(run, target))
    except InspectorError as exc:
        raise ValueError(str(exc)) from exc
    raise ValueError(f"save_run({str(path)!r}): name a .json or .html file, or a folder for the CSV tables")


# --- notebooks ----------------------------------------------------------------------------

def notebook_html(run: Any) -> str:
    """The compact HTML view a notebook shows for a run (``reports/html_report.render_notebook``)."""
    from inspector.reports import html_report

    return html_report.render_notebook(run)


def register_notebook_display() -> bool:
    """Make runs display themselves in IPython and Jupyter (as :func:`notebook_html`), when IPython
    is running: registered by class name, so nothing is imported to do it. Idempotent; ``False``
    outside IPython. The result model itself stays free of any report code."""
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return False
    shell = ipython_module.get_ipython()
    if shell is None:
        return False
    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type_by_name("inspector.results.records", "RunResult", _display_html)
    return True


_display_html: Callable[[Any], str] = notebook_html


def _register_writer() -> None:
    from inspector.results.records import register_writer

    register_writer(save_run)


_register_writer()
