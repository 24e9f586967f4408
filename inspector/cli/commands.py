"""The ``ldm-inspector`` command line.

Errors the user can fix print one line on stderr and exit 2; Ctrl-C exits 130;
a profile whose end-to-end call failed keeps and writes every component measurement and
exits 3; anything else is an internal error (exit 1, traceback only with ``--debug``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, cast

import click
from rich.console import Console

from inspector.errors import InspectorError, OptionError, did_you_mean
from inspector.results import limits

if TYPE_CHECKING:
    from inspector.plugin.preset import Weights

#: ``profile`` exit code when the components were measured but the end-to-end pipeline call failed
#: (out of memory, or the pipeline raised): the reports are written, with ``pipeline.error`` set.
EXIT_END_TO_END_FAILED = 3


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ldm-inspector")
@click.option("--trace-hooks", is_flag=True, help="Log every plugin hook call and its duration to stderr.")
def app(trace_hooks: bool) -> None:
    """Open up a latent diffusion pipeline and see what every component does."""
    if trace_hooks:
        from inspector.plugin.host import ENV_TRACE

        os.environ[ENV_TRACE] = "1"


def resolve_device(choice: str) -> str:
    from inspector.measure.devices import resolve_device as resolve

    return resolve(choice)


def check_input(model: Optional[str], *, arch: Optional[str], weights: Optional[str], allow_pickle: bool,
                allow_download: bool, height: Optional[int], width: Optional[int]) -> Any:
    """The model source and sizes, checked before torch, diffusers or transformers are imported
    (the Python API's own check), with the hub kept offline unless downloads are allowed."""
    from inspector.python_api import check_source_target
    from inspector.sources.loading import enforce_offline

    enforce_offline(allow_download)
    return check_source_target(model, arch=arch, weights=weights, allow_pickle=allow_pickle,
                               allow_download=allow_download, height=height, width=width)


#: Limits far beyond any real use, so an absurd option is refused before anything allocates; the
#: same figures bound what a saved run may hold (inspector.results.limits).
MAX_SIZE, MAX_BATCH, MAX_STEPS = limits.MAX_SIZE, limits.MAX_BATCH, limits.MAX_STEPS


class FiniteFloatRange(click.FloatRange):
    """A float range that refuses NaN (``click.FloatRange`` lets it through: it compares false)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


GUIDANCE = FiniteFloatRange(-limits.MAX_GUIDANCE, limits.MAX_GUIDANCE)


def source_options(f: Any) -> Any:
    """Options every command that loads a model takes."""
    for decorator in reversed([
        click.argument("model", required=False),
        click.option("--arch", default=None, help="Preset whose configs describe a single-file checkpoint."),
        click.option("--height", type=int, default=None, help="Image height (default: the model's native size)."),
        click.option("--width", type=int, default=None, help="Image width (default: the model's native size)."),
        click.option("--batch-size", type=click.IntRange(min=1, max=MAX_BATCH), default=1, show_default=True,
                     help="Images per prompt."),
        click.option("--prompt", default="a photo of an astronaut riding a horse on mars", show_default=True),
        click.option("--negative-prompt", default="", help="Negative prompt."),
        click.option("--guidance-scale", type=GUIDANCE, default=7.5, show_default=True,
                     help="Above 1 the UNet runs the doubled classifier-free-guidance batch."),
        click.option("--steps", type=click.IntRange(min=1, max=MAX_STEPS), default=50, show_default=True,
                     help="Denoising steps (the scheduler's timesteps)."),
        click.option("--seed", type=click.IntRange(limits.MIN_INT, limits.MAX_INT), default=0, show_default=True,
                     help="Seed for random weights, example inputs and the pipeline's noise."),
        click.option("--frames", type=click.IntRange(min=1, max=limits.MAX_FRAMES), default=None,
                     help="Frames of a video pipeline (AnimateDiff, Wan; default: the pipeline's own)."),
        click.option("--layers", is_flag=True, help="Print the per-layer table of each model."),
        click.option("--depth", type=click.IntRange(min=1), default=2, show_default=True,
                     help="Deepest layer level printed with --layers."),
        click.option("--details", is_flag=True, help="Print every plugin view (tokens, timesteps, blocks)."),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write the run as JSON here."),
        click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write a self-contained HTML report here."),
        click.option("--csv", "csv_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Write tidy CSV tables into this folder."),
        click.option("--allow-download", is_flag=True, help="Let a repo id be fetched from the Hugging Face hub."),
        click.option("--allow-pickle", is_flag=True,
                     help="Read a .ckpt/.bin/.pt checkpoint (tensors only: torch.load(weights_only=True)); "
                          "refused by default because unpickling can run code."),
        click.option("--force", is_flag=True,
                     help="Load even when the weights are predicted not to fit in the device's memory, or the run "
                          "to take longer than --max-minutes."),
        click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
                     help="Refuse, before loading weights, a run predicted to take longer (its FLOPs at this "
                          "device's measured matmul rate: a lower bound)."),
    ]):
        f = decorator(f)
    return f


def format_option(f: Any) -> Any:
    return click.option(
        "--format", "fmt", type=click.Choice(["table", "plain", "markdown", "json"]), default="table",
        show_default=True,
        help="table: boxed tables (full width when piped); plain: aligned columns; markdown: pipe tables; "
             "json: the run as JSON on stdout.")(f)


def status_console(fmt: str) -> Console:
    """Where progress and 'wrote ...' lines go: stdout for tables, stderr when stdout carries data."""
    return Console(stderr=fmt != "table")


def check_output_folder(option: str, folder: Optional[Path]) -> None:
    """An output folder may be missing (it is created when written) but its parent must exist,
    and it must take a new file."""
    from inspector.cli.outputs import check_folder_output

    check_folder_output(option, folder)


def model_inputs(model: Optional[str]) -> tuple[dict[str, Optional[Path]], dict[str, Optional[Path]]]:
    """The model as an input of :func:`inspector.cli.outputs.prepare`: a file or a folder, when it is a
    path (a preset or repo id is not ours to overwrite anyway)."""
    if model and os.path.lexists(model):
        return ({}, {"MODEL": Path(model)}) if os.path.isdir(model) else ({"MODEL": Path(model)}, {})
    return {}, {}


def prepare_outputs(files: dict[str, Optional[Path]], csv_dir: Optional[Path] = None, *,
                    model: Optional[str] = None, **inputs: Optional[Path]) -> dict[str, Optional[Path]]:
    """Every output checked at once, against the others and the inputs, before any work (see
    inspector/cli/outputs.py); returns them absolute, by option (``--csv`` included)."""
    from inspector.cli.outputs import prepare

    files_in, folders_in = model_inputs(model)
    files_in.update({(k.upper() if k.startswith("run") else f"--{k}"): v for k, v in inputs.items()})
    return prepare(files, csv_dir, inputs=files_in, input_folders=folders_in)


def status_notes(fmt: str, notes: list[str]) -> None:
    from inspector.results.units import printable

    console = status_console(fmt)
    for note in notes:
        console.print(printable(note), markup=False, highlight=False)


def silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null: what is still buffered for a closed pipe or a full
    device is dropped instead of failing again when Python exits."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


class StdoutClosed(Exception):
    """Stdout was closed early (``| head -1``): a quiet exit (see :func:`_run`). Not an ``OSError``,
    which click would turn into exit 1."""


def to_stdout(show: Any) -> None:
    """Run ``show`` (which prints to stdout) and flush: a closed pipe becomes :class:`StdoutClosed`,
    any other failure to write (a full device) is one line."""
    try:
        show()
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        raise StdoutClosed() from None
    except OSError as exc:
        silence_stdout()
        raise InspectorError(f"cannot write to standard output: {exc.strerror or exc}") from None


def deliver(run: Any, fmt: str, show: Any, json_path: Optional[Path] = None, html_path: Optional[Path] = None,
            csv_dir: Optional[Path] = None, image_file: Optional[Path] = None) -> None:
    """The files first, then the terminal: whatever becomes of stdout (a closed pipe, a full
    device, an encoding it cannot take), the reports asked for are written. Every command that
    writes reports ends here, with the same writers (all rendered first, then each atomically)."""
    from inspector.cli.outputs import write_all

    notes: list[str] = []
    failure: Optional[InspectorError] = None
    try:
        write_all(run, notes.append, json_path, html_path, csv_dir, image_file=image_file)
    except InspectorError as exc:
        failure = exc
    try:
        to_stdout(show)
        if notes:
            to_stdout(lambda: status_notes(fmt, notes))
    except (StdoutClosed, InspectorError) as exc:
        if failure is not None:
            raise failure from None
        if isinstance(exc, InspectorError) and notes:
            raise InspectorError(f"{exc} (the file outputs were written)") from None
        raise
    if failure is not None:
        raise failure


def plugin_stdout(fmt: str) -> Any:
    """While plugins run: their prints go to stderr when stdout carries data (not ``table``)."""
    import contextlib

    return contextlib.redirect_stdout(sys.stderr) if fmt != "table" else contextlib.nullcontext()


@app.command()
@source_options
@click.option("--weights", type=click.Choice(["meta", "random", "pretrained"]), default=None,
              help="meta: shapes only, no memory (default for sd15/sd21/sdxl); random: seeded random weights "
                   "(default for tiny-sd); pretrained: the checkpoint's own (default for folders and files).")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where random or pretrained weights live (meta stays meta).")
@click.option("--fits", default=None, metavar="SIZE|DEVICE",
              help="Judge the predicted peak memory against a device: a size (24GiB) or rtx4090, l4, a100-40, "
                   "a100-80, h100, cpu; prints the verdict per placement and the largest batch and size that fit.")
@format_option
def inspect(model: Optional[str], weights: Optional[Weights], arch: Optional[str], dtype: str, device: str,
            height: Optional[int], width: Optional[int], batch_size: int, prompt: str, negative_prompt: str,
            guidance_scale: float, steps: int, seed: int, frames: Optional[int], layers: bool, depth: int,
            details: bool, json_path: Optional[Path], html_path: Optional[Path], csv_dir: Optional[Path],
            allow_download: bool, allow_pickle: bool, fmt: str, force: bool, fits: Optional[str],
            max_minutes: float) -> None:
    """Parameters, per-layer shapes and FLOPs of every pipeline component, and predicted peak memory."""
    checked = check_input(model, arch=arch, weights=weights, allow_pickle=allow_pickle,
                          allow_download=allow_download, height=height, width=width)
    out = prepare_outputs({"--json": json_path, "--html": html_path}, csv_dir, model=model)
    json_path, html_path, csv_dir = out["--json"], out["--html"], out.get("--csv")
    from inspector.plugin.host import Host
    from inspector.python_api import run_command

    options = dict(weights=weights, arch=arch, dtype=dtype, device=device, allow_download=allow_download,
                   allow_pickle=allow_pickle, force=force, max_minutes=max_minutes, height=height, width=width,
                   batch_size=batch_size,
                   prompt=prompt, negative_prompt=negative_prompt, guidance_scale=guidance_scale, steps=steps,
                   seed=seed, frames=frames, fits=fits)
    from inspector.cli.terminal import progress_bar, render

    with progress_bar(Console(stderr=True)) as report, plugin_stdout(fmt):
        run = run_command("inspect", model, options, host=Host.default(), progress=report, checked=checked)
    deliver(run, fmt, lambda: render(run, sys.stdout, layers=layers, depth=depth, details=details, fmt=fmt),
            json_path, html_path, csv_dir)


@app.command()
@source_options
@click.option("--weights", type=click.Choice(["random", "pretrained"]), default=None,
              help="random: seeded random weights (presets' default here); pretrained: the checkpoint's own.")
@click.option("--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]), default="auto",
              show_default=True, help="auto: float16 on CUDA, float32 on a CPU.")
@click.option("--allow-cpu-float16", is_flag=True, help="Run float16 on a CPU anyway (slow, some kernels missing).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when available.")
@click.option("--warmup", type=click.IntRange(min=0, max=limits.MAX_REPEATS), default=1, show_default=True,
              help="Calls run and discarded before timing (after the separately reported cold call).")
@click.option("--repeats", type=click.IntRange(min=1, max=limits.MAX_REPEATS), default=5, show_default=True,
              help="Timed calls per component.")
@click.option("--e2e-repeats", type=click.IntRange(min=1, max=limits.MAX_REPEATS), default=3, show_default=True,
              help="Bare and instrumented pipeline calls each, alternated.")
@click.option("--scheduler", "scheduler_name", default=None, help="Swap in a compatible scheduler by class name.")
@click.option("--attention", type=click.Choice(["sdpa", "eager"]), default=None,
              help="Attention processor: sdpa (AttnProcessor2_0) or eager (AttnProcessor); default: as loaded.")
@click.option("--peak-tflops", type=FiniteFloatRange(min=0, min_open=True, max=limits.MAX_PEAK_TFLOPS), default=None,
              help="The device's peak TFLOP/s for this dtype, when the built-in table does not know it.")
@click.option("--image", "image_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Image for the VAE round trip (default: a built-in synthetic test image).")
@click.option("--save-image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to save the generated image (default: next to --json, as STEM.png).")
@click.option("--no-end-to-end", is_flag=True, help="Skip the real pipeline call.")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a Chrome/Perfetto trace of one extra end-to-end call here (a span per component "
                   "call and per denoising step).")
@click.option("--no-operators", is_flag=True,
              help="Skip the extra untimed torch.profiler call per measurement (the top-operator tables).")
@click.option("--max-time", type=FiniteFloatRange(min=0, max=limits.MAX_SECONDS), default=1.0, show_default=True,
              help="Seconds each measurement (and the end-to-end pairs) may keep repeating past --repeats "
                   "until its relative spread is under --max-spread; 0: exactly --repeats calls.")
@click.option("--max-spread", type=FiniteFloatRange(min=0, min_open=True, max=limits.MAX_SPREAD), default=0.10,
              show_default=True,
              help="Relative spread (IQR / median) above which a figure is flagged unstable.")
@format_option
def profile(model: Optional[str], weights: Optional[Weights], arch: Optional[str], dtype: str, allow_cpu_float16: bool,
            device: str, height: Optional[int], width: Optional[int], batch_size: int, prompt: str,
            negative_prompt: str, guidance_scale: float, steps: int, seed: int, frames: Optional[int], layers: bool,
            depth: int,
            details: bool, json_path: Optional[Path], html_path: Optional[Path], csv_dir: Optional[Path],
            allow_download: bool, allow_pickle: bool, force: bool, max_minutes: float, warmup: int, repeats: int,
            e2e_repeats: int, scheduler_name: Optional[str], attention: Optional[str], peak_tflops: Optional[float],
            image_path: Optional[Path], save_image: Optional[Path], no_end_to_end: bool, max_time: float,
            max_spread: float, fmt: str, trace_path: Optional[Path], no_operators: bool) -> None:
    """Time and measure memory of every component, and of the whole pipeline, step by step."""
    checked = check_input(model, arch=arch, weights=weights, allow_pickle=allow_pickle,
                          allow_download=allow_download, height=height, width=width)
    from inspector.cli.outputs import default_image_out

    image_out_given = save_image or default_image_out(json_path, html_path)
    out = prepare_outputs({"--json": json_path, "--html": html_path, "--save-image": image_out_given,
                           "--trace": trace_path}, csv_dir, model=model, image=image_path)
    json_path, html_path, csv_dir = out["--json"], out["--html"], out.get("--csv")
    image_out, trace_path = out["--save-image"], out["--trace"]
    if image_path is not None:
        image_path = Path(os.path.abspath(image_path))  # read after plugins ran, whatever folder they left
        check_image(image_path)
    from inspector.plugin.host import Host
    from inspector.python_api import run_command

    options = dict(
        weights=weights, arch=arch, dtype=dtype, device=device, allow_cpu_float16=allow_cpu_float16,
        allow_download=allow_download, allow_pickle=allow_pickle, force=force, max_minutes=max_minutes, seed=seed,
        height=height, width=width, batch_size=batch_size, prompt=prompt, negative_prompt=negative_prompt,
        guidance_scale=guidance_scale, steps=steps, frames=frames, warmup=warmup, repeats=repeats,
        e2e_repeats=e2e_repeats, scheduler=scheduler_name, attention=attention, peak_tflops=peak_tflops,
        image=str(image_path) if image_path else None, save_image=str(image_out) if image_out else None,
        end_to_end=not no_end_to_end, max_time=max_time, max_spread=max_spread, operators=not no_operators,
        trace=str(trace_path) if trace_path else None,
    )
    from inspector.cli.terminal import progress_bar, render

    with progress_bar(Console(stderr=True)) as report, plugin_stdout(fmt):
        run = run_command("profile", model, options, host=Host.default(), progress=report, checked=checked)
    image_file = None
    if run.pipeline is not None and run.pipeline.image and image_out is not None:
        image_file = image_out  # written by this run; the run records the path as it was given
        run.pipeline.image = str(image_out_given)
    deliver(run, fmt, lambda: render(run, sys.stdout, layers=layers, depth=depth, details=details, fmt=fmt),
            json_path, html_path, csv_dir, image_file=image_file)
    if run.interrupted:
        from inspector.runtime.signals import interrupt_exit_code

        say_error("interrupted: partial results kept")
        sys.exit(interrupt_exit_code())
    if run.pipeline is not None and run.pipeline.error is not None:
        say_error(f"error: {run.pipeline.error}; every component measurement was kept"
                  f"{' and written' if json_path or html_path or csv_dir else ''}")
        sys.exit(EXIT_END_TO_END_FAILED)


@app.command()
@click.argument("run_json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a self-contained HTML report here.")
@click.option("--csv", "csv_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write tidy CSV tables into this folder.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the run again as JSON (after validating it).")
@click.option("--layers", is_flag=True, help="Print the per-layer table of each model.")
@click.option("--depth", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--details", is_flag=True, help="Print every plugin view.")
@format_option
def report(run_json: Path, html_path: Optional[Path], csv_dir: Optional[Path], json_path: Optional[Path],
           layers: bool, depth: int, details: bool, fmt: str) -> None:
    """Render a saved run again (terminal, HTML, CSV) without re-running anything."""
    image = run_json.with_name(run_json.stem + ".png")
    out = prepare_outputs({"--json": json_path, "--html": html_path}, csv_dir, run_json=run_json,
                          image=image if os.path.lexists(image) else None)
    json_path, html_path, csv_dir = out["--json"], out["--html"], out.get("--csv")
    from inspector.cli.outputs import image_beside
    from inspector.cli.terminal import render
    from inspector.reports import json_report

    run = json_report.load(run_json)
    deliver(run, fmt, lambda: render(run, sys.stdout, layers=layers, depth=depth, details=details, fmt=fmt),
            json_path, html_path, csv_dir, image_file=image_beside(run_json, run))


@app.command()
@click.argument("run_a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the comparison as a self-contained HTML page.")
@format_option
def compare(run_a: Path, run_b: Path, html_path: Optional[Path], fmt: str) -> None:
    """Differences and ratios (B / A) of two saved runs, per component and per block."""
    html_path = prepare_outputs({"--html": html_path}, run_a=run_a, run_b=run_b)["--html"]
    from inspector.cli.terminal import render_comparison
    from inspector.reports import json_report
    from inspector.reports.compare import compare as compare_runs

    comparison = compare_runs(json_report.load(run_a), json_report.load(run_b), run_a.name, run_b.name)
    notes = []
    if html_path is not None:  # the file first, then the terminal (see deliver)
        from inspector.reports import html_report

        html_report.write_comparison(comparison, html_path)
        notes.append(f"wrote {html_path}")
    to_stdout(lambda: render_comparison(comparison, sys.stdout, fmt=fmt))
    if notes:
        to_stdout(lambda: status_notes(fmt, notes))
    if not comparison.comparable:
        say_error(f"warning: not comparable for time and memory: {'; '.join(comparison.problems)}")


@app.command()
@click.argument("target", required=False)
@click.option("--export-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where exports from the TUI go (default: the current folder; created if missing).")
@click.option("--steps", type=click.IntRange(min=1, max=MAX_STEPS), default=20, show_default=True,
              help="Steps for profiling.")
@click.option("--repeats", type=click.IntRange(min=1, max=limits.MAX_REPEATS), default=3, show_default=True)
def tui(target: Optional[str], export_dir: Optional[Path], steps: int, repeats: int) -> None:
    """Browse a model (preset, folder, file, repo id), a saved RUN.json or a sweep folder in the terminal."""
    check_output_folder("--export-dir", export_dir)  # created on the first export, as --csv creates its folder
    if target and target.endswith(".json"):
        from inspector.reports import json_report

        json_report.load(target)  # a broken file fails here, in one line, before the screen opens
    elif target:
        from inspector.sweep.folder import is_sweep_folder, load_sweep

        if is_sweep_folder(target):
            load_sweep(Path(target))  # likewise for a sweep folder whose manifest is unreadable
    from inspector.tui import run_tui

    run_tui(target, export_dir=str(export_dir) if export_dir else None,
            profile_options={"steps": steps, "repeats": repeats, "warmup": 1, "e2e_repeats": 2, "max_time": 1.0})


def check_image(path: Path) -> None:
    from inspector.files import check_image_file

    check_image_file(path)


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def plugins(as_json: bool) -> None:
    """Every plugin: name, version, source (built-in or entry point and its distribution), hooks, failure."""
    import json as jsonlib
    from dataclasses import asdict

    from inspector.plugin.host import Host

    records = Host.default().plugin_records()
    if as_json:
        to_stdout(lambda: print(jsonlib.dumps([asdict(r) for r in records], indent=2)))
        return
    from rich.table import Table
    from rich.text import Text

    from inspector.results.units import printable

    table = Table("plugin", "version", "source", "distribution", "hooks", "status")
    for r in records:
        table.add_row(*(Text(printable(cell)) for cell in (r.name, r.version or "", r.source, r.distribution or "",
                                                           ", ".join(r.hooks))),
                      Text(printable(r.error), style="red") if r.error else "ok")
    to_stdout(lambda: Console().print(table))


@app.command()
def presets() -> None:
    """List the model presets (built-in and from plugins)."""
    from rich.table import Table

    from inspector.plugin.host import Host

    table = Table("name", "default weights", "description")
    for preset in Host.default().presets().values():
        table.add_row(preset.name, preset.default_weights, preset.description)
    from inspector.cli.terminal import make_console

    to_stdout(lambda: make_console().print(table))  # into a pipe at its natural width, as every table


def check_point_argv(argv: list[str]) -> None:
    """Parse one sweep point's command line (``[mode, *options]``) with this CLI's own parser."""
    command = app.commands[argv[0]]
    try:
        with command.make_context(argv[0], list(argv[1:]), resilient_parsing=False) as _ctx:
            pass
    except click.exceptions.Exit:
        raise OptionError("a point's options ask for help or the version instead of a measurement") from None
    except click.UsageError as exc:
        raise OptionError(exc.format_message()) from None


@app.command(context_settings={"ignore_unknown_options": False})
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The sweep folder (created if missing; a rerun skips points already measured there).")
@click.option("--mode", type=click.Choice(["inspect", "profile"]), default=None,
              help="inspect: static, fast (default); profile: timed.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A TOML file with the grid (mode, args and the axes as lists); options given here win.")
@click.option("--model", default=None, help="Comma-separated models: presets, folders, files, repo ids.")
@click.option("--size", default=None, help="Comma-separated image sizes: 512 or WIDTHxHEIGHT (768x512).")
@click.option("--batch", default=None, help="Comma-separated batch sizes (images per prompt).")
@click.option("--dtype", default=None, help="Comma-separated dtypes (float32, float16, bfloat16; profile: auto).")
@click.option("--attention", default=None, help="Comma-separated attention processors (profile: sdpa, eager).")
@click.option("--scheduler", default=None, help="Comma-separated scheduler class names.")
@click.option("--steps", default=None, help="Comma-separated step counts.")
@click.option("--jobs", type=click.IntRange(min=1, max=64), default=None,
              help="Points at a time (default: one per CPU for inspect, 1 for profile).")
@click.option("--timeout", type=click.FloatRange(min=1, max=7 * 86400), default=None,
              help="Seconds one point may take before it is killed and recorded as failed (default 1800).")
@click.option("--retry-failed", is_flag=True, help="Run the points that failed before again.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
              help="local: processes on this machine (default); ray: tasks on a Ray cluster.")
@click.option("--address", default=None, help="With --executor ray: the cluster's address (default: a local instance).")
@click.option("--no-point-reports", is_flag=True, help="Do not write each point's own HTML report.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the sweep report (default: OUT/report.html).")
@click.argument("point_args", nargs=-1, type=click.UNPROCESSED)
def sweep(out_dir: Path, mode: Optional[str], config_path: Optional[Path], model: Optional[str], size: Optional[str],
          batch: Optional[str], dtype: Optional[str], attention: Optional[str], scheduler: Optional[str],
          steps: Optional[str], jobs: Optional[int], timeout: Optional[float], retry_failed: bool,
          executor: Optional[str], address: Optional[str], no_point_reports: bool, html_path: Optional[Path],
          point_args: tuple[str, ...]) -> None:
    """Measure a grid of models, sizes, batches, dtypes, attention backends, schedulers and steps.

    Each point runs `inspect` or `profile` in its own process; one that fails, hangs past
    --timeout or is killed fails alone. Options after `--` go to every point
    (`-- --repeats 2 --weights random`).
    """
    from inspector.sweep.grid import Grid, split_list
    from inspector.sweep.points import SweepSettings

    grid = Grid()
    settings: dict[str, Any] = {}
    if config_path is not None:
        from inspector.sweep.grid import load_toml

        grid, settings = load_toml(config_path)
    for axis, text in (("model", model), ("size", size), ("batch", batch), ("dtype", dtype),
                       ("attention", attention), ("scheduler", scheduler), ("steps", steps)):
        if text is not None:
            setattr(grid, axis, split_list(f"--{axis}", text))
    if mode is not None:
        grid.mode = mode
    if point_args:
        grid.args = list(point_args)
    executor = executor or settings.get("executor") or "local"
    if executor not in ("local", "ray"):
        raise OptionError(f"executor {executor!r}: choose local or ray")
    address = address or settings.get("address")
    if address is not None and executor != "ray":
        raise OptionError("--address goes with --executor ray")
    jobs = jobs if jobs is not None else _setting_int(settings, "jobs", 1, 64)
    if timeout is None and "timeout" in settings:
        timeout = float(cast(int, _setting_int(settings, "timeout", 1, 7 * 86400)))  # None only without the key
    out_dir, html_path = sweep_outputs(out_dir, html_path, config_path, grid.model)
    run_settings = SweepSettings(out=out_dir, timeout=timeout if timeout is not None else 1800.0, jobs=jobs,
                                 executor=executor, address=address if isinstance(address, str) else None,
                                 retry_failed=retry_failed, point_reports=not no_point_reports)
    from inspector.cli.sweep_terminal import render_sweep, sweep_progress
    from inspector.cli.terminal import make_console

    console = make_console()  # through a pipe: wide enough that no figure is cut
    with sweep_progress(console) as (on_start, on_point):
        from inspector.sweep.run import run_sweep

        points, statuses = run_sweep(grid, run_settings, check_argv=check_point_argv, on_start=on_start,
                                     on_point=on_point)
    from inspector.reports import sweep_report

    report_path = html_path or out_dir / "report.html"
    sweep_report.write(out_dir, report_path)
    to_stdout(lambda: render_sweep(points, statuses, console, out_dir, report_path))  # every file written first
    failed = sum(1 for s in statuses.values() if s.status == "failed")
    if failed:
        sys.exit(3)


def sweep_outputs(out_dir: Path, html_path: Optional[Path], config_path: Optional[Path],
                  models: list[str]) -> tuple[Path, Optional[Path]]:
    """The sweep folder and its report, absolute, checked before any point runs: the report is
    none of the sweep's own files (manifest, table, points) nor an input (the config, a model)."""
    from inspector.cli.outputs import prepare
    from inspector.sweep.folder import OWN_FILES

    files_in: dict[str, Optional[Path]] = {"--config": config_path}
    folders_in: dict[str, Optional[Path]] = {}
    for model in models:
        more_files, more_folders = model_inputs(model)
        files_in.update({f"--model {model}" if k == "MODEL" else k: v for k, v in more_files.items()})
        folders_in.update({f"--model {model}": v for v in more_folders.values()})
    reserved = [(f"the sweep's own {name}", out_dir / name) for name in OWN_FILES]
    out = prepare({"--html": html_path}, inputs=files_in, input_folders=folders_in, folders={"--out": out_dir},
                  reserved=reserved)
    return cast(Path, out["--out"]), out["--html"]


def _setting_int(settings: dict[str, Any], key: str, low: int, high: int) -> Optional[int]:
    if key not in settings:
        return None
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise OptionError(f"--config: {key} must be a number from {low} to {high}")
    return int(value)


class SuggestingChoice(click.Choice):
    """click's Choice, plus the closest choices when a value is misspelt ("did you mean float16?")."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            hint = did_you_mean(str(value), [str(c) for c in self.choices])
            if not hint:
                raise
            raise click.BadParameter(f"{exc.message.rstrip('.')}{hint}", ctx=ctx, param=param) from None


def suggest_choices(group: click.Group) -> None:
    """Give every Choice option of every command suggestions, wherever the option was declared."""
    for command in group.commands.values():
        for param in command.params:
            if type(param.type) is click.Choice:
                param.type = SuggestingChoice(param.type.choices, case_sensitive=param.type.case_sensitive)


suggest_choices(app)

_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: run the CLI and turn every failure into one line and an exit code."""
    code = _main(argv)
    from inspector.runtime.signals import hard_exit, other_threads

    if argv is None and (other_threads() or code in (129, 130, 143)):
        # A process of our own, with a hook thread still running or a native call cut short by a
        # signal: everything is written; skip the teardown that could abort on them.
        hard_exit(code)
    sys.exit(code)


def _main(argv: Optional[list[str]]) -> int:
    """Run the CLI; return the exit code after printing at most one line for a failure."""
    try:
        _run(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


#: the exit code of a command whose stdout was closed early (``| head -1``): what a process
#: killed by SIGPIPE gives in a shell (128 + 13), as ``cat`` or ``grep`` would, without a message
EXIT_BROKEN_PIPE = 141


def say_error(text: str) -> None:
    """One line on stderr; names, paths and messages from data shown with their control characters
    escaped (a file name cannot clear the screen or set the terminal's title)."""
    from inspector.results.units import printable

    print(printable(text), file=sys.stderr)


def tolerant_streams() -> None:
    """A terminal that cannot encode a character (``PYTHONIOENCODING=ascii``, a C locale) gets a
    replacement character instead of an error that would end the command."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="replace")
            except (AttributeError, ValueError, OSError):
                pass


def _run(argv: Optional[list[str]]) -> None:
    from inspector.runtime.libraries import library_warnings
    from inspector.runtime.signals import install_signal_handlers, interrupt_exit_code, interrupted

    debug = os.environ.get("LDM_INSPECTOR_DEBUG") == "1"
    install_signal_handlers()
    tolerant_streams()
    if any("\x00" in str(arg) for arg in (sys.argv[1:] if argv is None else argv)):
        # no path or value can hold one, and click's Path type lets os.stat raise ValueError on it
        say_error("error: an argument contains a NUL byte")
        sys.exit(2)
    try:
        with library_warnings():
            app.main(args=argv, prog_name="ldm-inspector", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except _NO_ARGS_IS_HELP as exc:  # bare `ldm-inspector`: help on stdout, success
        print(exc.ctx.get_help() if exc.ctx else "")
        sys.exit(0)
    except click.UsageError as exc:
        say_error(f"error: {exc.format_message()}")
        sys.exit(2)
    except StdoutClosed:  # stdout closed early: every file output is written already; end quietly
        sys.exit(EXIT_BROKEN_PIPE)
    except InspectorError as exc:
        if interrupted():  # the failure is the signal's doing (a library swallowed the interrupt)
            say_error("interrupted")
            sys.exit(interrupt_exit_code())
        say_error(f"error: {exc}")
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        say_error("interrupted")
        sys.exit(interrupt_exit_code())
    except Exception as exc:  # a bug: say so in one line, traceback on request
        if interrupted():
            say_error("interrupted")
            sys.exit(interrupt_exit_code())
        if debug:
            raise
        text = " ".join(str(exc).split())
        say_error(f"error: internal error: {type(exc).__name__}: {text} (set LDM_INSPECTOR_DEBUG=1 for the traceback)")
        sys.exit(1)
