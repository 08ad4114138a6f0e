/* The training loop: the training set lives on the device; each epoch the host uploads a
 * shuffled index list and enqueues every step without waiting, reading losses back only
 * every few steps; it waits at epoch ends for the test evaluation and the caller's save. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clvae/train.h"
#include "device/internal.h"

/* ε for evaluation comes from steps with the top bit set: never a training step. */
#define EVAL_NOISE ((uint64_t)1 << 63)

struct clvae_dataset {
  clvae_device *dev;
  int count, pixels;
  int height, width, channels; /* pixels = height·width·channels */
  clvae_buffer *images;      /* uint8 (count, pixels) */
  clvae_buffer *idx;         /* uint32 (count): identity, or the epoch's permutation */
  clvae_buffer *recon, *kl;  /* float (count): per-image losses of the last pass */
};

clvae_status clvae_dataset_create(clvae_dataset **out, clvae_device *dev, const clvae_images *im, int limit) {
  clvae_dataset *d = calloc(1, sizeof *d);
  uint32_t *ident = NULL;
  clvae_status st = CLVAE_ERR_NOMEM;
  *out = NULL;
  if (!d) return clvae__fail(st, "out of host memory");
  d->dev = dev;
  d->count = limit > 0 && limit < im->count ? limit : im->count;
  d->height = im->height, d->width = im->width, d->channels = im->channels;
  d->pixels = im->height * im->width * im->channels;
  size_t n = (size_t)d->count;
  if (!(ident = malloc(n * 4))) goto fail;
  for (size_t i = 0; i < n; i++) ident[i] = (uint32_t)i;
  if ((st = clvae_buffer_create(dev, n * (size_t)d->pixels, &d->images)) != CLVAE_OK ||
      (st = clvae_buffer_create(dev, n * 4, &d->idx)) != CLVAE_OK ||
      (st = clvae_buffer_create(dev, n * 4, &d->recon)) != CLVAE_OK ||
      (st = clvae_buffer_create(dev, n * 4, &d->kl)) != CLVAE_OK ||
      (st = clvae_buffer_write(dev, d->images, 0, n * (size_t)d->pixels, im->pixels, 1)) != CLVAE_OK ||
      (st = clvae_buffer_write(dev, d->idx, 0, n * 4, ident, 1)) != CLVAE_OK)
    goto fail;
  free(ident);
  *out = d;
  return CLVAE_OK;
fail:
  free(ident);
  clvae_dataset_free(d);
  return st;
}

void clvae_dataset_free(clvae_dataset *d) {
  if (!d) return;
  clvae_buffer_free(d->images), clvae_buffer_free(d->idx), clvae_buffer_free(d->recon), clvae_buffer_free(d->kl);
  free(d);
}

int clvae_dataset_count(const clvae_dataset *d) { return d->count; }
clvae_view clvae_dataset_images(const clvae_dataset *d) { return clvae_at(d->images, 0); }
clvae_view clvae_dataset_index(const clvae_dataset *d, size_t first) { return clvae_at(d->idx, first); }

/* A set of other images than the model's would be read past its rows: refuse it. */
static clvae_status same_shape(const clvae_model *m, const clvae_dataset *d) {
  const clvae_config *c = clvae_model_config(m);
  if (d->height == c->height && d->width == c->width && d->channels == c->channels) return CLVAE_OK;
  return clvae__fail(CLVAE_ERR_ARG, "images of %dx%dx%d for a model of %dx%dx%d images", d->height, d->width,
                     d->channels, c->height, c->width, c->channels);
}

clvae_status clvae_dataset_encode(clvae_model *m, clvae_dataset *d, float *mu) {
  if (same_shape(m, d) != CLVAE_OK) return CLVAE_ERR_ARG;
  const int B = clvae_model_config(m)->batch, L = clvae_model_config(m)->latent;
  float *ms = malloc((size_t)B * 2 * L * 4);
  clvae_status st = ms ? CLVAE_OK : clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  for (int b0 = 0; b0 < d->count && st == CLVAE_OK; b0 += B) {
    int nb = d->count - b0 < B ? d->count - b0 : B;
    st = clvae_model_encode(m, clvae_at(d->images, 0), clvae_at(d->idx, (size_t)b0), nb, ms);
    for (int r = 0; r < nb && st == CLVAE_OK; r++) memcpy(mu + (size_t)(b0 + r) * L, ms + (size_t)r * 2 * L, (size_t)L * 4);
  }
  free(ms);
  return st;
}

void clvae_shuffle(uint32_t *perm, int count, uint64_t seed, int epoch) {
  uint64_t s = seed * 0x2545F4914F6CDD1Dull + (uint64_t)epoch * 0x9E3779B97F4A7C15ull + 1;
  for (int i = 0; i < count; i++) perm[i] = (uint32_t)i;
  for (int i = count - 1; i > 0; i--) { /* Fisher–Yates; the modulo bias of 2^64 is nil */
    int j = (int)(clvae__splitmix64(&s) % (uint64_t)(i + 1));
    uint32_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
}

clvae_status clvae_evaluate(clvae_model *m, clvae_dataset *d, clvae_eval_result *r) {
  clvae_device *dev = clvae_model_device(m);
  int B = clvae_model_config(m)->batch, n = d->count;
  clvae_status st = same_shape(m, d);
  if (st != CLVAE_OK) return st;
  float *buf = malloc((size_t)n * 8);
  if (!buf) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  for (int b0 = 0; b0 < n && st == CLVAE_OK; b0 += B) {
    int nb = n - b0 < B ? n - b0 : B;
    st = clvae_model_forward(m, clvae_at(d->images, 0), clvae_at(d->idx, (size_t)b0), nb, clvae_at(d->recon, (size_t)b0),
                             clvae_at(d->kl, (size_t)b0), EVAL_NOISE | (uint64_t)(b0 / B));
  }
  if (st == CLVAE_OK) st = clvae_buffer_read(dev, d->recon, 0, (size_t)n * 4, buf);
  if (st == CLVAE_OK) st = clvae_buffer_read(dev, d->kl, 0, (size_t)n * 4, buf + n);
  double rs = 0, ks = 0;
  for (int i = 0; i < n; i++) rs += buf[i], ks += buf[n + i];
  free(buf);
  r->images = n, r->recon = rs / n, r->kl = ks / n, r->loss = r->recon + r->kl;
  return st;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Sum over steps [first, last) of each batch's mean loss, read from the device in one go. */
static clvae_status loss_sum(clvae_dataset *d, int B, int first, int last, float *buf, double *sum, int *bad_step) {
  int b0 = first * B, n = (last * B < d->count ? last * B : d->count) - b0;
  *sum = 0, *bad_step = -1;
  if (n <= 0) return CLVAE_OK;
  clvae_status st = clvae_buffer_read(d->dev, d->recon, (size_t)b0 * 4, (size_t)n * 4, buf);
  if (st == CLVAE_OK) st = clvae_buffer_read(d->dev, d->kl, (size_t)b0 * 4, (size_t)n * 4, buf + n);
  for (int s = first; s < last && st == CLVAE_OK; s++) {
    int i0 = s * B - b0, nb = (s + 1) * B - b0 <= n ? B : n - i0;
    double m = 0;
    for (int i = i0; i < i0 + nb; i++) m += (double)buf[i] + buf[n + i];
    m /= nb;
    if (!isfinite(m) && *bad_step < 0) *bad_step = s;
    *sum += m;
  }
  return st;
}

typedef struct run {
  clvae_model *m;
  clvae_dataset *train, *test;
  clvae_train_state *st;
  const clvae_train_opts *o;
  uint32_t *perm;
  float *buf;                /* 2 × count floats */
  int B, steps;
} run;

static clvae_status diverged(run *r, int step) {
  return clvae__fail(CLVAE_ERR_DIVERGED, "the loss became NaN or infinite at epoch %d, step %d", r->st->epoch + 1,
                     step + 1);
}

static clvae_status device_failed(run *r, int step) {
  return clvae__fail(CLVAE_ERR_OPENCL, "epoch %d, step %d: %s", r->st->epoch + 1, step + 1, clvae_error_message());
}

/* The rest of epoch st->epoch (from st->epoch_step): steps, reports, then the epoch's
 * results and the save. A stop request saves mid-epoch and returns CLVAE_INTERRUPTED. */
static clvae_status run_epoch(run *r) {
  clvae_train_state *ck = r->st;
  clvae_dataset *d = r->train;
  const clvae_train_opts *o = r->o;
  int B = r->B, first = ck->epoch_step, every = o->report_every > 0 ? o->report_every : 20, bad;
  double start = now(), read_sum = 0, sum;
  int nread = 0;
  clvae_train_progress p = {0, ck->epoch + 1, o->epochs, 0, r->steps, 0, 0, 0, 0, 0, {0, 0, 0, 0}};
  clvae_shuffle(r->perm, d->count, clvae_model_config(r->m)->seed, ck->epoch);
  if (clvae_buffer_write(d->dev, d->idx, 0, (size_t)d->count * 4, r->perm, 1) != CLVAE_OK) return device_failed(r, first);
  for (int s = first; s < r->steps; s++) {
    int b0 = s * B, nb = d->count - b0 < B ? d->count - b0 : B, last = s == r->steps - 1;
    if (clvae_model_train_step(r->m, clvae_at(d->images, 0), clvae_at(d->idx, (size_t)b0), nb,
                               clvae_at(d->recon, (size_t)b0), clvae_at(d->kl, (size_t)b0)) != CLVAE_OK)
      return device_failed(r, s);
    if ((s + 1) % every == 0 && !last && o->progress) {
      double mean;
      if (loss_sum(d, B, s, s + 1, r->buf, &mean, &bad) != CLVAE_OK) return device_failed(r, s);
      if (bad >= 0) return diverged(r, s);
      read_sum += mean, nread++;
      double t = now() - start, per_step = t / (s + 1 - first);
      p.step = s + 1, p.loss = read_sum / nread, p.samples_per_sec = (s + 1 - first) * (double)B / t;
      p.eta_seconds = per_step * ((r->steps - s - 1) + (double)(o->epochs - ck->epoch - 1) * r->steps);
      o->progress(&p, o->user);
    }
    if (o->stop && *o->stop && !last) {
      if (loss_sum(d, B, first, s + 1, r->buf, &sum, &bad) != CLVAE_OK) return device_failed(r, s);
      if (bad >= 0) return diverged(r, bad);
      ck->epoch_step = s + 1, ck->epoch_loss_sum += sum, ck->epoch_seconds += now() - start;
      clvae_status st = o->save(r->m, ck, NULL, o->user);
      return st == CLVAE_OK ? CLVAE_INTERRUPTED : st;
    }
  }
  if (loss_sum(d, B, first, r->steps, r->buf, &sum, &bad) != CLVAE_OK) return device_failed(r, r->steps - 1);
  if (bad >= 0) return diverged(r, bad);
  double train_seconds = now() - start;
  if (clvae_evaluate(r->m, r->test, &p.test) != CLVAE_OK) return device_failed(r, r->steps - 1);
  p.epoch_end = 1, p.step = r->steps;
  p.train_loss = (ck->epoch_loss_sum + sum) / r->steps;
  p.seconds = ck->epoch_seconds + now() - start;
  p.samples_per_sec = (d->count - (double)first * B) / train_seconds;
  clvae_train_state before = *ck;
  ck->epoch++, ck->epoch_step = 0, ck->epoch_loss_sum = 0, ck->epoch_seconds = 0;
  /* If the save fails (a full disk), the epoch did not happen as far as a resume is concerned. */
  clvae_status st = o->save(r->m, ck, &p, o->user);
  if (st != CLVAE_OK) {
    *ck = before;
    return st;
  }
  if (o->progress) o->progress(&p, o->user);
  /* a stop asked for during the last epoch comes too late to change anything: done */
  return o->stop && *o->stop && ck->epoch < o->epochs ? CLVAE_INTERRUPTED : CLVAE_OK;
}

clvae_status clvae_train(clvae_model *m, clvae_dataset *train, clvae_dataset *test, clvae_train_state *st,
                         const clvae_train_opts *o) {
  run r = {m, train, test, st, o, NULL, NULL, clvae_model_config(m)->batch, 0};
  r.steps = (train->count + r.B - 1) / r.B;
  if (same_shape(m, train) != CLVAE_OK || same_shape(m, test) != CLVAE_OK) return CLVAE_ERR_ARG;
  if (st->epoch_step >= r.steps)
    return clvae__fail(CLVAE_ERR_FORMAT, "the state is %d steps into an epoch of %d steps", st->epoch_step, r.steps);
  r.perm = malloc((size_t)train->count * 4);
  r.buf = malloc((size_t)train->count * 8);
  clvae_status s = r.perm && r.buf ? CLVAE_OK : clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  while (s == CLVAE_OK && st->epoch < o->epochs) s = run_epoch(&r);
  free(r.perm), free(r.buf);
  return s;
}
