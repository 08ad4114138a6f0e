/* Private view of the device handle, shared by src/device and src/ops: the OpenCL
 * objects it owns, what ops register with it (programs, kernels, state), and the helpers
 * that record errors and launch. */
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

struct clvae_buffer {
  cl_mem mem;
  size_t size;               /* bytes */
};

/* What an op registers with a device, on first use. The device layer builds, caches and
 * releases these without knowing what they compute (CLBlast's routines work this way).
 * A program: cl/<source>.cl (cl/<name>.cl when source is NULL), built once per device with
 * the -D options its op chooses; two programs of one source are two builds of it. */
typedef struct clvae_program_def {
  const char *name;
  /* Writes this device's -D options (device quirks as defines) into buf; may be NULL. */
  void (*defines)(clvae_device *dev, char *buf, size_t n);
  const char *source;
} clvae_program_def;

typedef struct clvae_kernel_def {
  const clvae_program_def *program;
  const char *name;
} clvae_kernel_def;

/* An op's per-device state (tuning, scratch buffers): zeroed and initialized on first use,
 * released with the device, before its context, in the reverse order of creation. */
typedef struct clvae_state_def {
  size_t size;
  clvae_status (*init)(clvae_device *dev, void *state); /* may be NULL */
  void (*release)(clvae_device *dev, void *state);     /* may be NULL */
} clvae_state_def;

struct clvae_device {
  clvae_device_info info;
  cl_platform_id platform;
  cl_device_id id;
  cl_context ctx;
  cl_command_queue queue;
  int gpu_style;             /* build kernels the GPU way (CLVAE_KERNEL_STYLE can force either) */
  size_t local_1d;           /* local size of 1-D element-wise kernels */
  struct built_program { const clvae_program_def *def; cl_program prog; } *programs;
  struct built_kernel {
    const clvae_kernel_def *def;
    cl_kernel kernel;
    size_t max_wg;           /* CL_KERNEL_WORK_GROUP_SIZE: a register-heavy kernel gets less than the device's */
    size_t reqd;             /* its reqd_work_group_size (product; 0: none): never resized */
  } *kernels;
  struct op_state { const clvae_state_def *def; void *state; } *states;
  int nprograms, nkernels, nstates;
  int profiling;             /* the queue records timestamps */
  struct prof_event { const char *name; cl_event ev; } *prof; /* events while profiling */
  int prof_n, prof_cap, prof_on;
  long launches;             /* kernel launches so far */
  long fail_launch;          /* test builds: this launch fails as CL_OUT_OF_RESOURCES; 0: none */
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

/* The options the program is built with on this device: the OpenCL C version's -cl-std,
 * flushed denormals, and the op's -D options. Fails for a device older than OpenCL C 1.1. */
clvae_status clvae__build_options(clvae_device *dev, const clvae_program_def *p, char *opts, size_t n);
/* Builds the program now (once per device); the build log is in the message on failure. */
clvae_status clvae__build(clvae_device *dev, const clvae_program_def *p);
/* The op's state on this device, created on first use; NULL on failure (message set). */
void *clvae__state(clvae_device *dev, const clvae_state_def *def);

/* One kernel argument: its size and address (cl_mem handles included). */
typedef struct karg {
  size_t size;
  const void *ptr;
} karg;
#define KARG(x) ((karg){sizeof(x), &(x)})

/* Sets the arguments and enqueues; the global size is rounded up to a multiple of the
 * local size (kernels guard their edges). local == NULL: dev->local_1d for 1-D. A local
 * size larger than the kernel allows (CL_KERNEL_WORK_GROUP_SIZE) is halved, largest
 * dimension first, until it fits: results never depend on it. */
clvae_status clvae__launch(clvae_device *dev, const clvae_kernel_def *k, cl_uint dims, const size_t *global,
                           const size_t *local, int nargs, const karg *args);

/* The largest work-group the kernel allows on this device (building it if needed); 0 on
 * failure (message set). */
size_t clvae__kernel_max_wg(clvae_device *dev, const clvae_kernel_def *k);

/* While profiling: where a launch should put its event (NULL otherwise). */
cl_event *clvae__prof_event(clvae_device *dev, const char *name);
/* The launch that took the last event slot failed: forget the slot. */
void clvae__prof_cancel(clvae_device *dev, const cl_event *slot);

/* Checks that `count` elements of `elem` bytes at the view lie inside its buffer and that
 * the offset fits a kernel's uint; sets *off. `op`/`name` name the call in the message. */
clvae_status clvae__view(const char *op, const char *name, clvae_view v, size_t count, size_t elem, cl_uint *off);

/* splitmix64: the host's seeded generator (initialization, shuffles). */
static inline uint64_t clvae__splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

#endif

