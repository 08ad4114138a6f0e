/* `clvae bench`: training-step speed on the real data: ms per step (median and spread),
 * samples/s, projected epoch time, GEMM throughput, per-kernel device time from profiling
 * events, and the start-up split. Several --gemm implementations are measured in turn. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/loader.h"
#include "clvae/train.h"
#include "util/timing.h"

static int cmp_kernel(const void *a, const void *b) {
  double x = ((const clvae_kernel_time *)a)->ms, y = ((const clvae_kernel_time *)b)->ms;
  return x > y ? -1 : x < y;
}

typedef struct bench_result {
  clvae_gemm_impl gemm;
  double median, p10, p90, gemm_ms, gemm_gflop;
  int gemms;                 /* GEMMs per step */
  clvae_kernel_time k[32];
  int nk;
} bench_result;

/* The GEMMs of one training step (the net's list), on scratch buffers. */
static clvae_status step_gemms(clvae_device *dev, const clvae_net *net, int B, clvae_buffer *a, clvae_buffer *b,
                               clvae_buffer *o, double *gflop, int *count) {
  clvae_gemm_shape g[4 * CLVAE_MAX_LAYERS];
  int n = *count = clvae_net_step_gemms(net, B, g, 4 * CLVAE_MAX_LAYERS);
  *gflop = 0;
  for (int i = 0; i < n; i++) {
    int ta = g[i].ta, tb = g[i].tb, M = g[i].M, N = g[i].N, K = g[i].K;
    clvae_status st = clvae_gemm(dev, ta, tb, M, N, K, 1.0f, clvae_at(a, 0), ta ? M : K, clvae_at(b, 0), tb ? K : N,
                                 0.0f, clvae_at(o, 0), N);
    if (st != CLVAE_OK) return st;
    *gflop += 2e-9 * M * N * K;
  }
  return CLVAE_OK;
}

static int one_step(clvae_model *m, clvae_dataset *d, clvae_buffer *rk, int s, int B) {
  /* consecutive windows of the (unshuffled) set; per-image losses go to a scratch buffer */
  int n = clvae_dataset_count(d), b0 = (int)(((long long)s * B) % (n - B + 1));
  return clvae_model_train_step(m, clvae_dataset_images(d), clvae_dataset_index(d, (size_t)b0), B,
                                clvae_at(rk, 0), clvae_at(rk, (size_t)B)) == CLVAE_OK;
}

static int measure(clvae_device *dev, clvae_model *m, clvae_dataset *d, clvae_buffer *rk, clvae_buffer *sa,
                   clvae_buffer *sb, clvae_buffer *so, int steps, int warmup, int B, bench_result *r) {
  double *t = malloc((size_t)steps * sizeof *t);
  const clvae_net *net = clvae_model_net(m);
  int ok = t != NULL;
  for (int s = 0; ok && s < warmup; s++) ok = one_step(m, d, rk, s, B);
  ok = ok && clvae_device_finish(dev) == CLVAE_OK;
  for (int s = 0; ok && s < steps; s++) { /* each step timed on its own, ended by a wait */
    double t0 = clvae_now();
    ok = one_step(m, d, rk, s, B) && clvae_device_finish(dev) == CLVAE_OK;
    t[s] = (clvae_now() - t0) * 1e3;
  }
  if (ok) {
    qsort(t, (size_t)steps, sizeof *t, clvae_cmp_double);
    r->median = t[steps / 2], r->p10 = t[steps / 10], r->p90 = t[(steps * 9) / 10];
  }
  ok = ok && clvae_profile_start(dev) == CLVAE_OK;
  for (int s = 0; ok && s < steps; s++) ok = one_step(m, d, rk, s, B);
  ok = ok && clvae_profile_stop(dev, r->k, 32, &r->nk) == CLVAE_OK;
  qsort(r->k, (size_t)r->nk, sizeof r->k[0], cmp_kernel);
  for (int rep = 0; ok && rep < steps; rep++) { /* the GEMMs alone, median pass */
    double t0 = clvae_now();
    ok = step_gemms(dev, net, B, sa, sb, so, &r->gemm_gflop, &r->gemms) == CLVAE_OK && clvae_device_finish(dev) == CLVAE_OK;
    t[rep] = (clvae_now() - t0) * 1e3;
  }
  if (ok) qsort(t, (size_t)steps, sizeof *t, clvae_cmp_double);
  r->gemm_ms = ok ? t[steps / 2] : 0;
  free(t);
  return ok;
}

static void print_text(const clvae_device_info *in, const bench_result *r, int B, int steps, int per_epoch) {
  printf("\ngemm %s on %s (%s)\n", clvae_gemm_impl_name(r->gemm), in->name, in->driver);
  printf("  step      %.2f ms median (p10 %.2f, p90 %.2f) over %d steps of %d images\n", r->median, r->p10, r->p90,
         steps, B);
  printf("            %.0f samples/s; one epoch (%d steps) %.1f s\n", B / r->median * 1e3, per_epoch,
         r->median * per_epoch * 1e-3);
  printf("  GEMMs     %.2f ms per step alone (%d GEMMs, %.3f GFLOP): %.1f GFLOP/s\n", r->gemm_ms, r->gemms,
         r->gemm_gflop, r->gemm_gflop / r->gemm_ms * 1e3);
  double total = 0;
  for (int i = 0; i < r->nk; i++) total += r->k[i].ms;
  printf("  %-18s %8s %10s %10s %7s\n", "kernel", "launches", "total ms", "ms/step", "share");
  for (int i = 0; i < r->nk; i++)
    printf("  %-18s %8d %10.2f %10.3f %6.1f%%\n", r->k[i].kernel, r->k[i].launches, r->k[i].ms, r->k[i].ms / steps,
           100 * r->k[i].ms / total);
  printf("  %-18s %8s %10.2f %10.3f   (device time; the step's wall time includes launches and waits)\n", "all", "",
         total, total / steps);
}

static void print_json(const clvae_device_info *in, const bench_result *r, int B, int steps, int per_epoch,
                       const double *startup) {
  printf("{\"device\": ");
  cli_json_string(in->name);
  printf(", \"driver\": ");
  cli_json_string(in->driver);
  printf(", \"gemm\": \"%s\", \"batch_size\": %d, \"steps\": %d, "
         "\"ms_per_step\": %.4f, \"ms_p10\": %.4f, \"ms_p90\": %.4f, \"samples_per_sec\": %.1f, \"epoch_seconds\": %.3f, "
         "\"gemm_ms_per_step\": %.4f, \"gemm_gflops\": %.2f, ",
         clvae_gemm_impl_name(r->gemm), B, steps, r->median, r->p10, r->p90, B / r->median * 1e3,
         r->median * per_epoch * 1e-3, r->gemm_ms, r->gemm_gflop / r->gemm_ms * 1e3);
  printf("\"startup\": {\"platform_context_s\": %.4f, \"program_build_s\": %.4f, \"data_upload_s\": %.4f, "
         "\"first_step_s\": %.4f, \"total_s\": %.4f}, \"kernels\": [",
         startup[0], startup[1], startup[2], startup[3], startup[0] + startup[1] + startup[2] + startup[3]);
  for (int i = 0; i < r->nk; i++)
    printf("%s{\"kernel\": \"%s\", \"launches\": %d, \"ms\": %.4f, \"ms_per_step\": %.4f}", i ? ", " : "",
           r->k[i].kernel, r->k[i].launches, r->k[i].ms, r->k[i].ms / steps);
  printf("]}");
}

static void bench_usage(void) {
  printf("usage: clvae bench [--steps N] [--warmup N] [--batch-size B] [--json] [--data DIR]\n"
         "                   [--gemm auto|builtin|clblast|all]... [--platform P] [--device D]\n\n"
         "Times N training steps on the real data after a warm-up, each step ended by a wait:\n"
         "ms per step (median, p10, p90), samples/s, projected epoch time; the step's eleven GEMMs\n"
         "alone (GFLOP/s); device time per kernel from OpenCL profiling events; and the start-up\n"
         "split (platform + context, program build, data upload, first step). --gemm may be given\n"
         "several times, or 'all', to compare implementations in one run. --json prints one object\n"
         "per implementation (an array when there are several).\n");
}

int cmd_bench(int argc, char **argv) {
  cli_device_opts o;
  clvae_gemm_impl impls[4];
  int nimpl = 0, json = 0, r;
  long steps = 50, warmup = 5, B = 256;
  const char *data = CLVAE_DEFAULT_DATA_DIR, *v;
  double t_start = clvae_now(), startup[4];
  cli_device_defaults(&o);
  for (int i = 1; i < argc; i++) {
    if ((r = cli_value(argc, argv, &i, "--gemm", &v))) {
      int g = r > 0 ? clvae_gemm_impl_parse(v) : -1;
      if (r > 0 && !strcmp(v, "all")) {
        impls[0] = CLVAE_GEMM_BUILTIN, impls[1] = CLVAE_GEMM_CLBLAST, nimpl = 2;
        continue;
      }
      if (g < 0) return fprintf(stderr, "clvae: --gemm '%s' is not one of auto, builtin, clblast, all\n", r > 0 ? v : ""), EXIT_USAGE;
      if (nimpl < 4) impls[nimpl++] = (clvae_gemm_impl)g;
    } else if ((r = cli_device_option(argc, argv, &i, &o)) || (r = cli_value(argc, argv, &i, "--data", &data))) {
      if (r < 0) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--steps", &v))) {
      if (r < 0 || !cli_int("--steps", v, 10, 100000, &steps)) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--warmup", &v))) {
      if (r < 0 || !cli_int("--warmup", v, 0, 100000, &warmup)) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--batch-size", &v))) {
      if (r < 0 || !cli_int("--batch-size", v, 1, 60000, &B)) return EXIT_USAGE;
    } else if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return bench_usage(), EXIT_OK;
    else return cli_unknown("bench", argv[i]);
  }
  if (!nimpl) impls[nimpl++] = CLVAE_GEMM_AUTO;

  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  clvae_dataset *d = NULL;
  cli_loader ld;
  clvae_buffer *rk = NULL, *sa = NULL, *sb = NULL, *so = NULL;
  clvae_config c;
  clvae_config_default(&c);
  c.batch = (int)B;
  int rc = EXIT_FAIL;
  o.gemm = impls[0];
  cli_loader_start(&ld, data, 0); /* decompresses while the device starts */
  const clvae_images *tr = &ld.train;
  if ((rc = cli_open_device(&o, 1, &dev)) != EXIT_OK) goto done;
  rc = EXIT_FAIL;
  startup[0] = clvae_now() - t_start;
  double t = clvae_now();
  if (clvae_ops_build_all(dev) != CLVAE_OK) goto dev_fail;
  startup[1] = clvae_now() - t, t = clvae_now();
  if (cli_loader_wait(&ld) != 0) {
    rc = EXIT_USAGE;
    goto done;
  }
  const clvae_images train = *tr;
  if (B > train.count) {
    fprintf(stderr, "clvae: --batch-size %ld is larger than the %d training images\n", B, train.count);
    rc = EXIT_USAGE;
    goto done;
  }
  c.height = train.height, c.width = train.width, c.channels = train.channels;
  clvae_net net;
  if (clvae_net_build(&net, &c) != CLVAE_OK || clvae_dataset_create(&d, dev, &train, 0) != CLVAE_OK) goto dev_fail;
  startup[2] = clvae_now() - t, t = clvae_now();
  float *params = malloc(net.total * 4);
  size_t big = 0; /* floats of the largest GEMM operand */
  clvae_gemm_shape g[4 * CLVAE_MAX_LAYERS];
  for (int i = 0, n = clvae_net_step_gemms(&net, (int)B, g, 4 * CLVAE_MAX_LAYERS); i < n; i++) {
    size_t mk = (size_t)g[i].M * g[i].K, kn = (size_t)g[i].K * g[i].N, mn = (size_t)g[i].M * g[i].N;
    big = mk > big ? mk : big, big = kn > big ? kn : big, big = mn > big ? mn : big;
  }
  big *= 4;
  if (params) clvae_init_params(&net, params);
  if (!params || clvae_model_create(&m, dev, &c) != CLVAE_OK || clvae_model_set_state(m, params, NULL, NULL, 0) != CLVAE_OK || clvae_buffer_create(dev, (size_t)B * 8, &rk) != CLVAE_OK ||
      clvae_buffer_create(dev, big, &sa) != CLVAE_OK || clvae_buffer_create(dev, big, &sb) != CLVAE_OK ||
      clvae_buffer_create(dev, big, &so) != CLVAE_OK || !one_step(m, d, rk, 0, (int)B) ||
      clvae_device_finish(dev) != CLVAE_OK) {
    free(params);
    goto dev_fail;
  }
  free(params);
  startup[3] = clvae_now() - t;
  int per_epoch = (train.count + (int)B - 1) / (int)B;
  const clvae_device_info *in = clvae_device_get_info(dev);
  if (!json)
    printf("start-up to the first step: %.3f s (platform + context %.3f, program build %.3f, then waiting for the data "
           "(read on a thread meanwhile) + upload %.3f, first step %.3f)\n", startup[0] + startup[1] + startup[2] + startup[3], startup[0], startup[1], startup[2],
           startup[3]);
  else if (nimpl > 1) printf("[");
  for (int i = 0; i < nimpl; i++) {
    bench_result res = {0};
    if (clvae_gemm_set_impl(dev, impls[i]) != CLVAE_OK) goto dev_fail;
    res.gemm = clvae_gemm_get_impl(dev);
    if (!measure(dev, m, d, rk, sa, sb, so, (int)steps, (int)warmup, (int)B, &res)) goto dev_fail;
    if (json) {
      if (i) printf(", ");
      print_json(in, &res, (int)B, (int)steps, per_epoch, startup);
    } else print_text(in, &res, (int)B, (int)steps, per_epoch);
  }
  if (json) printf("%s\n", nimpl > 1 ? "]" : "");
  rc = EXIT_OK;
  goto done;
dev_fail:
  fprintf(stderr, "clvae: %s\n", clvae_error_message());
done:
  clvae_buffer_free(rk), clvae_buffer_free(sa), clvae_buffer_free(sb), clvae_buffer_free(so);
  clvae_dataset_free(d);
  clvae_model_free(m);
  cli_loader_free(&ld);
  clvae_device_free(dev);
  return rc;
}
