/* Kernel tests: every case of one kernel (real VAE shapes and odd sizes 1, 7, 33, 257)
 * on the default device against the plain-C reference. Tolerances are stated in
 * src/ref/check.c beside each check.
 * usage: test_kernels KERNEL [--gemm builtin|clblast]; exit 77 (skip) without OpenCL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/check.h"

static int passed, failed;

static void report(const check_result *r, void *user) {
  (void)user;
  r->pass ? passed++ : failed++;
  printf("%s %-14s %-64s max abs %.2e  max rel %.2e  worst/tol %.3f  (%ld values)\n",
         r->pass ? "PASS" : "FAIL", r->kernel, r->desc, r->max_abs, r->max_rel, r->worst, r->checked);
  if (!r->pass) printf("     %ld mismatches; %s\n", r->bad, r->detail);
  fflush(stdout);
}

int main(int argc, char **argv) {
  clvae_gemm_impl gemm = CLVAE_GEMM_AUTO;
  if (argc < 2) {
    fprintf(stderr, "usage: test_kernels KERNEL [--gemm builtin|clblast]\n");
    return 2;
  }
  if (argc == 4 && !strcmp(argv[2], "--gemm")) gemm = (clvae_gemm_impl)clvae_gemm_impl_parse(argv[3]);
  clvae_device *dev;
  clvae_status st = clvae_device_open(&dev, getenv("CLVAE_PLATFORM"), getenv("CLVAE_DEVICE"), NULL);
  if (st == CLVAE_OK && clvae_gemm_set_impl(dev, gemm) != CLVAE_OK) {
    printf("FAIL: %s\n", clvae_error_message());
    clvae_device_free(dev);
    return 1;
  }
  if (st == CLVAE_ERR_NO_PLATFORM) {
    printf("SKIP: %s\n", clvae_error_message());
    return 77;
  }
  if (st != CLVAE_OK) {
    printf("FAIL: %s\n", clvae_error_message());
    return 1;
  }
  printf("device: %s (gemm %s)\n", clvae_device_get_info(dev)->name,
         clvae_gemm_impl_name(clvae_gemm_get_impl(dev)));
  int failures = check_suite(dev, argv[1], CHECK_THOROUGH, report, NULL);
  clvae_device_free(dev);
  if (passed + failed == 0) {
    printf("FAIL: no case ran for kernel '%s'\n", argv[1]);
    return 1;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failures ? 1 : 0;
}
