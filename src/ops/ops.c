/* Every op's program, for building them all up front (a command that must not be
 * interrupted while the driver compiles, or a benchmark that times the build). */
#include "ops/registry.h"

clvae_status clvae_ops_build_all(clvae_device *dev) {
  const clvae_program_def *all[] = {&clvae__program_gemm, &clvae__program_gemm_narrow, &clvae__program_act, &clvae__program_sample,
                                    &clvae__program_loss, &clvae__program_adam, &clvae__program_data};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    clvae_status st = clvae__build(dev, all[i]);
    if (st != CLVAE_OK) return st;
  }
  return CLVAE_OK;
}
