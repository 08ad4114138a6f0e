/* What the ops register with a device: each op file defines its program (cl/<name>.cl and
 * the -D options it wants on a device) and its kernels; clvae_ops_build_all builds them. */
#ifndef CLVAE_OPS_REGISTRY_H
#define CLVAE_OPS_REGISTRY_H

#include "device/internal.h"

extern const clvae_program_def clvae__program_gemm, clvae__program_gemm_narrow, clvae__program_gemm_medium, clvae__program_act, clvae__program_sample,
    clvae__program_loss, clvae__program_adam, clvae__program_data, clvae__program_conv;

/* With CLBlast as the device's GEMM: its programs compiled now (a GEMM of each kind run
 * once), as ours are by clvae_ops_build_all. */
clvae_status clvae__gemm_warm(clvae_device *dev);

/* Every program of every op, in build order. */
const clvae_program_def *const *clvae__ops_programs(int *n);

/* Work-group size of the per-row reductions (loss): 1 on CPU-style devices, where explicit
 * vectors do the work; up to 64 on GPUs. A power of two: the tree halves it. */
int clvae__reduction_size(const clvae_device *dev);

/* Columns per panel in which the builtin GEMM reads a B of N columns (a multiple of 16);
 * 0 when the device's GEMM is another. */
int clvae__gemm_panel_width(clvae_device *dev, int N);

#endif
