/* One OpenCL training step against the double-precision reference VAE: per-image losses
 * and every gradient tensor of the net's table, at the real shape (28×28, hidden 512,
 * latent 2, B 256), odd ones at depth 1 (3×11 grey, 17, latent 3, B 7; both losses) and
 * depths 2 and 3 (3×11, 17,9; 5×5 RGB, 20,12,7), convolutional nets (small ones with every
 * padding and stride 1-3, and the TF tutorial's at batch 16), conditional ones (K classes
 * one-hot after the pixels and after z) with β ≠ 1, then the Adam update moves no parameter
 * by more than lr (a property of Adam's first step: |Δp| = lr·|g|/(|g| + ε)); and a smaller
 * batch after a full one gives a fresh model's gradients.
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

/* The next cases' classes (0: unconditional) and β. */
static int case_classes;
static float case_beta = 1.0f;

static int run_case(clvae_device *dev, int h, int w, int ch, const char *hidden, int L, int B, int loss) {
  clvae_config c;
  clvae_net net;
  clvae_config_default(&c);
  c.height = h, c.width = w, c.channels = ch, c.latent = L, c.batch = B, c.loss = loss, c.seed = 11;
  c.classes = case_classes, c.beta = case_beta;
  c.depth = 0;
  const char *bar = strchr(hidden, '|');
  if (bar) { /* "ENCODER|DECODER" item lists */
    char enc[256];
    snprintf(enc, sizeof enc, "%.*s", (int)(bar - hidden), hidden);
    if (clvae_items_parse(enc, c.enc, &c.nenc) != CLVAE_OK || clvae_items_parse(bar + 1, c.dec, &c.ndec) != CLVAE_OK)
      c.nenc = c.ndec = 0;
  } else
    for (const char *q = hidden; *q; q += *q == ',') c.hidden[c.depth++] = (int)strtol(q, (char **)&q, 10);
  if (clvae_net_build(&net, &c) != CLVAE_OK) {
    printf("FAIL %s\n", clvae_error_message());
    failed++;
    return 0;
  }
  const int D = net.D;
  size_t n = net.total;
  float *p = malloc(n * 4), *g = malloc(n * 4), *p2 = malloc(n * 4), *x = malloc((size_t)B * D * 4);
  float *rec = malloc((size_t)B * 4), *kl = malloc((size_t)B * 4);
  double *pd = malloc(n * 8), *gd = malloc(n * 8), *recd = malloc((size_t)B * 8), *kld = malloc((size_t)B * 8);
  uint8_t *img = malloc((size_t)B * D), *lab = malloc((size_t)B);
  uint32_t *idx = malloc((size_t)B * 4);
  int *rlab = malloc((size_t)B * sizeof *rlab); /* each row's class, for the reference */
  clvae_model *m = NULL;
  clvae_buffer *bimg = NULL, *bidx = NULL, *brec = NULL, *bkl = NULL, *blab = NULL;
  char what[160];
  uint64_t s = 5;
  clvae_init_params(&net, p);
  for (size_t i = 0; i < n; i++) pd[i] = p[i];
  for (int i = 0; i < B * D; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    img[i] = (uint8_t)(s >> 56);
  }
  for (int b = 0; b < B; b++) idx[B - 1 - b] = (uint32_t)b; /* reversed: the gather must follow idx */
  for (int b = 0; b < B; b++) lab[b] = (uint8_t)(c.classes ? (b * 7 + 3) % c.classes : 0);
  for (int b = 0; b < B; b++) rlab[b] = lab[idx[b]];
  for (int b = 0; b < B; b++)
    for (int d = 0; d < D; d++) x[(size_t)b * D + d] = (float)img[(size_t)idx[b] * D + d] / 255.0f;
  ref_vae_loss(&net, pd, x, c.classes ? rlab : NULL, B, 0, gd, recd, kld, NULL);

  int ok = clvae_model_create(&m, dev, &c) == CLVAE_OK && clvae_model_set_state(m, p, NULL, NULL, 0) == CLVAE_OK &&
           clvae_buffer_create(dev, (size_t)B * D, &bimg) == CLVAE_OK && clvae_buffer_create(dev, (size_t)B * 4, &bidx) == CLVAE_OK &&
           clvae_buffer_create(dev, (size_t)B * 4, &brec) == CLVAE_OK && clvae_buffer_create(dev, (size_t)B * 4, &bkl) == CLVAE_OK &&
           clvae_buffer_write(dev, bimg, 0, (size_t)B * D, img, 1) == CLVAE_OK &&
           clvae_buffer_write(dev, bidx, 0, (size_t)B * 4, idx, 1) == CLVAE_OK &&
           clvae_buffer_create(dev, (size_t)B, &blab) == CLVAE_OK && clvae_buffer_write(dev, blab, 0, (size_t)B, lab, 1) == CLVAE_OK &&
           clvae_model_forward_backward(m, clvae_at(bimg, 0), clvae_at(c.classes ? blab : NULL, 0), clvae_at(bidx, 0), B,
                                        clvae_at(brec, 0), clvae_at(bkl, 0), 0) == CLVAE_OK &&
           clvae_model_get_state(m, NULL, NULL, NULL, g) == CLVAE_OK &&
           clvae_buffer_read(dev, brec, 0, (size_t)B * 4, rec) == CLVAE_OK && clvae_buffer_read(dev, bkl, 0, (size_t)B * 4, kl) == CLVAE_OK;
  if (!ok) {
    printf("FAIL %dx%dx%d-%s-%d B=%d: %s\n", h, w, ch, hidden, L, B, clvae_error_message());
    failed++;
    goto done;
  }
  double worst = 0;
  for (int b = 0; b < B; b++) {
    double e1 = fabs(rec[b] - recd[b]) / (2e-5 * fabs(recd[b]) + 1e-5), e2 = fabs(kl[b] - kld[b]) / (2e-5 * fabs(kld[b]) + 1e-5);
    worst = fmax(worst, fmax(e1, e2));
  }
  char name[64];
  snprintf(name, sizeof name, "%dx%dx%d-%s-%d B=%d %s", h, w, ch, hidden, L, B, loss ? "bce" : "mse");
  if (c.classes) snprintf(name + strlen(name), sizeof name - strlen(name), " K=%d beta=%g", c.classes, (double)c.beta);
  snprintf(what, sizeof what, "%s: per-image reconstruction and KL", name);
  report(worst <= 1, what, worst);
  for (int t = 0; t < net.ntensors; t++) {
    size_t lo = net.tensors[t].offset, hi = lo + (size_t)net.tensors[t].rows * net.tensors[t].cols;
    double gmax = 0;
    worst = 0;
    for (size_t i = lo; i < hi; i++) gmax = fmax(gmax, fabs(gd[i]));
    for (size_t i = lo; i < hi; i++) worst = fmax(worst, fabs(g[i] - gd[i]) / (2e-5 * gmax + 1e-9));
    snprintf(what, sizeof what, "%s: gradient %s", name, net.tensors[t].name);
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
  snprintf(what, sizeof what, "%s: Adam step moves %zu of %zu parameters, at most lr", name, moved, n);
  report(ok && maxmove <= c.lr * 1.001 && moved > n / 2 && clvae_model_step(m) == 1, what, maxmove / c.lr);
done:
  clvae_model_free(m);
  clvae_buffer_free(bimg), clvae_buffer_free(bidx), clvae_buffer_free(brec), clvae_buffer_free(bkl);
  clvae_buffer_free(blab);
  free(p), free(g), free(p2), free(x), free(rec), free(kl), free(pd), free(gd), free(recd), free(kld), free(img), free(idx);
  free(lab), free(rlab);
  return 0;
}

/* The last batch of an epoch is smaller: a model that has run a full batch gives, for a
 * smaller one, the same gradients bit for bit as a fresh model (the buffers sized for the full
 * batch, the gradients' panels among them, must hold nothing over). */
static void smaller_batch(clvae_device *dev) {
  clvae_config c;
  clvae_net net;
  clvae_config_default(&c);
  c.height = 3, c.width = 11, c.latent = 3, c.batch = 7, c.seed = 11, c.depth = 2, c.hidden[0] = 17, c.hidden[1] = 9;
  const int B = c.batch, B2 = 4;
  if (clvae_net_build(&net, &c) != CLVAE_OK) {
    printf("FAIL smaller batch: %s\n", clvae_error_message());
    failed++;
    return;
  }
  size_t n = net.total;
  float *p = malloc(n * 4), *g1 = malloc(n * 4), *g2 = malloc(n * 4);
  uint8_t *img = malloc((size_t)B * net.D);
  uint32_t idx[7] = {6, 5, 4, 3, 2, 1, 0};
  clvae_model *m1 = NULL, *m2 = NULL;
  clvae_buffer *bimg = NULL, *bidx = NULL, *brec = NULL, *bkl = NULL;
  uint64_t s = 9;
  clvae_init_params(&net, p);
  for (int i = 0; i < B * net.D; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    img[i] = (uint8_t)(s >> 56);
  }
  int ok = clvae_buffer_create(dev, (size_t)B * net.D, &bimg) == CLVAE_OK &&
           clvae_buffer_create(dev, sizeof idx, &bidx) == CLVAE_OK && clvae_buffer_create(dev, (size_t)B * 4, &brec) == CLVAE_OK &&
           clvae_buffer_create(dev, (size_t)B * 4, &bkl) == CLVAE_OK &&
           clvae_buffer_write(dev, bimg, 0, (size_t)B * net.D, img, 1) == CLVAE_OK &&
           clvae_buffer_write(dev, bidx, 0, sizeof idx, idx, 1) == CLVAE_OK &&
           clvae_model_create(&m1, dev, &c) == CLVAE_OK && clvae_model_create(&m2, dev, &c) == CLVAE_OK &&
           clvae_model_set_state(m1, p, NULL, NULL, 0) == CLVAE_OK &&
           clvae_model_forward_backward(m1, clvae_at(bimg, 0), clvae_at(NULL, 0), clvae_at(bidx, 0), B, clvae_at(brec, 0), clvae_at(bkl, 0), 0) == CLVAE_OK &&
           clvae_model_set_state(m1, p, NULL, NULL, 0) == CLVAE_OK &&
           clvae_model_forward_backward(m1, clvae_at(bimg, 0), clvae_at(NULL, 0), clvae_at(bidx, 0), B2, clvae_at(brec, 0), clvae_at(bkl, 0), 0) == CLVAE_OK &&
           clvae_model_get_grads(m1, g1) == CLVAE_OK && clvae_model_set_state(m2, p, NULL, NULL, 0) == CLVAE_OK &&
           clvae_model_forward_backward(m2, clvae_at(bimg, 0), clvae_at(NULL, 0), clvae_at(bidx, 0), B2, clvae_at(brec, 0), clvae_at(bkl, 0), 0) == CLVAE_OK &&
           clvae_model_get_grads(m2, g2) == CLVAE_OK;
  if (!ok) {
    printf("FAIL smaller batch: %s\n", clvae_error_message()), failed++;
  } else {
    report(memcmp(g1, g2, n * 4) == 0, "a batch of 4 after one of 7: the gradients of a fresh model, bit for bit", 0);
    /* and the reference's for those 4 rows (run_case's tolerance) */
    double *pd = malloc(n * 8), *gd = malloc(n * 8), rec[4], kl[4], worst = 0;
    float *x = malloc((size_t)B2 * net.D * 4);
    for (size_t i = 0; i < n; i++) pd[i] = p[i];
    for (int b = 0; b < B2; b++)
      for (int d = 0; d < net.D; d++) x[(size_t)b * net.D + d] = (float)img[(size_t)idx[b] * net.D + d] / 255.0f;
    ref_vae_loss(&net, pd, x, NULL, B2, 0, gd, rec, kl, NULL);
    for (int t = 0; t < net.ntensors; t++) {
      size_t lo = net.tensors[t].offset, hi = lo + (size_t)net.tensors[t].rows * net.tensors[t].cols;
      double gmax = 0;
      for (size_t i = lo; i < hi; i++) gmax = fmax(gmax, fabs(gd[i]));
      for (size_t i = lo; i < hi; i++) worst = fmax(worst, fabs(g1[i] - gd[i]) / (2e-5 * gmax + 1e-9));
    }
    report(worst <= 1, "a batch of 4 after one of 7: every gradient as the reference's", worst);
    free(pd), free(gd), free(x);
  }
  clvae_model_free(m1), clvae_model_free(m2);
  clvae_buffer_free(bimg), clvae_buffer_free(bidx), clvae_buffer_free(brec), clvae_buffer_free(bkl);
  free(p), free(g1), free(g2), free(img);
}

int main(int argc, char **argv) {
  clvae_device *dev;
  clvae_status st = clvae_device_open(&dev, getenv("CLVAE_PLATFORM"), getenv("CLVAE_DEVICE"), NULL);
  if (st == CLVAE_ERR_NO_PLATFORM) return printf("SKIP: %s\n", clvae_error_message()), 77;
  if (st != CLVAE_OK) return printf("FAIL: %s\n", clvae_error_message()), 1;
  if (argc == 3 && !strcmp(argv[1], "--gemm")) { /* the whole step through the other GEMM */
    int g = clvae_gemm_impl_parse(argv[2]);
    if (g < 0 || clvae_gemm_set_impl(dev, (clvae_gemm_impl)g) != CLVAE_OK)
      return printf("FAIL: --gemm %s\n", argv[2]), clvae_device_free(dev), 2;
    printf("GEMM: %s\n", argv[2]);
  }
  run_case(dev, 3, 11, 1, "17", 3, 7, 0);
  run_case(dev, 3, 11, 1, "17", 3, 7, 1);
  run_case(dev, 3, 11, 1, "17,9", 3, 7, 0);
  run_case(dev, 5, 5, 3, "20,12,7", 4, 9, 1);
  run_case(dev, 28, 28, 1, "512", 2, 256, 0);
  case_classes = 3, case_beta = 0.25f;
  run_case(dev, 3, 11, 1, "17,9", 3, 7, 0);
  case_classes = 10, case_beta = 4.0f;
  run_case(dev, 28, 28, 1, "512", 2, 256, 1);
  case_classes = 0, case_beta = 1.0f;
  /* convolutions: every padding, strides 1, 2, 3, a 1x1 kernel, K < S, a dense layer after a
   * conv, a transposed conv straight after z, RGB, the tutorial's model at a small batch */
  run_case(dev, 8, 6, 1, "conv:4:3:2,conv:3:2:1:valid|dense:12,reshape:4:3:1,deconv:3:3:2", 3, 5, 0);
  run_case(dev, 7, 7, 3, "conv:5:3:2:valid,dense:6|dense:18,reshape:3:3:2,deconv:4:3:2:valid", 2, 3, 1);
  run_case(dev, 6, 6, 1, "conv:3:1:1,conv:2:3:3|reshape:1:1:3,deconv:4:2:3:valid,deconv:2:3:2", 3, 4, 0);
  run_case(dev, 28, 28, 1, "conv:32:3:2:valid,conv:64:3:2:valid|dense:1568,reshape:7:7:32,deconv:64:3:2,deconv:32:3:2",
           2, 16, 0);
  smaller_batch(dev);
  clvae_device_free(dev);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
