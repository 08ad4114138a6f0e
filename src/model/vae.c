/* The VAE on a device: the arenas, one buffer per activation (and its gradient), and the
 * passes as loops over the net's layer list: forward in order, backward its mirror.
 * Shapes: the activation a of layer l is (B, l->out), stored with the net's stride (a
 * dense layer's input has a last column of ones); x (B, D) is the gathered batch; the
 * SAMPLE layer reads [μ | logσ²] (B, 2L) and writes z and ε (B, L).
 * A step is few launches: bias and activation ride in the forward GEMM's epilogue, ReLU
 * backward in the epilogue of the GEMM that produces the gradient, each bias gradient
 * comes out of its layer's weight-gradient GEMM (the ones column), and the weights are
 * packed for the builtin GEMM once per optimizer step, in one launch, for both the
 * forward and the backward GEMMs that read them. A layer's output gradient, the B of its
 * weight-gradient GEMM, is stored in that GEMM's panels by whatever writes it (the loss,
 * the masked GEMM of the next layer), not packed by a launch of its own.
 * Convolutions (CONV, DECONV) are NHWC: activation a of a spatial layer is (B·h·w, c)
 * as well as (B, h·w·c); their patch matrices live in `work` (see ops/conv.c). */
#include <stdlib.h>
#include <string.h>

#include "clvae/model.h"
#include "device/internal.h"

struct clvae_model {
  clvae_device *dev;
  clvae_net net;
  int64_t step;              /* Adam updates done */
  clvae_buffer *params, *grads, *adam_m, *adam_v;
  clvae_buffer *act[CLVAE_MAX_LAYERS + 2];  /* (batch, stride) per activation of the net */
  clvae_buffer *dact[CLVAE_MAX_LAYERS + 2]; /* their gradients (batch, width); NULL for x and ε */
  /* the weights packed for the builtin GEMM: matrix 2i is layer i's kernel for its
   * forward GEMM, 2i + 1 its transpose for the backward one */
  clvae_gemm_plan *plan;
  clvae_buffer *packed;
  int packed_valid;          /* the packed copy matches the parameters */
  /* with the builtin GEMM: each layer's output gradient as its weight-gradient GEMM reads
   * it (NULL until needed, and for the layer before sampling: sample_backward writes it) */
  clvae_buffer *dpanels[CLVAE_MAX_LAYERS];
  clvae_buffer *work[CLVAE_MAX_LAYERS]; /* a CONV's patches (batch·Ho·Wo, work stride), kept for backward */
  clvae_buffer *deconv_work; /* the DECONVs' scratch, the largest of theirs */
  float *zrows;              /* (batch, stride of z) staging for decode, with its ones column */
  /* the batch part being computed, and the copies of each layer's gradients to the host */
  clvae_batch_part part;
  struct grad_copy { clvae_event *done; size_t offset, count; } copies[CLVAE_MAX_LAYERS];
  int ncopies;
};

#define TRY(call)                        \
  do {                                   \
    clvae_status st_ = (call);           \
    if (st_ != CLVAE_OK) return st_;     \
  } while (0)

/* Views: activation a (rows S(a) apart), its gradient, tensor t in the parameter or
 * gradient arena. */
static clvae_view A(const clvae_model *m, int a) { return clvae_at(m->act[a], 0); }
static int S(const clvae_model *m, int a) { return m->net.acts[a].stride; }
static clvae_view dA(const clvae_model *m, int a) { return clvae_at(m->dact[a], 0); }
static clvae_view P(const clvae_model *m, int t) { return clvae_at(m->params, m->net.tensors[t].offset); }
static clvae_view dP(const clvae_model *m, int t) { return clvae_at(m->grads, m->net.tensors[t].offset); }

clvae_status clvae_model_fits(const clvae_config *c, const clvae_device_info *in) {
  clvae_net net;
  TRY(clvae_net_build(&net, c));
  uint64_t total, largest;
  clvae_net_memory(&net, c->batch, &total, &largest);
  if (in->max_alloc_bytes && largest > in->max_alloc_bytes)
    return clvae__fail(CLVAE_ERR_LIMIT, "the model (%zu parameters, batch %d) needs a %llu-byte buffer; the device "
                       "'%s' allows %llu bytes per buffer", net.total, c->batch, (unsigned long long)largest,
                       in->name, (unsigned long long)in->max_alloc_bytes);
  if (in->global_mem_bytes && total > in->global_mem_bytes)
    return clvae__fail(CLVAE_ERR_LIMIT, "the model needs %llu bytes of device memory (%zu parameters with gradients "
                       "and Adam state, activations for batch %d); the device '%s' has %llu",
                       (unsigned long long)total, net.total, c->batch, in->name, (unsigned long long)in->global_mem_bytes);
  return CLVAE_OK;
}

/* Activation a's column `width` set to ones, the rest zero (only the data columns are
 * ever written). */
static clvae_status ones_column(clvae_model *m, int a) {
  size_t B = (size_t)m->net.cfg.batch, s = (size_t)m->net.acts[a].stride, w = (size_t)m->net.acts[a].width;
  float *h = calloc(B * s, sizeof *h);
  if (!h) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  for (size_t r = 0; r < B; r++) h[r * s + w] = 1.0f;
  clvae_status st = clvae_buffer_write(m->dev, m->act[a], 0, B * s * 4, h, 1);
  free(h);
  return st;
}

clvae_status clvae_model_create(clvae_model **out, clvae_device *dev, const clvae_config *c) {
  clvae_net net;
  *out = NULL;
  TRY(clvae_net_build(&net, c));
  TRY(clvae_model_fits(c, clvae_device_get_info(dev))); /* before allocating anything */
  clvae_model *m = calloc(1, sizeof *m);
  if (!m) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  m->dev = dev, m->net = net;
  size_t P = net.total * 4, B = (size_t)c->batch;
  clvae_status st = CLVAE_OK;
  clvae_buffer **arenas[] = {&m->params, &m->grads, &m->adam_m, &m->adam_v};
  for (int i = 0; i < 4 && st == CLVAE_OK; i++) st = clvae_buffer_create(dev, P, arenas[i]);
  for (int a = 0; a < net.nacts && st == CLVAE_OK; a++) {
    st = clvae_buffer_create(dev, B * (size_t)net.acts[a].stride * 4, &m->act[a]);
    if (st == CLVAE_OK && net.acts[a].stride > net.acts[a].width) st = ones_column(m, a);
    if (st == CLVAE_OK && a != 0 && a != net.layers[net.sample].eps)
      st = clvae_buffer_create(dev, B * (size_t)net.acts[a].width * 4, &m->dact[a]);
  }
  for (int i = 0; i < net.nlayers && st == CLVAE_OK; i++) {
    const clvae_layer *l = &net.layers[i];
    size_t bytes = B * (size_t)l->geom.Ho * l->geom.Wo * (size_t)clvae_net_work_stride(&net, i) * 4;
    if (l->kind == CLVAE_LAYER_CONV) st = clvae_buffer_create(dev, bytes, &m->work[i]);
    if (l->kind == CLVAE_LAYER_DECONV && (!m->deconv_work || clvae_buffer_size(m->deconv_work) < bytes)) {
      clvae_buffer_free(m->deconv_work);
      m->deconv_work = NULL;
      st = clvae_buffer_create(dev, bytes, &m->deconv_work);
    }
  }
  const clvae_activation *za = &net.acts[net.layers[net.sample].y]; /* [z | one-hot | 1] */
  if (st == CLVAE_OK && !(m->zrows = calloc(B * (size_t)za->stride, sizeof *m->zrows)))
    st = clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  for (size_t r = 0; st == CLVAE_OK && za->stride > za->width && r < B; r++)
    m->zrows[r * za->stride + (size_t)za->width] = 1.0f; /* the ones column, where a dense layer reads z */
  if (st != CLVAE_OK) {
    clvae_model_free(m);
    return st;
  }
  *out = m;
  return CLVAE_OK;
}

void clvae_model_free(clvae_model *m) {
  if (!m) return;
  for (int k = 0; k < m->ncopies; k++) clvae_event_wait(m->copies[k].done);
  clvae_buffer_free(m->params), clvae_buffer_free(m->grads), clvae_buffer_free(m->adam_m), clvae_buffer_free(m->adam_v);
  for (int a = 0; a < m->net.nacts; a++) clvae_buffer_free(m->act[a]), clvae_buffer_free(m->dact[a]);
  clvae_gemm_plan_free(m->plan);
  clvae_buffer_free(m->packed);
  for (int i = 0; i < m->net.nlayers; i++) clvae_buffer_free(m->dpanels[i]), clvae_buffer_free(m->work[i]);
  clvae_buffer_free(m->deconv_work);
  free(m->zrows);
  free(m);
}

const clvae_net *clvae_model_net(const clvae_model *m) { return &m->net; }
const clvae_config *clvae_model_config(const clvae_model *m) { return &m->net.cfg; }
clvae_device *clvae_model_device(const clvae_model *m) { return m->dev; }
int64_t clvae_model_step(const clvae_model *m) { return m->step; }

clvae_status clvae_model_set_state(clvae_model *m, const float *params, const float *am,
                                   const float *av, int64_t step) {
  size_t P = m->net.total * 4;
  clvae_status st = clvae_buffer_write(m->dev, m->params, 0, P, params, 1);
  if (st == CLVAE_OK) st = am ? clvae_buffer_write(m->dev, m->adam_m, 0, P, am, 1) : clvae_buffer_zero(m->dev, m->adam_m, 0, P);
  if (st == CLVAE_OK) st = av ? clvae_buffer_write(m->dev, m->adam_v, 0, P, av, 1) : clvae_buffer_zero(m->dev, m->adam_v, 0, P);
  if (st == CLVAE_OK) st = clvae_buffer_zero(m->dev, m->grads, 0, P);
  m->packed_valid = 0;
  if (st == CLVAE_OK) st = clvae_device_finish(m->dev);
  m->step = step;
  return st;
}

clvae_status clvae_model_get_state(clvae_model *m, float *params, float *am, float *av, float *grads) {
  size_t P = m->net.total * 4;
  clvae_status st = CLVAE_OK;
  if (params) st = clvae_buffer_read(m->dev, m->params, 0, P, params);
  if (st == CLVAE_OK && am) st = clvae_buffer_read(m->dev, m->adam_m, 0, P, am);
  if (st == CLVAE_OK && av) st = clvae_buffer_read(m->dev, m->adam_v, 0, P, av);
  if (st == CLVAE_OK && grads) st = clvae_buffer_read(m->dev, m->grads, 0, P, grads);
  return st;
}

/* ---- the weights, packed once per optimizer step for the builtin GEMM ---- */

/* Whether the packed weights serve this step: with the builtin GEMM, packed now if they are
 * stale (after set_state, or a switch back from CLBlast); with CLBlast, never. */
static clvae_status weights_packed(clvae_model *m, int *use) {
  *use = clvae_gemm_get_impl(m->dev) == CLVAE_GEMM_BUILTIN;
  if (!*use || m->packed_valid) return CLVAE_OK;
  if (!m->plan) {
    clvae_pack_job jobs[2 * CLVAE_MAX_LAYERS];
    for (int i = 0; i < m->net.nlayers; i++) {
      const clvae_layer *l = &m->net.layers[i];
      /* a one-float placeholder keeps 2i = layer i where nothing is read: the sampling
       * layer has no weights, and the first layer no backward GEMM (its input is the image) */
      const clvae_pack_job none = {0, 1, 0, 1, 1};
      if (l->kind == CLVAE_LAYER_SAMPLE) {
        jobs[2 * i] = jobs[2 * i + 1] = none;
        continue;
      }
      const clvae_tensor *t = &m->net.tensors[l->kernel];
      const clvae_pack_job w = {t->offset, t->cols, 0, t->rows, t->cols}, wt = {t->offset, t->cols, 1, t->cols, t->rows};
      /* forward reads W (a transposed conv: Wᵀ), backward the other (none for the first layer) */
      int deconv = l->kind == CLVAE_LAYER_DECONV;
      jobs[2 * i] = deconv ? wt : w;
      jobs[2 * i + 1] = !l->x ? none : deconv ? w : wt;
    }
    TRY(clvae_gemm_plan_create(&m->plan, m->dev, jobs, 2 * m->net.nlayers));
    TRY(clvae_buffer_create(m->dev, clvae_gemm_plan_size(m->plan) * 4, &m->packed));
  }
  TRY(clvae_gemm_pack(m->dev, m->plan, clvae_at(m->params, 0), clvae_at(m->packed, 0)));
  m->packed_valid = 1;
  return CLVAE_OK;
}

static int dense_kind(const clvae_layer *l) { return l->kind == CLVAE_LAYER_DENSE || l->kind == CLVAE_LAYER_OUTPUT; }
static const clvae_layer *last_layer(const clvae_model *m) { return &m->net.layers[m->net.nlayers - 1]; }

/* The layer that reads activation a, or NULL (the output's logits). */
static const clvae_layer *consumer(const clvae_model *m, int a) {
  for (int i = 0; i < m->net.nlayers; i++)
    if (m->net.layers[i].x == a) return &m->net.layers[i];
  return NULL;
}

/* Where a dense layer's output gradient is also stored for its weight-gradient GEMM: its
 * panels with the builtin GEMM (made on first use), when what writes that gradient stores
 * them: the loss, or the masked GEMM of a dense layer after it (not the sampling layer, nor
 * a convolution, whose gradients have another matrix shape). A NULL view means none. */
static clvae_status dy_panels(clvae_model *m, const clvae_layer *l, clvae_view *v) {
  *v = clvae_at(NULL, 0);
  int li = (int)(l - m->net.layers);
  const clvae_layer *next = consumer(m, l->y);
  if (!dense_kind(l) || (next && !dense_kind(next))) return CLVAE_OK;
  size_t n = clvae_gemm_panels_size(m->dev, m->net.cfg.batch, l->out);
  if (!n) return CLVAE_OK;
  if (!m->dpanels[li]) {
    TRY(clvae_buffer_create(m->dev, n * 4, &m->dpanels[li]));
    /* zeroed once: padding columns are read (and their products never stored) */
    TRY(clvae_buffer_zero(m->dev, m->dpanels[li], 0, n * 4));
  }
  *v = clvae_at(m->dpanels[li], 0);
  return CLVAE_OK;
}

/* Layer l's kernel as the GEMMs read it: packed ahead with the builtin GEMM (matrix 2i is
 * what forward reads, 2i + 1 what backward reads), in place otherwise. */
static clvae_status weights_of(clvae_model *m, const clvae_layer *l, clvae_weights *w) {
  int packed, li = (int)(l - m->net.layers), deconv = l->kind == CLVAE_LAYER_DECONV;
  const clvae_tensor *t = &m->net.tensors[l->kernel];
  TRY(weights_packed(m, &packed));
  *w = (clvae_weights){P(m, l->kernel), t->rows, t->cols, packed ? m->plan : NULL, clvae_at(m->packed, 0),
                       deconv ? 2 * li + 1 : 2 * li, deconv ? 2 * li : 2 * li + 1};
  return CLVAE_OK;
}

/* The layer that made activation a (its ReLU's mask is a's stored value), or NULL. */
static const clvae_layer *producer(const clvae_model *m, int a) {
  for (int i = 0; i < m->net.nlayers; i++)
    if (m->net.layers[i].y == a) return &m->net.layers[i];
  return NULL;
}

/* The mask of the ReLU that made layer l's input: its stored output, or none. */
static clvae_view input_mask(const clvae_model *m, const clvae_layer *l) {
  const clvae_layer *prev = producer(m, l->x);
  return prev && prev->act == CLVAE_ACT_RELU ? A(m, l->x) : clvae_at(NULL, 0);
}

/* Layer l's gradients are complete: on their way to the host now (data-parallel steps). */
static clvae_status grads_done(clvae_model *m, const clvae_layer *l) {
  if (!m->part.grads) return CLVAE_OK;
  struct grad_copy *c = &m->copies[m->ncopies];
  const clvae_tensor *w = &m->net.tensors[l->kernel], *b = &m->net.tensors[l->bias];
  c->offset = w->offset, c->count = (size_t)w->rows * w->cols + (size_t)b->cols; /* the bias follows the kernel */
  TRY(clvae_buffer_read_async(m->dev, m->grads, c->offset * 4, c->count * 4, m->part.grads + c->offset, &c->done));
  m->ncopies++;
  return CLVAE_OK;
}

/* ---- one function per layer kind and direction ---- */

/* y = act(x·W + b) (B, out); the OUTPUT layer's logits (x·W) are left for the loss to
 * finish, unless `probabilities` asks for sigmoid(x·W + b) (decoding). */
static clvae_status dense_forward(clvae_model *m, const clvae_layer *l, int B, int probabilities) {
  clvae_epilogue ep = {P(m, l->bias), l->act, clvae_at(NULL, 0), 0, clvae_at(NULL, 0)};
  clvae_weights w;
  if (l->kind == CLVAE_LAYER_OUTPUT && !probabilities) ep.bias = clvae_at(NULL, 0), ep.act = CLVAE_ACT_NONE;
  TRY(weights_of(m, l, &w));
  return clvae_gemm_weights(m->dev, 0, 0, B, A(m, l->x), S(m, l->x), &w, A(m, l->y), S(m, l->y), &ep);
}

/* From dy (B, out), already through this layer's ReLU: [dW; db] = [x | 1]ᵀ·dy in one GEMM
 * (written, β = 0: the kernel's rows, then the bias row that follows it in the arena) when
 * x has the ones column, else dW = xᵀ·dy and db = the column sums of dy (x written by a
 * convolution); then dx = dy·Wᵀ unless x is the image, through the ReLU of the layer that
 * made x (its stored output is the mask). */
static clvae_status dense_backward(clvae_model *m, const clvae_layer *l, int B) {
  clvae_view dy = dA(m, l->y), pan;
  const int ones = S(m, l->x) > m->net.acts[l->x].width;
  TRY(dy_panels(m, l, &pan));
  if (pan.buf) /* dy is in its panels already: stored there by whatever wrote it */
    TRY(clvae_gemm_from_panels(m->dev, 1, l->in + ones, l->out, B, 1.0f, A(m, l->x), S(m, l->x), pan, 0.0f,
                               dP(m, l->kernel), l->out, NULL));
  else
    TRY(clvae_gemm_ex(m->dev, 1, 0, l->in + ones, l->out, B, 1.0f, A(m, l->x), S(m, l->x), dy, l->out, 0.0f,
                      dP(m, l->kernel), l->out, NULL));
  if (!ones) TRY(clvae_colsum(m->dev, dP(m, l->bias), dy, B, l->out));
  TRY(grads_done(m, l));
  if (l->x == 0) return CLVAE_OK;
  const clvae_layer *prev = producer(m, l->x);
  clvae_epilogue ep = {clvae_at(NULL, 0), CLVAE_ACT_NONE, input_mask(m, l), S(m, l->x), clvae_at(NULL, 0)};
  clvae_weights w;
  if (prev) TRY(dy_panels(m, prev, &ep.panels));
  TRY(weights_of(m, l, &w));
  return clvae_gemm_weights(m->dev, 0, 1, B, dy, l->out, &w, dA(m, l->x), l->in, &ep);
}

/* The geometry of layer l for B images. */
static clvae_conv_geom geom(const clvae_layer *l, int B) {
  clvae_conv_geom g = l->geom;
  g.B = B;
  return g;
}

/* A convolution's forward pass: y = act(conv(x) + b). The output layer (a transposed
 * conv after a spatial decoder) leaves logits with their bias for the loss, unless
 * `probabilities` asks for the sigmoid (decoding). */
static clvae_status conv_forward(clvae_model *m, const clvae_layer *l, int B, int probabilities) {
  clvae_conv_geom g = geom(l, B);
  clvae_weights w;
  clvae_act act = l == last_layer(m) && !probabilities ? CLVAE_ACT_NONE : l->act;
  int li = (int)(l - m->net.layers), ldw = clvae_net_work_stride(&m->net, li);
  TRY(weights_of(m, l, &w));
  if (l->kind == CLVAE_LAYER_CONV)
    return clvae_conv_forward(m->dev, &g, A(m, l->x), &w, P(m, l->bias), act, A(m, l->y), clvae_at(m->work[li], 0), ldw);
  return clvae_deconv_forward(m->dev, &g, A(m, l->x), &w, P(m, l->bias), act, A(m, l->y), clvae_at(m->deconv_work, 0),
                              ldw);
}

/* From dy, already through this layer's ReLU: the kernel's and bias's gradients, then dx
 * (unless x is the image) through the ReLU of the layer that made x. */
static clvae_status conv_backward(clvae_model *m, const clvae_layer *l, int B) {
  clvae_conv_geom g = geom(l, B);
  clvae_weights w;
  int li = (int)(l - m->net.layers), ldw = clvae_net_work_stride(&m->net, li);
  clvae_view dx = l->x ? dA(m, l->x) : clvae_at(NULL, 0), none = clvae_at(NULL, 0);
  TRY(weights_of(m, l, &w));
  if (l->kind == CLVAE_LAYER_CONV)
    TRY(clvae_conv_backward(m->dev, &g, dA(m, l->y), none, &w, dP(m, l->kernel), clvae_at(m->work[li], 0), ldw, dx,
                            input_mask(m, l)));
  else
    TRY(clvae_deconv_backward(m->dev, &g, A(m, l->x), dA(m, l->y), &w, dP(m, l->kernel), dP(m, l->bias),
                              clvae_at(m->deconv_work, 0), ldw, dx, input_mask(m, l)));
  /* (the op computes dx with dW: the copies follow both) */
  return grads_done(m, l);
}

static clvae_status sample_forward(clvae_model *m, const clvae_layer *l, int B, clvae_view kl, uint64_t noise_step) {
  return clvae_sample_forward(m->dev, A(m, l->y), S(m, l->y), A(m, l->eps), kl, A(m, l->x), B, l->out, m->net.cfg.seed,
                              noise_step, (uint32_t)m->part.row0);
}

/* d[μ | logσ²] = ∂z/∂[μ | logσ²]·dz + β·∂KL/∂[μ | logσ²] / rows (the whole batch's); dz is
 * the first L columns of the decoder's input gradient (a conditional one has the one-hot's
 * after them). */
static clvae_status sample_backward(clvae_model *m, const clvae_layer *l, int B) {
  return clvae_sample_backward(m->dev, dA(m, l->x), dA(m, l->y), m->net.acts[l->y].width, A(m, l->eps), A(m, l->x),
                               B, l->out, m->net.cfg.beta / (float)m->part.rows);
}

/* A conditional model's one-hot classes of the batch rows, in activation a from column col0. */
static clvae_status classes_of(clvae_model *m, int a, int col0, clvae_view labels, clvae_view idx, int B) {
  if (!m->net.K) return CLVAE_OK;
  if (!labels.buf)
    return clvae__fail(CLVAE_ERR_ARG, "a conditional model (%d classes) needs the images' labels", m->net.K);
  return clvae_onehot(m->dev, A(m, a), S(m, a), col0, labels, idx, B, m->net.K);
}

/* ---- the passes ---- */

/* One layer forward (SAMPLE aside). */
static clvae_status layer_forward(clvae_model *m, const clvae_layer *l, int B, int probabilities) {
  return dense_kind(l) ? dense_forward(m, l, B, probabilities) : conv_forward(m, l, B, probabilities);
}

/* The batch x (with a conditional model's one-hot classes) and the encoder layers, up to
 * [μ | logσ²]. */
static clvae_status encoder(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx, int B) {
  if (B < 1 || B > m->net.cfg.batch)
    return clvae__fail(CLVAE_ERR_ARG, "model: batch of %d rows (1..%d allowed)", B, m->net.cfg.batch);
  TRY(clvae_gather(m->dev, A(m, 0), S(m, 0), images, idx, B, m->net.D));
  TRY(classes_of(m, 0, m->net.D, labels, idx, B));
  for (int i = 0; i < m->net.sample; i++) TRY(layer_forward(m, &m->net.layers[i], B, 0));
  return CLVAE_OK;
}

/* The layers after sampling, from z to the logits (or the probabilities). */
static clvae_status decoder(clvae_model *m, int B, int probabilities) {
  for (int i = m->net.sample + 1; i < m->net.nlayers; i++) TRY(layer_forward(m, &m->net.layers[i], B, probabilities));
  return CLVAE_OK;
}

/* The whole forward list; the output bias and sigmoid are fused into the loss, which also
 * writes the logits' gradient when `grad`. */
static clvae_status forward(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx, int B,
                            clvae_view recon, clvae_view kl, uint64_t noise_step, int grad) {
  const clvae_layer *out = last_layer(m);
  TRY(encoder(m, images, labels, idx, B));
  TRY(sample_forward(m, &m->net.layers[m->net.sample], B, kl, noise_step));
  TRY(classes_of(m, m->net.layers[m->net.sample].y, m->net.L, labels, idx, B));
  TRY(decoder(m, B, 0));
  clvae_view pan = clvae_at(NULL, 0);
  if (grad) TRY(dy_panels(m, out, &pan));
  clvae_view bias = dense_kind(out) ? P(m, out->bias) : clvae_at(NULL, 0); /* a transposed conv added its own */
  return clvae_loss_sigmoid(m->dev, (clvae_loss_kind)m->net.cfg.loss, recon, grad ? dA(m, out->y) : clvae_at(NULL, 0),
                            pan, A(m, out->y), bias, A(m, 0), S(m, 0), B, m->net.D, 1.0f / (float)m->part.rows);
}

/* The mirror of forward: every layer from the output back to the image. */
static clvae_status backward(clvae_model *m, int B) {
  for (int i = m->net.nlayers - 1; i >= 0; i--) {
    const clvae_layer *l = &m->net.layers[i];
    TRY(l->kind == CLVAE_LAYER_SAMPLE ? sample_backward(m, l, B)
        : dense_kind(l)                ? dense_backward(m, l, B)
                                       : conv_backward(m, l, B));
  }
  return CLVAE_OK;
}

clvae_status clvae_model_forward_backward_part(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx,
                                               int B, clvae_view recon, clvae_view kl, uint64_t noise_step,
                                               const clvae_batch_part *part) {
  for (int k = 0; k < m->ncopies; k++) clvae_event_wait(m->copies[k].done); /* a step left unfinished */
  m->ncopies = 0;
  if (part->row0 < 0 || part->rows < part->row0 + B)
    return clvae__fail(CLVAE_ERR_ARG, "model: rows %d..%d of a batch of %d", part->row0, part->row0 + B, part->rows);
  m->part = *part;
  clvae_status st = forward(m, images, labels, idx, B, recon, kl, noise_step, 1);
  if (st == CLVAE_OK) st = backward(m, B);
  m->part = (clvae_batch_part){0, 0, NULL};
  return st;
}

clvae_status clvae_model_forward_backward(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx, int B,
                                          clvae_view recon, clvae_view kl, uint64_t noise_step) {
  clvae_batch_part whole = {0, B, NULL};
  return clvae_model_forward_backward_part(m, images, labels, idx, B, recon, kl, noise_step, &whole);
}

clvae_status clvae_model_wait_grads(clvae_model *m, int k, size_t *offset, size_t *count) {
  *offset = *count = 0;
  if (k < 0 || k >= m->ncopies) return CLVAE_OK;
  struct grad_copy *c = &m->copies[k];
  clvae_status st = clvae_event_wait(c->done);
  c->done = NULL;
  *offset = c->offset, *count = c->count;
  if (k == m->ncopies - 1) m->ncopies = 0;
  return st;
}

clvae_status clvae_model_get_grads(clvae_model *m, float *grads) {
  return clvae_buffer_read(m->dev, m->grads, 0, m->net.total * 4, grads);
}

clvae_status clvae_model_set_grads(clvae_model *m, const float *grads) {
  return clvae_buffer_write(m->dev, m->grads, 0, m->net.total * 4, grads, 1);
}

clvae_status clvae_model_forward(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx, int B,
                                 clvae_view recon, clvae_view kl, uint64_t noise_step) {
  m->part = (clvae_batch_part){0, B, NULL};
  clvae_status st = forward(m, images, labels, idx, B, recon, kl, noise_step, 0);
  m->part.rows = 0;
  return st;
}

clvae_status clvae_model_decode_cond(clvae_model *m, const float *z, const float *cond, int n, float *out) {
  const int B = m->net.cfg.batch, D = m->net.D, L = m->net.L, K = m->net.K, zi = m->net.layers[m->net.sample].y;
  const int zs = S(m, zi);
  const clvae_layer *o = last_layer(m);
  if (K && !cond) return clvae__fail(CLVAE_ERR_ARG, "a conditional model (%d classes) decodes z with a class", K);
  for (int r0 = 0; r0 < n; r0 += B) {
    int nb = n - r0 < B ? n - r0 : B;
    for (int r = 0; r < nb; r++) {
      memcpy(m->zrows + (size_t)r * zs, z + (size_t)(r0 + r) * L, (size_t)L * 4);
      if (K) memcpy(m->zrows + (size_t)r * zs + L, cond + (size_t)(r0 + r) * K, (size_t)K * 4);
    }
    TRY(clvae_buffer_write(m->dev, m->act[zi], 0, (size_t)nb * zs * 4, m->zrows, 1));
    TRY(decoder(m, nb, 1));
    TRY(clvae_buffer_read(m->dev, m->act[o->y], 0, (size_t)nb * D * 4, out + (size_t)r0 * D));
  }
  return CLVAE_OK;
}

clvae_status clvae_model_decode(clvae_model *m, const float *z, int n, float *out) {
  return clvae_model_decode_cond(m, z, NULL, n, out);
}

clvae_status clvae_model_encode(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx, int B,
                                float *musig) {
  TRY(encoder(m, images, labels, idx, B));
  return clvae_buffer_read(m->dev, m->act[m->net.layers[m->net.sample].x], 0, (size_t)B * 2 * m->net.L * 4, musig);
}

clvae_status clvae_model_adam(clvae_model *m) {
  const clvae_config *c = &m->net.cfg;
  TRY(clvae_adam(m->dev, clvae_at(m->params, 0), clvae_at(m->grads, 0), clvae_at(m->adam_m, 0),
                 clvae_at(m->adam_v, 0), (int)m->net.total, c->lr, c->beta1, c->beta2, c->eps, m->step + 1));
  m->step++;
  m->packed_valid = 0; /* packed now, for the next step's forward and backward GEMMs */
  int packed;
  return weights_packed(m, &packed);
}

clvae_status clvae_model_train_step(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx, int B,
                                    clvae_view recon, clvae_view kl) {
  TRY(clvae_model_forward_backward(m, images, labels, idx, B, recon, kl, (uint64_t)m->step));
  TRY(clvae_model_adam(m));
  return clvae_device_flush(m->dev); /* the step to the device now: the host enqueues the next meanwhile */
}
