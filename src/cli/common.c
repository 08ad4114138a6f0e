/* Option parsing and device opening shared by the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int device_failed(const cli_device_opts *o, clvae_status st) {
  if (st == CLVAE_ERR_NOT_FOUND && ((o->platform && *o->platform) || (o->device && *o->device)))
    fprintf(stderr, "clvae: --platform/--device (or $CLVAE_PLATFORM/$CLVAE_DEVICE): %s\n", clvae_error_message());
  else
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
  return st == CLVAE_ERR_NO_PLATFORM || st == CLVAE_ERR_NOT_FOUND ? EXIT_USAGE : EXIT_FAIL;
}

int cli_choose_device(const cli_device_opts *o, clvae_device_info *info) {
  clvae_device_list list;
  int idx = -1;
  clvae_status st = clvae_enumerate(&list);
  if (st == CLVAE_OK && (st = clvae_select(&list, o->platform, o->device, &idx)) == CLVAE_OK) *info = list.devices[idx];
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
  if (st != CLVAE_OK) return device_failed(o, st);
  if (clvae_gemm_set_impl(*dev, o->gemm) != CLVAE_OK) { /* a bad CLVAE_GEMM_TUNE */
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    clvae_device_free(*dev);
    *dev = NULL;
    return EXIT_USAGE;
  }
  const clvae_device_info *in = clvae_device_get_info(*dev);
  if (!o->quiet)
    fprintf(stderr, "clvae: using platform %d '%s', device %d '%s' (%s, driver %s), gemm %s\n",
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
  if (st == CLVAE_ERR_LIMIT) fprintf(stderr, "clvae: use a smaller --batch-size or --hidden\n");
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
