/* One OpenCL training step against the double-precision reference VAE: per-image losses
 * and every gradient tensor, at the real shape (784-512-2, B 256) and an odd one
 * (33-17-3, B 7), both losses; then the Adam update moves no parameter by more than lr
 * (a property of Adam's first step: |Δp| = lr·|g|/(|g| + ε)).
 * Tolerances: losses 2e-5·|ref| + 1e-5; gradients 2e-5·max|ref| of their tensor + 1e-9
 * (float32 through five chained GEMMs against double; on PoCL the errors measured were
 * 5-20× below these). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/model.h"
#include "ref/vae_ref.h"

static int passed, failed;

static void report(int ok, const char *what, double worst) {
  printf("%s %s (worst error/tolerance %.3f)\n", ok ? "PASS" : "FAIL", what, worst);
  ok ? passed++ : failed++;
}

static int run_case(clvae_device *dev, int D, int H, int L, int B, int loss) {
  clvae_config c;
  clvae_config_default(&c);
  c.input = D, c.hidden = H, c.latent = L, c.batch = B, c.loss = loss, c.seed = 11;
  clvae_layout l;
  clvae_layout_of(&c, &l);
  size_t n = l.total;
  float *p = malloc(n * 4), *g = malloc(n * 4), *p2 = malloc(n * 4), *x = malloc((size_t)B * D * 4);
  float *rec = malloc((size_t)B * 4), *kl = malloc((size_t)B * 4);
  double *pd = malloc(n * 8), *gd = malloc(n * 8), *recd = malloc((size_t)B * 8), *kld = malloc((size_t)B * 8);
  uint8_t *img = malloc((size_t)B * D);
  uint32_t *idx = malloc((size_t)B * 4);
  clvae_model *m = NULL;
  clvae_buffer *bimg = NULL, *bidx = NULL, *brec = NULL, *bkl = NULL;
  char what[160];
  uint64_t s = 5;
  clvae_init_params(&c, p);
  for (size_t i = 0; i < n; i++) pd[i] = p[i];
  for (int i = 0; i < B * D; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    img[i] = (uint8_t)(s >> 56);
  }
  for (int b = 0; b < B; b++) idx[B - 1 - b] = (uint32_t)b; /* reversed: the gather must follow idx */
  for (int b = 0; b < B; b++)
    for (int d = 0; d < D; d++) x[(size_t)b * D + d] = (float)img[(size_t)idx[b] * D + d] / 255.0f;
  ref_vae_loss(&c, pd, x, B, 0, gd, recd, kld, NULL);

  int ok = clvae_model_create(&m, dev, &c) == CLVAE_OK && clvae_model_set_state(m, p, NULL, NULL, 0) == CLVAE_OK &&
           clvae_buffer_create(dev, (size_t)B * D, &bimg) == CLVAE_OK && clvae_buffer_create(dev, (size_t)B * 4, &bidx) == CLVAE_OK &&
           clvae_buffer_create(dev, (size_t)B * 4, &brec) == CLVAE_OK && clvae_buffer_create(dev, (size_t)B * 4, &bkl) == CLVAE_OK &&
           clvae_buffer_write(dev, bimg, 0, (size_t)B * D, img, 1) == CLVAE_OK &&
           clvae_buffer_write(dev, bidx, 0, (size_t)B * 4, idx, 1) == CLVAE_OK &&
           clvae_model_forward_backward(m, clvae_at(bimg, 0), clvae_at(bidx, 0), B, clvae_at(brec, 0), clvae_at(bkl, 0), 0) == CLVAE_OK &&
           clvae_model_get_state(m, NULL, NULL, NULL, g) == CLVAE_OK &&
           clvae_buffer_read(dev, brec, 0, (size_t)B * 4, rec) == CLVAE_OK && clvae_buffer_read(dev, bkl, 0, (size_t)B * 4, kl) == CLVAE_OK;
  if (!ok) {
    printf("FAIL %d-%d-%d B=%d: %s\n", D, H, L, B, clvae_error_message());
    failed++;
    goto done;
  }
  double worst = 0;
  for (int b = 0; b < B; b++) {
    double e1 = fabs(rec[b] - recd[b]) / (2e-5 * fabs(recd[b]) + 1e-5), e2 = fabs(kl[b] - kld[b]) / (2e-5 * fabs(kld[b]) + 1e-5);
    worst = fmax(worst, fmax(e1, e2));
  }
  snprintf(what, sizeof what, "%d-%d-%d B=%d %s: per-image reconstruction and KL", D, H, L, B, loss ? "bce" : "mse");
  report(worst <= 1, what, worst);
  const char *names[] = {"w1", "b1", "wh", "bh", "wd1", "bd1", "wd2", "bd2"};
  size_t off[9] = {l.w1, l.b1, l.wh, l.bh, l.wd1, l.bd1, l.wd2, l.bd2, l.total};
  for (int t = 0; t < 8; t++) {
    double gmax = 0;
    worst = 0;
    for (size_t i = off[t]; i < off[t + 1]; i++) gmax = fmax(gmax, fabs(gd[i]));
    for (size_t i = off[t]; i < off[t + 1]; i++) worst = fmax(worst, fabs(g[i] - gd[i]) / (2e-5 * gmax + 1e-9));
    snprintf(what, sizeof what, "%d-%d-%d B=%d %s: gradient %s", D, H, L, B, loss ? "bce" : "mse", names[t]);
    report(worst <= 1, what, worst);
  }
  /* Adam's first step moves each parameter by at most lr. */
  ok = clvae_model_adam(m) == CLVAE_OK && clvae_model_get_state(m, p2, NULL, NULL, NULL) == CLVAE_OK;
  double maxmove = 0;
  size_t moved = 0;
  for (size_t i = 0; ok && i < n; i++) {
    maxmove = fmax(maxmove, fabs(p2[i] - p[i]));
    moved += p2[i] != p[i];
  }
  snprintf(what, sizeof what, "%d-%d-%d B=%d %s: Adam step moves %zu of %zu parameters, at most lr", D, H, L, B,
           loss ? "bce" : "mse", moved, n);
  report(ok && maxmove <= c.lr * 1.001 && moved > n / 2 && clvae_model_step(m) == 1, what, maxmove / c.lr);
done:
  clvae_model_free(m);
  clvae_buffer_free(bimg), clvae_buffer_free(bidx), clvae_buffer_free(brec), clvae_buffer_free(bkl);
  free(p), free(g), free(p2), free(x), free(rec), free(kl), free(pd), free(gd), free(recd), free(kld), free(img), free(idx);
  return 0;
}

int main(void) {
  clvae_device *dev;
  clvae_status st = clvae_device_open(&dev, getenv("CLVAE_PLATFORM"), getenv("CLVAE_DEVICE"), NULL);
  if (st == CLVAE_ERR_NO_PLATFORM) return printf("SKIP: %s\n", clvae_error_message()), 77;
  if (st != CLVAE_OK) return printf("FAIL: %s\n", clvae_error_message()), 1;
  run_case(dev, 33, 17, 3, 7, 0);
  run_case(dev, 33, 17, 3, 7, 1);
  run_case(dev, 784, 512, 2, 256, 0);
  clvae_device_free(dev);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
