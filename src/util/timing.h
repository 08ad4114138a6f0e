/* Wall-clock time and a comparator for medians, shared by `clvae bench` and the tools. */
#ifndef CLVAE_UTIL_TIMING_H
#define CLVAE_UTIL_TIMING_H

#include <time.h>

/* Seconds on the monotonic clock. */
static inline double clvae_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* qsort comparator for doubles, ascending. */
static inline int clvae_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#endif
