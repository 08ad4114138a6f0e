/* The device handle: context and in-order queue on one device, the programs built from
 * the embedded cl/ sources (or CLVAE_KERNEL_DIR), kernels, launches and buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/cl_sources.h"
#include "device/internal.h"

static const struct {
  const char *name;
  enum program_id program;
} kernel_table[K_COUNT] = {
  [K_GEMM_PACK_B] = {"gemm_pack_b", P_GEMM},
  [K_GEMM_TILE] = {"gemm_tile", P_GEMM},       [K_BIAS_ACT] = {"bias_act", P_ACT},
  [K_RELU_BWD] = {"relu_backward", P_ACT},     [K_COLSUM] = {"colsum", P_ACT},
  [K_SAMPLE_FWD] = {"sample_forward", P_SAMPLE}, [K_SAMPLE_BWD] = {"sample_backward", P_SAMPLE},
  [K_LOSS_MSE] = {"loss_sigmoid_mse", P_LOSS}, [K_LOSS_BCE] = {"loss_sigmoid_bce", P_LOSS},
  [K_ADAM] = {"adam", P_ADAM},                 [K_GATHER] = {"gather", P_DATA},
};

static const char *const program_names[P_COUNT] = {"gemm", "act", "sample", "loss", "adam", "data"};

const char *clvae__kernel_name(enum kernel_id k) { return kernel_table[k].name; }

/* CLVAE_GEMM_TUNE="mr,nv,lx,ly" overrides the builtin GEMM's parameters, for tuning
 * experiments (results stay correct for any positive values). */
static void gemm_overrides(clvae_device *dev) {
  const char *s = getenv("CLVAE_GEMM_TUNE");
  int v[4];
  if (s && sscanf(s, "%d,%d,%d,%d", &v[0], &v[1], &v[2], &v[3]) == 4 && v[0] > 0 && v[0] <= 16 && v[1] > 0 &&
      v[1] <= 4 && v[2] > 0 && v[3] > 0)
    dev->gemm_mr = v[0], dev->gemm_nv = v[1], dev->gemm_lx = v[2], dev->gemm_ly = v[3];
}

clvae_status clvae_device_create(clvae_device **out, const clvae_device_info *info,
                                 const clvae_device_options *opt) {
  cl_platform_id plats[32];
  cl_device_id devs[64];
  cl_uint np = 0, nd = 0;
  cl_int rc;
  clvae_status status = CLVAE_ERR_OPENCL;
  *out = NULL;
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
  /* Device quirks as build-time defines: a CPU wants big register blocks in explicit
   * float16 vectors (AVX-512) and one reduction per work-item; a GPU wants small blocks
   * and many threads. CLVAE_KERNEL_STYLE=cpu|gpu forces one set (tests run both). */
  const char *style = getenv("CLVAE_KERNEL_STYLE");
  int gpu = style && *style ? strcmp(style, "gpu") == 0 : info->is_gpu;
  dev->gemm_mr = gpu ? 4 : 8;
  dev->gemm_nv = gpu ? 1 : 2;
  dev->gemm_lx = gpu ? 8 : 2, dev->gemm_ly = gpu ? 8 : 4;
  gemm_overrides(dev);
  dev->colsum_w = gpu ? 1 : 16;
  dev->red_ls = 1; /* per-row reductions: a power of two, the tree halves it */
  while (gpu && dev->red_ls < 64 && (size_t)dev->red_ls * 2 <= info->max_work_group_size) dev->red_ls *= 2;
  clvae_device_set_local_size(dev, 0);
  /* Test hook: CLVAE_TEST_FAIL_LAUNCH=N makes the N-th kernel launch fail the way a real
   * CL_OUT_OF_RESOURCES would, to test what a failure in the middle of training leaves. */
  const char *fl = getenv("CLVAE_TEST_FAIL_LAUNCH");
  dev->fail_launch = fl ? atol(fl) : 0;
  if ((status = clvae_device_set_gemm(dev, opt ? opt->gemm : CLVAE_GEMM_AUTO)) != CLVAE_OK) goto fail;
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
  clvae__gemm_release(dev);
  clvae_buffer_free(dev->pack_b);
  clvae__release_programs(dev);
  for (int i = 0; i < dev->prof_n; i++) clReleaseEvent(dev->prof[i].ev);
  free(dev->prof);
  if (dev->queue) clReleaseCommandQueue(dev->queue);
  if (dev->ctx) clReleaseContext(dev->ctx);
  free(dev);
}

const clvae_device_info *clvae_device_get_info(const clvae_device *dev) { return &dev->info; }
clvae_gemm_impl clvae_device_gemm(const clvae_device *dev) { return dev->gemm; }

const char *clvae_gemm_impl_name(clvae_gemm_impl g) {
  switch (g) {
  case CLVAE_GEMM_AUTO: return "auto";
  case CLVAE_GEMM_BUILTIN: return "builtin";
  case CLVAE_GEMM_CLBLAST: return "clblast";
  }
  return "?";
}

int clvae_gemm_impl_parse(const char *s) {
  for (int g = CLVAE_GEMM_AUTO; g <= CLVAE_GEMM_CLBLAST; g++)
    if (strcmp(s, clvae_gemm_impl_name((clvae_gemm_impl)g)) == 0) return g;
  return -1;
}

clvae_status clvae_device_set_gemm(clvae_device *dev, clvae_gemm_impl g) {
  if (g == CLVAE_GEMM_AUTO) g = dev->info.is_gpu ? CLVAE_GEMM_CLBLAST : CLVAE_GEMM_BUILTIN;
  if (g != CLVAE_GEMM_BUILTIN && g != CLVAE_GEMM_CLBLAST)
    return clvae__fail(CLVAE_ERR_ARG, "unknown GEMM implementation %d", (int)g);
  dev->gemm = g;
  return CLVAE_OK;
}

void clvae_device_set_local_size(clvae_device *dev, size_t local) {
  size_t maxwg = dev->info.max_work_group_size ? dev->info.max_work_group_size : 1;
  if (local == 0) local = 256;
  dev->local_1d = local < maxwg ? local : maxwg;
}

clvae_status clvae_device_finish(clvae_device *dev) {
  cl_int rc = clFinish(dev->queue);
  return rc == CL_SUCCESS ? CLVAE_OK : CL_FAIL(rc, "clFinish", NULL);
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
    FILE *f = fopen(path, "rb");
    if (!f) return clvae__fail(CLVAE_ERR_IO, "cannot open kernel source %s (CLVAE_KERNEL_DIR)", path);
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

static clvae_status build_program(clvae_device *dev, enum program_id p) {
  const char *text;
  size_t len;
  char *owned, opts[256];
  cl_int rc;
  clvae_status st = program_source(program_names[p], &text, &len, &owned);
  if (st != CLVAE_OK) return st;
  cl_program prog = clCreateProgramWithSource(dev->ctx, 1, &text, &len, &rc);
  free(owned);
  if (rc != CL_SUCCESS) return CL_FAIL(rc, "clCreateProgramWithSource", program_names[p]);
  /* Denormals flushed, as the C reference does: PoCL keeps them by default, and Adam's
   * moments turn denormal after a few epochs (1.5-2x slower on some Intel CPUs). */
  snprintf(opts, sizeof opts, "-cl-std=CL1.2 -cl-denorms-are-zero -DMR=%d -DNV=%d -DRED_LS=%d -DCOLSUM_W=%d", dev->gemm_mr,
           dev->gemm_nv, dev->red_ls, dev->colsum_w);
  rc = clBuildProgram(prog, 1, &dev->id, opts, NULL, NULL);
  if (rc != CL_SUCCESS) {
    char log[6144] = "";
    clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    log[sizeof log - 1] = '\0';
    clReleaseProgram(prog);
    return clvae__fail(CLVAE_ERR_BUILD,
                       "clBuildProgram failed: %s (%d) [program cl/%s.cl, options '%s']\nbuild log:\n%s",
                       clvae_cl_error_name(rc), (int)rc, program_names[p], opts, log);
  }
  dev->programs[p] = prog;
  return CLVAE_OK;
}

clvae_status clvae__kernel(clvae_device *dev, enum kernel_id k, cl_kernel *out) {
  if (!dev->kernels[k]) {
    enum program_id p = kernel_table[k].program;
    cl_int rc;
    if (!dev->programs[p]) {
      clvae_status st = build_program(dev, p);
      if (st != CLVAE_OK) return st;
    }
    dev->kernels[k] = clCreateKernel(dev->programs[p], kernel_table[k].name, &rc);
    if (rc != CL_SUCCESS) return CL_FAIL(rc, "clCreateKernel", kernel_table[k].name);
  }
  *out = dev->kernels[k];
  return CLVAE_OK;
}

void clvae__release_programs(clvae_device *dev) {
  for (int k = 0; k < K_COUNT; k++)
    if (dev->kernels[k]) clReleaseKernel(dev->kernels[k]);
  for (int p = 0; p < P_COUNT; p++)
    if (dev->programs[p]) clReleaseProgram(dev->programs[p]);
  memset(dev->kernels, 0, sizeof dev->kernels);
  memset(dev->programs, 0, sizeof dev->programs);
}

clvae_status clvae__launch(clvae_device *dev, enum kernel_id k, cl_uint dims, const size_t *global,
                           const size_t *local, int nargs, const karg *args) {
  cl_kernel kern;
  size_t g[3], l[3];
  clvae_status st = clvae__kernel(dev, k, &kern);
  if (st != CLVAE_OK) return st;
  for (int i = 0; i < nargs; i++) {
    cl_int rc = clSetKernelArg(kern, (cl_uint)i, args[i].size, args[i].ptr);
    if (rc != CL_SUCCESS) {
      char what[96];
      snprintf(what, sizeof what, "kernel %s, argument %d", kernel_table[k].name, i);
      return CL_FAIL(rc, "clSetKernelArg", what);
    }
  }
  for (cl_uint d = 0; d < dims; d++) {
    l[d] = local ? local[d] : dev->local_1d;
    if (global[d] == 0) return CLVAE_OK; /* nothing to do */
    g[d] = (global[d] + l[d] - 1) / l[d] * l[d];
  }
  cl_event *ev = clvae__prof_event(dev, kernel_table[k].name);
  cl_int rc = ++dev->launches == dev->fail_launch ? CL_OUT_OF_RESOURCES
                                                  : clEnqueueNDRangeKernel(dev->queue, kern, dims, NULL, g, l, 0, NULL, ev);
  if (rc != CL_SUCCESS) {
    clvae__prof_cancel(dev, ev);
    return CL_FAIL(rc, "clEnqueueNDRangeKernel", kernel_table[k].name);
  }
  return CLVAE_OK;
}

clvae_status clvae_device_build_all(clvae_device *dev) {
  for (int p = 0; p < P_COUNT; p++)
    if (!dev->programs[p]) {
      clvae_status st = build_program(dev, (enum program_id)p);
      if (st != CLVAE_OK) return st;
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
    return clvae__fail(CLVAE_ERR_ARG,
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
  b->size = bytes;
  *out = b;
  return CLVAE_OK;
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
