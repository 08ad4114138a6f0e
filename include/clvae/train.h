/* clvae training: image sets resident on the device, evaluation, and the training loop.
 * Never prints and knows no files: progress and persistence are the caller's callbacks. */
#ifndef CLVAE_TRAIN_H
#define CLVAE_TRAIN_H

#include <signal.h>

#include "clvae/comm.h"
#include "clvae/data.h"
#include "clvae/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An image set uploaded once as bytes (and its labels, as bytes), with its index list and
 * per-image loss slots. */
typedef struct clvae_dataset clvae_dataset;

/* Uploads the first `limit` images (0: all); their shape must be the model's. */
CLVAE_API clvae_status clvae_dataset_create(clvae_dataset **out, clvae_device *dev, const clvae_images *im,
                                            int limit);
CLVAE_API void clvae_dataset_free(clvae_dataset *d);
CLVAE_API int clvae_dataset_count(const clvae_dataset *d);
/* The images (uint8), their labels (uint8; a NULL buffer for an unlabelled set) and the
 * index list from position `first` on, as views for the model. */
CLVAE_API clvae_view clvae_dataset_images(const clvae_dataset *d);
CLVAE_API clvae_view clvae_dataset_labels(const clvae_dataset *d);
CLVAE_API clvae_view clvae_dataset_index(const clvae_dataset *d, size_t first);

/* μ (count, L) of every image of the set, in order. */
CLVAE_API clvae_status clvae_dataset_encode(clvae_model *m, clvae_dataset *d, float *mu);

typedef struct clvae_eval_result {
  double loss, recon, kl;    /* means per image; loss = recon + β·kl */
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
  double seconds;            /* spent in this epoch so far (across a resume) */
  int64_t run_step;          /* steps done in the whole run, counted from 0 (the step just read is run_step - 1) */
  double step_loss;          /* the batch loss of that step (at an epoch's end: of its last step) */
  /* epoch end only */
  double train_loss;
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
  /* Several ranks (NULL or one: this process alone): data-parallel training of one model,
   * each rank holding a replica and the same data sets, computing its slice of every batch
   * (clvae_dist_step). Every rank calls clvae_train; progress and save are called on rank
   * 0 only, and every rank returns the same status. */
  clvae_comm *comm;
  int no_overlap;            /* several ranks: sum the gradients after backward, not per layer */
  /* Optional, rank 0: the mean loss of each step (batch) of [first, first + n), steps
   * counted from 0 over the whole run, as read back from the device: at the end of each
   * epoch and when stopped, before the save; t0 and t1 bound when those steps ran (wall
   * clock, seconds since the epoch). */
  void (*batch_losses)(int64_t first, const double *loss, int n, double t0, double t1, void *user);
} clvae_train_opts;

/* Trains from *st (the model holding the matching parameters) until opts->epochs epochs
 * are complete, calling save after every epoch and when stopped. Returns CLVAE_OK,
 * CLVAE_INTERRUPTED (saved), the save's failure, CLVAE_ERR_DIVERGED on a NaN/Inf loss or
 * a device error (nothing saved for the unfinished epoch in either case). *st follows. */
CLVAE_API clvae_status clvae_train(clvae_model *m, clvae_dataset *train, clvae_dataset *test,
                                   clvae_train_state *st, const clvae_train_opts *opts);

/* Data-parallel steps over the ranks of an MPI job (clvae_comm), one model replica per
 * rank with identical parameters. The gradients travel through host memory: each layer's
 * are copied back as soon as backward has them and summed over the ranks (MPI_Iallreduce)
 * while the device goes on with the layers before it; every rank then applies the same
 * Adam update. The mathematics are one process's: ε is keyed by the row of the global
 * batch, and the loss scale is the global batch's. */
typedef struct clvae_dist clvae_dist;
/* overlap 0: one reduction of the whole arena after backward (to measure what overlap buys). */
CLVAE_API clvae_status clvae_dist_create(clvae_dist **out, clvae_comm *c, clvae_model *m, int overlap);
CLVAE_API void clvae_dist_free(clvae_dist *d);
/* This rank's rows [*row0, *row0 + *rows) of a global batch of nb: the first nb % size
 * ranks take one row more. */
CLVAE_API void clvae_dist_slice(int nb, int rank, int size, int *row0, int *rows);
/* One step of the global batch of nb rows whose index list starts at idx (per-row losses
 * to recon and kl from their first slots): this rank's slice forward and backward, the
 * gradients summed, the update. *stop: in, whether this rank asks to stop; out, whether
 * any rank did (the same on all). A rank's failure in the step is every rank's: all
 * return its status with "rank R: " and its message. CLVAE_ERR_COMM: MPI itself failed
 * (the ranks may be out of step: clvae_comm_abort). *wait_s: time spent waiting for the
 * sums after backward had been enqueued. */
CLVAE_API clvae_status clvae_dist_step(clvae_dist *d, clvae_view images, clvae_view labels, clvae_view idx, int nb,
                                       clvae_view recon, clvae_view kl, int *stop, double *wait_s);
/* Agreement on a local status (and on a failed update of the last step): every rank gets
 * the lowest failing rank's status and message, or CLVAE_OK. */
CLVAE_API clvae_status clvae_dist_sync(clvae_dist *d, clvae_status st);
CLVAE_API clvae_status clvae_dist_agree(clvae_comm *c, clvae_status st);

/* The epoch's permutation of 0..count-1, a function of (seed, epoch) only. */
CLVAE_API void clvae_shuffle(uint32_t *perm, int count, uint64_t seed, int epoch);

#ifdef __cplusplus
}
#endif

#endif
