#!/usr/bin/env bash
# Packs what a machine without Debian packages needs to run clvae with its own OpenCL
# driver: the clvae binary, the shared libraries it links (ICD loader, CLBlast, zlib,
# libpng) and the Fashion-MNIST files, into .gpu/ (git-ignored). Run tools/gpu-run.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu && mkdir -p .gpu/lib .gpu/bin .gpu/data
cp build/src/clvae .gpu/bin/
# every shared library clvae loads (cairo brings fontconfig, freetype, pixman, X libs...),
# except the C and C++ runtimes, which the other machine has (newer)
ldd build/src/clvae | awk '/=> \//{print $3}' | grep -vE '/(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
  while read -r so; do cp -L "$so" .gpu/lib/; done
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/data/
du -sh .gpu
