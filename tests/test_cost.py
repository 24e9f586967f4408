"""Bounded work: a run predicted (on meta, before any weight exists) to take longer than
``--max-minutes`` is refused in one line that names its cost and the ways out."""
from __future__ import annotations

import pytest

import inspector
from inspector.measure.cost import PredictedCost, human_seconds, run_flops
from inspector.measure.recording import RECORD_STEPS
from inspector.sources.memory_guard import check_cost

FLOPS = {"text_encoder": ("text_encoder", 10), "unet": ("unet", 1000), "vae": ("vae", 400),
         "tokenizer": ("tokenizer", 0)}


@pytest.mark.unit
def test_the_work_of_each_command_adds_up_the_calls_it_makes():
    # inspect: recording (text 10 + RECORD_STEPS x 1000 + decode 200), then one example call each (10 + 1000 + 400)
    inspection = 10 + RECORD_STEPS * 1000 + 200 + 1410
    assert run_flops("inspect", FLOPS, denoise_calls=50) == inspection
    # profile: the inspection, then 1 cold + 1 warm-up + 5 repeats + 1 operator call per component
    # (the VAE: encode + decode + tiled decode = 400 + 200), then 2 x 3 + 1 generations of 50 steps
    per_call = 10 + 1000 + 400 + 200
    generation = 10 + 50 * 1000 + 200
    assert run_flops("profile", FLOPS, denoise_calls=50) == inspection + 8 * per_call + 7 * generation
    assert run_flops("profile", FLOPS, denoise_calls=50, end_to_end=False, operators=False, warmup=0,
                     repeats=1) == inspection + 2 * per_call


@pytest.mark.unit
def test_a_run_over_the_limit_is_refused_with_its_cost_and_the_ways_out():
    check_cost(None, 60, "x")  # nothing predicted: nothing refused
    check_cost(PredictedCost(flops=10**12, seconds=59.0, rate=1e10, at="512x512"), 60, "x")
    with pytest.raises(inspector.errors.OptionError) as exc:
        check_cost(PredictedCost(flops=5 * 10**12, seconds=1140.0, rate=4.4e9, at="2048x2048, batch 1, 50 steps"),
                   300, "tiny-sd")
    assert str(exc.value) == (
        "tiny-sd is predicted to take at least 19m00s (5.00 TFLOP at 2048x2048, batch 1, 50 steps, at this "
        "device's measured 4 GFLOP/s), over the 5m00s limit: lower --height/--width or --steps, use --weights "
        "meta for shapes and FLOPs without running it, raise --max-minutes, or pass --force")
    assert (human_seconds(59.4), human_seconds(61), human_seconds(7322)) == ("59 s", "1m01s", "2h02m")


@pytest.mark.tiny
def test_the_refusal_comes_before_any_weight_is_made(monkeypatch):
    import inspector.sources.loading as loading

    def no_weights(*_args, **_kwargs):
        raise AssertionError("weights were materialized")

    monkeypatch.setattr(loading, "materialize", no_weights)
    with pytest.raises(ValueError, match=r"tiny-sd is predicted to take at least .* over the 0 s limit.*"
                                         r"raise max_minutes=, or pass force=True"):
        inspector.inspect("tiny-sd", height=1024, width=1024, max_minutes=0.001, progress=False)
    with pytest.raises(ValueError, match="predicted to take at least"):
        inspector.profile("tiny-sd", height=1024, width=1024, max_minutes=0.001, progress=False)


@pytest.mark.tiny
def test_the_command_line_refuses_in_one_line_and_force_runs_it(cli, tmp_path):
    result = cli("inspect", "tiny-sd", "--height", "1024", "--width", "1024", "--max-minutes", "0.001")
    assert result.code == 2 and result.out == ""
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "predicted to take at least" in lines[0] and "--force" in lines[0]
    result = cli("inspect", "tiny-sd", "--steps", "2", "--max-minutes", "0.001", "--force",
                 "--json", str(tmp_path / "a.json"))
    assert result.code == 0, result.err
