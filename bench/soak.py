"""Profile the tiny model many times in one process: memory and hooks must not grow.

Prints RSS (and CUDA allocated memory on a GPU) and the number of forward hooks left on the
pipeline's modules, after the first run and every N runs, and the growth between the first
checkpoint and the last. Each run is a complete ``run_profile`` (components and end to end).

    python bench/soak.py                 # 200 runs, about 4 minutes here
    python bench/soak.py --runs 20
"""
from __future__ import annotations

import argparse
import gc
import time


def hooks(pipe) -> int:
    import torch

    count = 0
    for comp in pipe.components.values():
        if isinstance(comp, torch.nn.Module):
            for m in comp.modules():
                count += len(m._forward_hooks) + len(m._forward_pre_hooks)
    count += sum(1 for name in ("step",) if name in vars(pipe.scheduler))
    count += sum(1 for name in ("decode",) if name in vars(pipe.vae))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--every", type=int, default=20)
    args = parser.parse_args()

    import torch

    from inspector.measure.timing import rss_bytes
    from inspector.plugin.context import ProfileOptions
    from inspector.plugin.host import Host
    from inspector.profiling import run_profile
    from inspector.sources.loading import SourceSpec, load, quiet_libraries

    quiet_libraries()
    host = Host.default()
    spec = SourceSpec(model="tiny-sd", weights="random")
    loaded = load(spec, host.presets())
    options = ProfileOptions(steps=2, warmup=0, repeats=1, e2e_repeats=1)
    cuda = torch.cuda.is_available()
    print(f"{'run':>5}{'RSS MiB':>10}{'CUDA MiB':>10}{'hooks':>7}{'s/run':>8}")
    checkpoints = []
    start = time.perf_counter()
    for i in range(1, args.runs + 1):
        run_profile(host, spec, options, loaded=loaded)
        if i == 1 or i % args.every == 0:
            gc.collect()
            rss = rss_bytes() / 2**20
            cuda_mb = torch.cuda.memory_allocated() / 2**20 if cuda else 0.0
            checkpoints.append((i, rss, cuda_mb, hooks(loaded.pipe)))
            print(f"{i:>5}{rss:>10.1f}{cuda_mb:>10.1f}{checkpoints[-1][3]:>7}{(time.perf_counter() - start) / i:>8.2f}")
    first, last = checkpoints[0], checkpoints[-1]
    print(f"growth from run {first[0]} to run {last[0]}: RSS {last[1] - first[1]:+.1f} MiB "
          f"({100 * (last[1] - first[1]) / first[1]:+.1f}%), CUDA {last[2] - first[2]:+.1f} MiB, "
          f"hooks {last[3] - first[3]:+d}")


if __name__ == "__main__":
    main()
