/* clvae training: image sets resident on the device, evaluation, and the training loop.
 * Never prints and knows no files: progress and persistence are the caller's callbacks. */
#ifndef CLVAE_TRAIN_H
#define CLVAE_TRAIN_H

#include <signal.h>

#include "clvae/data.h"
#include "clvae/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An image set uploaded once as bytes, with its index list and per-image loss slots. */
typedef struct clvae_dataset clvae_dataset;

/* Uploads the first `limit` images (0: all); their shape must be the model's. */
CLVAE_API clvae_status clvae_dataset_create(clvae_dataset **out, clvae_device *dev, const clvae_images *im,
                                            int limit);
CLVAE_API void clvae_dataset_free(clvae_dataset *d);
CLVAE_API int clvae_dataset_count(const clvae_dataset *d);
/* The images (uint8) and the index list from position `first` on, as views for the model. */
CLVAE_API clvae_view clvae_dataset_images(const clvae_dataset *d);
CLVAE_API clvae_view clvae_dataset_index(const clvae_dataset *d, size_t first);

/* μ (count, L) of every image of the set, in order. */
CLVAE_API clvae_status clvae_dataset_encode(clvae_model *m, clvae_dataset *d, float *mu);

typedef struct clvae_eval_result {
  double loss, recon, kl;    /* means per image; loss = recon + kl */
  int images;
} clvae_eval_result;

/* The loss of every image of the set, in batches, with ε drawn from a fixed stream
 * (independent of training progress), so the same parameters give the same result. */
CLVAE_API clvae_status clvae_evaluate(clvae_model *m, clvae_dataset *d, clvae_eval_result *r);

typedef struct clvae_train_progress {
  int epoch_end;             /* 0: a progress report inside an epoch; 1: the epoch finished */
  int epoch, epochs;         /* epoch counts from 1 */
  int step, steps;           /* within the epoch */
  double loss;               /* mean batch loss of the epoch so far (of the batches read) */
  double samples_per_sec, eta_seconds;
  /* epoch end only */
  double train_loss, seconds;
  clvae_eval_result test;
} clvae_train_progress;

/* Where training stands, besides the model's parameters, Adam state and step. */
typedef struct clvae_train_state {
  int32_t epoch;             /* epochs completed */
  int32_t epoch_step;        /* steps done in the unfinished epoch (0 at an epoch's end) */
  double epoch_loss_sum;     /* sum of the unfinished epoch's batch losses so far */
  double epoch_seconds;      /* time spent in the unfinished epoch so far */
} clvae_train_state;

typedef struct clvae_train_opts {
  int epochs;                /* train until this many epochs are complete */
  int report_every;          /* read the loss back every N steps (0: 20) */
  volatile sig_atomic_t *stop; /* set (by a signal handler) to stop after the current step */
  void (*progress)(const clvae_train_progress *p, void *user);
  /* Persists the model with *st: at each epoch's end (p: the epoch's results) and when
   * stopped mid-epoch (p NULL). A failure ends training, and the epoch does not count. */
  clvae_status (*save)(clvae_model *m, const clvae_train_state *st, const clvae_train_progress *p, void *user);
  void *user;
} clvae_train_opts;

/* Trains from *st (the model holding the matching parameters) until opts->epochs epochs
 * are complete, calling save after every epoch and when stopped. Returns CLVAE_OK,
 * CLVAE_INTERRUPTED (saved), the save's failure, CLVAE_ERR_DIVERGED on a NaN/Inf loss or
 * a device error (nothing saved for the unfinished epoch in either case). *st follows. */
CLVAE_API clvae_status clvae_train(clvae_model *m, clvae_dataset *train, clvae_dataset *test,
                                   clvae_train_state *st, const clvae_train_opts *opts);

/* The epoch's permutation of 0..count-1, a function of (seed, epoch) only. */
CLVAE_API void clvae_shuffle(uint32_t *perm, int count, uint64_t seed, int epoch);

#ifdef __cplusplus
}
#endif

#endif
