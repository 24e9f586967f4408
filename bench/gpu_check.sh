#!/usr/bin/env bash
# Every GPU check in one command (issue 3's GPU script), for a lent H100/H200:
#   device run: carry [".whl"], command "bash bench/gpu_check.sh", timeout_s 540
# Prepare the wheels first with bench/gpu_wheels.sh. Writes its tables and JSON runs to
# $OUT (the device tool's output folder) or /tmp/gpu_check. Target: under 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
# DRY_RUN=1: print the commands without running them (checks the script on a machine without a GPU)
if [ "${DRY_RUN:-0}" = "1" ]; then
  grep -E '^ *(python3|nvidia-smi)' "$0" | sed 's/^ */would run: /'
  exit 0
fi
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
# our package, without build isolation (no network there): installs inspector, inspector.plugins, .reports
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site .
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

start=$(date +%s)
# sd21, random float16 weights, 512x512, 50 steps; then sdxl at 1024x1024, 20 steps.
# Each: every component profiled, the pipeline end to end (bare vs instrumented), and our
# per-component medians against torch.utils.benchmark and CUDA events on the same calls.
python3 bench/timing_agreement.py sd21 --device cuda --dtype float16 --height 512 --steps 50 \
  --json "$OUT/sd21.json" 2>&1 | tee "$OUT/sd21.txt"
python3 bench/timing_agreement.py sdxl --device cuda --dtype float16 --height 1024 --steps 20 \
  --json "$OUT/sdxl.json" 2>&1 | tee "$OUT/sdxl.txt"
# Memory prediction (meta, no weights) against torch.cuda.max_memory_allocated, float16: each
# component's call, and the whole pipeline with everything on the GPU (goal: within 10%).
python3 bench/memory_prediction.py sd15 sd21 sdxl --device cuda --dtype float16 --size 512 \
  --json "$OUT/memory_prediction.json" 2>&1 | tee "$OUT/memory_prediction.txt"
python3 bench/memory_prediction.py sdxl --device cuda --dtype float16 --size 1024 \
  --json "$OUT/memory_prediction_sdxl1024.json" 2>&1 | tee "$OUT/memory_prediction_sdxl1024.txt"
# CUDA-only tests (timing against CUDA events, real out-of-memory handling)
python3 -m pytest -q -m cuda -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest_cuda.txt" || true
echo "gpu_check took $(( $(date +%s) - start )) s" | tee -a "$OUT/gpu.txt"
