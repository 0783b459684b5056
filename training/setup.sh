#!/usr/bin/env bash
# The training stack (training/requirements.txt, from PyPI) in .venv at the repository root, which the
# training code and `npm run test:training` use. Idempotent: a complete .venv is left as it is.
# PyPI's torch wheel for Linux x86-64 brings NVIDIA's CUDA libraries (~3 GB download); it runs on CPU too.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, torchio, SimpleITK, onnx, scipy, PIL, tqdm" 2>/dev/null; then
  exit 0
fi
if ! python3 -m venv .venv 2>/dev/null; then
  # Debian's python3 keeps venv (ensurepip) in a package of its own.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -q python3-venv
  python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r training/requirements.txt
