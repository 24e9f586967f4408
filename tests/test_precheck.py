"""Input errors are found before torch, diffusers or transformers are imported, and misspelt names
get the closest matches."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inspector.errors import did_you_mean
from inspector.sources.precheck import size_multiple_from_configs
from inspector.sources.preset_files import shipped_presets


def test_did_you_mean():
    assert did_you_mean("sd-21", ["sd15", "sd21", "sdxl"]).startswith(" (did you mean sd21")
    assert did_you_mean("SD21", ["sd15", "sd21"]) == " (did you mean sd21?)"
    assert did_you_mean("zzzzzz", ["sd15", "sd21"]) == ""


@pytest.mark.parametrize("args, message", [
    (["inspect", "sd-21"], "unknown model 'sd-21' (did you mean sd21"),
    (["inspect", "tiny_sd"], "(did you mean tiny-sd"),
    (["inspect", "--dtype", "float61"], "(did you mean float16"),
    (["inspect", "--weights", "metta"], "(did you mean meta?)"),
    (["profile", "--attention", "spda"], "(did you mean sdpa?)"),
    (["inspect", "tiny-sd3", "--width", "136"], "--width 136 must be a positive multiple of 16 for this pipeline"),
    (["inspect", "sd21", "--weights", "pretrained"], "ships no weights"),
])
def test_suggestions_and_early_checks(cli, args, message):
    result = cli(*args)
    assert result.code == 2, result.err
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_unknown_arch_is_suggested(cli, tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    path = tmp_path / "model.safetensors"
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(path))
    result = cli("inspect", str(path), "--arch", "sd-15")
    assert result.code == 2 and "unknown --arch 'sd-15' (did you mean sd15" in result.err


def test_unknown_scheduler_is_suggested_before_loading(cli):
    result = cli("profile", "--scheduler", "EulerDiscrete")
    assert result.code == 2
    assert "unknown scheduler 'EulerDiscrete' (did you mean EulerDiscreteScheduler" in result.err


IMPORTED_AFTER_ERROR = """
import json, sys
from inspector.cli.commands import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted(m for m in ("torch", "diffusers", "transformers", "scipy")
                                                 if m in sys.modules)}))
"""


@pytest.mark.parametrize("args", [
    ["inspect", "sd-21"],
    ["inspect", "./missing/folder"],
    ["inspect", "acme/not-cached"],
    ["inspect", "sd21", "--width", "100"],
    ["inspect", "sd3", "--height", "1000"],
    ["inspect", "--dtype", "float61"],
    ["profile", "--json", "/dev/null/dir/run.json"],  # a parent that is no folder
    ["inspect", "model.ckpt", "--arch", "sd15"],
])
def test_input_errors_import_no_heavy_library(args, tmp_path):
    proc = subprocess.run([sys.executable, "-c", IMPORTED_AFTER_ERROR, *args], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome == {"code": 2, "heavy": []}, proc.stderr


def test_folder_errors_import_no_heavy_library(tmp_path):
    (tmp_path / "pipe").mkdir()
    proc = subprocess.run([sys.executable, "-c", IMPORTED_AFTER_ERROR, "inspect", str(tmp_path / "pipe")],
                          capture_output=True, text=True, timeout=120)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"code": 2, "heavy": []}
    assert "has no model_index.json" in proc.stderr


@pytest.mark.parametrize("name", ["tiny-sd", "tiny-sdxl", "tiny-sd3", "tiny-flux", "sd21"])
def test_size_multiple_from_configs_matches_the_loaded_pipeline(host, presets, name):
    """The light rule read from JSON agrees with the one the inspection applies to the built pipeline."""
    from inspector.plugin.context import InspectContext, InspectOptions
    from inspector.sources.loading import SourceSpec, load

    loaded = load(SourceSpec(model=name, weights="meta"), presets)
    ctx = InspectContext(pipe=loaded.pipe, options=InspectOptions(), device="meta", dtype=None, height=64,
                         width=64, weights="meta")
    assert size_multiple_from_configs(shipped_presets()[name]) == ctx.size_multiple


def test_light_registry_matches_the_full_host(presets, monkeypatch):
    from inspector.sources.precheck import preset_folders

    monkeypatch.setenv("LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert preset_folders() == {name: preset.path for name, preset in presets.items()}


def test_light_registry_has_entry_point_presets_and_loads_no_component_plugin(monkeypatch, tmp_path):
    """A plugin's preset is known to the early check; the built-in component plugins stay unimported."""
    import types

    from inspector import hookimpl
    from inspector.plugin.preset import Preset
    from inspector.sources import precheck

    plugin = types.SimpleNamespace(register_presets=hookimpl(
        lambda register: register(Preset(name="acme-xl", path=tmp_path, description="a plugin's preset"))))

    class FakeEntryPoint:
        name, dist = "acme", None

        def load(self):
            return plugin

    monkeypatch.setattr("inspector.plugin.host.metadata.entry_points", lambda group: [FakeEntryPoint()])
    monkeypatch.delenv("LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delitem(sys.modules, "inspector.plugins.unet", raising=False)
    assert precheck.preset_folders()["acme-xl"] == tmp_path
    assert precheck.check_source("acme-xl").kind == "preset"
    with pytest.raises(precheck.SourceError, match=r"did you mean acme-xl\?"):
        precheck.check_source("acme-xxl")
    assert "inspector.plugins.unet" not in sys.modules


def test_inspect_of_a_preset_imports_no_writer_it_was_not_asked_for(tmp_path):
    code = ("import sys; from inspector.cli.commands import main\n"
            "try:\n    main(['inspect', 'tiny-sd', '--steps', '2', '--json', 'run.json'])\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(sorted(m for m in ('inspector.reports.html_report', 'inspector.reports.csv_report', 'pandas',"
            " 'plotly', 'textual', 'inspector.profiling', 'inspector.measure.tracing', 'torchinfo')"
            " if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "run.json").exists()
