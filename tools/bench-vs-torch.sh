#!/usr/bin/env bash
# The TF tutorial's convolutional VAE: a training step of clvae (`clvae bench`) against the
# same model in PyTorch on the CPU (../shared/bench/cvae_torch.py, Debian's python3-torch),
# run back to back ROUNDS times, each going first every other round (these machines have
# slow and fast phases); prints each median step, the ratio clvae / PyTorch of each round,
# the median ratio, and clvae's share of the FMA peak (tools/fma_peak, measured first).
# usage: tools/bench-vs-torch.sh [BUILD_DIR] [ROUNDS] [TORCH_SCRIPT] [extra clvae bench args...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}; rounds=${2:-3}; torch=${3:-$here/../../shared/bench/cvae_torch.py}
shift $(( $# > 3 ? 3 : $# )) || true
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS '$rounds' is not a whole number from 1" >&2; exit 2; }
[ -f "$torch" ] || { echo "no PyTorch script at $torch (the third argument)" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "PyTorch is not installed (apt install python3-torch)" >&2; exit 2; }
layers=(--encoder conv:32:3:2:valid,conv:64:3:2:valid --decoder dense:1568,reshape:7:7:32,deconv:64:3:2,deconv:32:3:2)
peak=$("$build/tools/fma_peak" | sed -n 's/.* \([0-9.]*\) GFLOP\/s on 2 threads.*/\1/p')
echo "FMA peak (tools/fma_peak, 2 threads): $peak GFLOP/s"
ratios=()
run_torch() { torch_ms=$(/usr/bin/python3 "$torch" 1 2 2 30 | sed -n 's/.*median step (B=256) \([0-9.]*\) ms.*/\1/p'); }
run_ours() {
  local out
  out=$("$build/src/clvae" bench --steps 30 --json "${layers[@]}" --fma-peak "$peak" "$@" 2>/tmp/bench-vs-torch.$$.err) ||
    { cat /tmp/bench-vs-torch.$$.err >&2; rm -f /tmp/bench-vs-torch.$$.err; exit 2; }
  rm -f /tmp/bench-vs-torch.$$.err
  read -r ours share < <(python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["ms_per_step"], j["fma_peak_fraction"])' <<<"$out")
}
for r in $(seq "$rounds"); do
  if (( r % 2 )); then run_torch; run_ours "$@"; else run_ours "$@"; run_torch; fi
  ratio=$(python3 -c "print(f'{$ours / $torch_ms:.3f}')")
  ratios+=("$ratio")
  echo "round $r: clvae $ours ms/step ($(python3 -c "print(f'{100 * $share:.1f}')") % of the FMA peak), PyTorch $torch_ms ms/step, ratio $ratio"
done
python3 -c "import statistics as s; r=[float(x) for x in '${ratios[*]}'.split()]; print(f'median ratio clvae / PyTorch: {s.median(r):.3f}')"
