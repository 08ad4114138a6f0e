/* Option parsing and device opening shared by the subcommands. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_value(int argc, char **argv, int *i, const char *name, const char **value) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '=') *value = a + n + 1;
  else if (a[n] != '\0') return 0;
  else if (*i + 1 < argc) *value = argv[++*i];
  else *value = "";
  size_t len = strlen(*value);
  if (len == 0) {
    fprintf(stderr, "clvae: option %s needs a value\n", name);
    return -1;
  }
  if (len >= 4096) { /* no path or number is this long; the message would not hold it */
    fprintf(stderr, "clvae: the value of %s is %zu bytes long; at most 4095 are accepted\n", name, len);
    return -1;
  }
  return 1;
}

void cli_device_defaults(cli_device_opts *o) {
  o->platform = getenv("CLVAE_PLATFORM");
  o->device = getenv("CLVAE_DEVICE");
  o->gemm = CLVAE_GEMM_AUTO;
  o->quiet = 0;
}

int cli_device_option(int argc, char **argv, int *i, cli_device_opts *o) {
  const char *v;
  int r;
  if ((r = cli_value(argc, argv, i, "--platform", &o->platform)) != 0) return r;
  if ((r = cli_value(argc, argv, i, "--device", &o->device)) != 0) return r;
  if ((r = cli_value(argc, argv, i, "--gemm", &v)) != 0) {
    if (r < 0) return r;
    int g = clvae_gemm_impl_parse(v);
    if (g < 0) {
      fprintf(stderr, "clvae: --gemm '%s' is not one of auto, builtin, clblast\n", v);
      return -1;
    }
    o->gemm = (clvae_gemm_impl)g;
    return 1;
  }
  return 0;
}

int cli_int(const char *flag, const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "clvae: %s '%s' is not a whole number from %ld to %ld\n", flag, s, lo, hi);
    return 0;
  }
  *out = v;
  return 1;
}

int cli_number(const char *s, char **end, double *x) {
  errno = 0;
  double v = strtod(s, end);
  if (*end == s) return 0;
  if (errno == ERANGE && fabs(v) <= DBL_MIN) v = 0; /* an underflow: closer to 0 than any float the model uses */
  else if (errno || !isfinite(v)) return 0;         /* an overflow, inf or nan */
  *x = v;
  return 1;
}

static int device_failed(const cli_device_opts *o, clvae_status st) {
  if (st == CLVAE_ERR_NOT_FOUND && ((o->platform && *o->platform) || (o->device && *o->device)))
    fprintf(stderr, "clvae: %s--platform/--device (or $CLVAE_PLATFORM/$CLVAE_DEVICE): %s\n", cli_rank_prefix(),
            clvae_error_message());
  else
    fprintf(stderr, "clvae: %s%s\n", cli_rank_prefix(), clvae_error_message());
  return st == CLVAE_ERR_NO_PLATFORM || st == CLVAE_ERR_NOT_FOUND ? EXIT_USAGE : EXIT_FAIL;
}

clvae_comm *cli_comm;

const char *cli_rank_prefix(void) {
  static char buf[48];
  if (clvae_comm_size(cli_comm) < 2) return "";
  snprintf(buf, sizeof buf, "rank %d/%d: ", clvae_comm_rank(cli_comm), clvae_comm_size(cli_comm));
  return buf;
}

/* cli_agree, also telling which rank failed first (-1: none). */
static int agree_who(int rc, int *who) {
  char msg[8];
  *who = -1;
  if (clvae_comm_size(cli_comm) < 2) return rc;
  int code = clvae_comm_agree(cli_comm, rc < 0 ? 0 : rc + 1, "", who, msg, sizeof msg);
  if (code == 0) return -1;
  if (*who < 0) { /* MPI itself failed: nothing else can be agreed on */
    fprintf(stderr, "clvae: %sthe ranks could not agree (MPI failed); aborting the job\n", cli_rank_prefix());
    clvae_comm_abort(cli_comm, EXIT_FAIL);
  }
  if (clvae_comm_rank(cli_comm) == 0 && *who != 0 && code - 1 != EXIT_OK)
    fprintf(stderr, "clvae: rank %d of %d failed (its message is above); every rank stops\n", *who,
            clvae_comm_size(cli_comm));
  return code - 1;
}

int cli_agree(int rc) {
  int who;
  return agree_who(rc, &who);
}

/* f with stdout and stderr sent to /dev/null (on when `on`). */
static int quietly(int on, int (*f)(int, char **, void *), int argc, char **argv, void *arg) {
  int saved[2] = {-1, -1};
  if (on) {
    int null = open("/dev/null", O_WRONLY);
    fflush(stdout), fflush(stderr);
    for (int fd = 1; fd <= 2 && null >= 0; fd++) saved[fd - 1] = dup(fd), dup2(null, fd);
    if (null >= 0) close(null);
  }
  int r = f(argc, argv, arg);
  fflush(stdout), fflush(stderr);
  for (int fd = 1; fd <= 2; fd++)
    if (saved[fd - 1] >= 0) dup2(saved[fd - 1], fd), close(saved[fd - 1]);
  return r;
}

int cli_parse_agreed(int (*f)(int, char **, void *), int argc, char **argv, void *arg) {
  const int rank = clvae_comm_rank(cli_comm);
  int who, r = quietly(rank != 0, f, argc, argv, arg);
  if (clvae_comm_size(cli_comm) < 2) return r;
  int code = agree_who(r, &who);
  if (code >= 0 && who == rank && rank != 0) quietly(0, f, argc, argv, arg); /* its message, once */
  return code;
}

int cli_same_as_lead(const char *const *names, const double *mine, int n) {
  if (clvae_comm_size(cli_comm) < 2) return -1;
  double lead[64];
  if (n > 64) n = 64;
  memcpy(lead, mine, (size_t)n * sizeof *lead);
  if (clvae_comm_bcast(cli_comm, lead, (size_t)n * sizeof *lead, 0) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s%s\n", cli_rank_prefix(), clvae_error_message());
    clvae_comm_abort(cli_comm, EXIT_FAIL);
  }
  for (int i = 0; i < n; i++)
    if (memcmp(&lead[i], &mine[i], sizeof *lead)) {
      fprintf(stderr, "clvae: %s%s is %g here but %g on rank 0: give every rank the same flags (only the device "
                      "and data flags may differ)\n", cli_rank_prefix(), names[i], mine[i], lead[i]);
      return cli_agree(EXIT_USAGE);
    }
  return cli_agree(-1);
}

/* Under mpirun with no --device: when the chosen platform has several GPUs, this rank
 * takes the (local rank mod count)-th of them, so that the ranks of a machine share out
 * its GPUs. */
static int rank_device(const clvae_device_list *list, const cli_device_opts *o, int idx) {
  if (clvae_comm_size(cli_comm) < 2 || (o->device && *o->device)) return idx;
  int p = list->devices[idx].platform_index, gpus = 0;
  for (int i = 0; i < list->count; i++) gpus += list->devices[i].platform_index == p && list->devices[i].is_gpu;
  if (gpus < 2) return idx;
  int want = clvae_comm_local_rank(cli_comm) % gpus;
  for (int i = 0; i < list->count; i++)
    if (list->devices[i].platform_index == p && list->devices[i].is_gpu && want-- == 0) return i;
  return idx;
}

int cli_choose_device(const cli_device_opts *o, clvae_device_info *info) {
  clvae_device_list list;
  int idx = -1;
  clvae_status st = clvae_enumerate(&list);
  if (st == CLVAE_OK && (st = clvae_select(&list, o->platform, o->device, &idx)) == CLVAE_OK)
    *info = list.devices[rank_device(&list, o, idx)];
  clvae_device_list_free(&list);
  return st == CLVAE_OK ? EXIT_OK : device_failed(o, st);
}

int cli_open_device(const cli_device_opts *o, int profiling, clvae_device **dev) {
  clvae_device_info info;
  int r = cli_choose_device(o, &info);
  return r == EXIT_OK ? cli_create_device(o, &info, profiling, dev) : r;
}

int cli_create_device(const cli_device_opts *o, const clvae_device_info *info, int profiling, clvae_device **dev) {
  clvae_device_options opt = {profiling};
  clvae_status st = clvae_device_create(dev, info, &opt);
  if (st == CLVAE_ERR_ARG) { /* a knob with a value it does not take (CLVAE_KERNEL_STYLE) */
    fprintf(stderr, "clvae: %s%s\n", cli_rank_prefix(), clvae_error_message());
    return EXIT_USAGE;
  }
  if (st != CLVAE_OK) return device_failed(o, st);
  static int said;
  const char *kdir = getenv("CLVAE_KERNEL_DIR");
  if (kdir && *kdir && !said++) /* never silently: a wrong kernel trains to nonsense */
    fprintf(stderr, "clvae: %skernels from CLVAE_KERNEL_DIR=%s\n", cli_rank_prefix(), kdir);
  if (clvae_gemm_set_impl(*dev, o->gemm) != CLVAE_OK) { /* a bad CLVAE_GEMM_TUNE */
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    clvae_device_free(*dev);
    *dev = NULL;
    return EXIT_USAGE;
  }
  const clvae_device_info *in = clvae_device_get_info(*dev);
  if (!o->quiet)
    fprintf(stderr, "clvae: %susing platform %d '%s', device %d '%s' (%s, driver %s), gemm %s\n", cli_rank_prefix(),
          in->platform_index, in->platform, in->device_index, in->name, in->type, in->driver,
          clvae_gemm_impl_name(clvae_gemm_get_impl(*dev)));
  return EXIT_OK;
}

int cli_unknown(const char *cmd, const char *arg) {
  fprintf(stderr, "clvae %s: unknown argument '%s' (see 'clvae %s --help')\n", cmd, arg, cmd);
  return EXIT_USAGE;
}

int cli_load_model(const char *path, const cli_device_opts *o, clvae_checkpoint *ck, clvae_device **dev,
                   clvae_model **m) {
  *dev = NULL, *m = NULL;
  if (clvae_checkpoint_load(path, ck) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    return EXIT_USAGE;
  }
  int r = cli_open_device(o, 0, dev);
  return r == EXIT_OK ? cli_make_model(*dev, ck, m) : r;
}

int cli_make_model(clvae_device *dev, const clvae_checkpoint *ck, clvae_model **m) {
  clvae_status st = clvae_model_create(m, dev, &ck->cfg);
  if (st == CLVAE_OK) st = clvae_model_set_state(*m, ck->params, ck->adam_m, ck->adam_v, ck->step);
  if (st == CLVAE_OK) return EXIT_OK;
  fprintf(stderr, "clvae: %s\n", clvae_error_message());
  if (st == CLVAE_ERR_LIMIT) fprintf(stderr, "clvae: use a smaller --batch-size, or smaller layers\n");
  return st == CLVAE_ERR_LIMIT || st == CLVAE_ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
}

void cli_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

int cli_oom(void) {
  fprintf(stderr, "clvae: out of host memory\n");
  return EXIT_FAIL;
}

int cli_status(clvae_status st) {
  switch (st) {
  case CLVAE_OK: return EXIT_OK;
  default: fprintf(stderr, "clvae: %s\n", clvae_error_message());
  }
  switch (st) {
  case CLVAE_ERR_IO: case CLVAE_ERR_FORMAT: case CLVAE_ERR_ARG: case CLVAE_ERR_LIMIT: case CLVAE_ERR_EXISTS:
  case CLVAE_ERR_NOT_FOUND: case CLVAE_ERR_NO_PLATFORM: return EXIT_USAGE;
  default: return EXIT_FAIL;
  }
}

int cli_run_data(const char *model, const char *given, char *out, size_t n) {
  clvae_checkpoint ck;
  struct stat sb;
  if (given) return snprintf(out, n, "%s", given), -1;
  snprintf(out, n, "%s", CLVAE_DEFAULT_DATA_DIR);
  if (clvae_checkpoint_peek(model, &ck) != CLVAE_OK || !ck.data_abs[0]) return -1; /* the full load says what is wrong */
  if (stat(ck.data_abs, &sb) != 0) {
    int e = errno;
    clvae_checkpoint full; /* the peek trusts the header: a damaged one is reported as such, not as missing data */
    clvae_status st = clvae_checkpoint_load(model, &full);
    clvae_checkpoint_free(&full);
    if (st != CLVAE_OK) return -1; /* the command's own load reports it */
    fprintf(stderr, "clvae: %s was trained on %s (--data %s), which is gone (%s): give --data DIR\n", model, ck.data_abs,
            ck.data, strerror(e));
    return EXIT_USAGE;
  }
  snprintf(out, n, "%s", ck.data_abs);
  return -1;
}
