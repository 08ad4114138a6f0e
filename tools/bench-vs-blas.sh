#!/usr/bin/env bash
# A training step of clvae (`clvae bench`) against the same step in plain C + OpenBLAS
# (tools/ref_trainer), run back to back and alternated ROUNDS times, since these machines
# have slow and fast phases; prints each median and the ratio clvae / reference.
# usage: tools/bench-vs-blas.sh [BUILD_DIR] [ROUNDS] [extra clvae bench args...]
set -euo pipefail
build=${1:-build}; rounds=${2:-3}; shift $(( $# > 2 ? 2 : $# )) || true
[ -x "$build/tools/ref_trainer" ] || { echo "no $build/tools/ref_trainer: install libopenblas-dev and reconfigure" >&2; exit 2; }
ratios=()
for r in $(seq "$rounds"); do
  ms='import json,sys; print(json.load(sys.stdin)["ms_per_step"])'
  ref=$("$build/tools/ref_trainer" --steps 60 --json | python3 -c "$ms")
  ours=$("$build/src/clvae" bench --steps 60 --json "$@" 2>/dev/null | python3 -c "$ms")
  ratio=$(python3 -c "print(f'{$ours / $ref:.3f}')")
  ratios+=("$ratio")
  echo "round $r: clvae $ours ms/step, C + OpenBLAS $ref ms/step, ratio $ratio"
done
python3 -c "import statistics as s; r=[float(x) for x in '${ratios[*]}'.split()]; print(f'median ratio clvae / OpenBLAS reference: {s.median(r):.3f}')"
