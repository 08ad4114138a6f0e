/* `clvae grid | sample | reconstruct | scatter | export`: what the model learned, as
 * PNGs, a plot, or a TF.js or ONNX model; and the per-epoch pictures `clvae train` leaves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/loader.h"
#include "clvae/export.h"
#include "clvae/image.h"
#include "clvae/train.h"
#include "ref/ref.h"


void cli_grid_latents(float *z, int n, int L, double lo, double hi, int dx, int dy) {
  memset(z, 0, (size_t)n * n * L * sizeof *z);
  for (int r = 0; r < n; r++)
    for (int c = 0; c < n; c++) {
      float *t = z + ((size_t)r * n + c) * L;
      t[dx] = (float)(lo + c * (hi - lo) / (n - 1));
      if (dy >= 0) t[dy] = (float)(lo + (n - 1 - r) * (hi - lo) / (n - 1));
    }
}

/* Decodes n latent points and writes them as a mosaic of `cols` columns of the model's
 * image shape (an RGB PNG for 3 channels). Returns an exit code, the failure reported. */
static int decode_mosaic(clvae_model *m, const float *z, int n, int cols, const char *out) {
  const clvae_config *c = clvae_model_config(m);
  size_t D = (size_t)clvae_config_pixels(c), rows = (size_t)(n + cols - 1) / cols;
  float *p = malloc((size_t)n * D * 4);
  uint8_t *px = malloc(rows * cols * D);
  if (!p || !px) {
    free(p), free(px);
    return cli_oom();
  }
  clvae_status st = clvae_model_decode(m, z, n, p);
  if (st == CLVAE_OK) {
    clvae_mosaic(px, p, n, cols, c->height, c->width, c->channels);
    st = clvae_png_write(out, cols * c->width, (int)rows * c->height, c->channels, px);
  }
  free(p), free(px);
  return cli_status(st);
}

int cli_write_grid(clvae_model *m, const char *path, int n, double lo, double hi, int dx, int dy) {
  float *z = malloc((size_t)n * n * clvae_model_config(m)->latent * 4);
  if (!z) return cli_oom();
  cli_grid_latents(z, n, clvae_model_config(m)->latent, lo, hi, dx, dy);
  int rc = decode_mosaic(m, z, n * n, n, path);
  free(z);
  return rc;
}

/* "a,b" → two numbers (cli_number's rule, as in serve's API). */
static int parse_pair(const char *flag, const char *s, double *a, double *b) {
  char *end;
  if (cli_number(s, &end, a) && *end == ',' && cli_number(end + 1, &end, b) && !*end) return 1;
  fprintf(stderr, "clvae: %s '%s' is not two finite numbers separated by a comma\n", flag, s);
  return 0;
}

/* Latent coordinates: the prior is N(0, 1); beyond ±1000 a decoding only saturates, and
 * the arithmetic on the grid's steps stops being exact. */
static int latent_range(const char *s, double lo, double hi) {
  if (hi > lo && fabs(lo) <= 1000 && fabs(hi) <= 1000) return 1;
  fprintf(stderr, "clvae: --range '%s' needs lo < hi, both within [-1000, 1000]\n", s);
  return 0;
}


static void image_usage(const char *cmd) {
  if (!strcmp(cmd, "grid"))
    printf("usage: clvae grid --model FILE --out grid.png [--n 30] [--range -4,4] [--dims 0,1]\n\n"
           "An n x n mosaic of decoded images over the latent plane: tile (row r, column c) decodes z\n"
           "with z[x] = lo + c(hi-lo)/(n-1), z[y] = lo + (n-1-r)(hi-lo)/(n-1), other coordinates 0.\n");
  else if (!strcmp(cmd, "sample"))
    printf("usage: clvae sample --model FILE --out samples.png [--count 64] [--seed S]\n\n"
           "Decodings of z ~ N(0, I).\n");
  else if (!strcmp(cmd, "reconstruct"))
    printf("usage: clvae reconstruct --model FILE --out recon.png [--count 16] [--data DIR]\n\n"
           "The first test images (odd rows) and the decodings of their means (even rows).\n");
  else if (!strcmp(cmd, "scatter"))
    printf("usage: clvae scatter --model FILE --out latent.png [--dims 0,1] [--data DIR]\n\n"
           "The encoder means of the 10,000 test images, coloured by class.\n");
  else
    printf("usage: clvae export --model FILE --format tfjs|onnx --out DIR [--part decoder|encoder] [--force]\n\n"
           "tfjs: DIR/model.json and DIR/weights.bin, a TF.js layers model for tf.loadLayersModel();\n"
           "  --part decoder (default): z -> image; encoder: image -> mu.\n"
           "onnx: DIR/decoder.onnx (z [N, L] -> image [N, C, H, W]) and DIR/encoder.onnx (image ->\n"
           "  z_mean, z_log_var [N, L]); --part writes only that one.\n");
  if (strcmp(cmd, "export")) printf("Device options: --platform P --device D --gemm auto|builtin|clblast\n");
}

/* Each command takes its own options only: a flag that another picture command knows is
 * refused here, not ignored (sample --n 5 drew 64 samples). */
static int own_flag(const char *cmd, const char *flag) {
  static const struct { const char *cmd, *flags; } own[] = {
      {"grid", " --n --range --dims "},       {"sample", " --count --seed "}, {"reconstruct", " --count --data "},
      {"scatter", " --dims --data "},         {"export", " --format --part --force "}};
  static const char *const shared = " --model --out --help -h ", *const device = " --platform --device --gemm ";
  char key[64];
  const char *eq = strchr(flag, '=');
  size_t len = eq ? (size_t)(eq - flag) : strlen(flag); /* --name=value names --name */
  if (len > 40) return 0;
  snprintf(key, sizeof key, " %.*s ", (int)len, flag);
  if (strstr(shared, key) || (strcmp(cmd, "export") && strstr(device, key))) return 1;
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
    if (!strcmp(own[i].cmd, cmd)) return strstr(own[i].flags, key) != NULL;
  return 0;
}

int cli_parse_images(const char *cmd, int argc, char **argv, image_args *a) {
  const char *v;
  int r;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-' && !own_flag(cmd, argv[i])) return cli_unknown(cmd, argv[i]);
    if ((r = cli_device_option(argc, argv, &i, &a->dev)) || (r = cli_value(argc, argv, &i, "--model", &a->model)) ||
        (r = cli_value(argc, argv, &i, "--out", &a->out)) || (r = cli_value(argc, argv, &i, "--data", &a->data)) ||
        (r = cli_value(argc, argv, &i, "--format", &a->format))) {
      if (r < 0) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--n", &v))) {
      if (r < 0 || !cli_int("--n", v, 2, 200, &a->n)) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--count", &v))) {
      if (r < 0 || !cli_int("--count", v, 1, 10000, &a->count)) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--seed", &v))) {
      if (r < 0 || !cli_int("--seed", v, 0, 2147483647L, &a->seed)) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--range", &v))) {
      if (r < 0 || !parse_pair("--range", v, &a->lo, &a->hi) || !latent_range(v, a->lo, a->hi)) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--dims", &v))) {
      double x, y;
      if (r < 0 || !parse_pair("--dims", v, &x, &y)) return EXIT_USAGE;
      if (x < 0 || y < 0 || x != floor(x) || y != floor(y) || x == y || x > 1023 || y > 1023)
        return fprintf(stderr, "clvae: --dims '%s' needs two different latent indices\n", v), EXIT_USAGE;
      a->dx = (int)x, a->dy = (int)y, a->dims_set = 1;
    } else if ((r = cli_value(argc, argv, &i, "--part", &v))) {
      if (r < 0 || (strcmp(v, "decoder") && strcmp(v, "encoder")))
        return fprintf(stderr, "clvae: --part '%s' is not one of decoder, encoder\n", r < 0 ? "" : v), EXIT_USAGE;
      a->part = !strcmp(v, "encoder");
    } else if (!strcmp(argv[i], "--force")) a->force = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return image_usage(cmd), EXIT_OK;
    else return cli_unknown(cmd, argv[i]);
  }
  if (!a->model || !a->out) {
    fprintf(stderr, "clvae %s: --model FILE and --out %s are required (see --help)\n", cmd,
            strcmp(cmd, "export") ? "FILE" : "DIR");
    return EXIT_USAGE;
  }
  return -1;
}

/* Parses, loads the model; on success returns -1 with everything set up. */
static int begin(const char *cmd, int argc, char **argv, image_args *a, clvae_checkpoint *ck, clvae_device **dev,
                 clvae_model **m) {
  static char data[4200];
  cli_device_defaults(&a->dev);
  int r = cli_parse_images(cmd, argc, argv, a);
  if (r >= 0) return r;
  if (a->model && (r = cli_run_data(a->model, a->data, data, sizeof data)) >= 0) return r; /* the run's own data */
  a->data = data;
  r = cli_load_model(a->model, &a->dev, ck, dev, m);
  return r == EXIT_OK ? -1 : r;
}

static int end(int rc, clvae_checkpoint *ck, clvae_device *dev, clvae_model *m) {
  clvae_model_free(m);
  clvae_device_free(dev);
  clvae_checkpoint_free(ck);
  return rc;
}

/* Says what was written; passes on a failure's exit code (already reported). */
static int report(int rc, const char *out) {
  if (rc == EXIT_OK) printf("clvae: wrote %s\n", out);
  return rc;
}

int cmd_grid(int argc, char **argv) {
  image_args a = {.n = 30, .lo = -4, .hi = 4, .dx = 0, .dy = 1};
  clvae_checkpoint ck = {0};
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  int rc = begin("grid", argc, argv, &a, &ck, &dev, &m);
  if (rc >= 0) return end(rc, &ck, dev, m);
  int L = ck.cfg.latent;
  if (L == 1 && !a.dims_set) a.dy = -1; /* one latent dimension: the grid varies along it only */
  if (a.dx >= L || a.dy >= L) {
    fprintf(stderr, "clvae: --dims %d,%d: the model has %d latent dimensions\n", a.dx, a.dy, L);
    return end(EXIT_USAGE, &ck, dev, m);
  }
  return end(report(cli_write_grid(m, a.out, (int)a.n, a.lo, a.hi, a.dx, a.dy), a.out), &ck, dev, m);
}

int cmd_sample(int argc, char **argv) {
  image_args a = {.count = 64, .seed = 1};
  clvae_checkpoint ck = {0};
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  int rc = begin("sample", argc, argv, &a, &ck, &dev, &m);
  if (rc >= 0) return end(rc, &ck, dev, m);
  int L = ck.cfg.latent, n = (int)a.count, cols = (int)ceil(sqrt((double)n));
  float *z = malloc((size_t)n * L * 4), q[4];
  if (!z) return end(EXIT_FAIL, &ck, dev, m);
  for (int i = 0; i < n; i++) /* the same Philox normals as the device's sampling */
    for (int l = 0; l < L; l++) {
      if (l % 4 == 0) ref_normal4((uint64_t)a.seed, 0, (uint32_t)i, (uint32_t)(l / 4), q);
      z[(size_t)i * L + l] = q[l % 4];
    }
  rc = report(decode_mosaic(m, z, n, cols, a.out), a.out);
  free(z);
  return end(rc, &ck, dev, m);
}

/* The encoder means of the first `n` images of a set (loaded from --data). */
static int encode_set(clvae_model *m, const char *model, const char *data, int n, clvae_images *im, float **mu) {
  clvae_dataset *d = NULL;
  const clvae_config *c = clvae_model_config(m);
  if (cli_load_images(im, data, "test", NULL) != 0) return EXIT_USAGE;
  if (!cli_same_shape(im, c->height, c->width, c->channels, model)) return EXIT_USAGE;
  if (n > im->count) n = im->count;
  *mu = malloc((size_t)n * clvae_model_config(m)->latent * 4);
  if (!*mu || clvae_dataset_create(&d, clvae_model_device(m), im, n) != CLVAE_OK ||
      clvae_dataset_encode(m, d, *mu) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", *mu ? clvae_error_message() : "out of memory");
    clvae_dataset_free(d);
    return EXIT_FAIL;
  }
  clvae_dataset_free(d);
  return EXIT_OK;
}

int cmd_reconstruct(int argc, char **argv) {
  image_args a = {.count = 16};
  clvae_checkpoint ck = {0};
  clvae_images im = {0};
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  float *mu = NULL, *rec = NULL, *cells = NULL;
  int rc = begin("reconstruct", argc, argv, &a, &ck, &dev, &m);
  if (rc >= 0) return end(rc, &ck, dev, m);
  if ((rc = encode_set(m, a.model, a.data, (int)a.count, &im, &mu)) != EXIT_OK) goto done;
  int n = a.count < im.count ? (int)a.count : im.count, D = clvae_config_pixels(&ck.cfg);
  int cols = n < 8 ? n : 8, chunks = (n + cols - 1) / cols;
  rec = malloc((size_t)n * D * 4), cells = calloc((size_t)2 * chunks * cols * D, 4);
  uint8_t *px = malloc((size_t)2 * chunks * cols * D);
  if (!rec || !cells || !px) {
    free(px);
    rc = cli_oom();
    goto done;
  }
  if ((rc = cli_status(clvae_model_decode(m, mu, n, rec))) != EXIT_OK) {
    free(px);
    goto done;
  }
  for (int i = 0; i < n; i++) { /* chunk k: originals in row 2k, reconstructions in row 2k + 1 */
    float *orig = cells + ((size_t)(i / cols) * 2 * cols + i % cols) * D, *r = orig + (size_t)cols * D;
    for (int d = 0; d < D; d++) orig[d] = im.pixels[(size_t)i * D + d] / 255.0f;
    memcpy(r, rec + (size_t)i * D, (size_t)D * 4);
  }
  clvae_mosaic(px, cells, 2 * chunks * cols, cols, im.height, im.width, im.channels);
  rc = report(cli_status(clvae_png_write(a.out, cols * im.width, 2 * chunks * im.height, im.channels, px)), a.out);
  free(px);
done:
  free(mu), free(rec), free(cells);
  clvae_images_free(&im);
  return end(rc, &ck, dev, m);
}

int cmd_scatter(int argc, char **argv) {
  image_args a = {.dx = 0, .dy = 1};
  clvae_checkpoint ck = {0};
  clvae_images im = {0};
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  float *mu = NULL, *xy = NULL;
  char xl[32], yl[32];
  if (!clvae_have_plots()) {
    fprintf(stderr, "clvae scatter: this clvae was built without plots (cairo); install libcairo2-dev and rebuild "
                    "(meson setup --reconfigure -Dcairo=enabled)\n");
    return EXIT_USAGE;
  }
  int rc = begin("scatter", argc, argv, &a, &ck, &dev, &m);
  if (rc >= 0) return end(rc, &ck, dev, m);
  int L = ck.cfg.latent;
  if (L < 2 || a.dx >= L || a.dy >= L) {
    fprintf(stderr, "clvae: --dims %d,%d: the model has %d latent dimension%s (a scatter needs two)\n", a.dx, a.dy, L,
            L == 1 ? "" : "s");
    return end(EXIT_USAGE, &ck, dev, m);
  }
  if ((rc = encode_set(m, a.model, a.data, 1 << 30, &im, &mu)) != EXIT_OK) goto done;
  char **owned = NULL, title[4200];
  const char *const *names = cli_class_names(&im, a.data, &owned);
  if (!(xy = malloc((size_t)im.count * 2 * 4)) || !names) {
    free(owned);
    rc = cli_oom();
    goto done;
  }
  for (int i = 0; i < im.count; i++) xy[2 * i] = mu[(size_t)i * L + a.dx], xy[2 * i + 1] = mu[(size_t)i * L + a.dy];
  snprintf(xl, sizeof xl, "z[%d] (mean)", a.dx);
  snprintf(yl, sizeof yl, "z[%d] (mean)", a.dy);
  if (!strcmp(a.data, CLVAE_DEFAULT_DATA_DIR) || !strcmp(a.data, CLVAE_DEFAULT_DATA_DIR "/")) snprintf(title, sizeof title, "Encoder means of the Fashion-MNIST test images");
  else snprintf(title, sizeof title, "Encoder means of the test images (%s)", im.source);
  rc = report(cli_status(clvae_plot_scatter(a.out, xy, 2, im.labels, im.count, im.classes, names, xl, yl, title)), a.out);
  free(owned);
done:
  free(mu), free(xy);
  clvae_images_free(&im);
  return end(rc, &ck, dev, m);
}

int cmd_export(int argc, char **argv) {
  image_args a = {.part = -1}; /* no --part: the decoder (tfjs), both (onnx) */
  clvae_checkpoint ck = {0};
  int rc = cli_parse_images("export", argc, argv, &a);
  if (rc >= 0) return rc;
  int onnx = a.format && !strcmp(a.format, "onnx");
  if (!a.format || (!onnx && strcmp(a.format, "tfjs"))) {
    fprintf(stderr, "clvae export: --format '%s' is not supported (tfjs, onnx)\n", a.format ? a.format : "");
    return EXIT_USAGE;
  }
  if (clvae_checkpoint_load(a.model, &ck) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    return EXIT_USAGE;
  }
  char parent[4200]; /* DIR's missing parents, as train --out makes them (DIR itself: the export's) */
  snprintf(parent, sizeof parent, "%s", a.out);
  char *slash = strrchr(parent, '/');
  while (slash && slash > parent && slash[1] == '\0') *slash = '\0', slash = strrchr(parent, '/');
  if (slash && slash > parent) {
    *slash = '\0';
    if (cli_make_dirs(parent, "--out") != 0) {
      clvae_checkpoint_free(&ck);
      return EXIT_USAGE;
    }
  }
  clvae_export_part part = a.part > 0 ? CLVAE_EXPORT_ENCODER : CLVAE_EXPORT_DECODER;
  if (a.part < 0 && onnx) part = CLVAE_EXPORT_BOTH;
  clvae_status st = (onnx ? clvae_export_onnx : clvae_export_tfjs)(a.out, &ck, part, a.force);
  rc = report(cli_status(st), a.out);
  if (st == CLVAE_ERR_EXISTS) fprintf(stderr, "clvae: use --force to overwrite it\n");
  clvae_checkpoint_free(&ck);
  return rc;
}
