/* Kernel verification: run one op on a device on random inputs and compare it with the
 * plain-C reference. Used by `clvae selftest` and by the tests. Never prints. */
#ifndef CLVAE_CHECK_H
#define CLVAE_CHECK_H

#include "clvae/ops.h"

typedef struct check_result {
  char kernel[32];           /* "gemm", "bias_act", ... */
  char desc[128];            /* the case: shape, flags */
  double max_abs;            /* max |device − reference| over all outputs */
  double max_rel;            /* max |device − reference| / magnitude, the magnitude being what the
                              * tolerance scales with (|reference|, or e.g. Σ|a·b| for GEMM),
                              * over values where that term, not the absolute one, dominates */
  double worst;              /* max |device − reference| / tolerance; ≤ 1 passes */
  long checked, bad;
  char detail[768];          /* first mismatches, or the device error */
  int pass;
} check_result;

typedef void (*check_report)(const check_result *r, void *user);

/* Which cases: the real shapes of the default model, plus (thorough) the odd sizes 1, 7,
 * 33, 257; or (small) the shapes of a tiny model (5×7 images, hidden 9, latent 3, batch 6)
 * plus the odd sizes 1, 7, 33, for a simulator such as Oclgrind. */
enum { CHECK_QUICK = 0, CHECK_THOROUGH = 1, CHECK_SMALL = 2 };

/* Runs the cases of the kernel named `only` (NULL: all) at the sizes `mode` says. GEMM
 * cases use the device's current GEMM implementation. Calls `report` once per case;
 * returns the number of failed cases. */
int check_suite(clvae_device *dev, const char *only, int mode, check_report report, void *user);

/* The kernel names check_suite knows, NULL-terminated. */
extern const char *const check_kernels[];

/* Individual checks (each fills *r). Offsets are in elements. */
void check_gemm(clvae_device *dev, check_result *r, int ta, int tb, int M, int N, int K,
                float alpha, float beta, size_t off, uint64_t seed);
void check_rng(clvae_device *dev, check_result *r, int count, uint64_t seed);
/* A conv (deconv 0) or transposed conv's forward and backward ops against the reference;
 * `masked`: dx through a ReLU mask; `packed`: W read from a plan's packed copies. */
void check_conv(clvae_device *dev, check_result *r, int deconv, const clvae_conv_geom *g, clvae_act act, int masked,
                int packed, uint64_t seed);
/* The conv cases of a mode (the TF tutorial's layers, odd geometries); returns the failures. */
int check_conv_suite(clvae_device *dev, int mode, check_report report, void *user, uint64_t *seed);

#endif
