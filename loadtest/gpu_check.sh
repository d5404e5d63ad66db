#!/usr/bin/env bash
# The one-shot GPU check of the Qwen3-TTS backend: run it on a machine with an NVIDIA GPU.
#
# Installs the project with the `dev` (what `python -m loadtest` imports), `qwen` and `gpucheck`
# extras from requirements.lock into a venv of its own, and runs `python -m loadtest qwen-check`:
# it builds random-weight 0.6B and 1.7B Base models from ../shared/qwen3-tts (once), then runs
# within a budget of 480 s; one table on stdout, JSON in loadtest/results/qwen-check.json.
# The exit status is 1 when a configuration failed.
# The test suite runs this script in its reduced CPU mode (tests/loadtest/test_qwen_bench.py):
#   PYTHON_ENV=.venv loadtest/gpu_check.sh --device cpu --reduced TINY_CHECKPOINT --json OUT
#
#   loadtest/gpu_check.sh                       # create .venv-gpu and install (needs PyPI)
#   WHEELS=/path/to/wheels loadtest/gpu_check.sh  # offline: install from a folder made beforehand with
#                                               # pip download -r requirements.lock -d /path/to/wheels
#   PYTHON_ENV=/path/to/venv loadtest/gpu_check.sh  # use a venv that already has the three extras
#   loadtest/gpu_check.sh --budget 300          # arguments go to `python -m loadtest qwen-check`
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON_ENV:-}" ]]; then
    venv="$PYTHON_ENV"
else
    venv=.venv-gpu
    if [[ ! -x "$venv/bin/python" ]]; then
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    source_args=()
    if [[ -n "${WHEELS:-}" ]]; then
        source_args=(--no-index --find-links "$WHEELS")
    fi
    "$venv/bin/pip" install --quiet "${source_args[@]}" -c requirements.lock -e '.[dev,qwen,gpucheck]'
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$venv/bin/python" -m loadtest qwen-check --device cuda --json loadtest/results/qwen-check.json "$@"
