"""How static inspection scales from tiny to full-size architectures (on meta).

Each preset in a fresh process, times after imports: time should grow with the layer count,
peak memory should stay flat (no weights on meta).

    python bench/inspect_scaling.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_bytes

PRESETS = ("tiny-sd", "sd15", "sd21", "sdxl", "sd3", "flux")


def phase(preset: str) -> dict:
    from inspector.inspection import run_inspect
    from inspector.plugin.context import InspectOptions
    from inspector.plugin.host import Host
    from inspector.sources.loading import SourceSpec, quiet_libraries

    quiet_libraries()
    import diffusers
    import transformers  # noqa: F401

    for name in ("AutoencoderKL", "UNet2DConditionModel", "SD3Transformer2DModel", "FluxTransformer2DModel",
                 "StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusion3Pipeline", "FluxPipeline"):
        getattr(diffusers, name)  # import the lazily loaded classes before timing
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, T5EncoderModel  # noqa: F401

    host = Host.default(entrypoints=False)
    start = time.perf_counter()
    run = run_inspect(host, SourceSpec(model=preset, weights="meta"), InspectOptions())
    seconds = time.perf_counter() - start
    return {"preset": preset, "seconds": seconds, "peak_rss": peak_rss_bytes(),
            "layers": sum(len(c.layers) for c in run.components),
            "parameters": sum(c.parameters.total for c in run.components if c.parameters),
            "size": f"{run.inputs.width}x{run.inputs.height}"}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--phase":
        print(json.dumps(phase(sys.argv[2])))
        return
    print(f"{'preset':<9}{'size':>11}{'parameters':>17}{'layers':>8}{'time s':>9}{'peak RSS GiB':>14}")
    rows = []
    for preset in PRESETS:
        out = subprocess.run([sys.executable, __file__, "--phase", preset], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{r['preset']:<9}{r['size']:>11}{r['parameters']:>17,}{r['layers']:>8}{r['seconds']:>9.2f}"
              f"{r['peak_rss'] / 2**30:>14.2f}")
    base = rows[0]
    print("relative to tiny-sd: " + ", ".join(
        f"{r['preset']} time x{r['seconds'] / base['seconds']:.1f} memory x{r['peak_rss'] / base['peak_rss']:.2f}"
        for r in rows[1:]))


if __name__ == "__main__":
    main()
