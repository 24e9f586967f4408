#!/usr/bin/env bash
# Every GPU check in one command, for a machine with an NVIDIA GPU:
#
#   bash bench/gpu_check.sh [OUTDIR]          # default OUTDIR: ./gpu_check
#
# Needs ldm-inspector installed with its test extras (pip install torch -e '.[test]', a CUDA
# build of torch). A machine without network access can install from wheels instead: run
# bench/gpu_wheels.sh on a machine with network, copy the repository (with its .whl/ folder),
# and this script installs them into a private folder first.
#
# What it runs (about 8 minutes on an H100), writing each table and JSON run into OUTDIR:
#   * sd21, random float16 weights, 512x512, 50 steps; then sdxl at 1024x1024, 20 steps: every
#     component profiled, the pipeline end to end (bare vs instrumented), and our per-component
#     medians against torch.utils.benchmark and CUDA events on the same calls;
#   * predicted peak memory (meta, no weights) against torch.cuda.max_memory_allocated for
#     sd15, sd21 and sdxl in float16, per component and for the whole pipeline;
#   * the tests marked `cuda` (timing against CUDA events, real out-of-memory handling).
# DRY_RUN=1 prints the commands instead of running them.
# Exits non-zero if any part fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# DRY_RUN=1: print the commands without running them (checks the script on a machine without a GPU)
if [ "${DRY_RUN:-0}" = "1" ]; then
  grep -E '^ *(python3|nvidia-smi)' "$0" | sed 's/^ */would run: /'
  exit 0
fi
OUT=${1:-${OUT:-gpu_check}}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if ls .whl/*.whl >/dev/null 2>&1; then  # offline install from wheels prepared by bench/gpu_wheels.sh
  site=$(mktemp -d)
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" .
  export PYTHONPATH="$site"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

start=$(date +%s)
status=0
python3 bench/timing_agreement.py sd21 --device cuda --dtype float16 --height 512 --steps 50 \
  --json "$OUT/sd21.json" 2>&1 | tee "$OUT/sd21.txt" || status=1
python3 bench/timing_agreement.py sdxl --device cuda --dtype float16 --height 1024 --steps 20 \
  --json "$OUT/sdxl.json" 2>&1 | tee "$OUT/sdxl.txt" || status=1
# Memory prediction (meta, no weights) against torch.cuda.max_memory_allocated, float16: each
# component's call, and the whole pipeline with everything on the GPU (goal: within 10%).
python3 bench/memory_prediction.py sd15 sd21 sdxl --device cuda --dtype float16 --size 512 \
  --json "$OUT/memory_prediction.json" 2>&1 | tee "$OUT/memory_prediction.txt" || status=1
python3 bench/memory_prediction.py sdxl --device cuda --dtype float16 --size 1024 \
  --json "$OUT/memory_prediction_sdxl1024.json" 2>&1 | tee "$OUT/memory_prediction_sdxl1024.txt" || status=1
python3 -m pytest -q -m cuda -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest_cuda.txt" || status=1
echo "gpu_check took $(( $(date +%s) - start )) s; results in $OUT" | tee -a "$OUT/gpu.txt"
exit $status
