#!/usr/bin/env bash
# A training step of clvae (`clvae bench`) against the same step in plain C + OpenBLAS
# (tools/ref_trainer), run back to back ROUNDS times, each going first every other round,
# since these machines have slow and fast phases; prints each median, the ratio clvae /
# reference of each round and the median ratio.
# usage: tools/bench-vs-blas.sh [BUILD_DIR] [ROUNDS] [extra clvae bench args...]
set -euo pipefail
build=${1:-build}; rounds=${2:-3}; shift $(( $# > 2 ? 2 : $# )) || true
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS '$rounds' is not a whole number from 1" >&2; exit 2; }
[ -x "$build/tools/ref_trainer" ] || { echo "no $build/tools/ref_trainer: install libopenblas-dev and reconfigure" >&2; exit 2; }
# OpenBLAS 0.3.21 takes some virtual CPUs for a "Prescott" and runs its generic kernels,
# 3x slower here: name the core the CPU's flags allow, unless the caller chose one.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
echo "OpenBLAS core: $("$build/tools/ref_trainer" --core)"
ratios=()
ms='import json,sys; print(json.load(sys.stdin)["ms_per_step"])'
run_ref() { ref=$("$build/tools/ref_trainer" --steps 60 --json | python3 -c "$ms"); }
run_ours() {
  local out
  # clvae's own message (a bad flag, no device) rather than a JSON traceback
  out=$("$build/src/clvae" bench --steps 60 --json "$@" 2>/tmp/bench-vs-blas.$$.err) ||
    { cat /tmp/bench-vs-blas.$$.err >&2; rm -f /tmp/bench-vs-blas.$$.err; exit 2; }
  rm -f /tmp/bench-vs-blas.$$.err
  ours=$(python3 -c "$ms" <<<"$out")
}
for r in $(seq "$rounds"); do
  # who goes first alternates, so that a phase change within a round favours neither
  if (( r % 2 )); then run_ref; run_ours "$@"; else run_ours "$@"; run_ref; fi
  ratio=$(python3 -c "print(f'{$ours / $ref:.3f}')")
  ratios+=("$ratio")
  echo "round $r: clvae $ours ms/step, C + OpenBLAS $ref ms/step, ratio $ratio"
done
python3 -c "import statistics as s; r=[float(x) for x in '${ratios[*]}'.split()]; print(f'median ratio clvae / OpenBLAS reference: {s.median(r):.3f}')"
