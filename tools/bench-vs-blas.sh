#!/usr/bin/env bash
# A training step of clvae (`clvae bench`) against the same step in plain C + OpenBLAS
# (tools/ref_trainer), run back to back and alternated ROUNDS times, since these machines
# have slow and fast phases; prints each median and the ratio clvae / reference.
# usage: tools/bench-vs-blas.sh [BUILD_DIR] [ROUNDS] [extra clvae bench args...]
set -euo pipefail
build=${1:-build}; rounds=${2:-3}; shift $(( $# > 2 ? 2 : $# )) || true
[ -x "$build/tools/ref_trainer" ] || { echo "no $build/tools/ref_trainer: install libopenblas-dev and reconfigure" >&2; exit 2; }
# OpenBLAS 0.3.21 takes some virtual CPUs for a "Prescott" and runs its generic kernels,
# 3x slower here: name the core the CPU's flags allow, unless the caller chose one.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
echo "OpenBLAS core: $("$build/tools/ref_trainer" --core)"
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
