#!/usr/bin/env bash
# Packs what a machine without Debian packages needs to run clvae with its own OpenCL
# driver: the clvae binary, the shared libraries it links (ICD loader, CLBlast, zlib,
# libpng) and the Fashion-MNIST files, into .gpu/ (git-ignored). Run tools/gpu-run.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu && mkdir -p .gpu/lib .gpu/bin .gpu/data
cp build/src/clvae .gpu/bin/
for so in libOpenCL.so.1 libclblast.so.1 libz.so.1 libpng16.so.16; do
  cp -L "/usr/lib/x86_64-linux-gnu/$so" .gpu/lib/ 2>/dev/null || cp -L "/lib/x86_64-linux-gnu/$so" .gpu/lib/
done
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/data/
du -sh .gpu
