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
  clvae_buffer *labels;      /* uint8 (count): each image's class (NULL: an unlabelled set) */
  int classes;               /* 1 + the largest label (0: unlabelled) */
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
  for (size_t i = 0; im->labels && i < n; i++)
    if (im->labels[i] >= d->classes) d->classes = im->labels[i] + 1;
  if (im->labels && d->classes <= CLVAE_MAX_CLASSES) { /* as bytes (a set of more classes has no conditional model) */
    uint8_t *lab = malloc(n ? n : 1);
    if (!lab) goto fail;
    for (size_t i = 0; i < n; i++) lab[i] = (uint8_t)im->labels[i];
    st = clvae_buffer_create(dev, n ? n : 1, &d->labels);
    if (st == CLVAE_OK) st = clvae_buffer_write(dev, d->labels, 0, n, lab, 1);
    free(lab);
    if (st != CLVAE_OK) goto fail;
    st = CLVAE_ERR_NOMEM;
  }
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
  clvae_buffer_free(d->labels);
  free(d);
}

int clvae_dataset_count(const clvae_dataset *d) { return d->count; }
clvae_view clvae_dataset_images(const clvae_dataset *d) { return clvae_at(d->images, 0); }
clvae_view clvae_dataset_labels(const clvae_dataset *d) { return clvae_at(d->labels, 0); }
clvae_view clvae_dataset_index(const clvae_dataset *d, size_t first) { return clvae_at(d->idx, first); }

/* A set of other images than the model's would be read past its rows: refuse it; and a
 * conditional model's set needs labels within its classes. */
static clvae_status same_shape(const clvae_model *m, const clvae_dataset *d) {
  const clvae_config *c = clvae_model_config(m);
  if (d->height != c->height || d->width != c->width || d->channels != c->channels)
    return clvae__fail(CLVAE_ERR_ARG, "images of %dx%dx%d for a model of %dx%dx%d images", d->height, d->width,
                       d->channels, c->height, c->width, c->channels);
  if (c->classes && !d->classes)
    return clvae__fail(CLVAE_ERR_ARG, "a conditional model (%d classes) needs labelled images", c->classes);
  if (c->classes && d->classes > c->classes)
    return clvae__fail(CLVAE_ERR_ARG, "a label of %d for a conditional model of %d classes (0..%d)", d->classes - 1,
                       c->classes, c->classes - 1);
  return CLVAE_OK;
}

clvae_status clvae_dataset_encode(clvae_model *m, clvae_dataset *d, float *mu) {
  if (same_shape(m, d) != CLVAE_OK) return CLVAE_ERR_ARG;
  const int B = clvae_model_config(m)->batch, L = clvae_model_config(m)->latent;
  float *ms = malloc((size_t)B * 2 * L * 4);
  clvae_status st = ms ? CLVAE_OK : clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  for (int b0 = 0; b0 < d->count && st == CLVAE_OK; b0 += B) {
    int nb = d->count - b0 < B ? d->count - b0 : B;
    st = clvae_model_encode(m, clvae_at(d->images, 0), clvae_at(d->labels, 0), clvae_at(d->idx, (size_t)b0), nb, ms);
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

/* The rows of batch b0 that this rank evaluates: whole batches, round-robin over the ranks. */
static int evaluates(int b, int rank, int size) { return b % size == rank; }

/* The test loss: each rank evaluates its batches (with the same ε as one process would),
 * the sums are added over the ranks. */
static clvae_status evaluate(clvae_model *m, clvae_dataset *d, clvae_dist *dist, clvae_comm *comm,
                             clvae_eval_result *r) {
  clvae_device *dev = clvae_model_device(m);
  int B = clvae_model_config(m)->batch, n = d->count, rank = clvae_comm_rank(comm), size = clvae_comm_size(comm);
  clvae_status st = same_shape(m, d);
  float *buf = st == CLVAE_OK ? malloc((size_t)n * 8) : NULL;
  if (st == CLVAE_OK && !buf) st = clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  for (int b0 = 0; b0 < n && st == CLVAE_OK; b0 += B) {
    int nb = n - b0 < B ? n - b0 : B;
    if (evaluates(b0 / B, rank, size))
      st = clvae_model_forward(m, clvae_at(d->images, 0), clvae_at(d->labels, 0), clvae_at(d->idx, (size_t)b0), nb,
                               clvae_at(d->recon, (size_t)b0), clvae_at(d->kl, (size_t)b0), EVAL_NOISE | (uint64_t)(b0 / B));
  }
  if (st == CLVAE_OK) st = clvae_buffer_read(dev, d->recon, 0, (size_t)n * 4, buf);
  if (st == CLVAE_OK) st = clvae_buffer_read(dev, d->kl, 0, (size_t)n * 4, buf + n);
  double sums[2] = {0, 0};
  for (int i = 0; i < n && st == CLVAE_OK; i++)
    if (evaluates(i / B, rank, size)) sums[0] += buf[i], sums[1] += buf[n + i];
  free(buf);
  if (dist && (st = clvae_dist_sync(dist, st)) == CLVAE_OK) st = clvae_comm_sum_doubles(comm, sums, 2);
  r->images = n, r->recon = sums[0] / n, r->kl = sums[1] / n;
  r->loss = r->recon + (double)clvae_model_config(m)->beta * r->kl;
  return st;
}

clvae_status clvae_evaluate(clvae_model *m, clvae_dataset *d, clvae_eval_result *r) {
  return evaluate(m, d, NULL, NULL, r);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static double wall(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct run {
  clvae_model *m;
  clvae_dataset *train, *test;
  clvae_train_state *st;
  const clvae_train_opts *o;
  uint32_t *perm;
  float *buf;                /* 2 × count floats */
  double *means;             /* steps */
  int B, steps;
  clvae_comm *comm;          /* NULL: one process */
  clvae_dist *dist;          /* several ranks */
  int rank, size;
} run;

/* Every rank learns whether any failed here (one process: st itself). */
static clvae_status agree(run *r, clvae_status st) { return r->dist ? clvae_dist_sync(r->dist, st) : st; }

/* Sum over steps [first, last) of each batch's mean loss, read from the device in one go.
 * Each rank holds its slice of every batch: its share of each mean is summed over the
 * ranks (a NaN or an infinity anywhere stays one). *bad_step: the first non-finite one. */
static clvae_status loss_sum(run *r, int first, int last, double *sum, int *bad_step) {
  clvae_dataset *d = r->train;
  const int B = r->B, b0 = first * B, n = (last * B < d->count ? last * B : d->count) - b0;
  float *buf = r->buf;
  const double beta = clvae_model_config(r->m)->beta;
  *sum = 0, *bad_step = -1;
  if (n <= 0) return CLVAE_OK;
  clvae_status st = clvae_buffer_read(d->dev, d->recon, (size_t)b0 * 4, (size_t)n * 4, buf);
  if (st == CLVAE_OK) st = clvae_buffer_read(d->dev, d->kl, (size_t)b0 * 4, (size_t)n * 4, buf + n);
  for (int s = first; s < last && st == CLVAE_OK; s++) {
    int i0 = s * B - b0, nb = (s + 1) * B - b0 <= n ? B : n - i0, row0, rows;
    clvae_dist_slice(nb, r->rank, r->size, &row0, &rows);
    double m = 0;
    for (int i = i0 + row0; i < i0 + row0 + rows; i++) m += (double)buf[i] + beta * buf[n + i];
    r->means[s - first] = m / nb;
  }
  if ((st = agree(r, st)) != CLVAE_OK) return st;
  if (r->size > 1 && (st = clvae_comm_sum_doubles(r->comm, r->means, (size_t)(last - first))) != CLVAE_OK) return st;
  for (int s = first; s < last; s++) {
    if (!isfinite(r->means[s - first]) && *bad_step < 0) *bad_step = s;
    *sum += r->means[s - first];
  }
  return CLVAE_OK;
}

static clvae_status diverged(run *r, int step) {
  return clvae__fail(CLVAE_ERR_DIVERGED, "the loss became NaN or infinite at epoch %d, step %d", r->st->epoch + 1,
                     step + 1);
}

/* A failure at a step: the device's (with the step added), or another rank's, or MPI's. */
static clvae_status step_failed(run *r, int step, clvae_status st) {
  if (st == CLVAE_ERR_COMM) return st;
  return clvae__fail(st == CLVAE_OK ? CLVAE_ERR_OPENCL : st, "epoch %d, step %d: %s", r->st->epoch + 1, step + 1,
                     clvae_error_message());
}

/* The save (rank 0's), agreed on: every rank returns its status. */
static clvae_status save(run *r, const clvae_train_progress *p) {
  clvae_status st = r->rank == 0 ? r->o->save(r->m, r->st, p, r->o->user) : CLVAE_OK;
  if (r->dist && st != CLVAE_OK && st != CLVAE_ERR_IO) clvae__fail(st, "saving: %s", clvae_error_message());
  else if (r->dist && st != CLVAE_OK) clvae__fail(st, "saving the checkpoint failed (rank 0 said why)");
  return agree(r, st);
}

/* Replicas on different devices may round an update differently: at each epoch's end all
 * take rank 0's parameters and Adam state, so that they cannot drift apart. */
static clvae_status resync(run *r) {
  size_t n = clvae_model_net(r->m)->total;
  float *p = malloc(3 * n * sizeof *p);
  clvae_status st = p ? clvae_model_get_state(r->m, p, p + n, p + 2 * n, NULL)
                      : clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  if ((st = agree(r, st)) == CLVAE_OK && (st = clvae_comm_bcast(r->comm, p, 3 * n * sizeof *p, 0)) == CLVAE_OK) {
    if (r->rank != 0) st = clvae_model_set_state(r->m, p, p + n, p + 2 * n, clvae_model_step(r->m));
    st = agree(r, st);
  }
  free(p);
  return st;
}

/* One step of the epoch: one process's, or every rank's slice of it; *stop: whether a stop
 * was asked for (by any rank: agreed on in the step). */
static clvae_status step(run *r, int s, int *stop) {
  clvae_dataset *d = r->train;
  const clvae_train_opts *o = r->o;
  int b0 = s * r->B, nb = d->count - b0 < r->B ? d->count - b0 : r->B;
  *stop = o->stop && *o->stop;
  if (!r->dist)
    return clvae_model_train_step(r->m, clvae_at(d->images, 0), clvae_at(d->labels, 0), clvae_at(d->idx, (size_t)b0), nb,
                                  clvae_at(d->recon, (size_t)b0), clvae_at(d->kl, (size_t)b0));
  return clvae_dist_step(r->dist, clvae_at(d->images, 0), clvae_at(d->labels, 0), clvae_at(d->idx, (size_t)b0), nb,
                         clvae_at(d->recon, (size_t)b0), clvae_at(d->kl, (size_t)b0), stop, NULL);
}

/* The rest of epoch st->epoch (from st->epoch_step): steps, reports, then the epoch's
 * results and the save. A stop request saves mid-epoch and returns CLVAE_INTERRUPTED. */
static clvae_status run_epoch(run *r) {
  clvae_train_state *ck = r->st;
  clvae_dataset *d = r->train;
  const clvae_train_opts *o = r->o;
  int B = r->B, first = ck->epoch_step, every = o->report_every > 0 ? o->report_every : 20, bad, stop = 0;
  int report = o->progress || r->size > 1; /* the same on every rank: reports are collective */
  double start = now(), wall_start = wall(), read_sum = 0, sum;
  const int64_t step0 = clvae_model_step(r->m); /* the run's step number of this epoch's step `first` */
  int nread = 0;
  clvae_status st;
  clvae_train_progress p = {.epoch = ck->epoch + 1, .epochs = o->epochs, .steps = r->steps};
  clvae_shuffle(r->perm, d->count, clvae_model_config(r->m)->seed, ck->epoch);
  st = agree(r, clvae_buffer_write(d->dev, d->idx, 0, (size_t)d->count * 4, r->perm, 1));
  if (st != CLVAE_OK) return step_failed(r, first, st);
  for (int s = first; s < r->steps; s++) {
    int last = s == r->steps - 1;
    if ((st = step(r, s, &stop)) != CLVAE_OK) return step_failed(r, s, st);
    if ((s + 1) % every == 0 && !last && report) {
      double mean;
      if ((st = loss_sum(r, s, s + 1, &mean, &bad)) != CLVAE_OK) return step_failed(r, s, st);
      if (bad >= 0) return diverged(r, s);
      read_sum += mean, nread++;
      double t = now() - start, per_step = t / (s + 1 - first);
      p.step = s + 1, p.loss = read_sum / nread, p.samples_per_sec = (s + 1 - first) * (double)B / t;
      p.seconds = ck->epoch_seconds + t, p.run_step = step0 + (s + 1 - first), p.step_loss = mean;
      p.eta_seconds = per_step * ((r->steps - s - 1) + (double)(o->epochs - ck->epoch - 1) * r->steps);
      if (o->progress && r->rank == 0) o->progress(&p, o->user);
    }
    if (stop && !last) {
      if ((st = loss_sum(r, first, s + 1, &sum, &bad)) != CLVAE_OK) return step_failed(r, s, st);
      if (bad >= 0) return diverged(r, bad);
      if (o->batch_losses && r->rank == 0) o->batch_losses(step0, r->means, s + 1 - first, wall_start, wall(), o->user);
      ck->epoch_step = s + 1, ck->epoch_loss_sum += sum, ck->epoch_seconds += now() - start;
      st = save(r, NULL);
      return st == CLVAE_OK ? CLVAE_INTERRUPTED : st;
    }
  }
  if ((st = loss_sum(r, first, r->steps, &sum, &bad)) != CLVAE_OK) return step_failed(r, r->steps - 1, st);
  if (bad >= 0) return diverged(r, bad);
  double train_seconds = now() - start;
  if (r->dist && (st = resync(r)) != CLVAE_OK) return step_failed(r, r->steps - 1, st);
  if (o->batch_losses && r->rank == 0) o->batch_losses(step0, r->means, r->steps - first, wall_start, wall(), o->user);
  if ((st = evaluate(r->m, r->test, r->dist, r->comm, &p.test)) != CLVAE_OK) return step_failed(r, r->steps - 1, st);
  p.epoch_end = 1, p.step = r->steps;
  p.run_step = step0 + (r->steps - first), p.step_loss = r->means[r->steps - 1 - first];
  p.train_loss = (ck->epoch_loss_sum + sum) / r->steps;
  p.seconds = ck->epoch_seconds + now() - start;
  p.samples_per_sec = (d->count - (double)first * B) / train_seconds;
  clvae_train_state before = *ck;
  ck->epoch++, ck->epoch_step = 0, ck->epoch_loss_sum = 0, ck->epoch_seconds = 0;
  /* If the save fails (a full disk), the epoch did not happen as far as a resume is concerned. */
  if ((st = save(r, &p)) != CLVAE_OK) {
    *ck = before;
    return st;
  }
  if (o->progress && r->rank == 0) o->progress(&p, o->user);
  /* a stop asked for during the last epoch comes too late to change anything: done. Asked
   * for on any rank, the stop is every rank's. */
  stop = o->stop && *o->stop;
  if (r->size > 1 && (st = clvae_comm_max_ints(r->comm, &stop, 1)) != CLVAE_OK) return st;
  return stop && ck->epoch < o->epochs ? CLVAE_INTERRUPTED : CLVAE_OK;
}

clvae_status clvae_train(clvae_model *m, clvae_dataset *train, clvae_dataset *test, clvae_train_state *st,
                         const clvae_train_opts *o) {
  run r = {m, train, test, st, o, NULL, NULL, NULL, clvae_model_config(m)->batch, 0, NULL, NULL, 0, 1};
  r.steps = (train->count + r.B - 1) / r.B;
  if (o->comm && clvae_comm_size(o->comm) > 1) r.comm = o->comm, r.rank = clvae_comm_rank(o->comm), r.size = clvae_comm_size(o->comm);
  clvae_status s = same_shape(m, train);
  if (s == CLVAE_OK) s = same_shape(m, test);
  if (s == CLVAE_OK && st->epoch_step >= r.steps)
    s = clvae__fail(CLVAE_ERR_FORMAT, "the state is %d steps into an epoch of %d steps", st->epoch_step, r.steps);
  if (s == CLVAE_OK) {
    r.perm = malloc((size_t)train->count * 4);
    r.buf = malloc((size_t)train->count * 8);
    r.means = malloc((size_t)r.steps * sizeof *r.means);
    if (!r.perm || !r.buf || !r.means) s = clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  }
  if (s == CLVAE_OK && r.comm) s = clvae_dist_create(&r.dist, r.comm, m, !o->no_overlap);
  if (r.comm) s = r.dist ? clvae_dist_sync(r.dist, s) : clvae_dist_agree(r.comm, s);
  while (s == CLVAE_OK && st->epoch < o->epochs) s = run_epoch(&r);
  clvae_dist_free(r.dist);
  free(r.perm), free(r.buf), free(r.means);
  return s;
}
