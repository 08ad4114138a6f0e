/* Shared pieces of the clvae command: exit codes, option parsing, device opening.
 * Only src/cli prints and exits. */
#ifndef CLVAE_CLI_H
#define CLVAE_CLI_H

#include "clvae/checkpoint.h"
#include "clvae/files.h"
#include "clvae/comm.h"
#include "clvae/device.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* The ranks of this run: several under mpirun (train and bench use them), else one. */
extern clvae_comm *cli_comm;
/* "rank 1/4: " under mpirun with several ranks, else "". */
const char *cli_rank_prefix(void);
/* The ranks' agreement on how the setup went: each brings -1 (go on) or an exit code;
 * all get -1 or the first failing rank's code (rank 0 names that rank). Aborts the job
 * if MPI itself fails. One process: rc. */
int cli_agree(int rc);
/* Runs an argument parser f (-1: go on, else an exit code) on every rank, and the ranks
 * agree on the outcome: a rank whose flags fail stops them all. Its message is printed
 * once, by the first such rank (the others parse silently). */
int cli_parse_agreed(int (*f)(int, char **, void *), int argc, char **argv, void *arg);
/* Whether this rank's values of the flags that must be the same everywhere (epochs, the
 * configuration, steps, ...) are rank 0's: -1 if all ranks' are, else every rank gets exit
 * code 2 and a differing rank names the flag and both values. One process: -1. */
int cli_same_as_lead(const char *const *names, const double *values, int n);

/* The options every device-using subcommand takes. */
typedef struct cli_device_opts {
  const char *platform;      /* --platform, else $CLVAE_PLATFORM */
  const char *device;        /* --device, else $CLVAE_DEVICE */
  clvae_gemm_impl gemm;      /* --gemm */
  int quiet;                 /* do not print the chosen device */
} cli_device_opts;

/* If argv[*i] is `--name VALUE` or `--name=VALUE`, sets *value, advances *i past it and
 * returns 1; returns -1 (after printing) when the value is missing, 0 when no match. */
int cli_value(int argc, char **argv, int *i, const char *name, const char **value);
/* Consumes --platform/--device/--gemm; same returns as cli_value. */
int cli_device_option(int argc, char **argv, int *i, cli_device_opts *o);
void cli_device_defaults(cli_device_opts *o);
/* Parses a whole number in [lo, hi] for `flag`; prints and returns 0 if it is not one. */
int cli_int(const char *flag, const char *s, long lo, long hi, long *out);
/* The one rule for real numbers, in flags and in serve's API: the number at s (strtod's
 * syntax; *end is set past it) if it is finite, an underflow (1e-400) counting as 0.
 * Returns 0 for no number, an overflow (1e400), inf or nan; prints nothing. */
int cli_number(const char *s, char **end, double *x);
/* Opens the device and prints the choice once (stderr). Returns an exit code. */
int cli_open_device(const cli_device_opts *o, int profiling, clvae_device **dev);
/* The same in two steps: which device (its limits, without starting it), then start it. */
int cli_choose_device(const cli_device_opts *o, clvae_device_info *info);
int cli_create_device(const cli_device_opts *o, const clvae_device_info *info, int profiling, clvae_device **dev);
int cli_unknown(const char *cmd, const char *arg);
/* Prints s as a JSON string (quoted, escaped) to stdout. */
void cli_json_string(const char *s);
/* Loads a checkpoint, opens the device and builds the model holding its state.
 * Returns an exit code (messages printed). */
int cli_load_model(const char *path, const cli_device_opts *o, clvae_checkpoint *ck, clvae_device **dev,
                   clvae_model **m);
/* The model for a checkpoint's configuration and state on dev; an exit code (2 when the
 * device cannot hold it, with the message printed). */
int cli_make_model(clvae_device *dev, const clvae_checkpoint *ck, clvae_model **m);
/* Latent points of an n × n grid (see `clvae grid --help`); dy < 0: only dx varies. */
void cli_grid_latents(float *z, int n, int L, double lo, double hi, int dx, int dy);
/* Decodes the grid (a conditional model's: for class `cls`; -1 for an unconditional one) and
 * writes it as a PNG. */
int cli_write_grid(clvae_model *m, const char *path, int n, double lo, double hi, int dx, int dy, int cls);
/* A conditional model's K rows of n tiles: row k decodes class k at the points z of `z`
 * (n, L), the same in every row. */
int cli_write_class_rows(clvae_model *m, const char *path, const float *z, int n);
/* The class `value` names (an index, or a class's name as the checkpoint records it) of a
 * conditional model: -1 to go on with *k set, else exit 2 listing the classes (printed). */
int cli_class_arg(const clvae_checkpoint *ck, const char *flag, const char *value, int *k);
/* "0 T-shirt/top, 1 Trouser, ..." (or "0 to 9" for unnamed classes) into buf. */
const char *cli_class_list(const clvae_checkpoint *ck, char *buf, size_t n);
/* The exit code for a library status, printing its message (clvae_error_message) when it
 * failed: 2 for bad input (files, values, sizes), 1 for failures. */
int cli_status(clvae_status st);
/* A failed allocation in the CLI itself: prints it, returns EXIT_FAIL. */
int cli_oom(void);

enum { CFG_HIDDEN, CFG_LATENT, CFG_LOSS, CFG_LR, CFG_BATCH, CFG_SEED, CFG_LIMIT, CFG_ENCODER, CFG_DECODER, CFG_INIT,
       CFG_BETA, CFG_CONDITIONAL, CFG_COUNT };

/* Arguments of `clvae train` (set[] marks configuration flags given explicitly). */
typedef struct train_args {
  cli_device_opts dev;
  clvae_config cfg;
  int set[CFG_COUNT];        /* which config flags were given: see CFG_* */
  long epochs, limit, report_every;
  const char *out, *data, *logdir;
  int resume, quiet, preview;
} train_args;


/* --hidden, --encoder, --decoder, --init at argv[*i] (cli/layers.c): 1 taken, 0 not one
 * of them, -1 refused (printed). set[CFG_*] marks which were given. */
int cli_layer_option(int argc, char **argv, int *i, clvae_config *c, int *set);
/* After all flags: refuses --hidden with --encoder/--decoder, and one of those without the
 * other (exit 2, printed); -1 to go on. */
int cli_layer_flags_done(clvae_config *c, const int *set);
/* "auto", "glorot", "torch". */
const char *cli_init_name(int init);
/* The layers as flags: "--hidden 512" or "--encoder ... --decoder ...". */
const char *cli_layers_text(const clvae_config *c, char *buf, size_t n);
/* With --resume: whether layer flags say other than the checkpoint (-1, printed). */
int cli_layers_conflict(const clvae_config *flags, const int *set, const clvae_config *ck, const char *path);
/* One line per layer (kind, shapes, parameters), then the total. */
void cli_print_layers(const clvae_config *c);

/* Arguments of the picture and export commands. */
typedef struct image_args {
  cli_device_opts dev;
  const char *model, *out, *data;
  long n, count, seed;
  double lo, hi;
  int dx, dy, dims_set, force, part;
  const char *format;
  const char *cls;           /* --class: an index or a name (conditional models) */
  long steps;                /* interpolate: points of the walk */
  const char *from, *to;     /* interpolate: test image indices, or (from_z) z points */
  int from_z;
} image_args;

/* ---- the run directory (cli/rundir.c) ---- */
/* Whether DIR exists as a writable directory or could be created (its nearest existing
 * ancestor is one); -1 printed naming `flag` if not. Creates nothing. */
int cli_dir_creatable(const char *dir, const char *flag);
/* mkdir -p PATH: 0, or -1 printed (naming `flag` when PATH is no directory). */
int cli_make_dirs(const char *path, const char *flag);
/* The files a run writes in DIR must be regular files or absent (1), else printed (0). */
int cli_outputs_writable(const char *dir);
/* Creates OUT (and LOGDIR), locks OUT, checks its outputs again under the lock (a new run:
 * no checkpoint appeared meanwhile), and removes the temporary files dead runs left there.
 * -1 to go on holding the lock, else an exit code (printed; nothing held). */
int cli_own_run_dir(const char *out, const char *logdir, int new_run, clvae_dir_lock_t *lock);
/* A new default run (runs/<date-time>) is pointed at by the link runs/latest (replaced
 * atomically; a runs/latest that is not a link is left alone). */
void cli_link_latest(const char *out);

/* The data a command on `model` reads: `given` (--data) if not NULL, else the data the run
 * recorded (format 3), else the default. A recorded path that is gone: exit 2, printed.
 * Returns -1 to go on. */
int cli_run_data(const char *model, const char *given, char *out, size_t n);

/* The parsers: -1 to go on, else the exit code (messages printed). Side-effect free,
 * so that they can be fuzzed (tests/fuzz). */
int cli_parse_train(int argc, char **argv, train_args *a);
int cli_parse_images(const char *cmd, int argc, char **argv, image_args *a);

int cmd_devices(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_grid(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_reconstruct(int argc, char **argv);
int cmd_scatter(int argc, char **argv);
int cmd_interpolate(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
/* Whether this clvae was built with libmicrohttpd (clvae serve works). */
int cli_have_serve(void);

#endif
