/* What the kernel checks share (src/ref/check*.c): random inputs, device buffers with
 * guard bytes, comparison against the reference with a tolerance, the result's bookkeeping. */
#ifndef CLVAE_CHECK_INTERNAL_H
#define CLVAE_CHECK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ref/check.h"

uint64_t chk_rng_next(uint64_t *s);
float chk_rng_uniform(uint64_t *s, float lo, float hi);
/* n uniform floats in [lo, hi); NULL if out of memory. */
float *chk_rand_floats(size_t n, uint64_t *s, float lo, float hi);

/* A device buffer: n elements at element offset `off`, with guard bytes around them. */
typedef struct dbuf {
  clvae_buffer *b;
  size_t off;                /* data offset in elements */
  size_t bytes;              /* data size */
  size_t elem;
} dbuf;
int chk_dput(clvae_device *dev, check_result *r, dbuf *d, const void *host, size_t n, size_t elem, size_t off_elems);
/* Reads the data back and verifies the guards (a write outside fails the case). */
int chk_dget(clvae_device *dev, check_result *r, dbuf *d, void *host, const char *name);
void chk_dfree(dbuf *d);
clvae_view chk_dv(const dbuf *d);

/* Passes where |got − want| ≤ atol + rtol·scale (scale: |want| when NULL). */
void chk_compare(check_result *r, const char *what, const float *got, const float *want, const double *scale, size_t n,
                 double atol, double rtol);
void chk_begin(check_result *r, const char *kernel, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void chk_finish(check_result *r, int ok);
void chk_device_error(check_result *r);

#endif
