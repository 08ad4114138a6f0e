/* Training steps of the default model under several settings, alternated step by step in
 * one process: one model per setting, each on its own handle to the device, built with the
 * setting's environment. A pair of steps takes milliseconds and the machine's slow and fast
 * phases last longer, so the per-step ratios to the first setting compare settings far more
 * precisely than whole runs one after the other. Synthetic images (the data does not
 * change the time of a step).
 *   usage: step_ab [--steps N] [--encoder LIST --decoder LIST] SETTING...
 *   SETTING: "-" for the environment as it is, or NAME=VALUE[;NAME=VALUE...] set (then put back) while
 *   that model's device and model are created (CLVAE_GEMM_TUNE is read then), e.g.
 *   step_ab - 'CLVAE_GEMM_TUNE=8,2,2,4'   ($CLVAE_PLATFORM/$CLVAE_DEVICE choose the device) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/model.h"
#include "util/timing.h"

#define MAX_SETTINGS 8
#define IMAGES 4096

/* Applies a setting's variables (set = 1), remembering what the environment held, or puts
 * the environment back as it was (set = 0), so that a later "-" sees it unchanged. */
#define MAX_VARS 16
static struct saved { char name[128]; char *old; } saved[MAX_VARS];
static int nsaved;

static int apply(const char *setting, int set) {
  char buf[512];
  if (!set) {
    for (int i = nsaved - 1; i >= 0; i--) {
      if (saved[i].old) setenv(saved[i].name, saved[i].old, 1), free(saved[i].old);
      else unsetenv(saved[i].name);
    }
    nsaved = 0;
    return 1;
  }
  if (strcmp(setting, "-") == 0) return 1;
  if (strlen(setting) >= sizeof buf) return 0;
  strcpy(buf, setting);
  for (char *save = NULL, *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
    char *eq = strchr(kv, '=');
    if (!eq || eq == kv || eq - kv >= (ptrdiff_t)sizeof saved[0].name || nsaved == MAX_VARS) return 0;
    *eq = '\0';
    const char *old = getenv(kv);
    strcpy(saved[nsaved].name, kv);
    saved[nsaved].old = old ? strdup(old) : NULL;
    nsaved++;
    if (setenv(kv, eq + 1, 1)) return 0;
  }
  return 1;
}

#define TOOL "step_ab"
int main(int argc, char **argv) {
  int steps = 200, n = 0;
  const char *settings[MAX_SETTINGS];
  clvae_config c;
  clvae_config_default(&c);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) steps = atoi(argv[++i]);
    else if ((!strcmp(argv[i], "--encoder") || !strcmp(argv[i], "--decoder")) && i + 1 < argc) {
      int enc = argv[i][2] == 'e';
      if (clvae_items_parse(argv[i + 1], enc ? c.enc : c.dec, enc ? &c.nenc : &c.ndec) != CLVAE_OK)
        return fprintf(stderr, "%s: %s '%s': %s\n", TOOL, argv[i], argv[i + 1], clvae_error_message()), 2;
      i++;
    }
    else if ((argv[i][0] == '-' && strcmp(argv[i], "-") != 0) || n == MAX_SETTINGS)
      return fprintf(stderr, "usage: step_ab [--steps N] SETTING... (at most %d; '-' or NAME=VALUE[;...])\n", MAX_SETTINGS), 2;
    else settings[n++] = argv[i];
  }
  if (n < 1 || steps < 10) return fprintf(stderr, "usage: step_ab [--steps N >= 10] SETTING...\n"), 2;
  setenv("POCL_AFFINITY", "1", 0); /* as the clvae command does */
  clvae_net net;
  if (!c.nenc != !c.ndec) return fprintf(stderr, "step_ab: --encoder and --decoder go together\n"), 2;
  if (c.nenc) c.depth = 0;
  if (clvae_net_build(&net, &c) != CLVAE_OK) return fprintf(stderr, "step_ab: %s\n", clvae_error_message()), 2;
  const int B = c.batch, D = net.D;
  uint8_t *img = malloc((size_t)IMAGES * D);
  uint32_t *idx = malloc(IMAGES * sizeof *idx);
  float *params = malloc(net.total * sizeof *params);
  double *ms = calloc((size_t)steps * n, sizeof *ms), *ratio = calloc((size_t)steps * n, sizeof *ratio);
  if (!img || !idx || !params || !ms || !ratio) return fprintf(stderr, "step_ab: out of memory\n"), 1;
  for (size_t i = 0; i < (size_t)IMAGES * D; i++) img[i] = (uint8_t)((i * 2654435761u) >> 24);
  for (int i = 0; i < IMAGES; i++) idx[i] = (uint32_t)((i * 7919u) % IMAGES);
  clvae_init_params(&net, params);
  clvae_device *dev[MAX_SETTINGS];
  clvae_model *m[MAX_SETTINGS];
  clvae_buffer *images[MAX_SETTINGS], *index[MAX_SETTINGS], *losses[MAX_SETTINGS];
  for (int t = 0; t < n; t++) {
    if (!apply(settings[t], 1)) return fprintf(stderr, "step_ab: setting '%s' is not NAME=VALUE[;...]\n", settings[t]), 2;
    if (clvae_device_open(&dev[t], getenv("CLVAE_PLATFORM"), getenv("CLVAE_DEVICE"), NULL) != CLVAE_OK ||
        clvae_gemm_set_impl(dev[t], CLVAE_GEMM_AUTO) != CLVAE_OK || clvae_model_create(&m[t], dev[t], &c) != CLVAE_OK ||
        clvae_model_set_state(m[t], params, NULL, NULL, 0) != CLVAE_OK ||
        clvae_buffer_create(dev[t], (size_t)IMAGES * D, &images[t]) != CLVAE_OK ||
        clvae_buffer_create(dev[t], IMAGES * sizeof *idx, &index[t]) != CLVAE_OK ||
        clvae_buffer_create(dev[t], (size_t)B * 2 * sizeof(float), &losses[t]) != CLVAE_OK ||
        clvae_buffer_write(dev[t], images[t], 0, (size_t)IMAGES * D, img, 1) != CLVAE_OK ||
        clvae_buffer_write(dev[t], index[t], 0, IMAGES * sizeof *idx, idx, 1) != CLVAE_OK)
      return fprintf(stderr, "step_ab: setting '%s': %s\n", settings[t], clvae_error_message()), 1;
    apply(settings[t], 0);
  }
  printf("%d settings, %d alternated steps each, gemm %s on %s\n", n, steps, clvae_gemm_impl_name(clvae_gemm_get_impl(dev[0])),
         clvae_device_get_info(dev[0])->name);
  for (int s = -10; s < steps; s++) /* 10 warm-up steps each */
    for (int t = 0; t < n; t++) {
      int b0 = ((s + 10) % (IMAGES / B)) * B;
      double t0 = clvae_now();
      if (clvae_model_train_step(m[t], clvae_at(images[t], 0), clvae_at(NULL, 0), clvae_at(index[t], (size_t)b0), B, clvae_at(losses[t], 0),
                                 clvae_at(losses[t], (size_t)B)) != CLVAE_OK ||
          clvae_device_finish(dev[t]) != CLVAE_OK)
        return fprintf(stderr, "step_ab: setting '%s': %s\n", settings[t], clvae_error_message()), 1;
      if (s >= 0) ms[(size_t)t * steps + s] = (clvae_now() - t0) * 1e3;
    }
  for (int t = 0; t < n; t++)
    for (int s = 0; s < steps; s++) ratio[(size_t)t * steps + s] = ms[(size_t)t * steps + s] / ms[s];
  for (int t = 0; t < n; t++) {
    double *r = ratio + (size_t)t * steps, *x = ms + (size_t)t * steps;
    qsort(r, (size_t)steps, sizeof *r, clvae_cmp_double), qsort(x, (size_t)steps, sizeof *x, clvae_cmp_double);
    printf("%-32s step %.3f ms median; per-step ratio to the first %.3f (quartiles %.3f, %.3f)\n", settings[t],
           x[steps / 2], r[steps / 2], r[steps / 4], r[3 * steps / 4]);
  }
  for (int t = 0; t < n; t++) {
    clvae_model_free(m[t]);
    clvae_buffer_free(images[t]), clvae_buffer_free(index[t]), clvae_buffer_free(losses[t]);
    clvae_device_free(dev[t]);
  }
  free(img), free(idx), free(params), free(ms), free(ratio);
  return 0;
}
