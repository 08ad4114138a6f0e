/* Every op's program, for building them all up front (a command that must not be
 * interrupted while the driver compiles, or a benchmark that times the build), and for the
 * test that compiles each with the GPU compilers (tests/cl_options.c lists them). */
#include "ops/registry.h"

static const clvae_program_def *const all_programs[] = {
    &clvae__program_gemm, &clvae__program_gemm_narrow, &clvae__program_gemm_medium, &clvae__program_act, &clvae__program_sample,
    &clvae__program_loss, &clvae__program_adam,        &clvae__program_data, &clvae__program_conv};

const clvae_program_def *const *clvae__ops_programs(int *n) {
  *n = (int)(sizeof all_programs / sizeof all_programs[0]);
  return all_programs;
}

clvae_status clvae_ops_build_all(clvae_device *dev) {
  int n;
  const clvae_program_def *const *all = clvae__ops_programs(&n);
  for (int i = 0; i < n; i++) {
    clvae_status st = clvae__build(dev, all[i]);
    if (st != CLVAE_OK) return st;
  }
  return clvae__gemm_warm(dev);
}
