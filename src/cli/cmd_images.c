/* `clvae grid | sample | reconstruct | scatter | export`: what the model learned, as
 * PNGs, a plot, or a TF.js or ONNX model; and the per-epoch pictures `clvae train` leaves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* Decodes n latent points (with a conditional model's class rows cond (n, K), else NULL)
 * and writes them as a mosaic of `cols` columns of the model's image shape (an RGB PNG for
 * 3 channels). Returns an exit code, the failure reported. */
static int decode_mosaic(clvae_model *m, const float *z, const float *cond, int n, int cols, const char *out) {
  const clvae_config *c = clvae_model_config(m);
  size_t D = (size_t)clvae_config_pixels(c), rows = (size_t)(n + cols - 1) / cols;
  float *p = malloc((size_t)n * D * 4);
  uint8_t *px = malloc(rows * cols * D);
  if (!p || !px) {
    free(p), free(px);
    return cli_oom();
  }
  clvae_status st = clvae_model_decode_cond(m, z, cond, n, p);
  if (st == CLVAE_OK) {
    clvae_mosaic(px, p, n, cols, c->height, c->width, c->channels);
    st = clvae_png_write(out, cols * c->width, (int)rows * c->height, c->channels, px);
  }
  free(p), free(px);
  return cli_status(st);
}

/* n rows of one-hot class `cls` of K (NULL for cls < 0: an unconditional model). */
static float *class_rows(int n, int K, int cls) {
  if (cls < 0) return NULL;
  float *c = calloc((size_t)n * K, sizeof *c);
  for (int i = 0; c && i < n; i++) c[(size_t)i * K + cls] = 1.0f;
  return c;
}

int cli_write_grid(clvae_model *m, const char *path, int n, double lo, double hi, int dx, int dy, int cls) {
  const clvae_config *c = clvae_model_config(m);
  float *z = malloc((size_t)n * n * c->latent * 4), *cond = class_rows(n * n, c->classes, cls);
  if (!z || (cls >= 0 && !cond)) {
    free(z), free(cond);
    return cli_oom();
  }
  cli_grid_latents(z, n, c->latent, lo, hi, dx, dy);
  int rc = decode_mosaic(m, z, cond, n * n, n, path);
  free(z), free(cond);
  return rc;
}

int cli_write_class_rows(clvae_model *m, const char *path, const float *z, int n) {
  const clvae_config *c = clvae_model_config(m);
  const int K = c->classes, L = c->latent;
  float *zz = malloc((size_t)K * n * L * 4), *cond = calloc((size_t)K * n * K, 4);
  if (!zz || !cond) {
    free(zz), free(cond);
    return cli_oom();
  }
  for (int k = 0; k < K; k++)
    for (int j = 0; j < n; j++) {
      memcpy(zz + ((size_t)k * n + j) * L, z + (size_t)j * L, (size_t)L * 4);
      cond[((size_t)k * n + j) * K + k] = 1.0f;
    }
  int rc = decode_mosaic(m, zz, cond, K * n, n, path);
  free(zz), free(cond);
  return rc;
}

/* The name of class k as the user may give it: the recorded name, or "class k". */
static const char *class_name(const clvae_checkpoint *ck, int k, char *buf, size_t n) {
  if (ck->class_names && ck->class_names[k][0]) return ck->class_names[k];
  snprintf(buf, n, "class %d", k);
  return buf;
}

const char *cli_class_list(const clvae_checkpoint *ck, char *buf, size_t n) {
  size_t used = 0;
  char name[32];
  buf[0] = '\0';
  if (!ck->class_names || !ck->class_names[0][0]) {
    snprintf(buf, n, "0 to %d", ck->cfg.classes - 1);
    return buf;
  }
  for (int k = 0; k < ck->cfg.classes && used + 1 < n; k++) {
    int w = snprintf(buf + used, n - used, "%s%d '%s'", k ? ", " : "", k, class_name(ck, k, name, sizeof name));
    if (w < 0 || (size_t)w >= n - used) break;
    used += (size_t)w;
  }
  return buf;
}

int cli_class_arg(const clvae_checkpoint *ck, const char *flag, const char *value, int *k) {
  char list[4096], name[32];
  const int K = ck->cfg.classes;
  if (!K) {
    fprintf(stderr, "clvae: %s: the model is not conditional (train --conditional makes one); drop the flag\n", flag);
    return EXIT_USAGE;
  }
  char *end;
  long v = strtol(value, &end, 10);
  if (*value >= '0' && *value <= '9' && !*end && v >= 0 && v < K) return *k = (int)v, -1;
  for (int i = 0; i < K; i++)
    if (!strcmp(value, class_name(ck, i, name, sizeof name))) return *k = i, -1;
  int found = -1, matches = 0; /* else a unique case-insensitive match ("sandal") */
  for (int i = 0; i < K; i++)
    if (!strcasecmp(value, class_name(ck, i, name, sizeof name))) found = i, matches++;
  if (matches == 1) return *k = found, -1;
  fprintf(stderr, "clvae: %s '%s' is not one of the model's %d classes: %s (an index or a name)\n", flag, value, K,
          cli_class_list(ck, list, sizeof list));
  return EXIT_USAGE;
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
    printf("usage: clvae grid --model FILE --out grid.png [--n 30] [--range -4,4] [--dims 0,1] [--class K]\n\n"
           "An n x n mosaic of decoded images over the latent plane: tile (row r, column c) decodes z\n"
           "with z[x] = lo + c(hi-lo)/(n-1), z[y] = lo + (n-1-r)(hi-lo)/(n-1), other coordinates 0.\n"
           "--class (required on a conditional model): the class decoded, an index or a name.\n");
  else if (!strcmp(cmd, "sample"))
    printf("usage: clvae sample --model FILE --out samples.png [--count 64] [--seed S] [--class K]\n\n"
           "Decodings of z ~ N(0, I), in a mosaic of ceil(sqrt(count)) columns. A conditional model: --class K\n"
           "(an index or a name) decodes that class; without it, one row per class of --count tiles (10),\n"
           "column j the same z in every row.\n");
  else if (!strcmp(cmd, "reconstruct"))
    printf("usage: clvae reconstruct --model FILE --out recon.png [--count 16] [--data DIR]\n\n"
           "The first test images (odd rows) and the decodings of their means (even rows).\n");
  else if (!strcmp(cmd, "interpolate"))
    printf("usage: clvae interpolate --model FILE --out walk.png (--from I --to J | --from-z A --to-z B)\n"
           "                         [--steps 8] [--data DIR] [--class K]\n\n"
           "A walk through the latent space: z_k = a + k/(N-1)(b - a) for k = 0..N-1 (N = --steps, 2..64).\n"
           "--from/--to: test images I and J (indices; --data defaults to the run's), a = mu(I), b = mu(J); one\n"
           "  row of N + 2 tiles: image I, the N decodings, image J. A conditional model's class goes from\n"
           "  I's to J's the same way (one-hot mixtures), unless --class fixes it.\n"
           "--from-z/--to-z: two latent points (L numbers each); N tiles. A conditional model needs --class.\n");
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
      {"grid", " --n --range --dims --class "}, {"sample", " --count --seed --class "},
      {"reconstruct", " --count --data "},      {"scatter", " --dims --data "},
      {"export", " --format --part --force "},
      {"interpolate", " --from --to --from-z --to-z --steps --data --class "}};
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
    const int at = i; /* the flag (cli_value moves i past its value) */
    if (argv[i][0] == '-' && !own_flag(cmd, argv[i])) return cli_unknown(cmd, argv[i]);
    if ((r = cli_device_option(argc, argv, &i, &a->dev)) || (r = cli_value(argc, argv, &i, "--model", &a->model)) ||
        (r = cli_value(argc, argv, &i, "--out", &a->out)) || (r = cli_value(argc, argv, &i, "--data", &a->data)) ||
        (r = cli_value(argc, argv, &i, "--format", &a->format)) || (r = cli_value(argc, argv, &i, "--class", &a->cls))) {
      if (r < 0) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--from", &a->from)) || (r = cli_value(argc, argv, &i, "--to", &a->to))) {
      if (r < 0) return EXIT_USAGE;
      if (a->from_z == 1) return fprintf(stderr, "clvae: --from/--to and --from-z/--to-z: one pair of endpoints\n"), EXIT_USAGE;
      a->from_z = -1;
    } else if ((r = cli_value(argc, argv, &i, "--from-z", &v)) || (r = cli_value(argc, argv, &i, "--to-z", &v))) {
      if (r < 0) return EXIT_USAGE;
      if (a->from_z == -1) return fprintf(stderr, "clvae: --from/--to and --from-z/--to-z: one pair of endpoints\n"), EXIT_USAGE;
      a->from_z = 1;
      if (!strncmp(argv[at], "--to-z", 6)) a->to = v;
      else a->from = v;
    } else if ((r = cli_value(argc, argv, &i, "--steps", &v))) {
      if (r < 0 || !cli_int("--steps", v, 2, 64, &a->steps)) return EXIT_USAGE;
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
  int L = ck.cfg.latent, cls = -1;
  if (L == 1 && !a.dims_set) a.dy = -1; /* one latent dimension: the grid varies along it only */
  if (a.dx >= L || a.dy >= L) {
    fprintf(stderr, "clvae: --dims %d,%d: the model has %d latent dimensions\n", a.dx, a.dy, L);
    return end(EXIT_USAGE, &ck, dev, m);
  }
  if (ck.cfg.classes && !a.cls) {
    char list[4096];
    fprintf(stderr, "clvae: %s is a conditional model: grid needs --class, one of %s\n", a.model,
            cli_class_list(&ck, list, sizeof list));
    return end(EXIT_USAGE, &ck, dev, m);
  }
  if (a.cls && (rc = cli_class_arg(&ck, "--class", a.cls, &cls)) >= 0) return end(rc, &ck, dev, m);
  return end(report(cli_write_grid(m, a.out, (int)a.n, a.lo, a.hi, a.dx, a.dy, cls), a.out), &ck, dev, m);
}

int cmd_sample(int argc, char **argv) {
  image_args a = {.count = 0, .seed = 1}; /* --count: 64, or 10 a row for every class of a conditional model */
  clvae_checkpoint ck = {0};
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  int rc = begin("sample", argc, argv, &a, &ck, &dev, &m), cls = -1;
  if (rc >= 0) return end(rc, &ck, dev, m);
  if (a.cls && (rc = cli_class_arg(&ck, "--class", a.cls, &cls)) >= 0) return end(rc, &ck, dev, m);
  const int rows = ck.cfg.classes && cls < 0; /* a conditional model without --class: a row per class */
  int L = ck.cfg.latent, n = a.count ? (int)a.count : rows ? 10 : 64, cols = (int)ceil(sqrt((double)n));
  float *z = malloc((size_t)n * L * 4), q[4], *cond = class_rows(n, ck.cfg.classes, cls);
  if (!z || (cls >= 0 && !cond)) {
    free(z), free(cond);
    return end(cli_oom(), &ck, dev, m);
  }
  for (int i = 0; i < n; i++) /* the same Philox normals as the device's sampling */
    for (int l = 0; l < L; l++) {
      if (l % 4 == 0) ref_normal4((uint64_t)a.seed, 0, (uint32_t)i, (uint32_t)(l / 4), q);
      z[(size_t)i * L + l] = q[l % 4];
    }
  rc = report(rows ? cli_write_class_rows(m, a.out, z, n) : decode_mosaic(m, z, cond, n, cols, a.out), a.out);
  free(z), free(cond);
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

/* The one-hot classes of a set's first n images (K columns), or NULL when K is 0. */
static float *onehots(const clvae_images *im, int n, int K) {
  if (!K || !im->labels) return NULL;
  float *c = calloc((size_t)n * K, sizeof *c);
  for (int i = 0; c && i < n; i++)
    if (im->labels[i] < K) c[(size_t)i * K + im->labels[i]] = 1.0f;
  return c;
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
  float *cond = onehots(&im, n, ck.cfg.classes); /* a conditional model decodes each image with its class */
  if (ck.cfg.classes && !cond) {
    free(px);
    rc = cli_oom();
    goto done;
  }
  rc = cli_status(clvae_model_decode_cond(m, mu, cond, n, rec));
  free(cond);
  if (rc != EXIT_OK) {
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

/* "a,b,..." → exactly L numbers (cli_number's rule) into z. */
static int parse_point(const char *flag, const char *s, int L, float *z) {
  const char *p = s;
  for (int l = 0; l < L; l++) {
    char *end;
    double v;
    if (!cli_number(p, &end, &v) || fabs(v) > 1000 || (l < L - 1 ? *end != ',' : *end != '\0')) {
      fprintf(stderr, "clvae: %s '%s' is not %d number%s within [-1000, 1000] separated by commas (the model's latent "
                      "dimensions)\n", flag, s, L, L == 1 ? "" : "s");
      return 0;
    }
    z[l] = (float)v, p = end + 1;
  }
  return 1;
}

/* A test image's index: a whole number below the set's count. */
static int parse_index(const char *flag, const char *s, int count, const char *source, int *i) {
  long v;
  char *end;
  v = strtol(s, &end, 10);
  if (*s >= '0' && *s <= '9' && !*end && v < count) return *i = (int)v, 1;
  fprintf(stderr, "clvae: %s '%s' is not the index of a test image of %s (0 to %d)\n", flag, s, source, count - 1);
  return 0;
}

int cmd_interpolate(int argc, char **argv) {
  image_args a = {.steps = 8};
  clvae_checkpoint ck = {0};
  clvae_images im = {0}, two = {0};
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  clvae_dataset *d = NULL;
  float *ends = NULL, *z = NULL, *cond = NULL, *cells = NULL;
  uint8_t *px = NULL;
  int rc = begin("interpolate", argc, argv, &a, &ck, &dev, &m), cls = -1, idx[2] = {0, 0};
  if (rc >= 0) return end(rc, &ck, dev, m);
  const int L = ck.cfg.latent, K = ck.cfg.classes, N = (int)a.steps, D = clvae_config_pixels(&ck.cfg);
  const int images = a.from_z != 1; /* endpoints: two test images, else two latent points */
  rc = EXIT_USAGE;
  if (!a.from || !a.to) {
    fprintf(stderr, "clvae interpolate: give both ends: --from I --to J (test images) or --from-z A --to-z B (latent "
                    "points of %d numbers)\n", L);
    goto done;
  }
  if (a.cls && cli_class_arg(&ck, "--class", a.cls, &cls) >= 0) goto done;
  if (!images && K && cls < 0) {
    char list[4096];
    fprintf(stderr, "clvae: %s is a conditional model: latent endpoints need --class, one of %s\n", a.model,
            cli_class_list(&ck, list, sizeof list));
    goto done;
  }
  if (!(ends = malloc((size_t)2 * L * 4)) || !(z = malloc((size_t)N * L * 4)) ||
      (K && !(cond = calloc((size_t)N * K, 4)))) {
    rc = cli_oom();
    goto done;
  }
  if (images) { /* μ of the two test images (with their classes, for a conditional model) */
    if (cli_load_images(&im, a.data, "test", NULL) != 0 ||
        !cli_same_shape(&im, ck.cfg.height, ck.cfg.width, ck.cfg.channels, a.model) ||
        !parse_index("--from", a.from, im.count, im.source, &idx[0]) || !parse_index("--to", a.to, im.count, im.source, &idx[1]))
      goto done;
    two = im, two.count = 2, two.class_names = NULL; /* a set of the two, for the encoder */
    two.pixels = malloc((size_t)2 * D), two.labels = im.labels ? malloc(2 * sizeof *two.labels) : NULL;
    if (!two.pixels || (im.labels && !two.labels)) {
      rc = cli_oom();
      goto done;
    }
    for (int e = 0; e < 2; e++) {
      memcpy(two.pixels + (size_t)e * D, im.pixels + (size_t)idx[e] * D, (size_t)D);
      if (two.labels) two.labels[e] = im.labels[idx[e]];
    }
    clvae_status st = clvae_dataset_create(&d, dev, &two, 0);
    if (st == CLVAE_OK) st = clvae_dataset_encode(m, d, ends);
    if (st != CLVAE_OK) {
      rc = cli_status(st);
      goto done;
    }
  } else if (!parse_point("--from-z", a.from, L, ends) || !parse_point("--to-z", a.to, L, ends + L))
    goto done;
  /* z_k = a + k/(N−1)·(b − a); a conditional model's class goes from the first end's to the
   * second's the same way (or stays --class) */
  for (int k = 0; k < N; k++) {
    double t = (double)k / (N - 1);
    for (int l = 0; l < L; l++) z[(size_t)k * L + l] = (float)(ends[l] + t * (ends[L + l] - ends[l]));
    if (!K) continue;
    if (cls >= 0) cond[(size_t)k * K + cls] = 1.0f;
    else {
      cond[(size_t)k * K + two.labels[0]] += (float)(1 - t);
      cond[(size_t)k * K + two.labels[1]] += (float)t;
    }
  }
  const int tiles = N + 2 * images; /* with images: image I, the walk, image J */
  if (!(cells = malloc((size_t)tiles * D * 4)) || !(px = malloc((size_t)tiles * D))) {
    rc = cli_oom();
    goto done;
  }
  if ((rc = cli_status(clvae_model_decode_cond(m, z, cond, N, cells + (size_t)images * D))) != EXIT_OK) goto done;
  for (int e = 0; images && e < 2; e++)
    for (int i = 0; i < D; i++) cells[(size_t)(e ? tiles - 1 : 0) * D + i] = im.pixels[(size_t)idx[e] * D + i] / 255.0f;
  clvae_mosaic(px, cells, tiles, tiles, ck.cfg.height, ck.cfg.width, ck.cfg.channels);
  rc = report(cli_status(clvae_png_write(a.out, tiles * ck.cfg.width, ck.cfg.height, ck.cfg.channels, px)), a.out);
done:
  clvae_dataset_free(d);
  free(two.pixels), free(two.labels);
  free(ends), free(z), free(cond), free(cells), free(px);
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
