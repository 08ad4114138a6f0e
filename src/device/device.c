/* The device handle: context and in-order queue on one device; the programs, kernels and
 * per-device state that ops register on first use (built from the embedded cl/ sources,
 * or CLVAE_KERNEL_DIR); launches, profiling and buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/cl_sources.h"
#include "clvae/files.h"
#include "device/internal.h"

clvae_status clvae_device_create(clvae_device **out, const clvae_device_info *info,
                                 const clvae_device_options *opt) {
  cl_platform_id plats[32];
  cl_device_id devs[64];
  cl_uint np = 0, nd = 0;
  cl_int rc;
  clvae_status status = CLVAE_ERR_OPENCL;
  *out = NULL;
  /* CLVAE_KERNEL_STYLE=cpu|gpu forces a kernel style (lower case; empty is unset): any
   * other value is refused rather than taken for one of them */
  const char *style = getenv("CLVAE_KERNEL_STYLE");
  if (style && *style && strcmp(style, "cpu") && strcmp(style, "gpu"))
    return clvae__fail(CLVAE_ERR_ARG, "CLVAE_KERNEL_STYLE='%.40s' is neither cpu nor gpu (lower case; empty or unset: "
                       "the device's own style)", style);
  clvae_device *dev = calloc(1, sizeof *dev);
  if (!dev) return clvae__fail(CLVAE_ERR_NOMEM, "out of memory creating a device handle");
  dev->info = *info;
  rc = clGetPlatformIDs(32, plats, &np);
  if (rc != CL_SUCCESS || (cl_uint)info->platform_index >= np) goto gone;
  rc = clGetDeviceIDs(plats[info->platform_index], CL_DEVICE_TYPE_ALL, 64, devs, &nd);
  if (rc != CL_SUCCESS || (cl_uint)info->device_index >= nd) goto gone;
  dev->platform = plats[info->platform_index];
  dev->id = devs[info->device_index];

  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)dev->platform, 0};
  dev->ctx = clCreateContext(props, 1, &dev->id, NULL, NULL, &rc);
  if (rc != CL_SUCCESS) {
    clvae__fail(status, "clCreateContext failed: %s (%d) [device '%s']",
               clvae_cl_error_name(rc), (int)rc, info->name);
    goto fail;
  }
  cl_command_queue_properties qp = (opt && opt->profiling) ? CL_QUEUE_PROFILING_ENABLE : 0;
  dev->queue = clCreateCommandQueue(dev->ctx, dev->id, qp, &rc);
  dev->profiling = qp != 0;
  if (rc != CL_SUCCESS) {
    clvae__fail(CLVAE_ERR_OPENCL, "clCreateCommandQueue failed: %s (%d) [device '%s']",
               clvae_cl_error_name(rc), (int)rc, info->name);
    goto fail;
  }
  /* Ops choose their build-time defines by device style: a CPU wants big register blocks
   * in explicit vectors, a GPU small blocks and many threads. CLVAE_KERNEL_STYLE=cpu|gpu
   * forces one (the tests run both on one device). */
  dev->gpu_style = style && *style ? strcmp(style, "gpu") == 0 : info->is_gpu;
  clvae_device_set_local_size(dev, 0);
#ifdef CLVAE_TEST_HOOKS
  /* Test hook (test builds only): CLVAE_TEST_FAIL_LAUNCH=N makes the N-th kernel launch
   * fail the way a real CL_OUT_OF_RESOURCES would, to test what a failure in the middle of
   * training leaves. */
  const char *fl = getenv("CLVAE_TEST_FAIL_LAUNCH");
  dev->fail_launch = fl ? atol(fl) : 0;
#endif
  *out = dev;
  return CLVAE_OK;
gone:
  status = clvae__fail(CLVAE_ERR_NOT_FOUND, "OpenCL device %d.%d ('%s') is no longer available",
             info->platform_index, info->device_index, info->name);
fail:
  clvae_device_free(dev);
  return status;
}

clvae_status clvae_device_open(clvae_device **out, const char *platform, const char *device,
                               const clvae_device_options *opt) {
  clvae_device_list list;
  int idx = -1;
  *out = NULL;
  clvae_status st = clvae_enumerate(&list);
  if (st != CLVAE_OK) return st;
  st = clvae_select(&list, platform, device, &idx);
  if (st == CLVAE_OK) st = clvae_device_create(out, &list.devices[idx], opt);
  clvae_device_list_free(&list);
  return st;
}

void clvae_device_free(clvae_device *dev) {
  if (!dev) return;
  if (dev->queue) clFinish(dev->queue);
  for (int i = dev->nstates - 1; i >= 0; i--) { /* ops' state: scratch buffers, library caches */
    if (dev->states[i].def->release) dev->states[i].def->release(dev, dev->states[i].state);
    free(dev->states[i].state);
  }
  free(dev->states);
  for (int i = 0; i < dev->nkernels; i++) clReleaseKernel(dev->kernels[i].kernel);
  for (int i = 0; i < dev->nprograms; i++) clReleaseProgram(dev->programs[i].prog);
  free(dev->kernels), free(dev->programs);
  for (int i = 0; i < dev->prof_n; i++) clReleaseEvent(dev->prof[i].ev);
  free(dev->prof);
  if (dev->queue) clReleaseCommandQueue(dev->queue);
  if (dev->ctx) clReleaseContext(dev->ctx);
  free(dev);
}

const clvae_device_info *clvae_device_get_info(const clvae_device *dev) { return &dev->info; }
void clvae_device_set_local_size(clvae_device *dev, size_t local) {
  size_t maxwg = dev->info.max_work_group_size ? dev->info.max_work_group_size : 1;
  if (local == 0) local = 256;
  dev->local_1d = local < maxwg ? local : maxwg;
}

clvae_status clvae_device_finish(clvae_device *dev) {
  cl_int rc = clFinish(dev->queue);
  return rc == CL_SUCCESS ? CLVAE_OK : CL_FAIL(rc, "clFinish", NULL);
}

clvae_status clvae_device_flush(clvae_device *dev) {
  cl_int rc = clFlush(dev->queue);
  return rc == CL_SUCCESS ? CLVAE_OK : CL_FAIL(rc, "clFlush", NULL);
}

/* ---- programs and kernels ---- */

/* The source of program `name`: from $CLVAE_KERNEL_DIR/name.cl if set, else embedded.
 * *owned is set when the caller must free the text. */
static clvae_status program_source(const char *name, const char **text,
                                   size_t *len, char **owned) {
  const char *dir = getenv("CLVAE_KERNEL_DIR");
  *owned = NULL;
  if (dir && *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.cl", dir, name);
    FILE *f;
    if (clvae_fopen_regular(path, &f) != CLVAE_OK)
      return clvae__fail(CLVAE_ERR_IO, "kernel source (CLVAE_KERNEL_DIR): %s", clvae_error_message());
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
      if (n + 65536 > cap) {
        char *nb = realloc(buf, cap = n + 65536);
        if (!nb) { free(buf); fclose(f); return clvae__fail(CLVAE_ERR_NOMEM, "out of memory reading %s", path); }
        buf = nb;
      }
      got = fread(buf + n, 1, cap - n, f);
      n += got;
    } while (got > 0);
    fclose(f);
    *owned = buf;
    *text = buf;
    *len = n;
    return CLVAE_OK;
  }
  for (const struct clvae_cl_source *s = clvae_cl_sources; s->name; s++)
    if (strcmp(s->name, name) == 0) {
      *text = s->text;
      *len = (size_t)s->length;
      return CLVAE_OK;
    }
  return clvae__fail(CLVAE_ERR_BUILD, "no embedded kernel source '%s'", name);
}

/* Grows a cache array by one slot; NULL when out of memory. */
static void *grow(void *arr, int n, size_t elem) {
  return realloc(arr, (size_t)(n + 1) * elem);
}

static cl_program find_program(const clvae_device *dev, const clvae_program_def *def) {
  for (int i = 0; i < dev->nprograms; i++)
    if (dev->programs[i].def == def) return dev->programs[i].prog;
  return NULL;
}

/* The OpenCL C version a device compiles ("OpenCL C 1.2 pocl" -> 12); 0 if unreadable. */
static int opencl_c_version(const clvae_device *dev) {
  int major = 0, minor = 0;
  if (sscanf(dev->info.version, "OpenCL C %d.%d", &major, &minor) != 2) return 0;
  return major * 10 + minor;
}

clvae_status clvae__build_options(clvae_device *dev, const clvae_program_def *def, char *opts, size_t n) {
  char defines[256] = "";
  int v = opencl_c_version(dev);
  /* The kernels are OpenCL C 1.1 as well as 1.2 (tests/test_gpu_compilers.py compiles them
   * as both): a 1.1 device is asked for 1.1, which -cl-std=CL1.2 would make it refuse. */
  if (v < 11)
    return clvae__fail(CLVAE_ERR_BUILD, "%s speaks '%s'; clvae's kernels need OpenCL C 1.1 or later",
                       dev->info.name, dev->info.version);
  if (def->defines) def->defines(dev, defines, sizeof defines);
  /* Denormals flushed, as the C reference does: PoCL keeps them by default, and Adam's
   * moments turn denormal after a few epochs (1.5-2x slower on some Intel CPUs). */
  snprintf(opts, n, "-cl-std=CL1.%d -cl-denorms-are-zero %s", v >= 12 ? 2 : 1, defines);
  return CLVAE_OK;
}

clvae_status clvae__build(clvae_device *dev, const clvae_program_def *def) {
  const char *text;
  size_t len;
  char *owned, opts[512];
  cl_int rc;
  if (find_program(dev, def)) return CLVAE_OK;
  struct built_program *bp = grow(dev->programs, dev->nprograms, sizeof *bp);
  const char *src = def->source ? def->source : def->name;
  if (!bp) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory building cl/%s.cl", src);
  dev->programs = bp;
  clvae_status st = program_source(src, &text, &len, &owned);
  if (st != CLVAE_OK) return st;
  cl_program prog = clCreateProgramWithSource(dev->ctx, 1, &text, &len, &rc);
  free(owned);
  if (rc != CL_SUCCESS) return CL_FAIL(rc, "clCreateProgramWithSource", src);
  if ((st = clvae__build_options(dev, def, opts, sizeof opts)) != CLVAE_OK) {
    clReleaseProgram(prog);
    return st;
  }
  rc = clBuildProgram(prog, 1, &dev->id, opts, NULL, NULL);
  if (rc != CL_SUCCESS) {
    char log[6144] = "";
    clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    log[sizeof log - 1] = '\0';
    clReleaseProgram(prog);
    /* PoCL says no more than "failed to build" when its kernel cache is not writable */
    int pocl = strstr(dev->info.platform, "Portable Computing Language") != NULL;
    return clvae__fail(CLVAE_ERR_BUILD, "clBuildProgram failed: %s (%d) [program cl/%s.cl, options '%s']\nbuild log:\n%s%s",
                       clvae_cl_error_name(rc), (int)rc, src, opts, log,
                       pocl ? "\n(PoCL: if the log says nothing more, check that its kernel cache, $POCL_CACHE_DIR "
                              "or ~/.cache/pocl, is writable)" : "");
  }
  dev->programs[dev->nprograms++] = (struct built_program){def, prog};
  return CLVAE_OK;
}

/* The kernel, building its program on first use. */
static clvae_status kernel_of(clvae_device *dev, const clvae_kernel_def *def, cl_kernel *out) {
  for (int i = 0; i < dev->nkernels; i++)
    if (dev->kernels[i].def == def) return *out = dev->kernels[i].kernel, CLVAE_OK;
  struct built_kernel *bk = grow(dev->kernels, dev->nkernels, sizeof *bk);
  if (!bk) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory creating kernel %s", def->name);
  dev->kernels = bk;
  clvae_status st = clvae__build(dev, def->program);
  if (st != CLVAE_OK) return st;
  cl_int rc;
  cl_kernel k = clCreateKernel(find_program(dev, def->program), def->name, &rc);
  if (rc != CL_SUCCESS) return CL_FAIL(rc, "clCreateKernel", def->name);
  size_t max_wg = 0, reqd[3] = {0, 0, 0};
  rc = clGetKernelWorkGroupInfo(k, dev->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
  if (rc == CL_SUCCESS) rc = clGetKernelWorkGroupInfo(k, dev->id, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof reqd, reqd, NULL);
  if (rc != CL_SUCCESS) {
    clReleaseKernel(k);
    return CL_FAIL(rc, "clGetKernelWorkGroupInfo", def->name);
  }
#ifdef CLVAE_TEST_HOOKS
  /* Test hook (test builds only): CLVAE_TEST_KERNEL_WG=N lowers every kernel's limit to N,
   * as a driver does for a register-heavy kernel (Mali, Apple, NVIDIA). */
  const char *lim = getenv("CLVAE_TEST_KERNEL_WG");
  if (lim && atol(lim) > 0 && (size_t)atol(lim) < max_wg) max_wg = (size_t)atol(lim);
#endif
  size_t req = reqd[0] ? reqd[0] * (reqd[1] ? reqd[1] : 1) * (reqd[2] ? reqd[2] : 1) : 0;
  if (req > max_wg) {
    clReleaseKernel(k);
    return clvae__fail(CLVAE_ERR_LIMIT, "kernel %s needs work-groups of %zu work-items; the device '%s' allows it %zu",
                       def->name, req, dev->info.name, max_wg);
  }
  dev->kernels[dev->nkernels++] = (struct built_kernel){def, k, max_wg ? max_wg : 1, req};
  *out = k;
  return CLVAE_OK;
}

/* The kernel's cache entry (after kernel_of). */
static const struct built_kernel *kernel_entry(const clvae_device *dev, cl_kernel k) {
  for (int i = 0; i < dev->nkernels; i++)
    if (dev->kernels[i].kernel == k) return &dev->kernels[i];
  return NULL;
}

size_t clvae__kernel_max_wg(clvae_device *dev, const clvae_kernel_def *def) {
  cl_kernel k;
  if (kernel_of(dev, def, &k) != CLVAE_OK) return 0;
  return kernel_entry(dev, k)->max_wg;
}

void *clvae__state(clvae_device *dev, const clvae_state_def *def) {
  for (int i = 0; i < dev->nstates; i++)
    if (dev->states[i].def == def) return dev->states[i].state;
  struct op_state *os = grow(dev->states, dev->nstates, sizeof *os);
  void *state = calloc(1, def->size);
  if (os) dev->states = os;
  if (!os || !state) {
    free(state);
    clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
    return NULL;
  }
  if (def->init && def->init(dev, state) != CLVAE_OK) {
    free(state);
    return NULL;
  }
  dev->states[dev->nstates++] = (struct op_state){def, state};
  return state;
}

clvae_status clvae__launch(clvae_device *dev, const clvae_kernel_def *k, cl_uint dims, const size_t *global,
                           const size_t *local, int nargs, const karg *args) {
  cl_kernel kern = NULL;
  size_t g[3], l[3];
  clvae_status st = kernel_of(dev, k, &kern);
  if (st != CLVAE_OK) return st;
  for (int i = 0; i < nargs; i++) {
    cl_int rc = clSetKernelArg(kern, (cl_uint)i, args[i].size, args[i].ptr);
    if (rc != CL_SUCCESS) {
      char what[96];
      snprintf(what, sizeof what, "kernel %s, argument %d", k->name, i);
      return CL_FAIL(rc, "clSetKernelArg", what);
    }
  }
  const struct built_kernel *bk = kernel_entry(dev, kern);
  size_t wg = 1;
  for (cl_uint d = 0; d < dims; d++) {
    l[d] = local ? local[d] : dev->local_1d;
    if (global[d] == 0) return CLVAE_OK; /* nothing to do */
    wg *= l[d];
  }
  while (!bk->reqd && wg > bk->max_wg) { /* the kernel's own limit: halve the largest dimension */
    cl_uint big = 0;
    for (cl_uint d = 1; d < dims; d++)
      if (l[d] > l[big]) big = d;
    wg /= l[big], l[big] = (l[big] + 1) / 2, wg *= l[big];
  }
  for (cl_uint d = 0; d < dims; d++) g[d] = (global[d] + l[d] - 1) / l[d] * l[d];
  cl_event *ev = clvae__prof_event(dev, k->name);
  cl_int rc = ++dev->launches == dev->fail_launch ? CL_OUT_OF_RESOURCES
                                                  : clEnqueueNDRangeKernel(dev->queue, kern, dims, NULL, g, l, 0, NULL, ev);
  if (rc != CL_SUCCESS) {
    clvae__prof_cancel(dev, ev);
    return CL_FAIL(rc, "clEnqueueNDRangeKernel", k->name);
  }
  return CLVAE_OK;
}

/* ---- profiling ---- */

cl_event *clvae__prof_event(clvae_device *dev, const char *name) {
  if (!dev->prof_on) return NULL;
  if (dev->prof_n == dev->prof_cap) {
    int cap = dev->prof_cap ? 2 * dev->prof_cap : 1024;
    struct prof_event *p = realloc(dev->prof, (size_t)cap * sizeof *p);
    if (!p) return NULL; /* out of memory: this launch goes untimed */
    dev->prof = p, dev->prof_cap = cap;
  }
  dev->prof[dev->prof_n].name = name;
  return &dev->prof[dev->prof_n++].ev;
}

void clvae__prof_cancel(clvae_device *dev, const cl_event *slot) {
  if (slot && dev->prof_n > 0 && slot == &dev->prof[dev->prof_n - 1].ev) dev->prof_n--;
}

clvae_status clvae_profile_start(clvae_device *dev) {
  if (!dev->profiling)
    return clvae__fail(CLVAE_ERR_ARG, "profiling needs a device created with the profiling option");
  dev->prof_on = 1;
  return CLVAE_OK;
}

clvae_status clvae_profile_stop(clvae_device *dev, clvae_kernel_time *out, int max, int *n) {
  clvae_status st = clvae_device_finish(dev);
  *n = 0;
  for (int i = 0; i < dev->prof_n; i++) {
    cl_ulong t0 = 0, t1 = 0;
    cl_int rc = clGetEventProfilingInfo(dev->prof[i].ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
    if (rc == CL_SUCCESS) rc = clGetEventProfilingInfo(dev->prof[i].ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
    if (rc != CL_SUCCESS && st == CLVAE_OK) st = CL_FAIL(rc, "clGetEventProfilingInfo", dev->prof[i].name);
    clReleaseEvent(dev->prof[i].ev);
    int j = 0;
    while (j < *n && strcmp(out[j].kernel, dev->prof[i].name) != 0) j++;
    if (j == *n) {
      if (*n == max) continue;
      out[(*n)++] = (clvae_kernel_time){dev->prof[i].name, 0, 0.0};
    }
    out[j].launches++;
    out[j].ms += rc == CL_SUCCESS ? (double)(t1 - t0) * 1e-6 : 0.0;
  }
  dev->prof_n = 0, dev->prof_on = 0;
  return st;
}

/* ---- buffers ---- */

clvae_status clvae_buffer_create(clvae_device *dev, size_t bytes, clvae_buffer **out) {
  cl_int rc;
  *out = NULL;
  if (bytes == 0) bytes = 4; /* OpenCL refuses empty buffers */
  if (bytes > dev->info.max_alloc_bytes && dev->info.max_alloc_bytes)
    return clvae__fail(CLVAE_ERR_LIMIT,
                       "buffer of %zu bytes exceeds the device's CL_DEVICE_MAX_MEM_ALLOC_SIZE "
                       "of %llu bytes ('%s')", bytes,
                       (unsigned long long)dev->info.max_alloc_bytes, dev->info.name);
  clvae_buffer *b = calloc(1, sizeof *b);
  if (!b) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  b->mem = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes, NULL, &rc);
  if (rc != CL_SUCCESS) {
    free(b);
    char what[64];
    snprintf(what, sizeof what, "%zu bytes", bytes);
    return CL_FAIL(rc, "clCreateBuffer", what);
  }
#ifdef CLVAE_TEST_HOOKS
  /* Test hook (test builds only): CLVAE_TEST_POISON=1 fills every new buffer with NaNs, so
   * that a result read from memory nobody wrote shows (PoCL hands out zeroed pages). */
  const char *poison = getenv("CLVAE_TEST_POISON");
  if (poison && *poison == '1') {
    const unsigned char nan = 0xFF;
    rc = clEnqueueFillBuffer(dev->queue, b->mem, &nan, 1, 0, bytes, 0, NULL, NULL);
    if (rc == CL_SUCCESS) rc = clFinish(dev->queue);
    if (rc != CL_SUCCESS) {
      clReleaseMemObject(b->mem), free(b);
      return CL_FAIL(rc, "clEnqueueFillBuffer", "poisoning a new buffer");
    }
  }
#endif
  b->size = bytes;
  *out = b;
  return CLVAE_OK;
}

struct clvae_host_buffer {
  cl_mem mem;
  void *ptr;
};

clvae_status clvae_host_buffer_create(clvae_device *dev, size_t bytes, clvae_host_buffer **out, void **ptr) {
  cl_int rc;
  clvae_host_buffer *hb = calloc(1, sizeof *hb);
  *out = NULL, *ptr = NULL;
  if (!hb) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  hb->mem = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes ? bytes : 4, NULL, &rc);
  if (rc != CL_SUCCESS) {
    free(hb);
    return CL_FAIL(rc, "clCreateBuffer", "staging host memory (CL_MEM_ALLOC_HOST_PTR)");
  }
  hb->ptr = clEnqueueMapBuffer(dev->queue, hb->mem, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, bytes ? bytes : 4, 0, NULL,
                               NULL, &rc);
  if (rc != CL_SUCCESS) {
    clReleaseMemObject(hb->mem), free(hb);
    return CL_FAIL(rc, "clEnqueueMapBuffer", "staging host memory");
  }
  *out = hb, *ptr = hb->ptr;
  return CLVAE_OK;
}

void clvae_host_buffer_free(clvae_device *dev, clvae_host_buffer *hb) {
  if (!hb) return;
  cl_event ev = NULL;
  if (clEnqueueUnmapMemObject(dev->queue, hb->mem, hb->ptr, 0, NULL, &ev) == CL_SUCCESS && ev)
    clWaitForEvents(1, &ev), clReleaseEvent(ev);
  clReleaseMemObject(hb->mem);
  free(hb);
}

void clvae_buffer_free(clvae_buffer *buf) {
  if (!buf) return;
  if (buf->mem) clReleaseMemObject(buf->mem);
  free(buf);
}

size_t clvae_buffer_size(const clvae_buffer *buf) { return buf->size; }

static clvae_status check_range(const clvae_buffer *buf, size_t offset,
                                size_t bytes, const char *what) {
  if (offset > buf->size || bytes > buf->size - offset)
    return clvae__fail(CLVAE_ERR_ARG, "%s of %zu bytes at offset %zu is outside a %zu-byte buffer",
                       what, bytes, offset, buf->size);
  return CLVAE_OK;
}

clvae_status clvae_buffer_write(clvae_device *dev, clvae_buffer *buf, size_t offset, size_t bytes,
                                const void *src, int blocking) {
  clvae_status st = check_range(buf, offset, bytes, "write");
  if (st != CLVAE_OK || bytes == 0) return st;
  cl_int rc = clEnqueueWriteBuffer(dev->queue, buf->mem, blocking ? CL_TRUE : CL_FALSE, offset,
                                   bytes, src, 0, NULL, NULL);
  return rc == CL_SUCCESS ? CLVAE_OK : CL_FAIL(rc, "clEnqueueWriteBuffer", NULL);
}

clvae_status clvae_buffer_read(clvae_device *dev, const clvae_buffer *buf, size_t offset,
                               size_t bytes, void *dst) {
  clvae_status st = check_range(buf, offset, bytes, "read");
  if (st != CLVAE_OK || bytes == 0) return st;
  cl_int rc = clEnqueueReadBuffer(dev->queue, buf->mem, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
  return rc == CL_SUCCESS ? CLVAE_OK : CL_FAIL(rc, "clEnqueueReadBuffer", NULL);
}

struct clvae_event {
  cl_event ev;
};

clvae_status clvae_buffer_read_async(clvae_device *dev, const clvae_buffer *buf, size_t offset, size_t bytes,
                                     void *dst, clvae_event **done) {
  *done = NULL;
  clvae_status st = check_range(buf, offset, bytes, "read");
  if (st != CLVAE_OK) return st;
  clvae_event *e = calloc(1, sizeof *e);
  if (!e) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  cl_int rc = clEnqueueReadBuffer(dev->queue, buf->mem, CL_FALSE, offset, bytes, dst, 0, NULL, &e->ev);
  if (rc != CL_SUCCESS) {
    free(e);
    return CL_FAIL(rc, "clEnqueueReadBuffer", "non-blocking");
  }
  *done = e;
  return CLVAE_OK;
}

clvae_status clvae_event_wait(clvae_event *e) {
  if (!e) return CLVAE_OK;
  cl_int rc = clWaitForEvents(1, &e->ev);
  clReleaseEvent(e->ev);
  free(e);
  return rc == CL_SUCCESS ? CLVAE_OK : CL_FAIL(rc, "clWaitForEvents", "a non-blocking read");
}

clvae_status clvae_buffer_zero(clvae_device *dev, clvae_buffer *buf, size_t offset, size_t bytes) {
  clvae_status st = check_range(buf, offset, bytes, "fill");
  if (st != CLVAE_OK || bytes == 0) return st;
  const cl_uchar zero = 0;
  cl_int rc = clEnqueueFillBuffer(dev->queue, buf->mem, &zero, 1, offset, bytes, 0, NULL, NULL);
  return rc == CL_SUCCESS ? CLVAE_OK : CL_FAIL(rc, "clEnqueueFillBuffer", NULL);
}

clvae_status clvae__view(const char *op, const char *name, clvae_view v,
                         size_t count, size_t elem, cl_uint *off) {
  if (!v.buf) return clvae__fail(CLVAE_ERR_ARG, "%s: %s has no buffer", op, name);
  if (v.off > 0xffffffffu || v.off > v.buf->size / elem || count > v.buf->size / elem - v.off)
    return clvae__fail(CLVAE_ERR_ARG,
                       "%s: %s of %zu elements at offset %zu does not fit its %zu-byte buffer",
                       op, name, count, v.off, v.buf->size);
  *off = (cl_uint)v.off;
  return CLVAE_OK;
}
