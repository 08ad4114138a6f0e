/* The clvae command: dispatches to the subcommands. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "clvae/comm.h"
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
  {"interpolate", cmd_interpolate, "a walk through the latent space between two test images or two points"},
  {"export", cmd_export, "the decoder (or encoder) as a TF.js layers model"},
  {"serve", cmd_serve, "a local web page exploring a model: grid, live decoding, scatter, loss"},
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

/* The number of ranks a launcher says this job has (1 when not launched by one). */
static long launched_size(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", NULL};
  for (int i = 0; vars[i]; i++) {
    const char *v = getenv(vars[i]);
    if (v && atol(v) > 1) return atol(v);
  }
  return 1;
}

/* Commands run as they are; under mpirun (an MPI build), train and bench become one job
 * over the ranks, and the other commands, which have nothing to share, refuse several. */
static int run_command(size_t i, int argc, char **argv) {
  int multi = !strcmp(commands[i].name, "train") || !strcmp(commands[i].name, "bench");
  if (!clvae_comm_launched()) return commands[i].run(argc - 1, argv + 1);
  if (!clvae_comm_built_with_mpi()) {
    if (launched_size() < 2) return commands[i].run(argc - 1, argv + 1);
    const char *r = getenv("OMPI_COMM_WORLD_RANK") ? getenv("OMPI_COMM_WORLD_RANK") : getenv("PMI_RANK");
    if (!r || atol(r) == 0) /* said once */
      fprintf(stderr, "clvae: started by mpirun with %ld ranks, but this clvae was built without MPI: each rank "
                      "would work alone. Rebuild with MPI (apt install libopenmpi-dev; meson setup -Dmpi=enabled)\n",
              launched_size());
    return EXIT_USAGE;
  }
  if (clvae_comm_init(&cli_comm, &argc, &argv) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    return EXIT_FAIL;
  }
  int rc;
  if (!multi && clvae_comm_size(cli_comm) > 1) {
    if (clvae_comm_rank(cli_comm) == 0)
      fprintf(stderr, "clvae: only train and bench run on several ranks; run '%s' without mpirun (or with -np 1)\n",
              commands[i].name);
    rc = EXIT_USAGE;
  } else rc = commands[i].run(argc - 1, argv + 1);
  clvae_comm_finalize(cli_comm);
  cli_comm = NULL;
  return rc;
}

/* rc, or 1 when what was printed on stdout could not be written (a full disk, /dev/full,
 * a closed pipe): said on stderr. */
static int stdout_result(int rc) {
  if (fflush(stdout) == 0 && !ferror(stdout) && fclose(stdout) == 0) return rc;
  fprintf(stderr, "clvae: writing to standard output failed: %s\n", strerror(errno ? errno : EIO));
  return EXIT_FAIL;
}

int main(int argc, char **argv) {
  /* PoCL aborts on an empty POCL_CACHE_DIR (exit 134 inside the driver): empty is unset. */
  const char *cache = getenv("POCL_CACHE_DIR");
  if (cache && !*cache) unsetenv("POCL_CACHE_DIR");
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
    return stdout_result(EXIT_OK);
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V") || !strcmp(argv[1], "version")) {
    printf("clvae %s\nplots (cairo): %s\nMPI: %s\nserve (libmicrohttpd): %s\n", clvae_version(),
           clvae_have_plots() ? "yes" : "no", clvae_comm_built_with_mpi() ? "yes" : "no", cli_have_serve() ? "yes" : "no");
    return stdout_result(EXIT_OK);
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) {
      int rc = run_command(i, argc, argv);
      /* the commands whose result is what they print: a result that could not be written
       * is a failure (1), not a success (train and serve print progress, not results) */
      int help = argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")); /* their help is a result */
      return help || (strcmp(argv[1], "train") && strcmp(argv[1], "serve")) ? stdout_result(rc) : rc;
    }
  fprintf(stderr, "clvae: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return EXIT_USAGE;
}
