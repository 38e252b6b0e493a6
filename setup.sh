#!/usr/bin/env bash
# Builds .venv: the CPU build of torch first (a bare `torch` requirement would pull a multi-GB
# CUDA build; on these machines `torch==2.13.0` is the CPU wheel on local disk, elsewhere add
# `--index-url https://download.pytorch.org/whl/cpu`), then this project with its test extras.
set -euo pipefail
cd "$(dirname "$0")"
export PIP_DISABLE_PIP_VERSION_CHECK=1
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[dev]'
echo "ready: .venv/bin/search --help"
