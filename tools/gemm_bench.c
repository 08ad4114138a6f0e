/* The big GEMMs of a training step through clvae's GEMM wrapper (on an OpenCL device)
 * and through OpenBLAS's cblas_sgemm, interleaved: each repetition runs one after the
 * other, and the ratio reported is the median of the per-repetition ratios, which cancels
 * the machine's slow and fast phases (they last longer than one pair). Median times too.
 * usage: gemm_bench [--reps N] [--gemm builtin|clblast|auto] [--encoder LIST --decoder LIST]
 *        ($CLVAE_PLATFORM/$CLVAE_DEVICE); a conv model's GEMMs are those of its im2col form. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clvae/model.h"
#include "util/timing.h"

#define TOOL "gemm_bench"
int main(int argc, char **argv) {
  int reps = 100;
  clvae_gemm_impl gemm = CLVAE_GEMM_AUTO;
  clvae_config cfg;
  clvae_config_default(&cfg);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if ((!strcmp(argv[i], "--encoder") || !strcmp(argv[i], "--decoder")) && i + 1 < argc) {
      int enc = argv[i][2] == 'e';
      if (clvae_items_parse(argv[i + 1], enc ? cfg.enc : cfg.dec, enc ? &cfg.nenc : &cfg.ndec) != CLVAE_OK)
        return fprintf(stderr, "%s: %s '%s': %s\n", TOOL, argv[i], argv[i + 1], clvae_error_message()), 2;
      i++;
    }
    else if (!strcmp(argv[i], "--gemm") && i + 1 < argc && clvae_gemm_impl_parse(argv[i + 1]) >= 0)
      gemm = (clvae_gemm_impl)clvae_gemm_impl_parse(argv[++i]);
    else return fprintf(stderr, "usage: gemm_bench [--reps N] [--gemm builtin|clblast|auto]\n"), 2;
  }
  if (reps < 3) reps = 3;
  setenv("POCL_AFFINITY", "1", 0); /* as the clvae command does (src/cli/main.c) */
  /* The big GEMMs of a step of the default model (at least a tenth of the largest one's
   * work): five for the TF.js example's model. */
  clvae_net net;
  clvae_gemm_shape all_g[4 * CLVAE_MAX_LAYERS], g[4 * CLVAE_MAX_LAYERS];
  if (!cfg.nenc != !cfg.ndec) return fprintf(stderr, "gemm_bench: --encoder and --decoder go together\n"), 2;
  if (cfg.nenc) cfg.depth = 0;
  if (clvae_net_build(&net, &cfg) != CLVAE_OK) return fprintf(stderr, "gemm_bench: %s\n", clvae_error_message()), 2;
  int ng = clvae_net_step_gemms(&net, cfg.batch, all_g, 4 * CLVAE_MAX_LAYERS), nbig = 0;
  double most = 0;
  for (int i = 0; i < ng; i++) most = fmax(most, (double)all_g[i].M * all_g[i].N * all_g[i].K);
  for (int i = 0; i < ng; i++)
    if ((double)all_g[i].M * all_g[i].N * all_g[i].K >= 0.1 * most) g[nbig++] = all_g[i];
  clvae_device *dev;
  if (clvae_device_open(&dev, getenv("CLVAE_PLATFORM"), getenv("CLVAE_DEVICE"), NULL) != CLVAE_OK ||
      clvae_gemm_set_impl(dev, gemm) != CLVAE_OK)
    return fprintf(stderr, "gemm_bench: %s\n", clvae_error_message()), 2;
  size_t n = 0; /* floats of the largest operand */
  for (int i = 0; i < nbig; i++) {
    size_t sz[3] = {(size_t)g[i].M * g[i].K, (size_t)g[i].K * g[i].N, (size_t)g[i].M * g[i].N};
    for (int k = 0; k < 3; k++) n = sz[k] > n ? sz[k] : n;
  }
  float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
  for (size_t i = 0; i < n; i++) a[i] = (float)(i % 13) * 0.01f, b[i] = (float)(i % 7) * 0.02f;
  clvae_buffer *da, *db, *dc;
  if (clvae_buffer_create(dev, n * 4, &da) || clvae_buffer_create(dev, n * 4, &db) || clvae_buffer_create(dev, n * 4, &dc) ||
      clvae_buffer_write(dev, da, 0, n * 4, a, 1) || clvae_buffer_write(dev, db, 0, n * 4, b, 1))
    return fprintf(stderr, "gemm_bench: %s\n", clvae_error_message()), 1;
  printf("device %s, gemm %s; OpenBLAS core %s, %d threads; %d interleaved repetitions\n",
         clvae_device_get_info(dev)->name, clvae_gemm_impl_name(clvae_gemm_get_impl(dev)), openblas_get_corename(),
         openblas_get_num_threads(), reps);
  if (!strcmp(openblas_get_corename(), "Prescott") || !strcmp(openblas_get_corename(), "Core2"))
    printf("warning: OpenBLAS took this CPU for a %s (generic kernels); for a fair reference set OPENBLAS_CORETYPE "
           "(SkylakeX with AVX-512, Haswell with AVX2)\n", openblas_get_corename());
  printf("%-28s %-5s %16s %10s %10s %9s %9s %7s\n", "GEMM", "op", "M x N x K", "clvae ms", "BLAS ms", "clvae GF", "BLAS GF", "ratio");
  double tot_c = 0, tot_b = 0, *tc = malloc((size_t)reps * 8), *tb = malloc((size_t)reps * 8);
  double *tr = malloc((size_t)reps * 8), *all = calloc((size_t)reps, 8), *allb = calloc((size_t)reps, 8);
  for (int s = 0; s < nbig; s++) {
    int ta = g[s].ta, tbb = g[s].tb, M = g[s].M, N = g[s].N, K = g[s].K;
    int lda = ta ? M : K, ldb = tbb ? K : N;
    for (int r = -10; r < reps; r++) { /* warm-up, then interleaved timing */
      /* alternate who goes first: OpenBLAS's threads spin for a while after a call, which
       * would otherwise always slow the clvae call that follows */
      double tcl = 0, tbl = 0;
      for (int half = 0; half < 2; half++) {
        double t0 = clvae_now();
        if ((half == 0) == (r % 2 == 0)) {
          if (clvae_gemm(dev, ta, tbb, M, N, K, 1.0f, clvae_at(da, 0), lda, clvae_at(db, 0), ldb, 0.0f, clvae_at(dc, 0), N) ||
              clvae_device_finish(dev))
            return fprintf(stderr, "gemm_bench: %s\n", clvae_error_message()), 1;
          tcl = clvae_now() - t0;
        } else {
          cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tbb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, a,
                      lda, b, ldb, 0.0f, c, N);
          tbl = clvae_now() - t0;
        }
      }
      double t0 = 0, t1 = tcl, t2 = tcl + tbl;
      if (r >= 0) {
        tc[r] = (t1 - t0) * 1e3, tb[r] = (t2 - t1) * 1e3, tr[r] = tc[r] / tb[r];
        all[r] += tc[r], allb[r] += tb[r];
      }
    }
    qsort(tc, (size_t)reps, 8, clvae_cmp_double), qsort(tb, (size_t)reps, 8, clvae_cmp_double), qsort(tr, (size_t)reps, 8, clvae_cmp_double);
    double mc = tc[reps / 2], mb = tb[reps / 2], gf = 2e-6 * M * N * K;
    tot_c += mc, tot_b += mb;
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%dx%d", M, N, K);
    printf("%-28s %s%s    %16s %10.3f %10.3f %9.1f %9.1f %7.2f\n", g[s].what, ta ? "T" : "N", tbb ? "T" : "N", shape, mc,
           mb, gf / mc, gf / mb, tr[reps / 2]);
  }
  for (int r = 0; r < reps; r++) all[r] /= allb[r]; /* whole-pass ratios, pass by pass */
  qsort(all, (size_t)reps, 8, clvae_cmp_double);
  printf("%-28s %-5s %16s %10.3f %10.3f %9s %9s %7.2f   (ratio: median of paired clvae / OpenBLAS; < 1: clvae faster)\n",
         "all of them", "", "", tot_c, tot_b, "", "", all[reps / 2]);
  clvae_buffer_free(da), clvae_buffer_free(db), clvae_buffer_free(dc);
  clvae_device_free(dev);
  free(a), free(b), free(c), free(tc), free(tb), free(tr), free(all), free(allb);
  return 0;
}
