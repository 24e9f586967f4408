"""Our per-component timing vs torch.utils.benchmark (and CUDA events on a GPU) on the same calls.

Profiles MODEL with ``run_profile``, then re-times the text encoder, UNet and VAE decode
calls of that run with independent timers in the same process and prints a table of
medians and ratios (ours / reference). ``torch.utils.benchmark.Timer.blocked_autorange``
measures a call longer than its ``min_run_time`` only once, so it is given a
``min_run_time`` of 20 calls' worth and its per-call median is reported; it also
defaults to one thread, so it is given torch's current thread count.

    python bench/timing_agreement.py                        # tiny-sd on this CPU
    python bench/timing_agreement.py sd21 --device cuda --dtype float16 --height 512 --steps 50
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def cuda_event_median(fn, repeats: int) -> float:
    import torch

    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def torch_benchmark_median(fn, approx_ms: float) -> float:
    import torch
    import torch.utils.benchmark as benchmark

    # Timer runs with one thread unless told otherwise; ours runs with torch's current count
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    measurement = timer.blocked_autorange(min_run_time=max(0.2, 20 * approx_ms / 1000.0))
    return measurement.median * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="tiny-sd")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="also write the profile run as JSON here")
    args = parser.parse_args()

    import torch

    from inspector.inspection import pipeline_device_dtype
    from inspector.plugin.context import ProfileContext, ProfileOptions
    from inspector.plugin.host import Host
    from inspector.plugins.text_encoder import input_ids
    from inspector.plugins.unet import example_inputs
    from inspector.plugins.vae import latent_of
    from inspector.profiling import resolve_dtype, run_profile
    from inspector.sources.loading import SourceSpec, load, quiet_libraries

    quiet_libraries()
    options = ProfileOptions(height=args.height, width=args.height, steps=args.steps, warmup=2,
                             repeats=args.repeats, e2e_repeats=3)
    host = Host.default()
    spec = SourceSpec(model=args.model, weights="random" if args.model in host.presets() else None,
                      dtype=resolve_dtype(args.dtype, args.device, True), device=args.device)
    loaded = load(spec, host.presets())
    run = run_profile(host, spec, options, loaded=loaded)
    if args.json:
        from inspector.reports import json_report

        json_report.write(run, args.json)
    # the same calls on the same pipeline, built by the plugins' own input builders
    pipe = loaded.pipe
    device, dtype = pipeline_device_dtype(pipe)
    ctx = ProfileContext(pipe=pipe, options=options, device=device, dtype=dtype, height=run.inputs.height,
                         width=run.inputs.width)
    unet_kwargs = example_inputs(ctx, pipe.unet)
    ids = input_ids(ctx, "text_encoder", pipe.text_encoder)
    with torch.no_grad():
        image = ctx.example(1, 3, ctx.height, ctx.width)
        latent = latent_of(pipe.vae.encode(image))
    calls = {
        "text_encoder": (lambda: pipe.text_encoder(ids), run.component("text_encoder").measurements[0]),
        "unet": (lambda: pipe.unet(**unet_kwargs), run.component("unet").measurements[0]),
        "vae decode": (lambda: pipe.vae.decode(latent), next(m for m in run.component("vae").measurements
                                                              if m.name == "decode")),
    }
    cuda = args.device.startswith("cuda")
    print(f"{args.model} on {run.profile.device_name} ({run.profile.device}, {run.profile.dtype}), "
          f"{run.inputs.width}x{run.inputs.height}, {args.steps} steps")
    header = f"{'component':<14}{'ours ms':>12}{'torch.utils.benchmark':>24}{'ratio':>8}"
    if cuda:
        header += f"{'CUDA events':>14}{'ratio':>8}"
    print(header)
    worst = 0.0
    with torch.no_grad():
        for name, (fn, ours) in calls.items():
            reference = torch_benchmark_median(fn, ours.timing.median)
            ratio = ours.timing.median / reference
            worst = max(worst, abs(ratio - 1))
            line = f"{name:<14}{ours.timing.median:>12.3f}{reference:>24.3f}{ratio:>8.3f}"
            if cuda:
                events = cuda_event_median(fn, args.repeats)
                line += f"{events:>14.3f}{ours.timing.median / events:>8.3f}"
            print(line)
    p = run.pipeline
    if p is not None:
        print(f"end to end: instrumented {p.total:.1f} ms, bare {p.bare_total:.1f} ms, "
              f"overhead x{p.overhead_ratio:.3f}; isolated components sum to {p.component_sum_ratio:.3f} of total")
    print(f"largest timing disagreement: {100 * worst:.1f}%")


if __name__ == "__main__":
    main()
