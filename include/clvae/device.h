/* clvae device layer: OpenCL platforms and devices, a device handle that owns its
 * context, queue, programs and kernels, and device buffers. Knows OpenCL, not networks. */
#ifndef CLVAE_DEVICE_H
#define CLVAE_DEVICE_H

#include "clvae/clvae.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clvae_device clvae_device;
typedef struct clvae_buffer clvae_buffer;

/* What `clvae devices` shows about one device. */
typedef struct clvae_device_info {
  int platform_index;        /* index of its platform among all platforms */
  int device_index;          /* index within its platform */
  char platform[256];
  char name[256];
  char vendor[256];
  char type[16];             /* "GPU", "CPU", "accelerator", "custom", "other" */
  char version[128];         /* CL_DEVICE_OPENCL_C_VERSION */
  char driver[128];          /* CL_DRIVER_VERSION */
  unsigned compute_units;
  uint64_t global_mem_bytes;
  uint64_t max_alloc_bytes;
  size_t max_work_group_size;
  int fp16, fp64;            /* cl_khr_fp16 / cl_khr_fp64 supported */
  int is_gpu;
} clvae_device_info;

/* Every device of every platform that enumerated; platforms that failed are named in
 * `notes` (one line each) and skipped. */
typedef struct clvae_device_list {
  int count;
  clvae_device_info *devices;
  int platform_count;
  char (*platforms)[256];    /* names of all platforms, by index */
  char notes[2048];
} clvae_device_list;

CLVAE_API clvae_status clvae_enumerate(clvae_device_list *list);
CLVAE_API void clvae_device_list_free(clvae_device_list *list);

/* Picks a device. `platform` and `device` are NULL, an index, or a case-insensitive part
 * of the name. A device index counts within the chosen platform (with no platform given:
 * the platform of the default choice). With neither: the first GPU, else the first
 * device. On failure the message lists what exists. Sets *index into list->devices. */
CLVAE_API clvae_status clvae_select(const clvae_device_list *list, const char *platform,
                                    const char *device, int *index);

typedef struct clvae_device_options {
  int profiling;             /* create the queue with CL_QUEUE_PROFILING_ENABLE */
} clvae_device_options;

CLVAE_API clvae_status clvae_device_create(clvae_device **out, const clvae_device_info *info,
                                           const clvae_device_options *opt);
/* Enumerate + select + create in one call. */
CLVAE_API clvae_status clvae_device_open(clvae_device **out, const char *platform,
                                         const char *device, const clvae_device_options *opt);
CLVAE_API void clvae_device_free(clvae_device *dev);

CLVAE_API const clvae_device_info *clvae_device_get_info(const clvae_device *dev);
/* Local size of the 1-D element-wise kernels (0: the default). Results never depend on
 * it; tests change it to prove that. */
CLVAE_API void clvae_device_set_local_size(clvae_device *dev, size_t local);
/* Waits for everything enqueued so far. */
CLVAE_API clvae_status clvae_device_finish(clvae_device *dev);
/* Hands everything enqueued so far to the device without waiting (clFlush): a driver that
 * batches commands would otherwise leave the device idle while the host enqueues. */
CLVAE_API clvae_status clvae_device_flush(clvae_device *dev);

/* Host memory for staging copies: allocated by the driver (CL_MEM_ALLOC_HOST_PTR, pinned
 * where it can be) and mapped once, so that reads and writes through *ptr are direct DMA
 * rather than staged through pageable memory; unmapped and released by free. */
typedef struct clvae_host_buffer clvae_host_buffer;
CLVAE_API clvae_status clvae_host_buffer_create(clvae_device *dev, size_t bytes, clvae_host_buffer **out, void **ptr);
CLVAE_API void clvae_host_buffer_free(clvae_device *dev, clvae_host_buffer *hb);

/* Per-kernel device time from OpenCL profiling events (the device must have been created
 * with profiling). Between start and stop every launch records an event; stop waits for
 * the queue and sums the times by kernel name. CLBlast calls appear as "clblast_sgemm"
 * (the event CLBlast returns: the last kernel of each call). */
typedef struct clvae_kernel_time {
  const char *kernel;
  int launches;
  double ms;
} clvae_kernel_time;
CLVAE_API clvae_status clvae_profile_start(clvae_device *dev);
CLVAE_API clvae_status clvae_profile_stop(clvae_device *dev, clvae_kernel_time *out, int max, int *n);

CLVAE_API clvae_status clvae_buffer_create(clvae_device *dev, size_t bytes, clvae_buffer **out);
CLVAE_API void clvae_buffer_free(clvae_buffer *buf);
CLVAE_API size_t clvae_buffer_size(const clvae_buffer *buf);
/* Host -> device; non-blocking writes must keep `src` alive until the next finish. */
CLVAE_API clvae_status clvae_buffer_write(clvae_device *dev, clvae_buffer *buf, size_t offset,
                                          size_t bytes, const void *src, int blocking);
/* Device -> host, blocking. */
CLVAE_API clvae_status clvae_buffer_read(clvae_device *dev, const clvae_buffer *buf,
                                         size_t offset, size_t bytes, void *dst);
/* Device -> host without waiting: *done completes when the copy has (after everything
 * enqueued before it); dst must stay valid until then. clvae_event_wait waits and frees it. */
typedef struct clvae_event clvae_event;
CLVAE_API clvae_status clvae_buffer_read_async(clvae_device *dev, const clvae_buffer *buf, size_t offset,
                                               size_t bytes, void *dst, clvae_event **done);
CLVAE_API clvae_status clvae_event_wait(clvae_event *ev);
CLVAE_API clvae_status clvae_buffer_zero(clvae_device *dev, clvae_buffer *buf, size_t offset,
                                         size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
