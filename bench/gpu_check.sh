#!/usr/bin/env bash
# The GPU check (issue 14): the CUDA tests, then GPU timings of the benches, in under 5
# minutes on one GPU. For the device machine (its python3 holds a CUDA torch, numpy, scipy,
# pandas and safetensors, but not cachelib nor dash), from the repository root:
#
#   echo /.whl/ >> .git/info/exclude
#   python -m pip download --no-deps --only-binary=:all: -d .whl cachelib==0.17.0
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=360)
#
# Everything it prints also lands in $OUT/gpu_check.log (the tool brings $OUT back).
# The tests run without the suite's conftest (it loads dash.testing for the browser
# tests): only svdcore's own tests, which need no fixture of it. Each step has its own
# time limit, so one that hangs cannot take the others' time.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOG=${OUT:-/tmp}/gpu_check.log
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec > >(tee "$LOG") 2>&1

if ! "$PY" -c "import cachelib" 2>/dev/null && [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
nvidia-smi -L || true
"$PY" -c "import torch, svdcore; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), svdcore.default_device())" || exit 1

step() {  # step SECONDS TITLE COMMAND...
  local limit=$1 title=$2
  shift 2
  echo
  echo "=== $title (limit ${limit}s)"
  local t0=$SECONDS
  timeout "$limit" "$@"
  local rc=$?
  echo "=== $title: exit $rc after $((SECONDS - t0)) s"
  return 0
}

PYTEST=("$PY" -m pytest -q -c /dev/null --rootdir . --noconftest -p no:cacheprovider)
# The GPU tests themselves, then svdcore's top-k / operator / FFT tests with the GPU as the
# default device (every result must mean the same as on the CPU).
step 60 "CUDA tests" "${PYTEST[@]}" -rs tests/svdcore/test_device.py
step 75 "svdcore tests on SVDSCOPE_DEVICE=cuda" env SVDSCOPE_DEVICE=cuda "${PYTEST[@]}" \
  tests/svdcore/test_randomized.py tests/svdcore/test_surgery_topk.py \
  tests/svdcore/test_fourier.py tests/svdcore/test_spectrum.py tests/svdcore/test_descramble.py
# Timings: the top-64 surgery at the papers' sizes on the GPU, then the same cases on the
# CPU cores of that machine as the baseline (ratios within one run are what compare).
step 90 "top-64 surgery on cuda" "$PY" bench/bench_surgery_scale.py --device cuda \
  --cases cifar,cifar-b8,alexnet-c5,alexnet-f12,vgg11-f28 --precision float32
step 50 "top-64 surgery on cpu (baseline)" "$PY" bench/bench_surgery_scale.py --device cpu \
  --cases cifar,alexnet-c5
step 25 "svd: svdcore vs bare torch on cuda" "$PY" bench/bench_svd.py --device cuda --repeat 3
echo
echo "gpu_check done in $SECONDS s"
