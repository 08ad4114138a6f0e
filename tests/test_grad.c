/* Gradient check of the whole VAE loss: the reference's analytic gradient against central
 * differences in double, for every parameter of every tensor of the net's table, both
 * losses, at depths 1, 2 and 3 (small sizes: 6 pixels as 2×3 grey or 1×2×3 RGB, L 5 so
 * that ε spans two Philox draws, B 4), and two small convolutional nets (every kind of
 * layer and padding, a dense layer after a conv and a transposed conv after a reshape, a
 * valid transposed conv back to the image), and conditional nets (3 classes: the one-hot
 * joins the encoder's input and z) with β = 0.3 and 4 (the KL term weighted). Host only.
 * Tolerance: |analytic − numeric| ≤ 1e-7 + 1e-6·|analytic| with step 1e-6 (truncation
 * error ≈ step² ≈ 1e-12, rounding ≈ 1e-16/step ≈ 1e-10). Inputs whose ReLU
 * pre-activations come within 1e-3 of zero are redrawn, so no difference crosses a kink. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ref/vae_ref.h"

static uint64_t state = 99;
static double uni(void) {
  state = state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(state >> 11) / 9007199254740992.0;
}

static int passed, failed;

static void check_net(const clvae_net *net, const char *what) {
  const int B = 4;
  double *p = malloc(net->total * 8), *g = malloc(net->total * 8), minpre = 0;
  float *x = malloc((size_t)B * net->D * sizeof *x);
  int labels[4] = {2, 0, 1, 2}, *lab = net->K ? labels : NULL; /* every class, one twice */
  for (int tries = 0; tries < 200 && minpre < 1e-3; tries++) {
    for (size_t i = 0; i < net->total; i++) p[i] = (uni() * 2 - 1) * 0.8;
    for (int i = 0; i < B * net->D; i++) x[i] = (float)uni();
    ref_vae_loss(net, p, x, lab, B, 3, g, NULL, NULL, &minpre);
  }
  for (int t = 0; t < net->ntensors; t++) {
    const clvae_tensor *tt = &net->tensors[t];
    double worst = 0;
    int bad = 0;
    for (size_t i = tt->offset; i < tt->offset + (size_t)tt->rows * tt->cols; i++) {
      double keep = p[i], h = 1e-6;
      p[i] = keep + h;
      double fp = ref_vae_loss(net, p, x, lab, B, 3, NULL, NULL, NULL, NULL);
      p[i] = keep - h;
      double fm = ref_vae_loss(net, p, x, lab, B, 3, NULL, NULL, NULL, NULL);
      p[i] = keep;
      double num = (fp - fm) / (2 * h), err = fabs(num - g[i]), tol = 1e-7 + 1e-6 * fabs(g[i]);
      if (err / tol > worst) worst = err / tol;
      if (err > tol && bad++ < 3) printf("    %s[%zu]: analytic %.10g, numeric %.10g\n", tt->name, i - tt->offset, g[i], num);
    }
    printf("%s %s %s loss, %-22s (%d values): worst error/tolerance %.3f\n", bad ? "FAIL" : "PASS", what,
           net->cfg.loss ? "bce" : "mse", tt->name, tt->rows * tt->cols, worst);
    bad ? failed++ : passed++;
  }
  if (minpre < 1e-3) printf("FAIL: could not draw inputs away from the ReLU kink\n"), failed++;
  free(p), free(g), free(x);
}

/* A convolutional net from item lists on h×w×ch images. */
static void conv_net(int h, int w, int ch, const char *enc, const char *dec, int loss) {
  clvae_config c;
  clvae_net net;
  char what[160];
  clvae_config_default(&c);
  c.height = h, c.width = w, c.channels = ch, c.latent = 5, c.batch = 4, c.loss = loss, c.seed = 7;
  if (clvae_items_parse(enc, c.enc, &c.nenc) != CLVAE_OK || clvae_items_parse(dec, c.dec, &c.ndec) != CLVAE_OK ||
      clvae_net_build(&net, &c) != CLVAE_OK) {
    printf("FAIL: net %s | %s: %s\n", enc, dec, clvae_error_message()), failed++;
    return;
  }
  snprintf(what, sizeof what, "%dx%dx%d %s | %s", h, w, ch, enc, dec);
  check_net(&net, what);
}

int main(void) {
  static const int widths[3][3] = {{5}, {5, 4}, {4, 5, 3}};
  for (int depth = 1; depth <= 3; depth++)
    for (int loss = 0; loss < 2; loss++) {
      clvae_config c;
      clvae_net net;
      clvae_config_default(&c);
      c.height = depth == 2 ? 1 : 2, c.width = depth == 2 ? 2 : 3, c.channels = depth == 2 ? 3 : 1; /* D = 6 */
      c.depth = depth, c.latent = 5, c.batch = 4, c.loss = loss, c.seed = 7;
      for (int i = 0; i < depth; i++) c.hidden[i] = widths[depth - 1][i];
      if (clvae_net_build(&net, &c) != CLVAE_OK || net.D != 6) {
        printf("FAIL: net for depth %d\n", depth), failed++;
        continue;
      }
      char what[32];
      snprintf(what, sizeof what, "depth %d", depth);
      check_net(&net, what);
    }
  for (int depth = 1; depth <= 2; depth++) { /* conditional, with β */
    clvae_config c;
    clvae_net net;
    clvae_config_default(&c);
    c.height = 2, c.width = 3, c.channels = 1, c.depth = depth, c.hidden[0] = 5, c.hidden[1] = 4;
    c.latent = 2, c.batch = 4, c.loss = depth - 1, c.seed = 7, c.classes = 3, c.beta = depth == 1 ? 0.3f : 4.0f;
    if (clvae_net_build(&net, &c) != CLVAE_OK || net.acts[0].width != 9 || net.layers[net.sample + 1].in != 5) {
      printf("FAIL: conditional net for depth %d\n", depth), failed++;
      continue;
    }
    char what[64];
    snprintf(what, sizeof what, "conditional depth %d beta %g", depth, (double)c.beta);
    check_net(&net, what);
  }
  for (int loss = 0; loss < 2; loss++) {
    conv_net(3, 3, 1, "conv:2:2:1,conv:3:3:2:valid", "reshape:1:1:5,deconv:2:3:2:valid", loss);
    conv_net(2, 3, 3, "conv:2:2:1,dense:4", "dense:6,reshape:2:3:1,deconv:2:2:1", loss);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
