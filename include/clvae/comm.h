/* clvae comm: the processes (ranks) of one training job. With MPI (built with -Dmpi and
 * started by mpirun) every rank holds a replica of the model and a slice of each global
 * batch, and these calls sum what the ranks computed; otherwise a job is one process and
 * every call is a no-op. The library never initializes MPI on its own: the caller does,
 * through clvae_comm_init, and only when the environment says mpirun started it. */
#ifndef CLVAE_COMM_H
#define CLVAE_COMM_H

#include "clvae/clvae.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clvae_comm clvae_comm;

/* Whether this clvae was built with MPI. */
CLVAE_API int clvae_comm_built_with_mpi(void);
/* Whether the environment says an MPI launcher (mpirun, mpiexec, srun) started this process. */
CLVAE_API int clvae_comm_launched(void);
/* The job: MPI (MPI_Init) when built with it and launched by mpirun, else one process.
 * *out is never NULL on success. */
CLVAE_API clvae_status clvae_comm_init(clvae_comm **out, int *argc, char ***argv);
CLVAE_API void clvae_comm_finalize(clvae_comm *c);
CLVAE_API int clvae_comm_rank(const clvae_comm *c);
CLVAE_API int clvae_comm_size(const clvae_comm *c);
/* This rank's index among the ranks on its machine (to choose a device). */
CLVAE_API int clvae_comm_local_rank(const clvae_comm *c);

/* Sums n values across ranks, in place, every rank getting the result. */
CLVAE_API clvae_status clvae_comm_sum_floats(clvae_comm *c, float *x, size_t n);
CLVAE_API clvae_status clvae_comm_sum_doubles(clvae_comm *c, double *x, size_t n);
/* The maximum of n ints across ranks, in place. */
CLVAE_API clvae_status clvae_comm_max_ints(clvae_comm *c, int *x, size_t n);
/* Starts summing n floats across ranks in place (MPI_Iallreduce), to overlap with other
 * work; clvae_comm_wait completes every sum started since the last wait. */
CLVAE_API clvae_status clvae_comm_sum_floats_start(clvae_comm *c, float *x, size_t n);
CLVAE_API clvae_status clvae_comm_wait(clvae_comm *c);
/* Waits for every rank, sleeping (not spinning, as MPI's own waits do) meanwhile, so that a
 * waiting rank leaves its CPU to the others. */
CLVAE_API clvae_status clvae_comm_barrier(clvae_comm *c);
/* Root's bytes to every rank. */
CLVAE_API clvae_status clvae_comm_bcast(clvae_comm *c, void *buf, size_t bytes, int root);

/* Every rank brings its exit code (0: fine) and message; all learn the first failure: its
 * code (returned), its rank and its message. Returns 0 when every rank is fine. */
CLVAE_API int clvae_comm_agree(clvae_comm *c, int code, const char *msg, int *failed_rank, char *out, size_t n);

/* Ends every rank of the job at once (MPI_Abort): the last resort, when a rank cannot reach
 * the next agreement. Returns only without MPI (the caller then exits). */
CLVAE_API void clvae_comm_abort(clvae_comm *c, int code);

#ifdef __cplusplus
}
#endif

#endif
