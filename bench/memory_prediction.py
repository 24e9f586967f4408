"""Predicted peak memory (on meta, no weights) against measured peaks of the same calls.

For each model: the prediction comes from ``inspect`` on meta weights; then the model is
built with random weights on the device and each component's call (text encoder forward,
denoiser forward with the CFG batch, VAE decode as the pipeline calls it) is run and measured
three ways:

* tracked: the same tensor tracking, on real tensors (what the prediction stands for);
* CPU: peak RSS growth over the call (``MemoryMeter``: VmHWM after resetting it, glibc's
  free heap trimmed first), the call run once before so one-time caches are not counted;
* CUDA: ``torch.cuda.max_memory_allocated`` growth over the call, and for the whole
  pipeline (all on the device, two steps) the absolute peak against the predicted
  all-on-device peak (weights included).

On a CPU the measured peak is compared with the CPU prediction (the ``--fits cpu`` plan, with
each convolution's workspace), and each convolution of a list is measured alone as well; the
process runs with glibc's thresholds fixed (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``)
so freed blocks leave RSS at once (``--glibc-default`` keeps glibc's adaptive ones).

Goal: within 10%. Run:  python bench/memory_prediction.py [tiny-sd sd15] [--size 256]
[--device cpu|cuda] [--dtype float32|float16] [--onednn on|off] [--json PATH]. Figures vary with load on
the machine only through RSS (the tracked bytes do not).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def contexts(host, loaded, size, batch):
    from inspector.inspection import native_size, pipeline_device_dtype
    from inspector.plugin.context import InspectContext, InspectOptions

    pipe = loaded.pipe
    device, dtype = pipeline_device_dtype(pipe)
    h, w = (size, size) if size else native_size(pipe)
    return InspectContext(pipe=pipe, options=InspectOptions(height=h, width=w, batch_size=batch), device=device,
                          dtype=dtype, height=h, width=w, weights=loaded.weights)


def calls(ctx):
    """name -> zero-argument call, as the pipeline makes it."""
    import torch

    from inspector.plugins import text_encoder as te
    from inspector.plugins import transformer as tr
    from inspector.plugins import unet as un

    pipe = ctx.pipe
    out = {}
    for name, comp in pipe.components.items():
        if comp is None:
            continue
        if te.is_text_encoder(comp):
            ids = te.input_ids(ctx, name, comp)
            out[name] = (lambda c=comp, i=ids: c(i))
        elif un.is_unet(comp):
            kwargs = un.example_inputs(ctx, comp)
            out[name] = (lambda c=comp, k=kwargs: c(**k))
        elif tr.kind_of(comp):
            kwargs = tr.example_inputs(ctx, comp)
            out[name] = (lambda c=comp, k=kwargs: c(**k))
    vae = pipe.components.get("vae")
    if vae is not None:
        latent = torch.zeros((ctx.options.batch_size, vae.config.latent_channels, *ctx.latent_size),
                             dtype=ctx.dtype, device=ctx.device)
        out["vae"] = lambda: vae.decode(latent).sample
    return out


def measured_peak(call, device) -> int:
    import torch

    from inspector.measure.timing import MemoryMeter

    with torch.no_grad():
        call()  # once before: one-time caches (oneDNN primitives, cuDNN plans) are not activations
        gc.collect()
        with MemoryMeter(device) as meter:
            result = call()
            del result
    return meter.stats.peak


def tracked_peak(call) -> tuple[int, int]:
    """The tracker's peak on real tensors, and its peak with CPU convolution workspace."""
    import torch

    from inspector.measure.activations import tracking

    with torch.no_grad(), tracking() as tracker:
        result = call()
        del result
    return tracker.peak, tracker.cpu_peak


def run_model(model: str, size: int | None, device: str, dtype: str, batch: int, steps: int) -> dict:
    import torch

    from inspector.inspection import inspect_loaded
    from inspector.plugin.context import InspectOptions
    from inspector.plugin.host import Host
    from inspector.sources.loading import SourceSpec, load

    host = Host.default(entrypoints=False)
    presets = host.presets()
    t0 = time.perf_counter()
    meta = load(SourceSpec(model=model, weights="meta", dtype=dtype), presets)
    options = InspectOptions(height=size, width=size, batch_size=batch)
    predicted_run = inspect_loaded(host, meta, options)
    plan = predicted_run.memory_plan
    predict_s = time.perf_counter() - t0
    predicted = {m.component: m for m in plan.components}
    if device == "cpu":  # the plan --fits cpu makes: convolution workspace included
        from inspector.measure.memory_plan import plan_memory

        cpu_plan = plan_memory(meta.pipe, contexts(host, meta, size, batch), predicted_run.components, cpu=True)
        predicted_cpu = {m.component: m.activations for m in cpu_plan.components}
    else:
        predicted_cpu = {}
    del meta
    gc.collect()

    real = load(SourceSpec(model=model, weights="random", dtype=dtype, device=device), presets)
    ctx = contexts(host, real, size, batch)
    rows = []
    for name, call in calls(ctx).items():
        p = predicted.get(name)
        if p is None:
            continue
        tracked, tracked_cpu = tracked_peak(call)
        measured = measured_peak(call, ctx.device)
        # against RSS on a CPU: the CPU prediction; against CUDA's allocator: the tensors
        against = predicted_cpu.get(name, p.activations) if device == "cpu" else p.activations
        rows.append({"model": model, "component": name, "call": p.call, "predicted": p.activations,
                     "predicted_cpu": predicted_cpu.get(name), "tracked_real": tracked,
                     "tracked_real_cpu": tracked_cpu, "measured": measured,
                     "measured_kind": "cuda_max_allocated" if device == "cuda" else "cpu_rss_growth",
                     "error_vs_tracked": (p.activations - tracked) / tracked if tracked else None,
                     "error_vs_measured": (against - measured) / measured if measured else None,
                     "error_tensors_vs_measured": (p.activations - measured) / measured if measured else None})
    pipeline = None
    if device == "cuda":
        pipeline = pipeline_peak(real.pipe, ctx, plan, steps)
    del real
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"model": model, "size": ctx.height, "dtype": dtype, "device": device, "batch": batch,
            "predict_s": predict_s, "components": rows, "pipeline": pipeline}


def pipeline_peak(pipe, ctx, plan, steps: int) -> dict:
    """The whole pipeline, everything on the GPU: absolute max_memory_allocated against the
    predicted all-on-device peak (weights included)."""
    import torch

    from inspector.measure.memory_plan import predicted_peak

    pipe.set_progress_bar_config(disable=True)
    kwargs = {"prompt": ctx.options.prompt, "height": ctx.height, "width": ctx.width, "num_inference_steps": steps,
              "num_images_per_prompt": ctx.options.batch_size}
    with torch.no_grad():
        pipe(**kwargs)  # warm: cuDNN plans, allocator growth
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        pipe(**kwargs)
        torch.cuda.synchronize()
    measured = torch.cuda.max_memory_allocated()
    predicted = predicted_peak(plan, "all on device", "plain")
    return {"predicted": predicted, "measured": measured,
            "error": (predicted - measured) / measured if measured and predicted else None}


#: single convolutions (batch, C_in, C_out, size, kernel) of the sd15 UNet and VAE at 256x256
CONVS = [(2, 320, 320, 32, 3), (2, 640, 640, 16, 3), (2, 1280, 1280, 4, 3), (2, 2560, 1280, 8, 3),
         (2, 640, 320, 32, 1), (1, 512, 512, 32, 3), (1, 256, 256, 128, 3), (1, 128, 128, 256, 3)]


def conv_rows() -> list[dict]:
    """Each convolution alone: RSS growth over the call against its output plus the workspace
    ``cpu_conv_workspace`` predicts."""
    import torch

    from inspector.measure.activations import cpu_conv_workspace

    rows = []
    with torch.no_grad():
        for batch, c_in, c_out, size, k in CONVS:
            conv = torch.nn.Conv2d(c_in, c_out, k, padding=k // 2)
            x = torch.randn(batch, c_in, size, size)
            args = (x, conv.weight, conv.bias, [1, 1], [k // 2] * 2, [1, 1], False, [0, 0], 1)
            predicted = batch * c_out * size * size * 4 + cpu_conv_workspace(torch.ops.aten.convolution.default, args)
            measured = min(measured_peak(lambda conv=conv, x=x: conv(x), "cpu") for _ in range(3))
            rows.append({"conv": f"{c_in}->{c_out} {k}x{k} at {size}, batch {batch}", "predicted": predicted,
                         "measured": measured, "error": (predicted - measured) / measured if measured else None})
    return rows


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=["tiny-sd", "sd15"])
    parser.add_argument("--size", type=int, default=256, help="image size for the full-size presets")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2, help="pipeline steps for the CUDA end-to-end peak")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--onednn", choices=["on", "off"], default="on",
                        help="off: CPU convolutions use PyTorch's own kernels instead of oneDNN's")
    parser.add_argument("--glibc-default", action="store_true",
                        help="keep glibc's adaptive allocator (it keeps freed blocks, so RSS reads high)")
    args = parser.parse_args()
    if args.device == "cpu" and not args.glibc_default and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # peak RSS measures the call only if glibc returns every freed block at once: fixed
        # thresholds, set before the process starts, so run again with them
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    import torch

    results = []
    convs = []
    if args.device == "cpu":
        with torch.backends.mkldnn.flags(enabled=args.onednn == "on"):
            convs = conv_rows()
    for model in args.models:
        size = None if model.startswith("tiny") else args.size
        # convolution kernels allocate workspaces inside the operator (oneDNN: input and weight
        # reordered; PyTorch's own CPU convolution: the im2col buffer); the CPU prediction models
        # the one this setting selects (inspector.measure.activations.cpu_conv_workspace)
        with torch.backends.mkldnn.flags(enabled=args.onednn == "on"):
            results.append(run_model(model, size, args.device, args.dtype, args.batch_size, args.steps))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.dtype}, "
          f"oneDNN {args.onednn}")
    for r in convs:
        print(f"  one convolution {r['conv']:<34} predicted {mib(r['predicted']):>8} MiB  measured "
              f"{mib(r['measured']):>8} MiB  {pct(r['error'])}")
    print("predicted: tensors (any device); CPU: with convolution workspace (the --fits cpu plan); "
          "measured is compared with CPU on a CPU, with tensors on CUDA")
    print(f"{'model':<8} {'size':>5} {'component':<14} {'call':<8} {'predicted MiB':>14} {'tracked MiB':>12} "
          f"{'CPU MiB':>9} {'tracked CPU':>11} {'measured MiB':>13} {'vs tracked':>10} {'vs measured':>11}")
    for res in results:
        for r in res["components"]:
            print(f"{r['model']:<8} {res['size']:>5} {r['component']:<14} {r['call']:<8} {mib(r['predicted']):>14} "
                  f"{mib(r['tracked_real']):>12} {mib(r['predicted_cpu']):>9} {mib(r['tracked_real_cpu']):>11} "
                  f"{mib(r['measured']):>13} {pct(r['error_vs_tracked']):>10} {pct(r['error_vs_measured']):>11}")
        if res["pipeline"]:
            p = res["pipeline"]
            print(f"{res['model']:<8} {res['size']:>5} {'pipeline':<14} {'all':<8} {mib(p['predicted']):>14} "
                  f"{'':>12} {mib(p['measured']):>13} {'':>10} {pct(p['error']):>11}")
        print(f"  prediction took {res['predict_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"convolutions": convs, "models": results}, indent=2))


if __name__ == "__main__":
    main()
