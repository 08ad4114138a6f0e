#!/usr/bin/env bash
# On a machine with a vendor OpenCL driver (e.g. NVIDIA's libnvidia-opencl.so.1) but no
# packages: points the carried ICD loader at that driver and runs clvae's checks.
# usage: tools/gpu-run.sh [LOGDIR]     (after tools/gpu-pack.sh; run from the repo root)
set -u
log=${1:-/tmp}/gpu-check.log
export LD_LIBRARY_PATH=$PWD/.gpu/lib:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
if [ ! -d /etc/OpenCL/vendors ] || ! ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1; then
  drv=$(find /usr/local/nvidia /usr/lib /usr/lib64 -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
  mkdir -p /tmp/clvae-icd && echo "${drv:-libnvidia-opencl.so.1}" > /tmp/clvae-icd/nvidia.icd
  export OCL_ICD_VENDORS=/tmp/clvae-icd
  echo "ICD: ${drv:-not found}, OCL_ICD_VENDORS=$OCL_ICD_VENDORS"
fi
clvae=.gpu/bin/clvae
TIMEFORMAT='### %R s'
step() { echo; echo "### $*"; time "$@"; echo "### exit $?"; }
{
  nvidia-smi -L 2>&1
  step $clvae devices
  step $clvae devices --json
  step $clvae selftest --gemm builtin
  step $clvae selftest --gemm clblast
  step $clvae train --epochs 1 --data .gpu/data --out /tmp/g-auto
  step $clvae train --epochs 1 --data .gpu/data --out /tmp/g-builtin --gemm builtin
  step $clvae eval --model /tmp/g-auto/checkpoint.clvae --data .gpu/data --json
} 2>&1 | tee "$log"
