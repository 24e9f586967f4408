"""Property-based fuzzing (hypothesis) of every input the tool reads from outside.

``model_index.json``, component configs, safetensors headers, saved runs, CLI options and the
environment variables the tool reads: whatever the input, only our own error (exit 2) escapes,
within a bounded time; an internal error (exit 1) or any other exception fails the test.

Examples per property: ``LDM_INSPECTOR_FUZZ_EXAMPLES`` (default 25, so CI stays bounded); the
tally of cases and outcomes is printed at the end of the module (run with ``-s`` to see it).
"""
from __future__ import annotations

import collections
import io
import json
import os
import shutil
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.cli import terminal
from inspector.errors import InspectorError
from inspector.reports import csv_report, html_report, json_report
from inspector.sources.limits import COUNT_KEY, MAX_LAYER_COUNT, MAX_PER_BLOCK_COUNT, PER_BLOCK_KEY
from inspector.sources.loading import SourceSpec, load
from inspector.sources.preset_files import materialize_preset

TINY = Path(__file__).resolve().parents[1] / "inspector" / "presets" / "tiny-sd"
SAVED_RUN = Path(__file__).parent / "data" / "tiny-profile.json"
EXAMPLES = int(os.environ.get("LDM_INSPECTOR_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)

TALLY: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def tally():
    yield
    lines = [f"{target}: {outcome} {count}" for (target, outcome), count in sorted(TALLY.items())]
    total = sum(TALLY.values())
    print(f"\nfuzz cases: {total}; internal errors: 0\n" + "\n".join(lines), file=sys.stderr)


def outcome(target: str, call) -> bool:
    """Run ``call``; our error or success is fine, anything else fails the property. True: accepted."""
    try:
        call()
    except InspectorError:
        TALLY[(target, "our error (exit 2)")] += 1
        return False
    TALLY[(target, "accepted")] += 1
    return True


# --- strategies ------------------------------------------------------------------------

NAMES = st.sampled_from(["diffusers", "transformers", "os", "subprocess", "evilmod", "stable_diffusion",
                         "UNet2DConditionModel", "AutoencoderKL", "CLIPTextModel", "CLIPTokenizer", "PNDMScheduler",
                         "system", "Thing", "../unet", "", "auto_map", "logging", "pipeline",
                         "StableDiffusionPipeline"])
SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | NAMES)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8) | NAMES, inner, max_size=4), max_leaves=12)
#: small integers for structural config values: building on ``meta`` is cheap, looping is not. Layer
#: counts at and just past their limits: past them is refused, never built (a count of 10**9
#: once built on meta until the suite was killed for memory)
LAYER_LIMITS = sorted({MAX_PER_BLOCK_COUNT, MAX_PER_BLOCK_COUNT + 1, MAX_LAYER_COUNT, MAX_LAYER_COUNT + 1})
SIZES = st.integers(-3, 64) | st.sampled_from([0, 10**9, -1, 2**63, 10**12, *LAYER_LIMITS])


def dumps(value) -> str:
    return json.dumps(value, allow_nan=True)  # NaN and Infinity: JSON that Python reads and others refuse


@pytest.fixture(scope="module")
def presets():
    from inspector.plugin.host import Host

    return Host.default(entrypoints=False).presets()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh_model(scratch: Path) -> Path:
    folder = scratch / "model"
    if folder.exists():
        shutil.rmtree(folder)
    materialize_preset(TINY, folder)  # with the shared vocabulary: a complete folder
    return folder


# --- model_index.json ------------------------------------------------------------------

@FUZZ
@given(changes=st.dictionaries(st.sampled_from(["_class_name", "unet", "vae", "text_encoder", "tokenizer",
                                                "scheduler", "safety_checker", "requires_safety_checker", "extra",
                                                "../x"]),
                               JSON | st.lists(NAMES | st.none(), min_size=0, max_size=3), min_size=1, max_size=3),
       whole=st.none() | JSON, weights=st.sampled_from(["meta", "random", "pretrained"]))
def test_fuzz_model_index(scratch, presets, changes, whole, weights):
    folder = fresh_model(scratch)
    index = json.loads((folder / "model_index.json").read_text())
    index.update(changes)
    (folder / "model_index.json").write_text(dumps(whole if whole is not None and not isinstance(whole, dict)
                                                   else index))
    outcome("model_index.json", lambda: load(SourceSpec(model=str(folder), weights=weights), presets))
    assert "evilmod" not in sys.modules


# --- component configs -----------------------------------------------------------------

CONFIGS = {
    "unet": ("config.json", ["block_out_channels", "layers_per_block", "cross_attention_dim", "sample_size",
                             "attention_head_dim", "down_block_types", "in_channels", "norm_num_groups",
                             "_class_name", "transformer_layers_per_block"]),
    "vae": ("config.json", ["block_out_channels", "latent_channels", "layers_per_block", "scaling_factor"]),
    "text_encoder": ("config.json", ["hidden_size", "num_hidden_layers", "vocab_size", "max_position_embeddings",
                                     "auto_map", "model_type", "architectures"]),
    "scheduler": ("scheduler_config.json", ["num_train_timesteps", "beta_schedule", "beta_start", "steps_offset",
                                            "prediction_type", "trained_betas"]),
    "tokenizer": ("tokenizer_config.json", ["model_max_length", "tokenizer_class", "auto_map", "added_tokens_decoder"]),
}


@FUZZ
@given(component=st.sampled_from(sorted(CONFIGS)), data=st.data(),
       value=SIZES | JSON | st.lists(SIZES, max_size=4), whole=st.booleans())
def test_fuzz_component_configs(scratch, presets, component, data, value, whole):
    folder = fresh_model(scratch)
    file_name, keys = CONFIGS[component]
    path = folder / component / file_name
    config = json.loads(path.read_text())
    key = None
    if whole:  # the whole file replaced by some other JSON
        path.write_text(dumps(value))
    else:
        key = data.draw(st.sampled_from(keys))
        config[key] = value
        path.write_text(dumps(config))
    accepted = outcome(f"{component} config", lambda: load(SourceSpec(model=str(folder), weights="meta"), presets))
    if key is not None and COUNT_KEY.match(key) and not isinstance(value, bool):
        limit = MAX_PER_BLOCK_COUNT if PER_BLOCK_KEY.search(key) else MAX_LAYER_COUNT
        numbers = value if isinstance(value, list) else [value]
        if any(isinstance(n, (int, float)) and not isinstance(n, bool) and abs(n) > limit for n in numbers):
            assert not accepted, f"{key} = {value!r} is past its limit {limit} and was built"


# --- safetensors headers ---------------------------------------------------------------

TENSOR = st.fixed_dictionaries({}, optional={
    "dtype": st.sampled_from(["F32", "F16", "BF16", "I64", "X9"]) | SCALARS,
    "shape": st.lists(st.integers(-2, 8) | st.sampled_from([2**62]), max_size=3) | SCALARS,
    "data_offsets": st.lists(st.integers(-4, 64) | st.sampled_from([2**63, 2**64]), max_size=3) | SCALARS,
})
HEADERS = (st.dictionaries(st.text(max_size=6), TENSOR | JSON, max_size=4)
           | st.dictionaries(st.just("__metadata__"), JSON, max_size=1) | JSON)


@FUZZ
@given(header=HEADERS, declared=st.none() | st.integers(0, 2**64 - 1), payload=st.binary(max_size=64),
       nested=st.integers(0, 3))
def test_fuzz_safetensors_headers(scratch, presets, header, declared, payload, nested):
    text = dumps(header)
    if nested:  # headers nested far deeper than any real one
        text = "[" * (50_000 * nested) + "]" * (50_000 * nested)
    raw = text.encode()
    path = scratch / "weights.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw) if declared is None else declared) + raw + payload)
    outcome("safetensors header", lambda: load(SourceSpec(model=str(path), arch="tiny-sd"), presets))


# --- saved runs ------------------------------------------------------------------------

KEYS = st.sampled_from(["components", 0, 1, 3, "layers", "timing", "model", "pipeline", "steps", "details", "views",
                        "rows", "columns", "parameters", "total", "inputs", "plugins", "measurements", "memory",
                        "schema_version", "image", "kind", "interrupted", "notes", "errors", "flops", "median",
                        "samples", "activation_bytes", "bytes", "p90", "totals"])
#: numbers no real run holds: beyond 64 bits, beyond any duration, negative counts and times
ABSURD = st.sampled_from([10**400, -(10**400), 2**64, 1e300, -1e300, -5, -0.5, 1e-300])


@FUZZ
@given(edits=st.lists(st.tuples(st.lists(KEYS, min_size=1, max_size=5), JSON | ABSURD), min_size=1, max_size=3),
       depth=st.sampled_from([0, 0, 0, 1000, 100_000]))
def test_fuzz_saved_runs(scratch, edits, depth):
    data = json.loads(SAVED_RUN.read_text())
    for path, value in edits:
        node = data
        for key in path[:-1]:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                break
        try:
            node[path[-1]] = value
        except (TypeError, IndexError):
            pass
    text = dumps(data)
    if depth:
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    target = scratch / "run.json"
    target.write_text(text)

    def load_and_render():
        run = json_report.load(target)
        html_report.render(run)  # a run that loads must also render, in every front end
        csv_report.render_all(run)
        json_report.dumps(run)
        for fmt in ("table", "plain", "markdown"):
            terminal.emit(terminal.run_blocks(run, layers=True, details=True), fmt, file=io.StringIO())

    outcome("saved run", load_and_render)


# --- CLI options and environment -------------------------------------------------------

OPTIONS = {
    "--seed": st.integers(-2**65, 2**65) | st.text(max_size=5),
    "--height": st.integers(-64, 2**40) | st.text(max_size=5),
    "--width": st.integers(-64, 2**40) | st.text(max_size=5),
    "--steps": st.integers(-5, 2**33) | st.text(max_size=4),
    "--batch-size": st.integers(-3, 2**33) | st.text(max_size=4),
    "--guidance-scale": st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=4),
    "--dtype": st.sampled_from(["float32", "bfloat16", "float16", "float64", ""]),
    "--arch": st.sampled_from(["tiny-sd", "sd15", "nope", ""]),
    "--prompt": st.text(max_size=30),
    "--json": st.sampled_from(["/dev/null", "~nosuchuser/r.json", "/proc/x.json", "/", "a\x00b.json", "/no/dir/x"]),
    "--csv": st.sampled_from(["/dev/null", "/proc/csv", "~nosuchuser/csv"]),
}
MODELS = st.sampled_from(["tiny-sd", "sd15", "no-such-model", "./missing", "org/absent", "~nosuchuser/m", "/dev/null",
                          "/dev/zero", "/proc/self/environ", "a\x00b", "x" * 5000, "../..", "model_index.json"])
ENV = {
    "LDM_INSPECTOR_HOOK_TIMEOUT": st.sampled_from(["inf", "nan", "-1", "0", "1e400", "1e-300", "", "x", "5"]),
    "LDM_INSPECTOR_BLOCK_PLUGINS": st.text(max_size=20) | st.sampled_from(["unet,vae", "generic", "presets"]),
    "LDM_INSPECTOR_LOAD_PLUGINS": st.text(max_size=20),
    "LDM_INSPECTOR_TRACE_PLUGINS": st.sampled_from(["1", "yes", "0", ""]),
    "LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD": st.sampled_from(["1", "0", "true", ""]),
}


@pytest.mark.tiny  # the CLI, run in-process, builds the model
@FUZZ
@given(model=MODELS, options=st.dictionaries(st.sampled_from(sorted(OPTIONS)), st.none(), max_size=3).flatmap(
           lambda keys: st.fixed_dictionaries({k: OPTIONS[k] for k in keys})),
       env=st.dictionaries(st.sampled_from(sorted(ENV)), st.none(), max_size=3).flatmap(
           lambda keys: st.fixed_dictionaries({k: ENV[k] for k in keys})))
def test_fuzz_cli_options_and_environment(model, options, env):
    from inspector.cli.commands import main

    args = ["inspect", model, "--weights", "meta"]
    for key, value in options.items():
        args += [key, str(value)]
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update({k: v.replace("\x00", "") for k, v in env.items()})
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert code in (0, 2), (args, env, code)  # 1 would be an internal error
    TALLY[("CLI options and environment", "accepted" if code == 0 else "our error (exit 2)")] += 1
