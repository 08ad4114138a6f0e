/* The ranks of a training job (see include/clvae/comm.h): MPI when built with it
 * (CLVAE_HAVE_MPI) and started by a launcher, one process otherwise. */
#include "clvae/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device/internal.h"

#ifdef CLVAE_HAVE_MPI
#include <mpi.h>
#endif

#define MAX_PENDING 64

struct clvae_comm {
  int rank, size, local_rank, mpi;
#ifdef CLVAE_HAVE_MPI
  MPI_Request pending[MAX_PENDING];
  int npending;
#endif
};

int clvae_comm_built_with_mpi(void) {
#ifdef CLVAE_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

int clvae_comm_launched(void) {
  /* Open MPI, MPICH/Hydra, PMIx and Slurm each leave one of these in a rank's environment */
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", NULL};
  for (int i = 0; vars[i]; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

#ifdef CLVAE_HAVE_MPI
static clvae_status mpi_fail(int rc, const char *call) {
  char name[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, name, &len);
  return clvae__fail(CLVAE_ERR_COMM, "%s failed: %s", call, name);
}
#define MPI_TRY(call, name)                              \
  do {                                                   \
    int rc_ = (call);                                    \
    if (rc_ != MPI_SUCCESS) return mpi_fail(rc_, name);  \
  } while (0)
#endif

clvae_status clvae_comm_init(clvae_comm **out, int *argc, char ***argv) {
  clvae_comm *c = calloc(1, sizeof *c);
  *out = NULL;
  if (!c) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  c->size = 1;
#ifdef CLVAE_HAVE_MPI
  if (clvae_comm_launched()) {
    int rc = MPI_Init(argc, argv);
    if (rc != MPI_SUCCESS) {
      free(c);
      return mpi_fail(rc, "MPI_Init");
    }
    /* errors come back as codes, so that a rank can report them and agree on stopping */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
      MPI_Comm_rank(local, &c->local_rank);
      MPI_Comm_free(&local);
    }
    c->mpi = 1;
  }
#else
  (void)argc, (void)argv;
#endif
  *out = c;
  return CLVAE_OK;
}

void clvae_comm_finalize(clvae_comm *c) {
  if (!c) return;
#ifdef CLVAE_HAVE_MPI
  if (c->mpi) MPI_Finalize();
#endif
  free(c);
}

int clvae_comm_rank(const clvae_comm *c) { return c ? c->rank : 0; }
int clvae_comm_size(const clvae_comm *c) { return c ? c->size : 1; }
int clvae_comm_local_rank(const clvae_comm *c) { return c ? c->local_rank : 0; }

#ifdef CLVAE_HAVE_MPI
static clvae_status allreduce(clvae_comm *c, void *x, size_t n, MPI_Datatype type, MPI_Op op) {
  if (c && c->mpi && n) MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, type, op, MPI_COMM_WORLD), "MPI_Allreduce");
  return CLVAE_OK;
}
#define ALLREDUCE(c, x, n, type, op) allreduce(c, x, n, type, op)
#else
#define ALLREDUCE(c, x, n, type, op) ((void)(c), (void)(x), (void)(n), CLVAE_OK)
#endif

clvae_status clvae_comm_sum_floats(clvae_comm *c, float *x, size_t n) { return ALLREDUCE(c, x, n, MPI_FLOAT, MPI_SUM); }
clvae_status clvae_comm_sum_doubles(clvae_comm *c, double *x, size_t n) { return ALLREDUCE(c, x, n, MPI_DOUBLE, MPI_SUM); }
clvae_status clvae_comm_max_ints(clvae_comm *c, int *x, size_t n) { return ALLREDUCE(c, x, n, MPI_INT, MPI_MAX); }

clvae_status clvae_comm_sum_floats_start(clvae_comm *c, float *x, size_t n) {
#ifdef CLVAE_HAVE_MPI
  if (!c || !c->mpi || !n) return CLVAE_OK;
  if (c->npending == MAX_PENDING) {
    clvae_status st = clvae_comm_wait(c);
    if (st != CLVAE_OK) return st;
  }
  MPI_TRY(MPI_Iallreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &c->pending[c->npending]),
          "MPI_Iallreduce");
  c->npending++;
#else
  (void)c, (void)x, (void)n;
#endif
  return CLVAE_OK;
}

clvae_status clvae_comm_wait(clvae_comm *c) {
#ifdef CLVAE_HAVE_MPI
  if (!c || !c->mpi || !c->npending) return CLVAE_OK;
  int n = c->npending;
  c->npending = 0;
  MPI_TRY(MPI_Waitall(n, c->pending, MPI_STATUSES_IGNORE), "MPI_Waitall");
#else
  (void)c;
#endif
  return CLVAE_OK;
}

clvae_status clvae_comm_barrier(clvae_comm *c) {
#ifdef CLVAE_HAVE_MPI
  if (!c || !c->mpi) return CLVAE_OK;
  MPI_Request req;
  int done = 0;
  MPI_TRY(MPI_Ibarrier(MPI_COMM_WORLD, &req), "MPI_Ibarrier");
  while (!done) {
    MPI_TRY(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (!done) nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
#else
  (void)c;
#endif
  return CLVAE_OK;
}

clvae_status clvae_comm_bcast(clvae_comm *c, void *buf, size_t bytes, int root) {
#ifdef CLVAE_HAVE_MPI
  for (size_t done = 0; c && c->mpi && done < bytes;) { /* MPI counts are ints: chunks of 1 GiB */
    size_t n = bytes - done < ((size_t)1 << 30) ? bytes - done : ((size_t)1 << 30);
    MPI_TRY(MPI_Bcast((char *)buf + done, (int)n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    done += n;
  }
#else
  (void)c, (void)buf, (void)bytes, (void)root;
#endif
  return CLVAE_OK;
}

int clvae_comm_agree(clvae_comm *c, int code, const char *msg, int *failed_rank, char *out, size_t n) {
  *failed_rank = code ? clvae_comm_rank(c) : -1;
  if (out && n) snprintf(out, n, "%s", code && msg ? msg : "");
#ifdef CLVAE_HAVE_MPI
  if (!c || !c->mpi) return code;
  /* the lowest failing rank: min over (failed ? rank : size) */
  int mine = code ? c->rank : c->size, first = c->size;
  if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) return code ? code : 1;
  if (first == c->size) return 0;
  char buf[1024] = "";
  int agreed = code;
  if (c->rank == first) snprintf(buf, sizeof buf, "%s", msg ? msg : "");
  MPI_Bcast(&agreed, 1, MPI_INT, first, MPI_COMM_WORLD);
  MPI_Bcast(buf, sizeof buf, MPI_CHAR, first, MPI_COMM_WORLD);
  *failed_rank = first;
  if (out && n) snprintf(out, n, "%s", buf);
  return agreed;
#else
  (void)c;
  return code;
#endif
}

void clvae_comm_abort(clvae_comm *c, int code) {
#ifdef CLVAE_HAVE_MPI
  if (c && c->mpi) MPI_Abort(MPI_COMM_WORLD, code);
#else
  (void)c, (void)code; /* one process: the caller exits */
#endif
}
