/* Data-parallel training steps (see clvae_dist_step in include/clvae/train.h): every rank
 * holds a replica of the model and computes its slice of the global batch; the gradient
 * arena is summed over the ranks through host memory, one layer at a time as backward
 * finishes it; every rank then applies the same Adam update.
 *
 * Every rank makes the same sequence of collective calls whatever happens locally: a rank
 * whose device failed, or that has no rows in a short last batch, contributes zeros and
 * says so in the flags that end each step's reduction. So a failure or a stop request
 * reaches every rank in the same step, and no rank is left waiting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/comm.h"
#include "clvae/train.h"
#include "device/internal.h"
#include "util/timing.h"

enum { FLAG_STOP, FLAG_FAILED, NFLAGS };

/* The failure of this rank's part of a step, kept until the step's flags carry it. */
typedef struct local_failure {
  clvae_status st;
  char msg[CLVAE_ERROR_MSG_SIZE];
} local_failure;

struct clvae_dist {
  clvae_comm *comm;
  clvae_model *m;
  int overlap;
  int nparts;
  size_t offset[CLVAE_MAX_LAYERS], count[CLVAE_MAX_LAYERS];
  size_t total;
  float *grads;              /* the arena on the host, summed in place (mapped staging memory) */
  clvae_host_buffer *staging;
  float flags[NFLAGS];
  local_failure pending;     /* a failed update, for the next agreement */
};

static void drain(clvae_dist *d, int from);

void clvae_dist_slice(int nb, int rank, int size, int *row0, int *rows) {
  int q = nb / size, r = nb % size;
  *rows = q + (rank < r);
  *row0 = rank * q + (rank < r ? rank : r);
}

clvae_status clvae_dist_create(clvae_dist **out, clvae_comm *c, clvae_model *m, int overlap) {
  clvae_dist *d = calloc(1, sizeof *d);
  const clvae_net *net = clvae_model_net(m);
  *out = NULL;
  void *host = NULL;
  if (!d) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  /* the arena's host copy is staging memory the driver allocated and mapped (pinned where
   * it can be): the per-layer copies are DMA that overlaps the layers before, and the sums'
   * upload one transfer, where pageable memory is staged by the driver on NVIDIA and AMD */
  clvae_status st = clvae_host_buffer_create(clvae_model_device(m), net->total * sizeof(float), &d->staging, &host);
  if (st != CLVAE_OK) {
    free(d);
    return clvae__fail(st, "the gradient arena's host copy (%zu floats): %s", net->total, clvae_error_message());
  }
  d->grads = host;
  d->comm = c, d->m = m, d->overlap = overlap, d->total = net->total;
  d->nparts = clvae_net_grad_parts(net, d->offset, d->count, CLVAE_MAX_LAYERS);
  *out = d;
  return CLVAE_OK;
}

void clvae_dist_free(clvae_dist *d) {
  if (!d) return;
  drain(d, 0);
  clvae_host_buffer_free(clvae_model_device(d->m), d->staging);
  free(d);
}

clvae_status clvae_dist_agree(clvae_comm *c, clvae_status st) {
  char msg[CLVAE_ERROR_MSG_SIZE];
  int who;
  int code = clvae_comm_agree(c, (int)st, st != CLVAE_OK ? clvae_error_message() : "", &who, msg, sizeof msg);
  if (code == 0) return CLVAE_OK;
  if (clvae_comm_size(c) == 1) return (clvae_status)code; /* the message is already this rank's */
  return clvae__fail((clvae_status)code, "rank %d: %s", who, msg);
}


static void failed(local_failure *f, clvae_status st) {
  if (f->st != CLVAE_OK) return; /* the first one counts */
  f->st = st;
  snprintf(f->msg, sizeof f->msg, "%s", clvae_error_message());
}

#define COMM(call)                              \
  do {                                          \
    clvae_status s_ = (call);                   \
    if (s_ != CLVAE_OK) return s_;              \
  } while (0)

/* Waits for every gradient copy of the step still in flight (into d->grads). */
static void drain(clvae_dist *d, int from) {
  size_t off, count;
  for (int k = from; k < d->nparts; k++) clvae_model_wait_grads(d->m, k, &off, &count);
}

clvae_status clvae_dist_step(clvae_dist *d, clvae_view images, clvae_view labels, clvae_view idx, int nb,
                             clvae_view recon, clvae_view kl, int *stop, double *wait_s) {
  const int rank = clvae_comm_rank(d->comm), size = clvae_comm_size(d->comm);
  int row0, rows;
  local_failure f = d->pending; /* the previous update's failure, if it had one */
  d->pending.st = CLVAE_OK;
  clvae_dist_slice(nb, rank, size, &row0, &rows);
  clvae_batch_part part = {row0, nb, d->overlap ? d->grads : NULL};
  int computed = 0;          /* this rank's gradients are (being) copied to d->grads */
  if (rows > 0 && f.st == CLVAE_OK) {
    clvae_status st = clvae_model_forward_backward_part(
        d->m, images, labels, clvae_at(idx.buf, idx.off + (size_t)row0), rows, clvae_at(recon.buf, recon.off + (size_t)row0),
        clvae_at(kl.buf, kl.off + (size_t)row0), (uint64_t)clvae_model_step(d->m), &part);
    if (st != CLVAE_OK) failed(&f, st), drain(d, 0);
    else if (!d->overlap && (st = clvae_model_get_grads(d->m, d->grads)) != CLVAE_OK) failed(&f, st);
    else computed = 1;
  }
  if (d->overlap) {
    /* each layer's sum starts as soon as its gradients are on the host; the device goes on
     * with the layers before it meanwhile */
    for (int k = 0; k < d->nparts; k++) {
      size_t off = 0, count = 0;
      if (computed) {
        clvae_status st = clvae_model_wait_grads(d->m, k, &off, &count);
        if (st != CLVAE_OK) failed(&f, st);
        else if (off != d->offset[k] || count != d->count[k])
          failed(&f, clvae__fail(CLVAE_ERR_ARG, "dist: backward produced gradient part %d at %zu+%zu, expected %zu+%zu",
                                 k, off, count, d->offset[k], d->count[k]));
        if (f.st != CLVAE_OK) drain(d, k + 1), computed = 0;
      }
      if (!computed) memset(d->grads + d->offset[k], 0, d->count[k] * sizeof(float));
      COMM(clvae_comm_sum_floats_start(d->comm, d->grads + d->offset[k], d->count[k]));
    }
  } else {
    if (!computed) memset(d->grads, 0, d->total * sizeof(float));
    COMM(clvae_comm_sum_floats_start(d->comm, d->grads, d->total));
  }
  d->flags[FLAG_STOP] = *stop ? 1.0f : 0.0f;
  d->flags[FLAG_FAILED] = f.st != CLVAE_OK ? 1.0f : 0.0f;
  COMM(clvae_comm_sum_floats_start(d->comm, d->flags, NFLAGS));
  double t0 = clvae_now();
  COMM(clvae_comm_wait(d->comm));
  if (wait_s) *wait_s = clvae_now() - t0;
  *stop = d->flags[FLAG_STOP] > 0;
  if (d->flags[FLAG_FAILED] > 0) {
    if (f.st != CLVAE_OK) clvae__fail(f.st, "%s", f.msg);
    return clvae_dist_agree(d->comm, f.st);
  }
  /* every rank now holds the same sums: the same update everywhere. A failure here is
   * reported to the other ranks at the next agreement (clvae_dist_step or clvae_dist_sync). */
  clvae_status st = clvae_model_set_grads(d->m, d->grads);
  if (st == CLVAE_OK) st = clvae_model_adam(d->m);
  if (st == CLVAE_OK) st = clvae_device_flush(clvae_model_device(d->m));
  if (st != CLVAE_OK) failed(&d->pending, clvae__fail(st, "the update after the previous step: %s", clvae_error_message()));
  return CLVAE_OK;
}

clvae_status clvae_dist_sync(clvae_dist *d, clvae_status st) {
  if (st == CLVAE_OK && d->pending.st != CLVAE_OK) st = clvae__fail(d->pending.st, "%s", d->pending.msg);
  d->pending.st = CLVAE_OK;
  return clvae_dist_agree(d->comm, st);
}
