#!/usr/bin/env bash
# The README's "Deep and residual" results (issue 26), regenerated: `make deep-residual`.
# About 10 minutes on a 2-core CPU:
#
#   1. resmlp, 50 blocks of width 128, no normalization, mnist-5k: he_normal, fixup,
#      skipinit, zero, xavier over 5 seeds (5 epochs, adam 1e-3);
#   2. the tanh phase diagram against mean-field theory (Schoenholz et al. 2017) on mnist-5k
#      (8 sigma_w^2 x depths 10, 40, 70, 100 x 2 seeds, width 32, 2 epochs), and the ReLU one;
#   3. the reference comparison (5 initializers x 5 seeds, 30 epochs, mnist-5k) in bfloat16,
#      against the committed float32 one, results/reference/ (`make reference`: the same
#      command without --dtype), and their per-initializer equivalence (TOST, ±0.5 pt).
#
# DEST (default results/deep-residual) receives one folder per run; STEPS (default
# "resmlp phase-tanh phase-relu dtype") picks the steps; REFERENCE (default
# results/reference) is the float32 run. No cache: every cell is trained.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${DEST:-results/deep-residual}
STEPS=${STEPS:-resmlp phase-tanh phase-relu dtype}
REFERENCE=${REFERENCE:-results/reference}
mkdir -p "$DEST"
TIMEFORMAT='   %R s wall'
run() { echo "== $1"; shift; time "$@"; }
for step in $STEPS; do
  case $step in
    resmlp)
      run "resmlp 128x50, no norm" "$PY" -m initbench compare --model resmlp --hidden 128x50 \
        --norm none --inits he_normal,fixup,skipinit,zero,xavier --dataset mnist-5k --seeds 5 \
        --epochs 5 --lr 0.001 --no-cache --quiet --out "$DEST/resmlp" ;;
    phase-tanh)
      run "phase diagram, tanh" "$PY" -m initbench phase --activation tanh --sigma-w2 0.5:4:8 \
        --sigma-b2 0.05 --depths 10:100:30 --seeds 2 --width 32 --dataset mnist-5k --quiet \
        --out "$DEST/phase-tanh" ;;
    phase-relu)
      run "phase diagram, relu" "$PY" -m initbench phase --activation relu --sigma-w2 1:3:5 \
        --sigma-b2 0.05 --depths 10:100:30 --seeds 2 --width 32 --dataset mnist-5k --quiet \
        --out "$DEST/phase-relu" ;;
    dtype)
      test -f "$REFERENCE/spec.json" || { echo "no float32 run at $REFERENCE: make reference" >&2; exit 2; }
      run "reference, bfloat16" "$PY" -m initbench compare --dataset mnist-5k --seeds 5 \
        --dtype bfloat16 --no-cache --quiet --out "$DEST/reference-bfloat16"
      "$PY" -m initbench.precision "$REFERENCE" "$DEST/reference-bfloat16" 0.5 \
        | tee "$DEST/reference-bfloat16/equivalence.md" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
