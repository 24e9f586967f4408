"""Measurement trust: spread, percentiles, repeating until stable, machine state, flagged ratios."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from inspector.measure import timing as measure_mod
from inspector.measure.machine import MachineMonitor, summarize_machine
from inspector.measure.timing import measure, percentile, relative_spread, summarize
from inspector.measure.tracing import judge_stability, paired_ratio_interval
from inspector.results.records import MachineSample, Measurement, PipelineRun, RunResult


def scripted_clock(monkeypatch, durations):
    """Make every timed call take the next of ``durations`` (ms); the last one repeats."""
    calls = []

    def time_ms(self, fn):
        value = fn()
        calls.append(1)
        return durations[min(len(calls) - 1, len(durations) - 1)], value

    monkeypatch.setattr(measure_mod.Clock, "time_ms", time_ms)
    return calls


def test_percentiles_only_with_enough_samples():
    few = summarize([float(i) for i in range(1, 10)], None)
    assert few.p50 == 5.0 and few.p90 is None and few.p99 is None
    ten = summarize([float(i) for i in range(1, 11)], None)
    assert ten.p90 == pytest.approx(percentile(sorted(ten.samples), 90)) == pytest.approx(9.1)
    assert ten.p99 is None
    hundred = summarize([float(i) for i in range(1, 101)], None)
    assert hundred.p99 == pytest.approx(99.01)


def test_relative_spread_and_flag():
    assert relative_spread([10.0]) is None
    stats = summarize([10.0, 10.0, 10.0, 20.0], None, max_spread=0.1)
    assert stats.rel_spread == pytest.approx(2.5 / 10.0) and stats.unstable
    assert not summarize([10.0, 10.1, 10.0, 9.9], None, max_spread=0.1).unstable
    assert summarize([10.0, 10.0], None, max_spread=0.1).unstable  # too few to know
    assert not summarize([10.0, 30.0], None).unstable  # no threshold: nothing judged


def test_repeats_until_the_spread_is_under_the_threshold(monkeypatch):
    # cold, then noisy, then steady: stops as soon as IQR / median <= 10%
    calls = scripted_clock(monkeypatch, [50.0, 1.0, 9.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    result = measure(lambda: None, "cpu", warmup=0, repeats=3, max_time=60.0, max_spread=0.1)
    t = result.timing
    assert t.count > 3 and not t.unstable and t.rel_spread <= 0.1
    assert relative_spread(t.samples[:-1]) > 0.1  # one call fewer would not have been enough
    assert len(calls) == 1 + t.count


def test_time_budget_stops_an_unstable_measurement_and_flags_it(monkeypatch):
    scripted_clock(monkeypatch, [100.0, 100.0, 300.0] * 50)
    t = measure(lambda: None, "cpu", warmup=0, repeats=2, max_time=1.0, max_spread=0.1).timing
    assert t.unstable and sum(t.samples) >= 1000.0 and sum(t.samples[:-1]) < 1000.0


def test_no_budget_means_exactly_repeats(monkeypatch):
    scripted_clock(monkeypatch, [1.0, 9.0, 1.0, 9.0, 1.0, 9.0])
    t = measure(lambda: None, "cpu", warmup=0, repeats=3, max_time=0.0).timing
    assert t.count == 3 and t.unstable


def test_machine_summary_names_why_it_was_busy():
    start = MachineSample(seconds=0.0, load=3.0, cpu_mhz=2000.0)
    samples = [MachineSample(seconds=0.5 * i, load=3.0, cpu_mhz=2000.0, other_cpu=0.5) for i in range(1, 5)]
    state = summarize_machine(start, samples, cpus=2)
    assert state.busy and state.other_cpu_mean == 0.5 and len(state.reasons) == 2
    quiet = summarize_machine(MachineSample(0.0, load=0.1), [MachineSample(0.5, load=0.1, other_cpu=0.01)], cpus=2)
    assert not quiet.busy and quiet.reasons == []
    unknown = summarize_machine(MachineSample(0.0), [MachineSample(0.5)], cpus=2)
    assert unknown.other_cpu_mean is None and not unknown.busy


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_monitor_sees_another_process_burning_cpu():
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        with MachineMonitor(interval=0.2) as monitor:
            time.sleep(1.0)
    finally:
        burner.kill()
        burner.wait()
    state = monitor.state
    assert state.start.load is not None and state.cpus >= 1
    # one busy loop is a whole CPU: at least 1/cpus of the machine, minus scheduling slack
    assert state.other_cpu_mean is not None and state.other_cpu_mean >= 0.6 / state.cpus
    assert len(state.samples) >= 3


def _timing(samples):
    return summarize(samples, None, max_spread=0.1)


def _run_with(measurements):
    from inspector.results.records import ComponentResult, Environment, Inputs, ModelInfo

    comp = ComponentResult(name="unet", class_name="X", library=None, present=True, measurements=measurements)
    return RunResult(model=ModelInfo("m", "P", "random"), environment=Environment("3", "t", "d", "tr", "cpu", "f"),
                     inputs=Inputs(8, 8, 1, "p"), components=[comp])


def test_paired_ratio_interval():
    assert paired_ratio_interval([10.0, 12.0, 11.0], [10.0, 10.0, 10.0]) == [1.0, 1.2]
    wide = paired_ratio_interval([float(i) for i in range(100, 120)], [100.0] * 20)
    assert wide[0] > 1.0 and wide[1] < 1.19


def test_steady_run_gets_intervals_and_no_flags():
    p = PipelineRun(totals=[100.0, 101.0, 100.5], bare_totals=[100.0, 100.4, 100.2])
    p.total, p.overhead_ratio = 100.5, 100.5 / 100.2
    m = Measurement(name="forward", timing=_timing([30.0, 30.2, 30.1]), calls_per_run=3)
    p.component_sum, p.component_sum_ratio = 90.3, 90.3 / 100.5
    judge_stability(p, _run_with([m]), 0.1, None)
    lo, hi = p.overhead_interval
    assert lo <= p.overhead_ratio <= hi and hi - lo < 0.02
    lo, hi = p.component_sum_ratio_interval
    assert lo <= p.component_sum_ratio <= hi
    assert p.unstable == [] and p.unstable_reasons == []


def test_noisy_or_busy_run_flags_the_ratios():
    p = PipelineRun(totals=[100.0, 250.0, 120.0], bare_totals=[100.0, 100.0, 180.0])
    p.total, p.overhead_ratio = 120.0, 1.2
    judge_stability(p, _run_with([]), 0.1, None)
    assert {"total", "bare_total", "overhead_ratio"} <= set(p.unstable)
    assert p.overhead_interval[0] < 1.0 < p.overhead_interval[1]
    steady = PipelineRun(totals=[100.0, 100.0, 100.0], bare_totals=[100.0, 100.0, 100.0])
    steady.total, steady.overhead_ratio = 100.0, 1.0
    busy = summarize_machine(MachineSample(0.0, load=9.0), [MachineSample(1.0, other_cpu=0.9)], cpus=2)
    judge_stability(steady, _run_with([]), 0.1, busy)
    assert steady.unstable == ["overhead_ratio"] and "machine busy" in steady.unstable_reasons[0]
