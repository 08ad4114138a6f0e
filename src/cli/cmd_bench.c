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
  double useful_gflop;       /* per step: 2 FLOP per useful multiply-add (clvae_net_step_flop) */
  double peak;               /* --fma-peak GFLOP/s, 0: not given */
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
  return clvae_model_train_step(m, clvae_dataset_images(d), clvae_dataset_labels(d), clvae_dataset_index(d, (size_t)b0), B,
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
  printf("  useful    %.3f GFLOP per step (2 per useful multiply-add): %.1f GFLOP/s in the step", r->useful_gflop,
         r->useful_gflop / r->median * 1e3);
  if (r->peak > 0)
    printf(", %.1f %% of the %.0f GFLOP/s FMA peak (the step's limit %.2f ms)", 100 * r->useful_gflop / r->median * 1e3 / r->peak,
           r->peak, r->useful_gflop / r->peak * 1e3);
  printf("\n");
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
         "\"gemm_ms_per_step\": %.4f, \"gemm_gflops\": %.2f, \"useful_gflop_per_step\": %.4f, \"useful_gflops\": %.2f, ",
         clvae_gemm_impl_name(r->gemm), B, steps, r->median, r->p10, r->p90, B / r->median * 1e3,
         r->median * per_epoch * 1e-3, r->gemm_ms, r->gemm_gflop / r->gemm_ms * 1e3, r->useful_gflop,
         r->useful_gflop / r->median * 1e3);
  if (r->peak > 0) printf("\"fma_peak_gflops\": %.1f, \"fma_peak_fraction\": %.4f, ", r->peak, r->useful_gflop / r->median * 1e3 / r->peak);
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
         "                   [--hidden N,.. | --encoder LIST --decoder LIST] [--latent-dim N]\n"
         "                   [--fma-peak GFLOPS] [--gemm auto|builtin|clblast|all]... [--platform P] [--device D]\n\n"
         "Times N training steps of the model (the default, or the layers given as for `train`) on\n"
         "the real data after a warm-up, each step ended by a wait: ms per step (median, p10, p90),\n"
         "samples/s, projected epoch time; the useful GFLOP/s of the step (2 per multiply-add, no\n"
         "padding), and with --fma-peak (tools/fma_peak's figure) its share of the FMA peak; the\n"
         "step's GEMMs alone (GFLOP/s); device time per kernel from OpenCL profiling events; and the start-up\n"
         "split (platform + context, program build, data upload, first step). --gemm may be given\n"
         "several times, or 'all', to compare implementations in one run. --json prints one object\n"
         "per implementation (an array when there are several).\n\n"
         "Under mpirun (mpirun -np N clvae bench): the data-parallel step of a global batch of B rows\n"
         "over the N ranks, with the per-layer reduction overlapping backward and without it; the\n"
         "same batch on rank 0's device alone; and the sum of the gradient arena over the ranks\n"
         "alone (MPI_Allreduce). Rank 0 prints ms per step, reduction time and samples/s of the job.\n");
}

typedef struct bench_args {
  cli_device_opts o;
  clvae_gemm_impl impls[4];
  int nimpl, json, no_overlap;
  long steps, warmup, B;
  const char *data;
  clvae_config cfg;          /* the layers and latent dimension (the rest: the defaults) */
  int set[CFG_COUNT];
  double peak;
} bench_args;

static int parse_bench(int argc, char **argv, void *arg) {
  bench_args *a = arg;
  const char *v;
  int r;
  for (int i = 1; i < argc; i++) {
    if ((r = cli_value(argc, argv, &i, "--gemm", &v))) {
      int g = r > 0 ? clvae_gemm_impl_parse(v) : -1;
      if (r > 0 && !strcmp(v, "all")) {
        a->impls[0] = CLVAE_GEMM_BUILTIN, a->impls[1] = CLVAE_GEMM_CLBLAST, a->nimpl = 2;
        continue;
      }
      if (g < 0) return fprintf(stderr, "clvae: --gemm '%s' is not one of auto, builtin, clblast, all\n", r > 0 ? v : ""), EXIT_USAGE;
      if (a->nimpl < 4) a->impls[a->nimpl++] = (clvae_gemm_impl)g;
    } else if ((r = cli_device_option(argc, argv, &i, &a->o)) || (r = cli_value(argc, argv, &i, "--data", &a->data))) {
      if (r < 0) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--steps", &v))) {
      if (r < 0 || !cli_int("--steps", v, 10, 100000, &a->steps)) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--warmup", &v))) {
      if (r < 0 || !cli_int("--warmup", v, 0, 100000, &a->warmup)) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--batch-size", &v))) {
      if (r < 0 || !cli_int("--batch-size", v, 1, 60000, &a->B)) return EXIT_USAGE;
    } else if ((r = cli_layer_option(argc, argv, &i, &a->cfg, a->set))) {
      if (r < 0) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--latent-dim", &v))) {
      long x;
      if (r < 0 || !cli_int("--latent-dim", v, 1, CLVAE_MAX_LATENT, &x)) return EXIT_USAGE;
      a->cfg.latent = (int)x;
    } else if ((r = cli_value(argc, argv, &i, "--fma-peak", &v))) {
      char *end;
      if (r < 0) return EXIT_USAGE;
      a->peak = strtod(v, &end);
      if (end == v || *end || !(a->peak > 0 && a->peak < 1e9)) {
        fprintf(stderr, "clvae: --fma-peak '%s' is not a rate in GFLOP/s (tools/fma_peak measures it)\n", v);
        return EXIT_USAGE;
      }
    } else if (!strcmp(argv[i], "--json")) a->json = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return bench_usage(), EXIT_OK;
    else return cli_unknown("bench", argv[i]);
  }
  return cli_layer_flags_done(&a->cfg, a->set);
}

/* Median, p10 and p90 of n timings (sorted in place). */
static void spread(double *t, int n, double *med, double *p10, double *p90) {
  qsort(t, (size_t)n, sizeof *t, clvae_cmp_double);
  *med = t[n / 2], *p10 = t[n / 10], *p90 = t[(n * 9) / 10];
}

typedef struct dist_timing {
  double med, p10, p90, wait;
} dist_timing;

/* steps data-parallel steps of the global batch (consecutive windows of the set), each
 * ended by a wait for the device; times in ms on this rank. */
static clvae_status time_dist(clvae_dist *dist, clvae_device *dev, clvae_dataset *d, clvae_buffer *rk, int B, int warmup,
                              int steps, double *t, double *w, dist_timing *out) {
  int n = clvae_dataset_count(d);
  clvae_status st = CLVAE_OK, local = CLVAE_OK;
  for (int s = -warmup; s < steps && st == CLVAE_OK; s++) {
    int b0 = (int)(((long long)(s + warmup) * B) % (n - B + 1)), stop = 0;
    double wait = 0, t0 = clvae_now();
    st = clvae_dist_step(dist, clvae_dataset_images(d), clvae_dataset_labels(d), clvae_dataset_index(d, (size_t)b0), B, clvae_at(rk, 0),
                         clvae_at(rk, (size_t)B), &stop, &wait);
    if (st == CLVAE_OK && local == CLVAE_OK) local = clvae_device_finish(dev); /* agreed on below */
    if (s >= 0) t[s] = (clvae_now() - t0) * 1e3, w[s] = wait * 1e3;
  }
  if (st == CLVAE_OK) st = clvae_dist_sync(dist, local);
  if (st == CLVAE_OK) {
    double p10, p90;
    spread(w, steps, &out->wait, &p10, &p90);
    spread(t, steps, &out->med, &out->p10, &out->p90);
  }
  return st;
}

/* `mpirun -np N clvae bench`: see bench_usage. */
static int bench_dist(const bench_args *a) {
  const int size = clvae_comm_size(cli_comm), lead = clvae_comm_rank(cli_comm) == 0;
  const int B = (int)a->B, steps = (int)a->steps, warmup = (int)a->warmup;
  cli_device_opts o = a->o;
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  clvae_dataset *d = NULL;
  clvae_buffer *rk = NULL;
  clvae_dist *over = NULL, *after = NULL;
  clvae_images train = {0};
  clvae_net net;
  clvae_config c;
  float *params = NULL, *arena = NULL;
  double *t = malloc((size_t)steps * 2 * sizeof *t), *w = t ? t + steps : NULL;
  dist_timing ov = {0}, af = {0};
  double alone[3] = {0, 0, 0}, reduce[3] = {0, 0, 0};
  clvae_status st = CLVAE_OK;
  o.gemm = a->nimpl ? a->impls[0] : CLVAE_GEMM_AUTO;
  c = a->cfg;
  c.batch = B; /* every replica can hold the whole batch: the one-device reference runs it */
  int rc = t ? cli_open_device(&o, 0, &dev) : cli_oom();
  if (rc == EXIT_OK && (st = clvae_ops_build_all(dev)) != CLVAE_OK) rc = EXIT_FAIL;
  if (rc == EXIT_OK && cli_load_images(&train, a->data, "train", NULL) != 0) rc = EXIT_USAGE;
  if (rc == EXIT_OK && B > train.count) {
    fprintf(stderr, "clvae: --batch-size %d is larger than the %d training images\n", B, train.count);
    rc = EXIT_USAGE;
  }
  if (rc == EXIT_OK) {
    c.height = train.height, c.width = train.width, c.channels = train.channels;
    if ((st = clvae_net_build(&net, &c)) != CLVAE_OK || (st = clvae_model_fits(&c, clvae_device_get_info(dev))) != CLVAE_OK)
      rc = EXIT_USAGE;
    if (st == CLVAE_OK && !(params = malloc(net.total * 4))) st = CLVAE_ERR_NOMEM;
    if (st == CLVAE_OK) clvae_init_params(&net, params);
    if (st == CLVAE_OK) st = clvae_dataset_create(&d, dev, &train, 0);
    if (st == CLVAE_OK) st = clvae_model_create(&m, dev, &c);
    if (st == CLVAE_OK) st = clvae_model_set_state(m, params, NULL, NULL, 0);
    if (st == CLVAE_OK) st = clvae_buffer_create(dev, (size_t)B * 8, &rk);
    if (st == CLVAE_OK) st = clvae_dist_create(&over, cli_comm, m, 1);
    if (st == CLVAE_OK) st = clvae_dist_create(&after, cli_comm, m, 0);
    if (st == CLVAE_OK && !(arena = calloc(net.total, 4))) st = CLVAE_ERR_NOMEM;
    if (st != CLVAE_OK && rc == EXIT_OK) rc = EXIT_FAIL;
  }
  if (st != CLVAE_OK) fprintf(stderr, "clvae: %s%s\n", cli_rank_prefix(), clvae_error_message());
  if ((rc = cli_agree(rc == EXIT_OK ? -1 : rc)) >= 0) goto done;
  rc = EXIT_FAIL;
  if ((st = time_dist(over, dev, d, rk, B, warmup, steps, t, w, &ov)) != CLVAE_OK ||
      (st = time_dist(after, dev, d, rk, B, warmup, steps, t, w, &af)) != CLVAE_OK)
    goto failed;
  for (int s = -warmup; s < steps; s++) { /* the sum of the arena alone */
    double t0 = clvae_now();
    if ((st = clvae_comm_sum_floats(cli_comm, arena, net.total)) != CLVAE_OK) goto failed;
    if (s >= 0) t[s] = (clvae_now() - t0) * 1e3;
  }
  spread(t, steps, &reduce[0], &reduce[1], &reduce[2]);
  st = CLVAE_OK; /* the whole batch on rank 0's device, the others idle */
  for (int s = -warmup; lead && s < steps && st == CLVAE_OK; s++) {
    int b0 = (int)(((long long)(s + warmup) * B) % (train.count - B + 1));
    double t0 = clvae_now();
    st = clvae_model_train_step(m, clvae_dataset_images(d), clvae_dataset_labels(d), clvae_dataset_index(d, (size_t)b0), B, clvae_at(rk, 0),
                                clvae_at(rk, (size_t)B));
    if (st == CLVAE_OK) st = clvae_device_finish(dev);
    if (s >= 0) t[s] = (clvae_now() - t0) * 1e3;
  }
  if (clvae_comm_barrier(cli_comm) != CLVAE_OK) st = CLVAE_ERR_COMM; /* the others sleep meanwhile */
  if (st == CLVAE_ERR_COMM || (st = clvae_dist_agree(cli_comm, st)) != CLVAE_OK) goto failed;
  if (lead) spread(t, steps, &alone[0], &alone[1], &alone[2]);
  if (lead && a->json) {
    printf("{\"ranks\": %d, \"batch_size\": %d, \"steps\": %d, \"gemm\": \"%s\", \"ms_per_step\": %.4f, \"ms_p10\": %.4f, "
           "\"ms_p90\": %.4f, \"reduce_wait_ms\": %.4f, \"samples_per_sec\": %.1f, \"ms_per_step_no_overlap\": %.4f, "
           "\"reduce_wait_ms_no_overlap\": %.4f, \"ms_per_step_one_device\": %.4f, \"allreduce_ms\": %.4f, "
           "\"allreduce_p10_ms\": %.4f, \"allreduce_p90_ms\": %.4f, \"arena_floats\": %zu}\n",
           size, B, steps, clvae_gemm_impl_name(clvae_gemm_get_impl(dev)), ov.med, ov.p10, ov.p90, ov.wait,
           B / ov.med * 1e3, af.med, af.wait, alone[0], reduce[0], reduce[1], reduce[2], net.total);
  } else if (lead) {
    printf("\ndata-parallel step over %d ranks: global batch %d (%d to %d rows per rank), gemm %s, %d steps\n", size, B,
           B / size, (B + size - 1) / size, clvae_gemm_impl_name(clvae_gemm_get_impl(dev)), steps);
    printf("  step, each layer's sum overlapping backward  %8.2f ms median (p10 %.2f, p90 %.2f): %.0f samples/s for the "
           "job\n", ov.med, ov.p10, ov.p90, B / ov.med * 1e3);
    printf("    of which waiting for the sums after backward %6.2f ms\n", ov.wait);
    printf("  step, one sum after backward                  %8.2f ms median (waiting %.2f ms)\n", af.med, af.wait);
    printf("  the whole batch on rank 0's device alone      %8.2f ms median (p10 %.2f, p90 %.2f): the job is %.2fx "
           "as fast\n", alone[0], alone[1], alone[2], alone[0] / ov.med);
    printf("  MPI_Allreduce of the gradient arena alone     %8.3f ms median (p10 %.3f, p90 %.3f) for %zu floats "
           "(%.1f MB): %.2f GB/s bus bandwidth\n", reduce[0], reduce[1], reduce[2], net.total, net.total * 4e-6,
           2.0 * (size - 1) / size * net.total * 4 / (reduce[0] * 1e-3) * 1e-9);
  }
  rc = EXIT_OK;
  goto done;
failed:
  if (st == CLVAE_ERR_COMM) {
    fprintf(stderr, "clvae: %s%s; aborting the job\n", cli_rank_prefix(), clvae_error_message());
    clvae_comm_abort(cli_comm, EXIT_FAIL);
  }
  if (lead) fprintf(stderr, "clvae: %s\n", clvae_error_message());
done:
  clvae_dist_free(over), clvae_dist_free(after);
  clvae_buffer_free(rk);
  clvae_dataset_free(d);
  clvae_model_free(m);
  clvae_device_free(dev);
  clvae_images_free(&train);
  free(params), free(arena), free(t);
  return rc;
}

int cmd_bench(int argc, char **argv) {
  bench_args ba = {.steps = 50, .warmup = 5, .B = 256, .data = CLVAE_DEFAULT_DATA_DIR};
  double t_start = clvae_now(), startup[4];
  cli_device_defaults(&ba.o);
  clvae_config_default(&ba.cfg);
  int r = cli_parse_agreed(parse_bench, argc, argv, &ba);
  if (r >= 0) return r;
  if (clvae_comm_size(cli_comm) > 1) {
    static const char *const names[] = {"--steps", "--warmup", "--batch-size", "--gemm (how many)"};
    double v[] = {(double)ba.steps, (double)ba.warmup, (double)ba.B, ba.nimpl};
    if ((r = cli_same_as_lead(names, v, 4)) >= 0) return r;
    if (ba.nimpl > 1) {
      if (clvae_comm_rank(cli_comm) == 0)
        fprintf(stderr, "clvae: under mpirun bench measures one --gemm at a time (not 'all' or several)\n");
      return EXIT_USAGE;
    }
    return bench_dist(&ba);
  }
  cli_device_opts o = ba.o;
  clvae_gemm_impl *impls = ba.impls;
  int nimpl = ba.nimpl, json = ba.json;
  long steps = ba.steps, warmup = ba.warmup, B = ba.B;
  const char *data = ba.data;
  if (!nimpl) impls[nimpl++] = CLVAE_GEMM_AUTO;

  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  clvae_dataset *d = NULL;
  cli_loader ld;
  clvae_buffer *rk = NULL, *sa = NULL, *sb = NULL, *so = NULL;
  clvae_config c = ba.cfg;
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
  if (clvae_net_build(&net, &c) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s (from the data %s and the flags)\n", clvae_error_message(), train.source);
    rc = EXIT_USAGE;
    goto done;
  }
  if (clvae_model_fits(&c, clvae_device_get_info(dev)) != CLVAE_OK) { /* before anything is allocated, as train does */
    fprintf(stderr, "clvae: %s\nclvae: use a smaller --batch-size, or smaller layers\n", clvae_error_message());
    rc = EXIT_USAGE;
    goto done;
  }
  if (clvae_dataset_create(&d, dev, &train, 0) != CLVAE_OK) goto dev_fail;
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
    res.useful_gflop = clvae_net_step_flop(&net, (int)B) * 1e-9, res.peak = ba.peak;
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
