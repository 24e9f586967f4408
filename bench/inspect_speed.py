"""Static inspection of SD 2.1 vs building it with weights and running torchinfo.

Phases (each in a fresh process, so peak RSS is its own):

* ``ours``: ``run_inspect`` of the sd21 preset at 512x512 on ``meta``: every component, every
  layer's shapes and FLOPs. Timed after imports.
* ``torchinfo``: the same UNet built with real float32 random weights (diffusers' own init, as a
  user would), then ``torchinfo.summary`` of one call with the CFG batch. Timed after imports.
* ``cli``: ``ldm-inspector inspect`` (the tiny default model), wall time including imports.

``ours`` runs ``--runs`` times and ``torchinfo`` one time fewer, each in a fresh process; the best
of each is compared (interference on a shared machine only adds time, as ``timeit`` assumes), and
every run is printed. Prints a table and the ratios.
Usage: ``python bench/inspect_speed.py [--skip-torchinfo] [--runs N]``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gib, peak_rss_bytes, run_phase


def phase_ours() -> dict:
    from inspector.inspection import run_inspect
    from inspector.plugin.context import InspectOptions
    from inspector.plugin.host import Host
    from inspector.sources.loading import SourceSpec, quiet_libraries

    quiet_libraries()
    # Imports are not what we time: diffusers and transformers load their classes lazily,
    # so name the ones sd21 uses to import them here.
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: F401
    from transformers import CLIPTextModel, CLIPTokenizer  # noqa: F401

    start = time.perf_counter()
    host = Host.default(entrypoints=False)
    run = run_inspect(host, SourceSpec(model="sd21"), InspectOptions(height=512, width=512))
    seconds = time.perf_counter() - start
    layers = sum(len(c.layers) for c in run.components)
    return {"seconds": seconds, "peak_rss": peak_rss_bytes(), "layers": layers,
            "unet_params": run.component("unet").parameters.total}


def phase_torchinfo() -> dict:
    import torch
    import torchinfo
    from diffusers import UNet2DConditionModel
    from plugins_path import preset_dir

    from inspector.sources.loading import quiet_libraries

    quiet_libraries()
    config = UNet2DConditionModel.load_config(str(preset_dir("sd21") / "unet"))
    start = time.perf_counter()
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(config).eval()
    built = time.perf_counter() - start
    sample = torch.randn(2, 4, 64, 64)
    hidden = torch.randn(2, 77, 1024)
    stats = torchinfo.summary(unet, input_data={"sample": sample, "timestep": torch.tensor(999),
                                                "encoder_hidden_states": hidden},
                              depth=99, verbose=0, device="cpu")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "build_seconds": built, "peak_rss": peak_rss_bytes(),
            "mult_adds": int(stats.total_mult_adds), "unet_params": int(stats.total_params)}


def phase_cli() -> dict:
    start = time.perf_counter()
    proc = subprocess.run(["ldm-inspector", "inspect"], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return {"seconds": time.perf_counter() - start}


PHASES = {"ours": phase_ours, "torchinfo": phase_torchinfo, "cli": phase_cli}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=PHASES)
    parser.add_argument("--skip-torchinfo", action="store_true", help="skip the ~30 s, ~6 GB baseline")
    parser.add_argument("--runs", type=int, default=3,
                        help="fresh processes per timed phase (torchinfo: one fewer, at least one); the best is "
                             "compared, as timeit does: on a shared machine interference only adds time")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase]()))
        return
    script = str(Path(__file__).resolve())
    runs = [run_phase(script, "ours") for _ in range(max(1, args.runs))]
    ours = min(runs, key=lambda r: r["seconds"])
    cli = run_phase(script, "cli")
    print("static inspection, sd21 at 512x512 (all components, every layer), this machine")
    print(f"  ldm-inspector (meta)          {ours['seconds']:7.2f} s   peak RSS {gib(ours['peak_rss'])}"
          f"   {ours['layers']} layers   (targets: < 3 s, < 1 GiB)")
    print(f"    each run: {', '.join(format(r['seconds'], '.2f') + ' s' for r in runs)}")
    print(f"  ldm-inspector inspect (tiny)  {cli['seconds']:7.2f} s   wall, imports included (target: < 20 s)")
    if args.skip_torchinfo:
        return
    ti_runs = [run_phase(script, "torchinfo") for _ in range(max(1, args.runs - 1))]
    ti = min(ti_runs, key=lambda r: r["seconds"])
    assert ti["unet_params"] == ours["unet_params"], (ti["unet_params"], ours["unet_params"])
    print(f"  UNet random init + torchinfo  {ti['seconds']:7.2f} s   peak RSS {gib(ti['peak_rss'])}"
          f"   (of which init {ti['build_seconds']:.2f} s; UNet only; {ti['mult_adds'] / 1e9:.2f} G mult-adds)")
    print(f"    each run: {', '.join(format(r['seconds'], '.2f') + ' s' for r in ti_runs)}")
    worst = max(r["seconds"] for r in runs)
    print(f"  ratio time   torchinfo / ours = {ti['seconds'] / ours['seconds']:.1f}x  (best against best; "
          f"against our slowest run {ti['seconds'] / worst:.1f}x)")
    print(f"  ratio memory torchinfo / ours = {ti['peak_rss'] / ours['peak_rss']:.1f}x")


if __name__ == "__main__":
    main()
