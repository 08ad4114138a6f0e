/* Shared pieces of the clvae command: exit codes, option parsing, device opening.
 * Only src/cli prints and exits. */
#ifndef CLVAE_CLI_H
#define CLVAE_CLI_H

#include "clvae/device.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* The options every device-using subcommand takes. */
typedef struct cli_device_opts {
  const char *platform;      /* --platform, else $CLVAE_PLATFORM */
  const char *device;        /* --device, else $CLVAE_DEVICE */
  clvae_gemm_impl gemm;      /* --gemm */
} cli_device_opts;

/* If argv[*i] is `--name VALUE` or `--name=VALUE`, sets *value, advances *i past it and
 * returns 1; returns -1 (after printing) when the value is missing, 0 when no match. */
int cli_value(int argc, char **argv, int *i, const char *name, const char **value);
/* Consumes --platform/--device/--gemm; same returns as cli_value. */
int cli_device_option(int argc, char **argv, int *i, cli_device_opts *o);
void cli_device_defaults(cli_device_opts *o);
/* Parses a whole number in [lo, hi] for `flag`; prints and returns 0 if it is not one. */
int cli_int(const char *flag, const char *s, long lo, long hi, long *out);
/* Opens the device and prints the choice once (stderr). Returns an exit code. */
int cli_open_device(const cli_device_opts *o, int profiling, clvae_device **dev);
int cli_unknown(const char *cmd, const char *arg);

int cmd_devices(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
