/* Private view of the device handle, shared by src/device and src/ops: the OpenCL
 * objects it owns, the kernel table, and the helpers that record errors and launch. */
#ifndef CLVAE_DEVICE_INTERNAL_H
#define CLVAE_DEVICE_INTERNAL_H

#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

/* cl_khr_icd: what the ICD loader returns when no platform is installed. */
#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif
#include <stdarg.h>

#include "clvae/ops.h"

/* One program per .cl file, built lazily on the first use of one of its kernels. */
enum program_id { P_GEMM, P_ACT, P_SAMPLE, P_LOSS, P_ADAM, P_DATA, P_COUNT };

enum kernel_id {
  K_GEMM_PACK_B, K_GEMM_TILE,
  K_BIAS_ACT, K_RELU_BWD, K_COLSUM,
  K_SAMPLE_FWD, K_SAMPLE_BWD,
  K_LOSS_MSE, K_LOSS_BCE,
  K_ADAM,
  K_GATHER,
  K_COUNT
};

struct clvae_buffer {
  cl_mem mem;
  size_t size;               /* bytes */
};

struct clvae_device {
  clvae_device_info info;
  cl_platform_id platform;
  cl_device_id id;
  cl_context ctx;
  cl_command_queue queue;
  cl_program programs[P_COUNT];
  cl_kernel kernels[K_COUNT];
  clvae_gemm_impl gemm;      /* resolved: BUILTIN or CLBLAST */
  int clblast_used;          /* CLBlast holds caches for this context */
  int gemm_mr, gemm_nv;      /* builtin GEMM block: MR rows × 16·NV columns per work-item */
  int gemm_lx, gemm_ly;      /* its work-group: lx column panels × ly row panels */
  int red_ls;                /* work-group size of the per-row reductions */
  int colsum_w;              /* columns per work-item of the column sums (16 or 1) */
  size_t local_1d;           /* local size of 1-D element-wise kernels */
  clvae_buffer *pack_b;      /* scratch for the packed op(B) of the builtin GEMM, grown on demand */
  int profiling;             /* the queue records timestamps */
  struct prof_event { const char *name; cl_event ev; } *prof; /* events while profiling */
  int prof_n, prof_cap, prof_on;
  long launches;             /* kernel launches so far (for CLVAE_TEST_FAIL_LAUNCH) */
  long fail_launch;          /* test hook: this launch fails as CL_OUT_OF_RESOURCES; 0: none */
};

/* Records a formatted message as this thread's last error (clvae_error_message); returns
 * `st`, for `return clvae__fail(...)`. The arguments may include the previous message. */
clvae_status clvae__fail(clvae_status st, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Records "CALL failed: CL_NAME (code) [what] at file:line"; returns CLVAE_ERR_OPENCL. */
clvae_status clvae__cl_fail(cl_int code, const char *call, const char *what, const char *file, int line);
#define CL_FAIL(code, call, what) clvae__cl_fail((code), (call), (what), __FILE__, __LINE__)

/* The kernel, building its program on first use. */
clvae_status clvae__kernel(clvae_device *dev, enum kernel_id k, cl_kernel *out);
const char *clvae__kernel_name(enum kernel_id k);
void clvae__release_programs(clvae_device *dev);

/* One kernel argument: its size and address (cl_mem handles included). */
typedef struct karg {
  size_t size;
  const void *ptr;
} karg;
#define KARG(x) ((karg){sizeof(x), &(x)})

/* Sets the arguments and enqueues; the global size is rounded up to a multiple of the
 * local size (kernels guard their edges). local == NULL: dev->local_1d for 1-D. */
clvae_status clvae__launch(clvae_device *dev, enum kernel_id k, cl_uint dims, const size_t *global,
                           const size_t *local, int nargs, const karg *args);

/* While profiling: where a launch should put its event (NULL otherwise). */
cl_event *clvae__prof_event(clvae_device *dev, const char *name);
/* The launch that took the last event slot failed: forget the slot. */
void clvae__prof_cancel(clvae_device *dev, const cl_event *slot);

/* splitmix64: the host's seeded generator (initialization, shuffles). */
static inline uint64_t clvae__splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Release CLBlast's caches for this device before its context goes (src/ops/gemm.c). */
void clvae__gemm_release(clvae_device *dev);

#endif

/* Checks that `count` elements of `elem` bytes at the view lie inside its buffer and that
 * the offset fits a kernel's uint; sets *off. `op`/`name` name the call in the message. */
clvae_status clvae__view(const char *op, const char *name, clvae_view v,
                         size_t count, size_t elem, cl_uint *off);
