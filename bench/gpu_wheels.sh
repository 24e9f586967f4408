#!/usr/bin/env bash
# Run here (with network to PyPI) before bench/gpu_check.sh: the GPU image has torch,
# transformers, pluggy, click, rich, pandas and jinja2, but not diffusers; open-clip-torch
# brings the real CLIP vocabulary. Pure-Python wheels, so no platform tags are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: -d .whl diffusers==0.42.1 open-clip-torch==3.3.0
ls -la .whl
