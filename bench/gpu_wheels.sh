#!/usr/bin/env bash
# For a GPU machine without network access: download, on a machine with network, the wheels
# bench/gpu_check.sh installs there (diffusers, and open-clip-torch for the real CLIP vocabulary;
# the GPU machine is expected to have torch, transformers, pluggy, click, rich, pandas and jinja2).
# Pure-Python wheels, so no platform tags are needed. They go into .whl/ (kept out of git).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: -d .whl diffusers==0.42.1 open-clip-torch==3.3.0
ls -la .whl
