/* For tests/test_onnx.py: clvae's own encoding of the first COUNT images of a data set's
 * test part, as JSON {"mu": [[...], ...], "log_var": [[...], ...]} (COUNT rows of L), computed
 * on the device by clvae_model_encode, as `clvae reconstruct` and `clvae scatter` do. No
 * command prints the means and log-variances, and the ONNX encoder's are compared to these.
 * usage: onnx_encode CHECKPOINT DATA_DIR COUNT   (exit 77: no OpenCL platform) */
#include <stdio.h>
#include <stdlib.h>

#include "clvae/checkpoint.h"
#include "clvae/train.h"

static void print_rows(const char *key, const float *musig, int n, int L, int half) {
  printf("\"%s\": [", key);
  for (int i = 0; i < n; i++) {
    printf("%s[", i ? ", " : "");
    const float *row = musig + (size_t)i * 2 * L + (size_t)half * L;
    for (int j = 0; j < L; j++) printf("%s%.9g", j ? ", " : "", (double)row[j]);
    printf("]");
  }
  printf("]");
}

/* [μ | log σ²] (n, 2L) of the first n images of d, a batch at a time. */
static clvae_status encode(clvae_model *m, clvae_dataset *d, int n, float *musig) {
  const int B = clvae_model_config(m)->batch, L = clvae_model_config(m)->latent;
  clvae_status st = CLVAE_OK;
  for (int b0 = 0; b0 < n && st == CLVAE_OK; b0 += B) {
    int nb = n - b0 < B ? n - b0 : B;
    st = clvae_model_encode(m, clvae_dataset_images(d), clvae_dataset_labels(d), clvae_dataset_index(d, (size_t)b0), nb,
                            musig + (size_t)b0 * 2 * L);
  }
  return st;
}

int main(int argc, char **argv) {
  if (argc != 4) return fprintf(stderr, "usage: onnx_encode CHECKPOINT DATA_DIR COUNT\n"), 2;
  clvae_checkpoint ck = {0};
  clvae_images im = {0};
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  clvae_dataset *d = NULL;
  float *musig = NULL;
  int n = atoi(argv[3]), rc = 1;
  clvae_status st = clvae_device_open(&dev, getenv("CLVAE_PLATFORM"), getenv("CLVAE_DEVICE"), NULL);
  if (st == CLVAE_ERR_NO_PLATFORM) return printf("SKIP: no OpenCL platform\n"), 77;
  if (st == CLVAE_OK) st = clvae_checkpoint_load(argv[1], &ck);
  if (st == CLVAE_OK) st = clvae_images_load(&im, argv[2], "test", NULL, NULL, NULL);
  if (st == CLVAE_OK && (n < 1 || n > im.count)) n = im.count;
  if (st == CLVAE_OK) st = clvae_model_create(&m, dev, &ck.cfg);
  if (st == CLVAE_OK) st = clvae_model_set_state(m, ck.params, NULL, NULL, ck.step);
  if (st == CLVAE_OK) st = clvae_dataset_create(&d, dev, &im, n);
  if (st == CLVAE_OK && !(musig = malloc((size_t)n * 2 * ck.cfg.latent * sizeof *musig))) st = CLVAE_ERR_NOMEM;
  if (st == CLVAE_OK) st = encode(m, d, n, musig);
  if (st == CLVAE_OK) {
    printf("{");
    print_rows("mu", musig, n, ck.cfg.latent, 0);
    printf(", ");
    print_rows("log_var", musig, n, ck.cfg.latent, 1);
    printf("}\n");
    rc = 0;
  } else
    fprintf(stderr, "onnx_encode: %s\n", st == CLVAE_ERR_NOMEM && !musig ? "out of memory" : clvae_error_message());
  free(musig);
  clvae_dataset_free(d);
  clvae_model_free(m);
  clvae_device_free(dev);
  clvae_images_free(&im);
  clvae_checkpoint_free(&ck);
  return rc;
}
