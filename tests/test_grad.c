/* Gradient check of the whole VAE loss: the reference's analytic gradient against central
 * differences in double, for every parameter of every tensor, both losses, on small
 * dimensions (D 6, H 5, L 5 so that ε spans two Philox draws, B 4). Host only.
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

int main(void) {
  int passed = 0, failed = 0;
  const char *names[] = {"w1", "b1", "wh", "bh", "wd1", "bd1", "wd2", "bd2"};
  for (int loss = 0; loss < 2; loss++) {
    clvae_config c;
    clvae_config_default(&c);
    c.input = 6, c.hidden = 5, c.latent = 5, c.batch = 4, c.loss = loss, c.seed = 7;
    clvae_layout l;
    clvae_layout_of(&c, &l);
    size_t off[9] = {l.w1, l.b1, l.wh, l.bh, l.wd1, l.bd1, l.wd2, l.bd2, l.total};
    double *p = malloc(l.total * 8), *g = malloc(l.total * 8), minpre = 0;
    float x[24];
    for (int tries = 0; tries < 100 && minpre < 1e-3; tries++) {
      for (size_t i = 0; i < l.total; i++) p[i] = (uni() * 2 - 1) * 0.8;
      for (int i = 0; i < 24; i++) x[i] = (float)uni();
      ref_vae_loss(&c, p, x, 4, 3, g, NULL, NULL, &minpre);
    }
    for (int t = 0; t < 8; t++) {
      double worst = 0;
      int bad = 0;
      for (size_t i = off[t]; i < off[t + 1]; i++) {
        double keep = p[i], h = 1e-6;
        p[i] = keep + h;
        double fp = ref_vae_loss(&c, p, x, 4, 3, NULL, NULL, NULL, NULL);
        p[i] = keep - h;
        double fm = ref_vae_loss(&c, p, x, 4, 3, NULL, NULL, NULL, NULL);
        p[i] = keep;
        double num = (fp - fm) / (2 * h), err = fabs(num - g[i]), tol = 1e-7 + 1e-6 * fabs(g[i]);
        if (err / tol > worst) worst = err / tol;
        if (err > tol && bad++ < 3)
          printf("    %s[%zu]: analytic %.10g, numeric %.10g\n", names[t], i - off[t], g[i], num);
      }
      printf("%s %s loss, %-3s (%zu values): worst error/tolerance %.3f\n", bad ? "FAIL" : "PASS",
             loss ? "bce" : "mse", names[t], off[t + 1] - off[t], worst);
      bad ? failed++ : passed++;
    }
    if (minpre < 1e-3) printf("FAIL: could not draw inputs away from the ReLU kink\n"), failed++;
    free(p), free(g);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
