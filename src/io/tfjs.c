/* TF.js layers-model export, in the format tfjs-layers' model.save() writes: model.json
 * (topology of a Sequential of Dense, Conv2D, Conv2DTranspose, Reshape and Flatten layers +
 * weights manifest) and weights.bin (float32, little-endian, manifest order, no padding;
 * kernels row-major: Dense [in, out], Conv2D [K, K, Cin, Cout], Conv2DTranspose
 * [K, K, Cout, Cin], which is how clvae stores them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/export.h"
#include "device/internal.h"
#include "io/export_files.h"

/* One layer of the exported Sequential. */
typedef enum { X_DENSE, X_CONV, X_DECONV, X_RESHAPE, X_FLATTEN } xkind;
typedef struct xlayer {
  xkind kind;
  const char *name, *activation;
  int in;                    /* the input width (for the first layer's batch_input_shape) */
  int out;                   /* DENSE: units; CONV, DECONV: filters */
  int K, S, valid;           /* CONV, DECONV */
  int h, w, c;               /* RESHAPE: the target shape */
  const float *kernel;       /* (rows, cols) with row stride kstride: DENSE (in, out), CONV and DECONV
                              * (K·K·C, F), TF's [K, K, Cin, Cout] and [K, K, Cout, Cin] */
  int rows, cols, kstride;
  const float *bias;
  int nbias;
} xlayer;

static const char *const INIT =
    "\"kernel_initializer\": {\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 1, \"mode\": "
    "\"fan_avg\", \"distribution\": \"normal\", \"seed\": null}}, \"bias_initializer\": {\"class_name\": "
    "\"Zeros\", \"config\": {}}, \"kernel_regularizer\": null, \"bias_regularizer\": null, "
    "\"activity_regularizer\": null, \"kernel_constraint\": null, \"bias_constraint\": null, ";

static void write_layer_json(FILE *f, const xlayer *l, int first) {
  static const char *const cls[] = {"Dense", "Conv2D", "Conv2DTranspose", "Reshape", "Flatten"};
  fprintf(f, "%s{\"class_name\": \"%s\", \"config\": {", first ? "" : ", ", cls[l->kind]);
  if (l->kind == X_DENSE)
    fprintf(f, "\"units\": %d, \"activation\": \"%s\", \"use_bias\": true, %s", l->out, l->activation, INIT);
  else if (l->kind == X_CONV || l->kind == X_DECONV)
    fprintf(f, "\"filters\": %d, \"kernel_size\": [%d, %d], \"strides\": [%d, %d], \"padding\": \"%s\", "
               "\"data_format\": \"channels_last\", \"dilation_rate\": [1, 1], \"activation\": \"%s\", "
               "\"use_bias\": true, %s",
            l->out, l->K, l->K, l->S, l->S, l->valid ? "valid" : "same", l->activation, INIT);
  else if (l->kind == X_RESHAPE)
    fprintf(f, "\"target_shape\": [%d, %d, %d], ", l->h, l->w, l->c);
  else
    fprintf(f, "\"data_format\": \"channels_last\", ");
  fprintf(f, "\"name\": \"%s\", \"trainable\": true, ", l->name);
  if (first) fprintf(f, "\"batch_input_shape\": [null, %d], ", l->in);
  fprintf(f, "\"dtype\": \"float32\"}}");
}

static unsigned char *put_floats(unsigned char *o, const float *v, size_t n) {
  for (size_t i = 0; i < n; i++, o += 4) {
    uint32_t u;
    memcpy(&u, &v[i], 4);
    o[0] = (unsigned char)u, o[1] = (unsigned char)(u >> 8), o[2] = (unsigned char)(u >> 16), o[3] = (unsigned char)(u >> 24);
  }
  return o;
}

/* A layer's weights in the manifest (none for RESHAPE and FLATTEN). */
static void write_manifest(FILE *f, const xlayer *l, int *first) {
  if (!l->kernel) return;
  fprintf(f, "%s{\"name\": \"%s/kernel\", \"shape\": ", *first ? "" : ", ", l->name);
  if (l->kind == X_DENSE) fprintf(f, "[%d, %d]", l->rows, l->cols);
  else fprintf(f, "[%d, %d, %d, %d]", l->K, l->K, l->rows / (l->K * l->K), l->cols);
  fprintf(f, ", \"dtype\": \"float32\"}, {\"name\": \"%s/bias\", \"shape\": [%d], \"dtype\": \"float32\"}", l->name,
          l->nbias);
  *first = 0;
}

static clvae_status write_model(const char *dir, const char *model_name, const xlayer *layers, int n) {
  char *json = NULL;
  size_t jsize = 0, wsize = 0;
  for (int i = 0; i < n; i++)
    if (layers[i].kernel) wsize += ((size_t)layers[i].rows * layers[i].cols + (size_t)layers[i].nbias) * 4;
  unsigned char *w = malloc(wsize ? wsize : 1), *o = w;
  FILE *f = open_memstream(&json, &jsize);
  if (!w || !f) {
    free(w);
    if (f) fclose(f);
    free(json);
    return clvae__fail(CLVAE_ERR_NOMEM, "out of memory exporting %s", model_name);
  }
  fprintf(f, "{\"format\": \"layers-model\", \"generatedBy\": \"clvae %s\", \"convertedBy\": null, "
             "\"modelTopology\": {\"class_name\": \"Sequential\", \"config\": {\"name\": \"%s\", \"layers\": [",
          CLVAE_VERSION, model_name);
  for (int i = 0; i < n; i++) write_layer_json(f, &layers[i], i == 0);
  fprintf(f, "]}, \"keras_version\": \"tfjs-layers 4.22.0\", \"backend\": \"tensor_flow.js\"}, "
             "\"weightsManifest\": [{\"paths\": [\"weights.bin\"], \"weights\": [");
  int first = 1;
  for (int i = 0; i < n; i++) {
    const xlayer *l = &layers[i];
    if (!l->kernel) continue;
    write_manifest(f, l, &first);
    for (int r = 0; r < l->rows; r++) o = put_floats(o, l->kernel + (size_t)r * l->kstride, (size_t)l->cols);
    o = put_floats(o, l->bias, (size_t)l->nbias);
  }
  fprintf(f, "]}]}\n");
  fclose(f);
  const char *const names[2] = {"weights.bin", "model.json"};
  const void *const data[2] = {w, json};
  const size_t sizes[2] = {wsize, jsize};
  clvae_status st = export_put_files(dir, names, data, sizes, 2); /* weights.bin before the model.json that points at it */
  free(w);
  free(json);
  return st;
}

/* The export's layers for net layer l (kernel and bias from p): a Reshape first where l
 * reads a vector as an image (the images are flattened, as is a dense layer's output), a
 * Flatten first where a dense layer reads an image. */
typedef struct exporter {
  const clvae_net *net;
  const float *p;
  xlayer *out;
  int n;
  char (*names)[48];
  int count[5];              /* per kind, for names */
} exporter;

static xlayer *next(exporter *e, xkind kind, int in) {
  static const char *const prefix[] = {"dense_Dense", "conv2d_Conv2D", "conv2d_transpose_Conv2DTranspose",
                                       "reshape_Reshape", "flatten_Flatten"};
  xlayer *l = &e->out[e->n];
  memset(l, 0, sizeof *l);
  l->kind = kind, l->in = in;
  snprintf(e->names[e->n], sizeof e->names[e->n], "%s%d", prefix[kind], ++e->count[kind]);
  l->name = e->names[e->n++];
  return l;
}

static void add_layer(exporter *e, const clvae_layer *l, int heads) {
  const clvae_net *net = e->net;
  const clvae_activation *x = &net->acts[l->x];
  int conv = l->kind == CLVAE_LAYER_CONV || l->kind == CLVAE_LAYER_DECONV;
  int image_input = x->h && (l->x != 0 || conv); /* the export's input is flat: x is reshaped first */
  if (conv && (e->n == 0 || e->out[e->n - 1].kind == X_DENSE || l->x == 0)) {
    xlayer *r = next(e, X_RESHAPE, x->width);
    r->h = x->h, r->w = x->w, r->c = x->c;
  } else if (!conv && image_input && e->n > 0 && e->out[e->n - 1].kind != X_DENSE)
    next(e, X_FLATTEN, x->width);
  const clvae_tensor *k = &net->tensors[l->kernel];
  xlayer *o = next(e, conv ? (l->kind == CLVAE_LAYER_CONV ? X_CONV : X_DECONV) : X_DENSE, x->width);
  o->activation = l->act == CLVAE_ACT_RELU ? "relu" : l->act == CLVAE_ACT_SIGMOID ? "sigmoid" : "linear";
  o->kernel = e->p + k->offset, o->rows = k->rows, o->kstride = k->cols, o->bias = e->p + net->tensors[l->bias].offset;
  o->cols = heads ? net->L : k->cols, o->nbias = heads ? net->L : net->tensors[l->bias].cols;
  o->out = conv ? l->geom.F : o->cols;
  if (l->kind == CLVAE_LAYER_DECONV) o->out = l->geom.C; /* its filters are the image side's channels */
  o->K = l->geom.K, o->S = l->geom.S, o->valid = l->valid;
}

clvae_status clvae_export_tfjs(const char *dir, const clvae_checkpoint *ck, clvae_export_part part, int force) {
  if (part != CLVAE_EXPORT_DECODER && part != CLVAE_EXPORT_ENCODER)
    return clvae__fail(CLVAE_ERR_ARG, "a TF.js export holds one part, the decoder or the encoder");
  clvae_net net;
  xlayer layers[3 * CLVAE_MAX_LAYERS];
  char names[3 * CLVAE_MAX_LAYERS][48];
  clvae_status st = clvae_net_build(&net, &ck->cfg);
  if (st != CLVAE_OK) return st;
  int created = 0;
  if ((st = export_prepare_dir(dir, force, &created)) != CLVAE_OK) return st;
  exporter e = {&net, ck->params, layers, 0, names, {0}};
  /* The decoder: the layers after sampling. The encoder: the layers up to the heads, then
   * z_mean, the μ half (first L columns) of the (H, 2L) heads kernel. Inputs and outputs
   * are flat, (row, column, channel) order: a convolutional part starts with a Reshape and
   * the decoder ends with a Flatten. Layers are named as TF.js names them, so that the
   * example's page finds them (its debug view asks the decoder for 'dense_Dense2' and
   * 'dense_Dense3'): tf.layers.dense numbers its layers dense_Dense1, 2, ... in creation
   * order, the encoder's dense layers first, then the decoder's; the heads are z_mean and
   * z_log_var. */
  int first = part == CLVAE_EXPORT_DECODER ? net.sample + 1 : 0, last = part == CLVAE_EXPORT_DECODER ? net.nlayers : net.sample;
  if (part == CLVAE_EXPORT_DECODER)
    for (int i = 0; i < net.sample; i++) e.count[X_DENSE] += net.layers[i].kind == CLVAE_LAYER_DENSE && i < net.sample - 1;
  for (int i = first; i < last; i++) {
    int heads = part == CLVAE_EXPORT_ENCODER && i == net.sample - 1;
    add_layer(&e, &net.layers[i], heads);
    if (heads) e.names[e.n - 1][0] = '\0', strcat(e.names[e.n - 1], "z_mean");
  }
  if (part == CLVAE_EXPORT_DECODER && net.acts[net.layers[net.nlayers - 1].y].h) next(&e, X_FLATTEN, net.D);
  return export_undo_dir(dir, created, write_model(dir, part == CLVAE_EXPORT_DECODER ? "decoder" : "encoder", layers, e.n));
}
