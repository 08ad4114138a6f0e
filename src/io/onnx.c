/* ONNX export (export.h): the decoder and the encoder as ONNX models, written with the
 * small protobuf writer of io/protobuf.c. The graph follows the layer list as tfjs.c's
 * Sequential does: Gemm for dense layers, Conv and ConvTranspose for convolutions, and
 * Transposes where clvae's NHWC order meets ONNX's NCHW. Field numbers are onnx.proto's
 * (a copy is in tests/data/onnx.proto). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/export.h"
#include "device/internal.h"
#include "io/export_files.h"
#include "io/protobuf.h"

#define IR_VERSION 8
/* Every operator used here as opset 13 defines it (Split's sizes became an input there):
 * ONNX Runtime runs it since 1.6, and checkers that stop at opset 17 accept it. */
#define OPSET 13
/* protobuf refuses messages over 2 GiB; ONNX's way past that (external data) is not written. */
#define MAX_MODEL_BYTES 0x7ff00000u

enum { T_FLOAT = 1, T_INT64 = 7 };      /* TensorProto.DataType */
enum { A_INT = 2, A_INTS = 7 };         /* AttributeProto.AttributeType */
enum {
  MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3, MODEL_DOC = 6, MODEL_GRAPH = 7,
  MODEL_OPSET = 8, MODEL_METADATA = 14,
  OPSET_DOMAIN = 1, OPSET_VERSION = 2,
  ENTRY_KEY = 1, ENTRY_VALUE = 2,
  GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12,
  NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP = 4, NODE_ATTRIBUTE = 5,
  ATTR_NAME = 1, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20,
  TENSOR_DIMS = 1, TENSOR_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW = 9,
  VALUE_NAME = 1, VALUE_TYPE = 2, VALUE_DOC = 3,
  TYPE_TENSOR = 1, TENSOR_TYPE_ELEM = 1, TENSOR_TYPE_SHAPE = 2,
  SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2
};

/* A graph being written: its fields so far, and the value the next layer reads. */
typedef struct graph {
  const clvae_net *net;
  const float *p;            /* the parameters (net->total) */
  pb_buf g;                  /* the GraphProto's fields */
  pb_buf t, a;               /* scratch: the node or initializer being written, an attribute */
  char cur[64];
  int nchw;                  /* cur is (N, c, h, w); else (N, width), an NHWC image flattened */
} graph;

static int is_conv(const clvae_layer *l) { return l->kind == CLVAE_LAYER_CONV || l->kind == CLVAE_LAYER_DECONV; }

static unsigned char *put_le(unsigned char *o, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) *o++ = (unsigned char)(v >> (8 * i));
  return o;
}

static unsigned char *put_f32(unsigned char *o, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  return put_le(o, u, 4);
}

/* ---- nodes and initializers ---- */

/* Starts a node in g->t; attributes may follow before node_end. Named as its first output. */
static void node_begin(graph *g, const char *op, const char *const *in, int nin, const char *const *out, int nout) {
  pb_buf *n = &g->t;
  n->len = 0;
  for (int i = 0; i < nin; i++) pb_string(n, NODE_INPUT, in[i]);
  for (int i = 0; i < nout; i++) pb_string(n, NODE_OUTPUT, out[i]);
  pb_string(n, NODE_NAME, out[0]);
  pb_string(n, NODE_OP, op);
}

/* Ends the node; `out` is what the next one reads. */
static void node_end(graph *g, const char *out) {
  pb_message(&g->g, GRAPH_NODE, &g->t);
  snprintf(g->cur, sizeof g->cur, "%.63s", out); /* names are layer names (< 32 bytes) and short suffixes */
}

/* One node from cur to out, without attributes. */
static void node1(graph *g, const char *op, const char *out) {
  node_begin(g, op, (const char *const[]){g->cur}, 1, &out, 1);
  node_end(g, out);
}

/* An attribute of the node being written: n ints, or one (n = 0, v[0]). */
static void attr(graph *g, const char *name, const int64_t *v, int n) {
  pb_buf *a = &g->a;
  a->len = 0;
  pb_string(a, ATTR_NAME, name);
  pb_int(a, ATTR_TYPE, n ? A_INTS : A_INT);
  if (!n) pb_int(a, ATTR_I, v[0]);
  for (int i = 0; i < n; i++) pb_int(a, ATTR_INTS, v[i]);
  pb_message(&g->t, NODE_ATTRIBUTE, a);
}

/* Starts an initializer in g->t; returns where its `bytes` bytes of raw data go (NULL when
 * out of memory: init_end then writes nothing). */
static unsigned char *init_begin(graph *g, const char *name, int type, const int64_t *dims, int nd, size_t bytes) {
  pb_buf *t = &g->t;
  t->len = 0;
  for (int i = 0; i < nd; i++) pb_int(t, TENSOR_DIMS, dims[i]);
  pb_int(t, TENSOR_TYPE, type);
  pb_string(t, TENSOR_NAME, name);
  return pb_bytes_reserve(t, TENSOR_RAW, bytes);
}

static void init_end(graph *g) { pb_message(&g->g, GRAPH_INITIALIZER, &g->t); }

/* A layer's kernel and bias. A dense kernel as stored, (in, out), Gemm's B. A convolution's
 * (K·K·C, F), TF's [K, K, C, F], becomes ONNX's [F, C, K, K]: Conv's [out, in, kH, kW] and
 * ConvTranspose's [in, out, kH, kW] alike, F being the grid side's channels. */
static void add_weights(graph *g, const clvae_layer *l) {
  const clvae_tensor *k = &g->net->tensors[l->kernel], *b = &g->net->tensors[l->bias];
  const float *kp = g->p + k->offset, *bp = g->p + b->offset;
  size_t count = (size_t)k->rows * (size_t)k->cols;
  unsigned char *o;
  if (is_conv(l)) {
    const int64_t K = l->geom.K, C = l->geom.C, F = l->geom.F, dims[4] = {F, C, K, K};
    if ((o = init_begin(g, k->name, T_FLOAT, dims, 4, count * 4)))
      for (int64_t f = 0; f < F; f++)
        for (int64_t c = 0; c < C; c++)
          for (int64_t ky = 0; ky < K; ky++)
            for (int64_t kx = 0; kx < K; kx++) o = put_f32(o, kp[((ky * K + kx) * C + c) * F + f]);
  } else {
    const int64_t dims[2] = {k->rows, k->cols};
    if ((o = init_begin(g, k->name, T_FLOAT, dims, 2, count * 4)))
      for (size_t i = 0; i < count; i++) o = put_f32(o, kp[i]);
  }
  init_end(g);
  const int64_t n = b->cols;
  if ((o = init_begin(g, b->name, T_FLOAT, &n, 1, (size_t)n * 4)))
    for (int64_t i = 0; i < n; i++) o = put_f32(o, bp[i]);
  init_end(g);
}

/* ---- layers ---- */

/* cur, (N, h·w·c) in (row, column, channel) order, as (N, c, h, w) named `out`: Reshape to
 * (N, h, w, c) (a 0 in the shape keeps N), then Transpose. Values named PREFIX/... */
static void to_nchw(graph *g, const char *prefix, int h, int w, int c, const char *out) {
  char shape[64], nhwc[64];
  const int64_t four = 4;
  snprintf(shape, sizeof shape, "%.47s/shape", prefix);
  snprintf(nhwc, sizeof nhwc, "%.47s/nhwc", prefix);
  unsigned char *o = init_begin(g, shape, T_INT64, &four, 1, 32);
  if (o) o = put_le(put_le(put_le(put_le(o, 0, 8), (uint64_t)h, 8), (uint64_t)w, 8), (uint64_t)c, 8);
  init_end(g);
  const char *const y = nhwc;
  node_begin(g, "Reshape", (const char *const[]){g->cur, shape}, 2, &y, 1);
  node_end(g, nhwc);
  node_begin(g, "Transpose", (const char *const[]){g->cur}, 1, &out, 1);
  attr(g, "perm", (const int64_t[]){0, 3, 1, 2}, 4);
  node_end(g, out);
  g->nchw = 1;
}

/* cur, (N, c, h, w), as (N, h·w·c) in (row, column, channel) order, the order in which a
 * dense layer reads an image: Transpose, then Flatten. */
static void to_flat(graph *g, const char *prefix) {
  char nhwc[64], flat[64];
  snprintf(nhwc, sizeof nhwc, "%.47s/nhwc", prefix);
  snprintf(flat, sizeof flat, "%.47s/flat", prefix);
  const char *const y = nhwc;
  node_begin(g, "Transpose", (const char *const[]){g->cur}, 1, &y, 1);
  attr(g, "perm", (const int64_t[]){0, 2, 3, 1}, 4);
  node_end(g, nhwc);
  const char *const f = flat;
  node_begin(g, "Flatten", (const char *const[]){g->cur}, 1, &f, 1);
  attr(g, "axis", (const int64_t[]){1}, 0);
  node_end(g, flat);
  g->nchw = 0;
}

/* TF's padding of a conv from `in` to `out` rows: max((out − 1)·S + K − in, 0) in all, the
 * geometry's share (pt or pl) before, the rest after. */
static int64_t pad_total(int in, int out, int K, int S) {
  int64_t P = (int64_t)(out - 1) * S + K - in;
  return P > 0 ? P : 0;
}

/* Conv's and ConvTranspose's attributes from the geometry. A transposed conv is the
 * transpose of the conv from its output (H, W) to its input (Ho, Wo): the same pads, and as
 * output_padding the rows and columns that conv's last stride left unread, so that the
 * output is exactly H × W. */
static void conv_attrs(graph *g, const clvae_layer *l) {
  const clvae_conv_geom *q = &l->geom;
  const int64_t ph = pad_total(q->H, q->Ho, q->K, q->S), pw = pad_total(q->W, q->Wo, q->K, q->S);
  attr(g, "kernel_shape", (const int64_t[]){q->K, q->K}, 2);
  attr(g, "strides", (const int64_t[]){q->S, q->S}, 2);
  attr(g, "pads", (const int64_t[]){q->pt, q->pl, ph - q->pt, pw - q->pl}, 4);
  if (l->kind == CLVAE_LAYER_DECONV) {
    const int64_t oh = q->H + ph - q->K - (int64_t)q->S * (q->Ho - 1), ow = q->W + pw - q->K - (int64_t)q->S * (q->Wo - 1);
    attr(g, "output_padding", (const int64_t[]){oh, ow}, 2);
  }
}

/* Layer l from cur to `out`: a Reshape + Transpose first where a convolution reads a
 * vector, a Transpose + Flatten first where a dense layer reads an image (tfjs.c's Reshape
 * and Flatten); then Gemm, Conv or ConvTranspose, and Relu or Sigmoid. */
static void add_layer(graph *g, const clvae_layer *l, const char *out) {
  const clvae_activation *x = &g->net->acts[l->x];
  const clvae_tensor *k = &g->net->tensors[l->kernel], *b = &g->net->tensors[l->bias];
  char in[48], nchw[64], linear[48];
  snprintf(in, sizeof in, "%.31s/in", l->name);
  snprintf(nchw, sizeof nchw, "%s/nchw", in);
  if (is_conv(l) && !g->nchw) to_nchw(g, in, x->h, x->w, x->c, nchw);
  else if (!is_conv(l) && g->nchw) to_flat(g, in);
  add_weights(g, l);
  snprintf(linear, sizeof linear, "%.31s/linear", l->name);
  const char *const y = l->act == CLVAE_ACT_NONE ? out : linear;
  const char *op = l->kind == CLVAE_LAYER_CONV ? "Conv" : l->kind == CLVAE_LAYER_DECONV ? "ConvTranspose" : "Gemm";
  node_begin(g, op, (const char *const[]){g->cur, k->name, b->name}, 3, &y, 1);
  if (is_conv(l)) conv_attrs(g, l);
  node_end(g, y);
  g->nchw = is_conv(l);
  if (l->act != CLVAE_ACT_NONE) node1(g, l->act == CLVAE_ACT_RELU ? "Relu" : "Sigmoid", out);
}

/* A graph input or output: float32 (N, dims...), N the batch size. */
static void add_value(graph *g, int field, const char *name, const int *dims, int nd, const char *doc) {
  pb_buf dim = {0}, shape = {0}, tensor = {0}, type = {0}, value = {0};
  pb_string(&dim, DIM_PARAM, "N");
  pb_message(&shape, SHAPE_DIM, &dim);
  for (int i = 0; i < nd; i++) {
    dim.len = 0;
    pb_int(&dim, DIM_VALUE, dims[i]);
    pb_message(&shape, SHAPE_DIM, &dim);
  }
  pb_int(&tensor, TENSOR_TYPE_ELEM, T_FLOAT);
  pb_message(&tensor, TENSOR_TYPE_SHAPE, &shape);
  pb_message(&type, TYPE_TENSOR, &tensor);
  pb_string(&value, VALUE_NAME, name);
  pb_message(&value, VALUE_TYPE, &type);
  pb_string(&value, VALUE_DOC, doc);
  pb_message(&g->g, field, &value);
  pb_free(&dim), pb_free(&shape), pb_free(&tensor), pb_free(&type), pb_free(&value);
}

/* A conditional model's second input, `label` (N, K), declared and joined after cur
 * (Concat on axis 1): [cur | label], as the first dense layer reads it. */
static void join_label(graph *g, const char *out) {
  const int K = g->net->K;
  add_value(g, GRAPH_INPUT, "label", &K, 1, "the class, one-hot (or a mixture of classes)");
  node_begin(g, "Concat", (const char *const[]){g->cur, "label"}, 2, &out, 1);
  attr(g, "axis", (const int64_t[]){1}, 0);
  node_end(g, out);
}

/* The decoder: z (and a conditional model's label) → the layers after sampling → image
 * (N, C, H, W). */
static void decoder_graph(graph *g) {
  const clvae_net *net = g->net;
  const int L = net->L, chw[3] = {net->cfg.channels, net->cfg.height, net->cfg.width};
  pb_string(&g->g, GRAPH_NAME, "clvae_decoder");
  add_value(g, GRAPH_INPUT, "z", &L, 1, "latent points");
  snprintf(g->cur, sizeof g->cur, "z");
  g->nchw = 0;
  if (net->K) join_label(g, "z_label");
  for (int i = net->sample + 1; i < net->nlayers; i++) {
    const clvae_layer *l = &net->layers[i];
    add_layer(g, l, i == net->nlayers - 1 && is_conv(l) ? "image" : l->name);
  }
  if (!g->nchw) to_nchw(g, "image", net->cfg.height, net->cfg.width, net->cfg.channels, "image");
  add_value(g, GRAPH_OUTPUT, "image", chw, 3, "decoded images, 0..1, channels R, G, B for colour");
}

/* The encoder: image (N, C, H, W) (and a conditional model's label, joined to the image
 * flattened) → the layers up to the heads, whose (N, 2L) output [μ | log σ²] is split into
 * z_mean and z_log_var. */
static void encoder_graph(graph *g) {
  const clvae_net *net = g->net;
  const int L = net->L, chw[3] = {net->cfg.channels, net->cfg.height, net->cfg.width};
  pb_string(&g->g, GRAPH_NAME, "clvae_encoder");
  add_value(g, GRAPH_INPUT, "image", chw, 3, "images, pixel bytes / 255, channels R, G, B for colour");
  snprintf(g->cur, sizeof g->cur, "image");
  g->nchw = 1;
  if (net->K) { /* (dense layers only) */
    to_flat(g, "image");
    join_label(g, "image_label");
  }
  for (int i = 0; i < net->sample; i++) add_layer(g, &net->layers[i], net->layers[i].name);
  const char *const out[2] = {"z_mean", "z_log_var"};
  node_begin(g, "Split", (const char *const[]){g->cur}, 1, out, 2);
  attr(g, "axis", (const int64_t[]){1}, 0);
  node_end(g, out[0]);
  add_value(g, GRAPH_OUTPUT, "z_mean", &L, 1, "the mean of q(z|x)");
  add_value(g, GRAPH_OUTPUT, "z_log_var", &L, 1, "the log-variance of q(z|x)");
}

/* ---- the model ---- */

/* Appends to buf (n bytes, *used so far) as snprintf would, never past its end. */
static void append(char *buf, size_t n, size_t *used, const char *fmt, ...) {
  va_list ap;
  if (*used >= n) return;
  va_start(ap, fmt);
  int k = vsnprintf(buf + *used, n - *used, fmt, ap);
  va_end(ap);
  *used = k < 0 ? n : *used + (size_t)k;
}

/* The layers as the command line writes them (as `clvae train` prints them): "--hidden
 * 1024,512" or "--encoder conv:8:3:2:valid,... --decoder dense:...". c is canonical. */
static void layers_text(const clvae_config *c, char *buf, size_t n) {
  size_t used = 0;
  char item[64];
  buf[0] = '\0';
  if (c->depth) {
    append(buf, n, &used, "--hidden ");
    for (int i = 0; i < c->depth; i++) append(buf, n, &used, "%s%d", i ? "," : "", c->hidden[i]);
    return;
  }
  for (int side = 0; side < 2; side++) {
    const clvae_item *items = side ? c->dec : c->enc;
    append(buf, n, &used, side ? " --decoder " : "--encoder ");
    for (int i = 0; i < (side ? c->ndec : c->nenc); i++) {
      clvae_item_format(&items[i], item, sizeof item);
      append(buf, n, &used, "%s%s", i ? "," : "", item);
    }
  }
}

static void add_metadata(pb_buf *m, const char *key, const char *value) {
  pb_buf e = {0};
  pb_string(&e, ENTRY_KEY, key);
  pb_string(&e, ENTRY_VALUE, value);
  pb_message(m, MODEL_METADATA, &e);
  pb_free(&e);
}

/* The ModelProto's fields around the graph: versions, opset, doc_string, metadata_props. */
static void model_fields(pb_buf *m, const clvae_checkpoint *ck, const clvae_net *net, clvae_export_part part) {
  const clvae_config *c = &net->cfg;
  char layers[2048], doc[3072], num[3][32];
  layers_text(c, layers, sizeof layers);
  snprintf(num[0], sizeof num[0], "%d", (int)ck->train.epoch);
  snprintf(num[1], sizeof num[1], "%d", net->L);
  snprintf(num[2], sizeof num[2], "%dx%dx%d", c->height, c->width, c->channels);
  if (part == CLVAE_EXPORT_DECODER)
    snprintf(doc, sizeof doc, "clvae %s: the decoder of a VAE (%s, latent %d, %s images) after %s epochs. Input z "
             "float32 [N, %d]%s; output image float32 [N, %d, %d, %d] in 0..1.", CLVAE_VERSION, layers, net->L, num[2],
             num[0], net->L, net->K ? " and label float32 [N, classes], one-hot" : "", c->channels, c->height, c->width);
  else
    snprintf(doc, sizeof doc, "clvae %s: the encoder of a VAE (%s, latent %d, %s images) after %s epochs. Input "
             "image float32 [N, %d, %d, %d], pixel bytes / 255%s; outputs z_mean and z_log_var float32 [N, %d].",
             CLVAE_VERSION, layers, net->L, num[2], num[0], c->channels, c->height, c->width,
             net->K ? " and label float32 [N, classes], one-hot" : "", net->L);
  pb_int(m, MODEL_IR_VERSION, IR_VERSION);
  pb_string(m, MODEL_PRODUCER_NAME, "clvae");
  pb_string(m, MODEL_PRODUCER_VERSION, CLVAE_VERSION);
  pb_string(m, MODEL_DOC, doc);
  pb_buf opset = {0};
  pb_string(&opset, OPSET_DOMAIN, ""); /* the default domain, ai.onnx */
  pb_int(&opset, OPSET_VERSION, OPSET);
  pb_message(m, MODEL_OPSET, &opset);
  pb_free(&opset);
  add_metadata(m, "clvae_version", CLVAE_VERSION);
  add_metadata(m, "part", part == CLVAE_EXPORT_DECODER ? "decoder" : "encoder");
  add_metadata(m, "architecture", layers);
  add_metadata(m, "latent_dim", num[1]);
  add_metadata(m, "image_shape", num[2]);
  add_metadata(m, "epoch", num[0]);
  if (net->K) { /* a conditional model: its classes, in the order of the label's columns */
    char k[16], names[CLVAE_MAX_CLASSES * 260 + 16];
    size_t used = 0;
    snprintf(k, sizeof k, "%d", net->K);
    add_metadata(m, "classes", k);
    append(names, sizeof names, &used, "[");
    for (int i = 0; i < net->K; i++) { /* a JSON array of strings ("" for an unnamed class) */
      const char *s = ck->class_names ? ck->class_names[i] : "";
      append(names, sizeof names, &used, "%s\"", i ? ", " : "");
      for (; *s; s++)
        if (*s == '"' || *s == '\\') append(names, sizeof names, &used, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) append(names, sizeof names, &used, "\\u%04x", (unsigned char)*s);
        else append(names, sizeof names, &used, "%c", *s);
      append(names, sizeof names, &used, "\"");
    }
    append(names, sizeof names, &used, "]");
    add_metadata(m, "class_names", names);
  }
}

/* Bytes of the parameters one part holds. */
static uint64_t part_bytes(const clvae_net *net, clvae_export_part part) {
  uint64_t n = 0;
  int first = part == CLVAE_EXPORT_DECODER ? net->sample + 1 : 0;
  int last = part == CLVAE_EXPORT_DECODER ? net->nlayers : net->sample;
  for (int i = first; i < last; i++) {
    const clvae_tensor *k = &net->tensors[net->layers[i].kernel], *b = &net->tensors[net->layers[i].bias];
    n += 4 * ((uint64_t)k->rows * (uint64_t)k->cols + (uint64_t)b->cols);
  }
  return n;
}

/* One part as a serialized ModelProto into m. */
static clvae_status encode_model(pb_buf *m, const clvae_checkpoint *ck, const clvae_net *net, clvae_export_part part) {
  const char *what = part == CLVAE_EXPORT_DECODER ? "decoder" : "encoder";
  uint64_t bytes = part_bytes(net, part);
  if (bytes > MAX_MODEL_BYTES)
    return clvae__fail(CLVAE_ERR_LIMIT, "the %s's parameters take %.2f GiB: an ONNX file (one protobuf message) "
                       "holds at most 2 GiB", what, (double)bytes / (1 << 30));
  graph g = {net, ck->params, {0}, {0}, {0}, "", 0};
  if (part == CLVAE_EXPORT_DECODER) decoder_graph(&g);
  else encoder_graph(&g);
  model_fields(m, ck, net, part);
  pb_message(m, MODEL_GRAPH, &g.g);
  int oom = m->oom || g.g.oom || g.t.oom || g.a.oom;
  pb_free(&g.g), pb_free(&g.t), pb_free(&g.a);
  return oom ? clvae__fail(CLVAE_ERR_NOMEM, "out of memory exporting the %s to ONNX", what) : CLVAE_OK;
}

clvae_status clvae_export_onnx(const char *dir, const clvae_checkpoint *ck, clvae_export_part part, int force) {
  if (part != CLVAE_EXPORT_DECODER && part != CLVAE_EXPORT_ENCODER && part != CLVAE_EXPORT_BOTH)
    return clvae__fail(CLVAE_ERR_ARG, "export part %d is none of decoder, encoder, both", (int)part);
  clvae_net net;
  clvae_status st = clvae_net_build(&net, &ck->cfg);
  if (st != CLVAE_OK) return st;
  pb_buf files[2] = {{0}, {0}};
  const char *names[2];
  const void *data[2];
  size_t size[2];
  int n = 0;
  /* both parts are encoded before the directory is touched: a refusal writes nothing */
  for (int p = CLVAE_EXPORT_DECODER; p <= CLVAE_EXPORT_ENCODER && st == CLVAE_OK; p++) {
    if (part != CLVAE_EXPORT_BOTH && part != (clvae_export_part)p) continue;
    if ((st = encode_model(&files[n], ck, &net, (clvae_export_part)p)) != CLVAE_OK) break;
    names[n] = p == CLVAE_EXPORT_DECODER ? "decoder.onnx" : "encoder.onnx";
    data[n] = files[n].data, size[n] = files[n].len, n++;
  }
  int created = 0;
  if (st == CLVAE_OK && (st = export_prepare_dir(dir, force, &created)) == CLVAE_OK)
    st = export_undo_dir(dir, created, export_put_files(dir, names, data, size, n));
  pb_free(&files[0]), pb_free(&files[1]);
  return st;
}
