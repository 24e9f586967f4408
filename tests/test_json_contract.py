"""The JSON report keeps the minimum contract of schema version 1 and reads back unchanged."""
from __future__ import annotations

import json
import math

import pytest

from inspector.inspection import run_inspect
from inspector.plugin.context import InspectOptions
from inspector.reports import json_report
from inspector.results.records import RunResult
from inspector.sources.loading import SourceSpec


def is_shape(value):
    return isinstance(value, list) and all(isinstance(d, int) for d in value)


@pytest.fixture(scope="module")
def run(host):
    return run_inspect(host, SourceSpec(model="tiny-sd"), InspectOptions(steps=4, prompt="a <b>cat</b>"))


def test_contract(run, tmp_path):
    path = tmp_path / "run.json"
    json_report.write(run, path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == 2
    assert {"source": str, "pipeline_class": str, "weights": str}.items() <= {
        k: type(v) for k, v in data["model"].items()}.items()
    assert data["model"]["weights"] in ("meta", "random", "pretrained")
    for key in ("python", "torch", "diffusers", "transformers", "device", "dtype"):
        assert isinstance(data["environment"][key], str)
    assert data["inputs"]["height"] == 128 and data["inputs"]["width"] == 128
    assert data["inputs"]["batch_size"] == 1 and data["inputs"]["prompt"] == "a <b>cat</b>"
    for comp in data["components"]:
        assert isinstance(comp["name"], str) and isinstance(comp["class_name"], str)
        assert comp["library"] is None or isinstance(comp["library"], str)
        assert isinstance(comp["present"], bool)
        params = comp["parameters"]
        assert params is None or all(isinstance(params[k], int) for k in ("total", "trainable", "bytes"))
        assert comp["flops"] is None or isinstance(comp["flops"], int)
        for out in comp["outputs"]:
            assert isinstance(out["name"], str) and is_shape(out["shape"]) and isinstance(out["dtype"], str)
        for layer in comp["layers"]:
            assert isinstance(layer["name"], str) and isinstance(layer["type"], str)
            assert isinstance(layer["depth"], int) and isinstance(layer["parameters"], int)
            assert all(is_shape(s) for s in layer["input_shapes"] + layer["output_shapes"])
            assert layer["flops"] is None or isinstance(layer["flops"], int)
        assert isinstance(comp["details"], dict)
    for plugin in data["plugins"]:
        assert isinstance(plugin["name"], str) and plugin["source"] in ("builtin", "entrypoint")
        assert plugin["version"] is None or isinstance(plugin["version"], str)
        assert plugin["error"] is None or isinstance(plugin["error"], str)


def test_round_trip(run, tmp_path):
    path = tmp_path / "run.json"
    json_report.write(run, path)
    loaded = json_report.load(path)
    assert isinstance(loaded, RunResult)
    assert loaded.to_dict() == run.to_dict()
    assert loaded.component("unet").layers[0] == run.component("unet").layers[0]


def test_nan_and_infinity_become_null(run, tmp_path):
    run.component("unet").details["ratio"] = math.nan
    run.component("vae").details["peak"] = math.inf
    path = tmp_path / "run.json"
    json_report.write(run, path)
    data = json.loads(path.read_text())  # strict JSON parses
    comps = {c["name"]: c for c in data["components"]}
    assert comps["unet"]["details"]["ratio"] is None and comps["vae"]["details"]["peak"] is None
    del run.component("unet").details["ratio"], run.component("vae").details["peak"]


def test_loading_rejects_what_is_not_a_run(tmp_path):
    from inspector.errors import InspectorError

    bad = tmp_path / "bad.json"
    for text, message in (("{", "not a JSON run"), ("[]", "no schema_version"),
                          ('{"schema_version": 99}', "schema version 99")):
        bad.write_text(text)
        with pytest.raises(InspectorError, match=message):
            json_report.load(bad)


def test_report_files_get_normal_permissions(run, tmp_path):
    import os
    import stat

    path = tmp_path / "new.json"
    json_report.write(run, path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    os.chmod(path, 0o640)
    json_report.write(run, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["new.json"]  # no temporary file left


def test_runs_written_before_later_fields_existed_still_load(tmp_path):
    """Add freely, remove nothing: fields added after a run was saved take their defaults."""
    from pathlib import Path

    data = json.loads((Path(__file__).parent / "data" / "tiny-profile.json").read_text())
    data.pop("notes", None)
    for comp in data["components"]:
        comp.pop("metrics", None)
        for layer in comp["layers"]:
            layer.pop("order", None)
    path = tmp_path / "older.json"
    path.write_text(json.dumps(data))
    run = json_report.load(path)
    assert run.notes == [] and run.component("unet").metrics == {}
    assert run.component("unet").layers[0].order is None
    broken = dict(data)
    del broken["components"][0]["name"]  # the minimum contract is still required
    path.write_text(json.dumps(broken))
    with pytest.raises(Exception, match="'name' is a required property"):
        json_report.load(path)
