#!/usr/bin/env bash
# initbench on a GPU machine: the seed's setting, a 10 x 10 grid and a bigger one, with throughput.
#
# Needs a Python with jax (CUDA build), flax, optax, numpy, scipy, typer, rich, matplotlib and
# scikit-learn. TensorFlow, TFDS and mlxtend are NOT needed: the data is synthetic MNIST-shaped
# (55,000 x 784), and nothing on this path imports them. torch (CUDA) is optional: when present
# the first table also times eager PyTorch on the same GPU.
#
#   bash bench/gpu.sh                 # uses python3 from PATH
#   PYTHON=/opt/venv/bin/python bash bench/gpu.sh
#
# Rows are appended to results/bench.csv (machine, versions, git revision, device kind);
# copy the printed tables into BENCHMARKS.md. Where $OUT is set, the compare run folder and
# bench.csv are left there too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # no install needed (or: pip install --no-deps -e .)
export XLA_PYTHON_CLIENT_PREALLOCATE=false            # let torch share the GPU in the same process
export INITBENCH_XLA_CACHE=off                        # report cold compile times

echo "== devices"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"
"$PY" -c "import jax, sys; sys.exit(0 if jax.default_backend() == 'gpu' else 'no GPU backend: install jax[cuda12]')"

echo "== 1. the seed's setting: 8 models x 55,000 examples (+ eager PyTorch when installed)"
"$PY" -m initbench bench --data synthetic --models 8 --epochs 4 --torch-epochs 3

echo "== 2. a 10 x 10 grid: 100 models trained together"
"$PY" -m initbench bench --data synthetic --models 100 --epochs 3 --no-torch

echo "== 3. a 20 x 20 grid: 400 models (chunked automatically if memory is short)"
"$PY" -m initbench bench --data synthetic --models 400 --epochs 2 --no-torch

echo "== 4. the whole CLI end to end: compare on digits (sklearn; no mlxtend/TFDS needed), twice"
RUN=${OUT:-/tmp}/gpu-compare
export INITBENCH_CACHE=$(mktemp -d)
TIMEFORMAT='compare wall (start-up, data, compile, 25 cells x 10 epochs): %R s'
time "$PY" -m initbench compare --dataset digits --seeds 5 --epochs 10 --quiet --out "$RUN" --no-cache
"$PY" -m initbench compare --dataset digits --seeds 5 --epochs 10 --quiet --out /tmp/gpu-again \
  --no-cache >/dev/null
cmp "$RUN/curves.csv" /tmp/gpu-again/curves.csv && echo "same command, same numbers: curves.csv identical"

echo "== 5. cell independence on the GPU: one cell inside grids of 1, 6, 20 and 130 cells"
"$PY" bench/check_independence.py --grids 1,6,20,130 --out /tmp/ind-a.npz
"$PY" bench/check_independence.py --grids 1,20 --out /tmp/ind-b.npz
"$PY" bench/check_independence.py --compare /tmp/ind-a.npz /tmp/ind-b.npz || true

echo "== 6. learning-rate transfer across width (issue 25): sp vs mup on digits, then the coordinate check"
TIMEFORMAT='transfer wall (2 params x 5 widths x 13 rates x 5 seeds x 20 epochs): %R s'
time "$PY" -m initbench transfer --dataset digits --param sp,mup --widths 64,128,256,512,1024 \
  --lr 1e-4:1e-1:13 --seeds 5 --epochs 20 --quiet --out "${OUT:-/tmp}/gpu-transfer"
cat "${OUT:-/tmp}/gpu-transfer/transfer.csv" | cut -d, -f1,2,4,8,9,10,11
"$PY" -m initbench coord --dataset digits --param sp,mup --widths 64,256,1024,4096 --steps 10 \
  --lr 0.03 --seeds 5 --quiet --out "${OUT:-/tmp}/gpu-coord"

echo "== rows appended to results/bench.csv"
tail -n 3 results/bench.csv
if [ -n "${OUT:-}" ]; then cp results/bench.csv "$OUT/bench.csv"; fi
