/* Prints, one line per program, the kernel source and the exact build options clvae uses
 * on the default device ("gemm<TAB>-cl-std=CL1.2 -cl-denorms-are-zero -DMR=6 -DNV=4");
 * CLVAE_KERNEL_STYLE=cpu|gpu picks the style. tests/test_gpu_compilers.py compiles each
 * pair with clang for GPU targets. Exit 77 without an OpenCL platform. */
#include <stdio.h>

#include "device/internal.h"
#include "ops/registry.h"

int main(void) {
  clvae_device *dev = NULL;
  clvae_status st = clvae_device_open(&dev, NULL, NULL, NULL);
  if (st == CLVAE_ERR_NO_PLATFORM) {
    printf("SKIP: no OpenCL platform\n");
    return 77;
  }
  if (st != CLVAE_OK) {
    fprintf(stderr, "cl_options: %s\n", clvae_error_message());
    return 1;
  }
  int n;
  const clvae_program_def *const *all = clvae__ops_programs(&n);
  for (int i = 0; i < n && st == CLVAE_OK; i++) {
    char opts[512];
    if ((st = clvae__build_options(dev, all[i], opts, sizeof opts)) == CLVAE_OK)
      printf("%s\t%s\n", all[i]->source ? all[i]->source : all[i]->name, opts);
  }
  if (st != CLVAE_OK) fprintf(stderr, "cl_options: %s\n", clvae_error_message());
  clvae_device_free(dev);
  return st == CLVAE_OK ? 0 : 1;
}
