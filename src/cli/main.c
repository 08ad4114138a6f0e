/* The clvae command: dispatches to the subcommands. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "clvae/files.h"
#include "clvae/image.h"

static const struct {
  const char *name;
  int (*run)(int, char **);
  const char *help;
} commands[] = {
  {"devices", cmd_devices, "list OpenCL platforms and devices (--json)"},
  {"selftest", cmd_selftest, "check every kernel against the CPU reference on a device"},
  {"train", cmd_train, "train the VAE on Fashion-MNIST (checkpoints, metrics, --resume)"},
  {"eval", cmd_eval, "test-set loss of a checkpoint (--json)"},
  {"grid", cmd_grid, "PNG mosaic of decodings over the latent plane"},
  {"sample", cmd_sample, "PNG of decodings of z ~ N(0, I)"},
  {"reconstruct", cmd_reconstruct, "PNG of test images and their reconstructions"},
  {"scatter", cmd_scatter, "plot of the test images' latent means by class"},
  {"export", cmd_export, "the decoder (or encoder) as a TF.js layers model"},
  {"bench", cmd_bench, "training-step speed, GEMM throughput, per-kernel times, start-up"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: clvae COMMAND [options]   (clvae COMMAND --help for its options)\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
  fprintf(f, "\nDevice options (every device-using command):\n"
             "  --platform P   platform index or part of its name ($CLVAE_PLATFORM)\n"
             "  --device D     device index within the platform or part of its name ($CLVAE_DEVICE)\n"
             "  --gemm G       auto | builtin | clblast\n"
             "Default device: the first GPU, else the first device.\n");
}

static void on_fatal_signal(int sig) {
  clvae_output_cleanup();
  signal(sig, SIG_DFL);
  raise(sig);
}

int main(int argc, char **argv) {
  /* PoCL: pin its worker threads. Unpinned, two of them sometimes share a core for a
   * while (GEMMs measured 1.0-1.3x OpenBLAS in such stretches, 0.63-0.72x pinned). Only
   * speed depends on it; POCL_AFFINITY=0 in the environment turns it off. */
  setenv("POCL_AFFINITY", "1", 0);
  /* Past a file-size limit, write() should fail with EFBIG (reported like a full disk),
   * not kill the process in the middle of a checkpoint. A closed stdout (clvae ... | head)
   * stops the printing, not the work: writes fail with EPIPE instead. */
  signal(SIGXFSZ, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  /* A signal that ends a command removes the temporary files of outputs in progress
   * (training installs its own handler: it stops after the current step and saves). */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("clvae %s\nplots (cairo): %s\n", clvae_version(), clvae_have_plots() ? "yes" : "no");
    return EXIT_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "clvae: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return EXIT_USAGE;
}
