/* The VAE on a device: arenas, the forward list and the backward list (its mirror).
 * Shapes: X (B, D), h1 (B, H), musig (B, 2L) = [μ | logσ²], z/eps (B, L), h2 (B, H),
 * y (B, D) logits, overwritten in place by their gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/model.h"
#include "device/internal.h"

struct clvae_model {
  clvae_device *dev;
  clvae_config cfg;
  clvae_layout lay;
  int64_t step;              /* Adam updates done */
  clvae_buffer *params, *grads, *adam_m, *adam_v;
  /* activations for up to cfg.batch rows, and their gradients */
  clvae_buffer *x, *h1, *musig, *z, *eps, *h2, *y;
  clvae_buffer *dmusig, *dz, *dh2, *dh1;
};

void clvae_config_default(clvae_config *c) {
  c->input = 784, c->hidden = 512, c->latent = 2, c->loss = CLVAE_LOSS_MSE, c->batch = 256;
  c->lr = 1e-3f, c->beta1 = 0.9f, c->beta2 = 0.999f, c->eps = 1e-7f;
  c->seed = 1;
}

void clvae_layout_of(const clvae_config *c, clvae_layout *l) {
  size_t D = (size_t)c->input, H = (size_t)c->hidden, L = (size_t)c->latent, o = 0;
  l->w1 = o, o += D * H, l->b1 = o, o += H;
  l->wh = o, o += H * 2 * L, l->bh = o, o += 2 * L;
  l->wd1 = o, o += L * H, l->bd1 = o, o += H;
  l->wd2 = o, o += H * D, l->bd2 = o, o += D;
  l->total = o;
}

/* Normal truncated at ±2σ by rejection, as TF.js's truncatedNormal does. */
static void glorot(float *w, size_t fan_in, size_t fan_out, uint64_t *s) {
  double sigma = sqrt(2.0 / (double)(fan_in + fan_out));
  for (size_t i = 0; i < fan_in * fan_out; i++) {
    double n;
    do {
      double u1 = ((clvae__splitmix64(s) >> 11) + 1) * (1.0 / 9007199254740992.0);
      double u2 = (clvae__splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
      n = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    } while (fabs(n) > 2.0);
    w[i] = (float)(sigma * n);
  }
}

void clvae_init_params(const clvae_config *c, float *p) {
  clvae_layout l;
  uint64_t s = c->seed ^ 0x1417a11c0ffee123ull;
  size_t D = (size_t)c->input, H = (size_t)c->hidden, L = (size_t)c->latent;
  clvae_layout_of(c, &l);
  memset(p, 0, l.total * sizeof *p);
  glorot(p + l.w1, D, H, &s);
  /* Each head is its own Dense(H → L) in TF.js: initialize them as such, then interleave
   * into the [H, 2L] matrix. */
  float *head = malloc(H * L * sizeof *head);
  if (head) {
    for (int k = 0; k < 2; k++) {
      glorot(head, H, L, &s);
      for (size_t i = 0; i < H; i++) memcpy(p + l.wh + i * 2 * L + k * L, head + i * L, L * sizeof *head);
    }
    free(head);
  }
  glorot(p + l.wd1, L, H, &s);
  glorot(p + l.wd2, H, D, &s);
}

clvae_status clvae_model_create(clvae_model **out, clvae_device *dev, const clvae_config *c) {
  *out = NULL;
  if (c->input < 1 || c->hidden < 1 || c->latent < 1 || c->batch < 1)
    return clvae__fail(CLVAE_ERR_ARG, "model: sizes must be positive (input %d, hidden %d, latent %d, batch %d)",
                       c->input, c->hidden, c->latent, c->batch);
  /* Refuse sizes the device cannot hold before allocating anything, naming the knob. */
  const clvae_device_info *in = clvae_device_get_info(dev);
  clvae_layout lay;
  clvae_layout_of(c, &lay);
  uint64_t arena = (uint64_t)lay.total * 4, act = (uint64_t)c->batch * (c->input > c->hidden ? c->input : c->hidden) * 4;
  uint64_t needed = 4 * arena + (uint64_t)c->batch * (2ull * c->input + 4ull * c->hidden + 8ull * c->latent) * 4;
  if (in->max_alloc_bytes && arena > in->max_alloc_bytes)
    return clvae__fail(CLVAE_ERR_ARG, "the model's parameters need one buffer of %llu bytes (input %d, hidden %d, "
                       "latent %d); the device '%s' allows %llu bytes per buffer: use a smaller --hidden",
                       (unsigned long long)arena, c->input, c->hidden, c->latent, in->name,
                       (unsigned long long)in->max_alloc_bytes);
  if (in->max_alloc_bytes && act > in->max_alloc_bytes)
    return clvae__fail(CLVAE_ERR_ARG, "a batch of %d needs a %llu-byte activation buffer; the device '%s' allows "
                       "%llu bytes per buffer: use a smaller --batch-size (or --hidden)", c->batch,
                       (unsigned long long)act, in->name, (unsigned long long)in->max_alloc_bytes);
  if (in->global_mem_bytes && needed > in->global_mem_bytes)
    return clvae__fail(CLVAE_ERR_ARG, "the model needs %llu bytes of device memory (parameters, gradients, Adam "
                       "state, activations for batch %d); the device '%s' has %llu: use a smaller --batch-size or --hidden",
                       (unsigned long long)needed, c->batch, in->name, (unsigned long long)in->global_mem_bytes);
  clvae_model *m = calloc(1, sizeof *m);
  if (!m) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  m->dev = dev, m->cfg = *c;
  clvae_layout_of(c, &m->lay);
  size_t P = m->lay.total * 4, B = (size_t)c->batch, D = (size_t)c->input, H = (size_t)c->hidden,
         L = (size_t)c->latent;
  struct { clvae_buffer **b; size_t bytes; } all[] = {
    {&m->params, P}, {&m->grads, P}, {&m->adam_m, P}, {&m->adam_v, P},
    {&m->x, B * D * 4}, {&m->h1, B * H * 4}, {&m->musig, B * 2 * L * 4}, {&m->z, B * L * 4},
    {&m->eps, B * L * 4}, {&m->h2, B * H * 4}, {&m->y, B * D * 4},
    {&m->dmusig, B * 2 * L * 4}, {&m->dz, B * L * 4}, {&m->dh2, B * H * 4}, {&m->dh1, B * H * 4},
  };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    clvae_status st = clvae_buffer_create(dev, all[i].bytes, all[i].b);
    if (st != CLVAE_OK) {
      clvae_model_free(m);
      return st;
    }
  }
  *out = m;
  return CLVAE_OK;
}

void clvae_model_free(clvae_model *m) {
  if (!m) return;
  clvae_buffer *all[] = {m->params, m->grads, m->adam_m, m->adam_v, m->x, m->h1, m->musig, m->z,
                         m->eps, m->h2, m->y, m->dmusig, m->dz, m->dh2, m->dh1};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clvae_buffer_free(all[i]);
  free(m);
}

const clvae_layout *clvae_model_layout(const clvae_model *m) { return &m->lay; }
const clvae_config *clvae_model_config(const clvae_model *m) { return &m->cfg; }
clvae_device *clvae_model_device(const clvae_model *m) { return m->dev; }
int64_t clvae_model_step(const clvae_model *m) { return m->step; }

clvae_status clvae_model_set_state(clvae_model *m, const float *params, const float *am,
                                   const float *av, int64_t step) {
  size_t P = m->lay.total * 4;
  clvae_status st = clvae_buffer_write(m->dev, m->params, 0, P, params, 1);
  if (st == CLVAE_OK) st = am ? clvae_buffer_write(m->dev, m->adam_m, 0, P, am, 1) : clvae_buffer_zero(m->dev, m->adam_m, 0, P);
  if (st == CLVAE_OK) st = av ? clvae_buffer_write(m->dev, m->adam_v, 0, P, av, 1) : clvae_buffer_zero(m->dev, m->adam_v, 0, P);
  if (st == CLVAE_OK) st = clvae_buffer_zero(m->dev, m->grads, 0, P);
  if (st == CLVAE_OK) st = clvae_device_finish(m->dev);
  m->step = step;
  return st;
}

clvae_status clvae_model_get_state(clvae_model *m, float *params, float *am, float *av, float *grads) {
  size_t P = m->lay.total * 4;
  clvae_status st = CLVAE_OK;
  if (params) st = clvae_buffer_read(m->dev, m->params, 0, P, params);
  if (st == CLVAE_OK && am) st = clvae_buffer_read(m->dev, m->adam_m, 0, P, am);
  if (st == CLVAE_OK && av) st = clvae_buffer_read(m->dev, m->adam_v, 0, P, av);
  if (st == CLVAE_OK && grads) st = clvae_buffer_read(m->dev, m->grads, 0, P, grads);
  return st;
}

#define TRY(call)                        \
  do {                                   \
    clvae_status st_ = (call);           \
    if (st_ != CLVAE_OK) return st_;     \
  } while (0)

/* x → h1 → musig: the encoder, shared by training and encoding. */
static clvae_status encoder(clvae_model *m, clvae_view images, clvae_view idx, int B) {
  clvae_device *dev = m->dev;
  const clvae_layout *l = &m->lay;
  const int D = m->cfg.input, H = m->cfg.hidden, L = m->cfg.latent;
  clvae_view x = clvae_at(m->x, 0), h1 = clvae_at(m->h1, 0), musig = clvae_at(m->musig, 0);
  if (B < 1 || B > m->cfg.batch)
    return clvae__fail(CLVAE_ERR_ARG, "model: batch of %d rows (1..%d allowed)", B, m->cfg.batch);
  TRY(clvae_gather(dev, x, images, idx, B, D));
  TRY(clvae_gemm(dev, 0, 0, B, H, D, 1.0f, x, D, clvae_at(m->params, l->w1), H, 0.0f, h1, H));
  TRY(clvae_bias_act(dev, h1, clvae_at(m->params, l->b1), B, H, CLVAE_ACT_RELU));
  TRY(clvae_gemm(dev, 0, 0, B, 2 * L, H, 1.0f, h1, H, clvae_at(m->params, l->wh), 2 * L, 0.0f, musig, 2 * L));
  return clvae_bias_act(dev, musig, clvae_at(m->params, l->bh), B, 2 * L, CLVAE_ACT_NONE);
}

/* z → h2 → y (logits; `act` SIGMOID turns them into probabilities). */
static clvae_status decoder(clvae_model *m, int B, clvae_act act) {
  clvae_device *dev = m->dev;
  const clvae_layout *l = &m->lay;
  const int D = m->cfg.input, H = m->cfg.hidden, L = m->cfg.latent;
  clvae_view z = clvae_at(m->z, 0), h2 = clvae_at(m->h2, 0), y = clvae_at(m->y, 0);
  TRY(clvae_gemm(dev, 0, 0, B, H, L, 1.0f, z, L, clvae_at(m->params, l->wd1), H, 0.0f, h2, H));
  TRY(clvae_bias_act(dev, h2, clvae_at(m->params, l->bd1), B, H, CLVAE_ACT_RELU));
  TRY(clvae_gemm(dev, 0, 0, B, D, H, 1.0f, h2, H, clvae_at(m->params, l->wd2), D, 0.0f, y, D));
  return act == CLVAE_ACT_SIGMOID ? clvae_bias_act(dev, y, clvae_at(m->params, l->bd2), B, D, act) : CLVAE_OK;
}

/* encoder → (z, eps, kl) → decoder → (recon, dy in y if `grad`); the output bias and the
 * sigmoid are fused into the loss. */
static clvae_status forward(clvae_model *m, clvae_view images, clvae_view idx, int B,
                            clvae_view recon, clvae_view kl, uint64_t noise_step, int grad) {
  const int L = m->cfg.latent;
  clvae_view y = clvae_at(m->y, 0);
  TRY(encoder(m, images, idx, B));
  TRY(clvae_sample_forward(m->dev, clvae_at(m->z, 0), clvae_at(m->eps, 0), kl, clvae_at(m->musig, 0), B, L,
                           m->cfg.seed, noise_step));
  TRY(decoder(m, B, CLVAE_ACT_NONE));
  return clvae_loss_sigmoid(m->dev, (clvae_loss_kind)m->cfg.loss, recon, grad ? y : clvae_at(NULL, 0), y,
                            clvae_at(m->params, m->lay.bd2), clvae_at(m->x, 0), B, m->cfg.input, 1.0f / (float)B);
}

/* The mirror: dy (in y) → dWd2, dbd2 → dh2 → dWd1, dbd1 → dz → dmusig → dWh, dbh → dh1 → dW1, db1.
 * Weight gradients are written (β = 0), never accumulated. */
static clvae_status backward(clvae_model *m, int B) {
  clvae_device *dev = m->dev;
  const clvae_layout *l = &m->lay;
  const int D = m->cfg.input, H = m->cfg.hidden, L = m->cfg.latent;
  clvae_buffer *P = m->params, *G = m->grads;
  clvae_view x = clvae_at(m->x, 0), h1 = clvae_at(m->h1, 0), musig = clvae_at(m->musig, 0),
             z = clvae_at(m->z, 0), h2 = clvae_at(m->h2, 0), dy = clvae_at(m->y, 0);
  clvae_view dh2 = clvae_at(m->dh2, 0), dz = clvae_at(m->dz, 0), dmusig = clvae_at(m->dmusig, 0),
             dh1 = clvae_at(m->dh1, 0);
  TRY(clvae_gemm(dev, 1, 0, H, D, B, 1.0f, h2, H, dy, D, 0.0f, clvae_at(G, l->wd2), D));
  TRY(clvae_colsum(dev, clvae_at(G, l->bd2), dy, B, D));
  TRY(clvae_gemm(dev, 0, 1, B, H, D, 1.0f, dy, D, clvae_at(P, l->wd2), D, 0.0f, dh2, H));
  TRY(clvae_relu_backward(dev, dh2, dh2, h2, B * H));
  TRY(clvae_gemm(dev, 1, 0, L, H, B, 1.0f, z, L, dh2, H, 0.0f, clvae_at(G, l->wd1), H));
  TRY(clvae_colsum(dev, clvae_at(G, l->bd1), dh2, B, H));
  TRY(clvae_gemm(dev, 0, 1, B, L, H, 1.0f, dh2, H, clvae_at(P, l->wd1), H, 0.0f, dz, L));
  TRY(clvae_sample_backward(dev, dmusig, dz, clvae_at(m->eps, 0), musig, B, L, 1.0f / (float)B));
  TRY(clvae_gemm(dev, 1, 0, H, 2 * L, B, 1.0f, h1, H, dmusig, 2 * L, 0.0f, clvae_at(G, l->wh), 2 * L));
  TRY(clvae_colsum(dev, clvae_at(G, l->bh), dmusig, B, 2 * L));
  TRY(clvae_gemm(dev, 0, 1, B, H, 2 * L, 1.0f, dmusig, 2 * L, clvae_at(P, l->wh), 2 * L, 0.0f, dh1, H));
  TRY(clvae_relu_backward(dev, dh1, dh1, h1, B * H));
  TRY(clvae_gemm(dev, 1, 0, D, H, B, 1.0f, x, D, dh1, H, 0.0f, clvae_at(G, l->w1), H));
  return clvae_colsum(dev, clvae_at(G, l->b1), dh1, B, H);
}

clvae_status clvae_model_forward_backward(clvae_model *m, clvae_view images, clvae_view idx, int B,
                                          clvae_view recon, clvae_view kl, uint64_t noise_step) {
  TRY(forward(m, images, idx, B, recon, kl, noise_step, 1));
  return backward(m, B);
}

clvae_status clvae_model_forward(clvae_model *m, clvae_view images, clvae_view idx, int B,
                                 clvae_view recon, clvae_view kl, uint64_t noise_step) {
  return forward(m, images, idx, B, recon, kl, noise_step, 0);
}

clvae_status clvae_model_decode(clvae_model *m, const float *z, int n, float *out) {
  const int B = m->cfg.batch, D = m->cfg.input, L = m->cfg.latent;
  for (int r0 = 0; r0 < n; r0 += B) {
    int nb = n - r0 < B ? n - r0 : B;
    TRY(clvae_buffer_write(m->dev, m->z, 0, (size_t)nb * L * 4, z + (size_t)r0 * L, 1));
    TRY(decoder(m, nb, CLVAE_ACT_SIGMOID));
    TRY(clvae_buffer_read(m->dev, m->y, 0, (size_t)nb * D * 4, out + (size_t)r0 * D));
  }
  return CLVAE_OK;
}

clvae_status clvae_model_encode(clvae_model *m, clvae_view images, clvae_view idx, int B, float *musig) {
  TRY(encoder(m, images, idx, B));
  return clvae_buffer_read(m->dev, m->musig, 0, (size_t)B * 2 * m->cfg.latent * 4, musig);
}

clvae_status clvae_model_adam(clvae_model *m) {
  int n = (int)m->lay.total;
  TRY(clvae_adam(m->dev, clvae_at(m->params, 0), clvae_at(m->grads, 0), clvae_at(m->adam_m, 0),
                 clvae_at(m->adam_v, 0), n, m->cfg.lr, m->cfg.beta1, m->cfg.beta2, m->cfg.eps, m->step + 1));
  m->step++;
  return CLVAE_OK;
}

clvae_status clvae_model_train_step(clvae_model *m, clvae_view images, clvae_view idx, int B,
                                    clvae_view recon, clvae_view kl) {
  TRY(clvae_model_forward_backward(m, images, idx, B, recon, kl, (uint64_t)m->step));
  return clvae_model_adam(m);
}
