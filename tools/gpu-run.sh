#!/usr/bin/env bash
# On a machine with a vendor OpenCL driver (e.g. NVIDIA's libnvidia-opencl.so.1) but no
# packages: points the carried ICD loader at that driver and runs clvae's checks.
# usage: tools/gpu-run.sh [LOGDIR]     (after tools/gpu-pack.sh; run from the repo root)
set -u
log=${1:-/tmp}/gpu-check.log
export LD_LIBRARY_PATH=$PWD/.gpu/lib:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
# The ICD loader reads one vendors folder: copy the registered ones and add NVIDIA's.
mkdir -p /tmp/clvae-icd && cp /etc/OpenCL/vendors/*.icd /tmp/clvae-icd/ 2>/dev/null
drv=$(find /usr/local/nvidia /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib -maxdepth 3 -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
[ -n "$drv" ] && echo "$drv" > /tmp/clvae-icd/nvidia.icd
export OCL_ICD_VENDORS=/tmp/clvae-icd
echo "ICD files: $(ls /tmp/clvae-icd); NVIDIA driver: ${drv:-not found}"
clvae=.gpu/bin/clvae
runs=$(mktemp -d /tmp/clvae-gpu.XXXXXX)
TIMEFORMAT='### %R s'
step() { echo; echo "### $*"; time "$@"; echo "### exit $?"; }
{
  nvidia-smi -L 2>&1
  step $clvae devices
  step $clvae devices --json
  export CLVAE_DEVICE=${CLVAE_DEVICE:-nvidia}
  step $clvae selftest --gemm builtin
  step $clvae selftest --gemm clblast
  step $clvae bench --gemm all --steps 200 --data .gpu/data
  step $clvae bench --steps 200 --data .gpu/data --json
  step $clvae train --epochs 1 --data .gpu/data --out $runs/auto
  step $clvae train --epochs 1 --data .gpu/data --out $runs/builtin --gemm builtin
  step $clvae eval --model $runs/auto/checkpoint.clvae --data .gpu/data --json
} 2>&1 | tee "$log"
