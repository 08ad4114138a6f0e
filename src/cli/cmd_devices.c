/* `clvae devices [--json]`: every OpenCL platform and device with its capabilities. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void print_json(const clvae_device_list *l) {
  printf("[");
  for (int i = 0; i < l->count; i++) {
    const clvae_device_info *d = &l->devices[i];
    printf("%s\n  {\"platform_index\": %d, \"platform\": ", i ? "," : "", d->platform_index);
    cli_json_string(d->platform);
    printf(", \"device_index\": %d, \"name\": ", d->device_index);
    cli_json_string(d->name);
    printf(", \"vendor\": ");
    cli_json_string(d->vendor);
    printf(", \"type\": ");
    cli_json_string(d->type);
    printf(", \"version\": ");
    cli_json_string(d->version);
    printf(", \"driver\": ");
    cli_json_string(d->driver);
    printf(", \"compute_units\": %u, \"global_mem_bytes\": %llu, \"max_alloc_bytes\": %llu, "
           "\"fp16\": %s, \"fp64\": %s}",
           d->compute_units, (unsigned long long)d->global_mem_bytes,
           (unsigned long long)d->max_alloc_bytes, d->fp16 ? "true" : "false", d->fp64 ? "true" : "false");
  }
  printf("%s]\n", l->count ? "\n" : "");
}

static void gib(char *out, size_t n, unsigned long long b) { snprintf(out, n, "%.1f GiB", b / 1073741824.0); }

static void print_table(const clvae_device_list *l) {
  int wp = 8, wn = 4, wv = 6, wc = 8, wd = 6;
  for (int i = 0; i < l->count; i++) {
    const clvae_device_info *d = &l->devices[i];
    int a = (int)strlen(d->platform), b = (int)strlen(d->name), c = (int)strlen(d->vendor);
    int e = (int)strlen(d->version), f = (int)strlen(d->driver);
    wp = a > wp ? a : wp, wn = b > wn ? b : wn, wv = c > wv ? c : wv, wc = e > wc ? e : wc, wd = f > wd ? f : wd;
  }
  printf("%-3s %-*s %-3s %-*s %-*s %-11s %-*s %-*s %5s %10s %10s %4s %4s\n", "P", wp, "PLATFORM", "D",
         wn, "NAME", wv, "VENDOR", "TYPE", wc, "OPENCL C", wd, "DRIVER", "CU", "GLOBAL", "MAX ALLOC",
         "FP16", "FP64");
  for (int i = 0; i < l->count; i++) {
    const clvae_device_info *d = &l->devices[i];
    char g[32], m[32];
    gib(g, sizeof g, d->global_mem_bytes);
    gib(m, sizeof m, d->max_alloc_bytes);
    printf("%-3d %-*s %-3d %-*s %-*s %-11s %-*s %-*s %5u %10s %10s %4s %4s\n", d->platform_index, wp,
           d->platform, d->device_index, wn, d->name, wv, d->vendor, d->type, wc, d->version, wd,
           d->driver, d->compute_units, g, m, d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no");
  }
  for (int p = 0; p < l->platform_count; p++) {
    int has = 0;
    for (int i = 0; i < l->count; i++) has |= l->devices[i].platform_index == p;
    if (!has) printf("platform %d '%s' has no devices\n", p, l->platforms[p]);
  }
}

int cmd_devices(int argc, char **argv) {
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: clvae devices [--json]\n\n"
             "Lists every OpenCL platform and device: index, name, vendor, type, OpenCL C\n"
             "version, driver, compute units, memory, fp16/fp64. --json prints a JSON array.\n"
             "Pick one elsewhere with --platform/--device (index or part of the name).\n");
      return EXIT_OK;
    } else return cli_unknown("devices", argv[i]);
  }
  clvae_device_list list;
  clvae_status st = clvae_enumerate(&list);
  if (st != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    return st == CLVAE_ERR_NO_PLATFORM ? EXIT_USAGE : EXIT_FAIL;
  }
  if (json) print_json(&list);
  else print_table(&list);
  if (list.notes[0]) fprintf(stderr, "clvae: %s", list.notes);
  clvae_device_list_free(&list);
  return EXIT_OK;
}
