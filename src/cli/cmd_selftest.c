/* `clvae selftest`: every kernel on the chosen device against the plain-C reference,
 * one line per kernel, non-zero exit if any case fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "ref/check.h"

typedef struct tally {
  int verbose;
  char kernel[32];
  int cases, failed;
  double max_abs, max_rel;
  char first_fail[1024];
} tally;

static void flush_kernel(tally *t) {
  if (!t->cases) return;
  printf("%-16s %3d cases  max abs %-9.2e max rel %-9.2e %s\n", t->kernel, t->cases, t->max_abs,
         t->max_rel, t->failed ? "FAIL" : "PASS");
  if (t->failed) printf("    %d failed; first: %s\n", t->failed, t->first_fail);
  fflush(stdout);
  t->cases = t->failed = 0;
  t->max_abs = t->max_rel = 0;
}

static void on_case(const check_result *r, void *user) {
  tally *t = user;
  if (strcmp(t->kernel, r->kernel) != 0) {
    flush_kernel(t);
    snprintf(t->kernel, sizeof t->kernel, "%s", r->kernel);
  }
  t->cases++;
  if (r->max_abs > t->max_abs) t->max_abs = r->max_abs;
  if (r->max_rel > t->max_rel) t->max_rel = r->max_rel;
  if (!r->pass && t->failed++ == 0) snprintf(t->first_fail, sizeof t->first_fail, "%s: %s", r->desc, r->detail);
  if (t->verbose)
    printf("    %-14s %-60s abs %-9.2e rel %-9.2e %s%s%s\n", r->kernel, r->desc, r->max_abs,
           r->max_rel, r->pass ? "PASS" : "FAIL", r->pass ? "" : "  ", r->pass ? "" : r->detail);
}

int cmd_selftest(int argc, char **argv) {
  cli_device_opts o;
  const char *only = NULL;
  int quick = 0, small = 0, r;
  tally t = {0};
  cli_device_defaults(&o);
  for (int i = 1; i < argc; i++) {
    if ((r = cli_device_option(argc, argv, &i, &o)) != 0) {
      if (r < 0) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--kernel", &only)) != 0) {
      if (r < 0) return EXIT_USAGE;
    } else if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--small")) small = 1;
    else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) t.verbose = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: clvae selftest [--platform P] [--device D] [--gemm auto|builtin|clblast]\n"
             "                      [--kernel NAME] [--quick] [--small] [--verbose]\n\n"
             "Runs every kernel on the device against clvae's plain-C reference, at the VAE's\n"
             "real shapes and (unless --quick) at odd sizes 1, 7, 33, 257, and prints one line\n"
             "per kernel. --small uses the shapes of a tiny model and odd sizes 1, 7, 33 instead\n"
             "(for simulators such as Oclgrind). Exit 0 if all pass, 1 if any fails, 2 on bad\n"
             "usage or no device.\n"
             "Kernels:");
      for (const char *const *k = check_kernels; *k; k++) printf(" %s", *k);
      printf("\n");
      return EXIT_OK;
    } else return cli_unknown("selftest", argv[i]);
  }
  if (only) {
    int known = 0;
    for (const char *const *k = check_kernels; *k; k++) known |= !strcmp(*k, only);
    if (!known) {
      fprintf(stderr, "clvae selftest: --kernel '%s' is not a kernel name (see --help)\n", only);
      return EXIT_USAGE;
    }
  }
  clvae_device *dev;
  if ((r = cli_open_device(&o, 0, &dev)) != EXIT_OK) return r;
  const char *tune = getenv("CLVAE_GEMM_TUNE");
  if (tune && *tune) { /* a block or work-group the kernels cannot take is a refusal (2), not 34 failures */
    clvae_status bs = clvae_ops_build_all(dev);
    if (bs != CLVAE_OK) {
      fprintf(stderr, "clvae: %s\n", clvae_error_message());
      clvae_device_free(dev);
      return bs == CLVAE_ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
    }
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int failures = check_suite(dev, only, small ? CHECK_SMALL : quick ? CHECK_QUICK : CHECK_THOROUGH, on_case, &t);
  flush_kernel(&t);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("selftest %s: %s (%.1f s)\n", failures ? "FAILED" : "passed",
         failures ? "some kernels disagree with the reference" : "every kernel matches the reference",
         (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
  clvae_device_free(dev);
  return failures ? EXIT_FAIL : EXIT_OK;
}
