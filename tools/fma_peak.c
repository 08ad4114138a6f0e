/* The CPU's measured FMA peak: every core runs independent chains of fused multiply-adds
 * on the widest vectors it has (AVX-512, else AVX2), long enough to hide their latency;
 * prints GFLOP/s (2 per FMA lane) for 1 thread and for all cores, median of 9 runs each.
 * The limit a GEMM-bound training step can approach: clvae's step does 1.032 GFLOP of GEMMs
 * (the default model, batch 256).  usage: fma_peak [--threads N] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/timing.h"

#define CHAINS 12            /* independent accumulators: > latency × ports (4 × 2) */
#define ITERS (1 << 22)

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));

__attribute__((target("avx512f"))) static float run512(void) {
  v16 acc[CHAINS], a = {0}, b = {0};
  for (int i = 0; i < 16; i++) a[i] = 1.0f + 1e-7f * (float)i, b[i] = 0.999999f;
  for (int c = 0; c < CHAINS; c++) acc[c] = a * (float)c;
  for (long n = 0; n < ITERS; n++)
    for (int c = 0; c < CHAINS; c++) acc[c] = __builtin_ia32_vfmaddps512_mask(acc[c], b, a, (unsigned short)-1, 4);
  float s = 0;
  for (int c = 0; c < CHAINS; c++) s += acc[c][0];
  return s;
}

__attribute__((target("avx2,fma"))) static float run256(void) {
  v8 acc[CHAINS], a = {0}, b = {0};
  for (int i = 0; i < 8; i++) a[i] = 1.0f + 1e-7f * (float)i, b[i] = 0.999999f;
  for (int c = 0; c < CHAINS; c++) acc[c] = a * (float)c;
  for (long n = 0; n < ITERS; n++)
    for (int c = 0; c < CHAINS; c++) acc[c] = __builtin_ia32_vfmaddps256(acc[c], b, a);
  float s = 0;
  for (int c = 0; c < CHAINS; c++) s += acc[c][0];
  return s;
}

static int wide;             /* 16 lanes (AVX-512) or 8 (AVX2) */
static volatile float sink;

static void *worker(void *arg) {
  (void)arg;
  sink = wide == 16 ? run512() : run256();
  return NULL;
}

/* GFLOP/s of `threads` threads running the loop at once, median of 9. */
static double measure(int threads) {
  double r[9];
  pthread_t t[256];
  for (int k = 0; k < 9; k++) {
    double t0 = clvae_now();
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    r[k] = 2.0 * wide * CHAINS * (double)ITERS * threads / (clvae_now() - t0) * 1e-9;
  }
  qsort(r, 9, sizeof *r, clvae_cmp_double);
  return r[4];
}

int main(int argc, char **argv) {
  long threads = sysconf(_SC_NPROCESSORS_ONLN);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atol(argv[++i]);
    else return fprintf(stderr, "usage: fma_peak [--threads N]\n"), 2;
  }
  if (threads < 1 || threads > 256) return fprintf(stderr, "fma_peak: --threads 1..256\n"), 2;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) wide = 16;
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) wide = 8;
  else return fprintf(stderr, "fma_peak: this CPU has neither AVX-512 nor AVX2 with FMA\n"), 2;
  double one = measure(1), all = measure((int)threads);
  printf("FMA peak (%s): %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %ld threads\n", wide == 16 ? "AVX-512" : "AVX2", one,
         all, threads);
  printf("a step's 1.032 GFLOP of GEMMs at that peak: %.2f ms\n", 1.032 / all * 1e3);
  return 0;
}
