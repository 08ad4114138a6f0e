/* Platform and device enumeration, and the selection rules of --platform/--device:
 * an index or a case-insensitive part of the name; by default the first GPU. */
#define _DEFAULT_SOURCE /* dirent's d_name walk, RLIMIT_* */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "device/internal.h"

#define MAX_PLATFORMS 32
#define MAX_DEVICES 64

static void device_string(cl_device_id d, cl_device_info what, char *out, size_t n) {
  out[0] = '\0';
  if (clGetDeviceInfo(d, what, n, out, NULL) != CL_SUCCESS) snprintf(out, n, "?");
  out[n - 1] = '\0';
}

static const char *type_name(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return "GPU";
  if (t & CL_DEVICE_TYPE_CPU) return "CPU";
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
  if (t & CL_DEVICE_TYPE_CUSTOM) return "custom";
  return "other";
}

/* Fills the fields of one device; query failures leave zeros, never abort the listing. */
static void describe(cl_device_id d, clvae_device_info *info) {
  cl_device_type t = 0;
  cl_uint cu = 0;
  cl_ulong gmem = 0, amax = 0;
  size_t wg = 0;
  char ext[8192];
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof amax, &amax, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
  device_string(d, CL_DEVICE_NAME, info->name, sizeof info->name);
  device_string(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
  device_string(d, CL_DEVICE_OPENCL_C_VERSION, info->version, sizeof info->version);
  device_string(d, CL_DRIVER_VERSION, info->driver, sizeof info->driver);
  device_string(d, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
  snprintf(info->type, sizeof info->type, "%s", type_name(t));
  info->is_gpu = (t & CL_DEVICE_TYPE_GPU) != 0;
  info->compute_units = cu;
  info->global_mem_bytes = gmem;
  info->max_alloc_bytes = amax;
  info->max_work_group_size = wg;
  info->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
  info->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
}

/* Appends to buf (size n) what one ICD file says and what loading its library said. */
static void icd_report(const char *path, char *buf, size_t n) {
  char lib[1024] = "";
  FILE *f = fopen(path, "r");
  size_t used = strlen(buf);
  if (!f || !fgets(lib, sizeof lib, f)) {
    snprintf(buf + used, n - used, "%s%s (unreadable)", used ? "; " : "", path);
    if (f) fclose(f);
    return;
  }
  fclose(f);
  lib[strcspn(lib, "\r\n")] = '\0';
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  const char *why = h ? NULL : dlerror();
  snprintf(buf + used, n - used, "%s%s -> %s: %s", used ? "; " : "", path, lib,
           h ? "loads, but its driver reported no platform" : why ? why : "does not load");
  if (h) dlclose(h);
}

/* Why no platform answered: with no ICD file installed, how to install a driver; otherwise
 * each ICD file and what loading its library said, and the resource limits that commonly
 * make a driver fail (address space, open files). */
static clvae_status no_platform(void) {
  char files[2048] = "", limits[256] = "";
  const char *env = getenv("OCL_ICD_VENDORS"), *dir = env && *env ? env : "/etc/OpenCL/vendors";
  int n = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".icd")) continue;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    icd_report(path, files, sizeof files), n++;
  }
  if (d) closedir(d);
  else if (env && *env && access(env, F_OK) == 0) icd_report(env, files, sizeof files), n++; /* may name one file */
  if (!n)
    return clvae__fail(CLVAE_ERR_NO_PLATFORM,
                       "no OpenCL platform found: no ICD file in %s; install an OpenCL ICD loader and a driver "
                       "(on Debian/Ubuntu: apt-get install ocl-icd-libopencl1 pocl-opencl-icd; or your GPU vendor's "
                       "OpenCL driver)", dir);
  struct rlimit r;
  if (getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    snprintf(limits, sizeof limits, "; address space limited to %llu bytes (ulimit -v)", (unsigned long long)r.rlim_cur);
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY && r.rlim_cur < 256) {
    size_t used = strlen(limits);
    snprintf(limits + used, sizeof limits - used, "; %llu open files allowed (ulimit -n)", (unsigned long long)r.rlim_cur);
  }
  return clvae__fail(CLVAE_ERR_NO_PLATFORM, "no OpenCL platform answered, though %d ICD file%s %s installed: %s%s", n,
                     n == 1 ? "" : "s", n == 1 ? "is" : "are", files, limits);
}

static void note(clvae_device_list *list, const char *fmt, const char *a, const char *b) {
  size_t used = strlen(list->notes);
  snprintf(list->notes + used, sizeof list->notes - used, fmt, a, b);
}

clvae_status clvae_enumerate(clvae_device_list *list) {
  cl_platform_id plats[MAX_PLATFORMS];
  cl_uint np = 0;
  memset(list, 0, sizeof *list);
  cl_int rc = clGetPlatformIDs(MAX_PLATFORMS, plats, &np);
  if (rc == CL_PLATFORM_NOT_FOUND_KHR || (rc == CL_SUCCESS && np == 0)) return no_platform();
  if (rc != CL_SUCCESS)
    return clvae__fail(CLVAE_ERR_OPENCL, "clGetPlatformIDs failed: %s (%d)",
                      clvae_cl_error_name(rc), (int)rc);
  if (np > MAX_PLATFORMS) np = MAX_PLATFORMS;
  list->platforms = calloc(np, sizeof *list->platforms);
  list->devices = calloc((size_t)np * MAX_DEVICES, sizeof *list->devices);
  if (!list->platforms || !list->devices) {
    clvae_device_list_free(list);
    return clvae__fail(CLVAE_ERR_NOMEM, "out of memory listing OpenCL devices");
  }
  list->platform_count = (int)np;
  for (cl_uint p = 0; p < np; p++) {
    char *pname = list->platforms[p];
    if (clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, 256, pname, NULL) != CL_SUCCESS)
      snprintf(pname, 256, "platform %u", p);
    pname[255] = '\0';
    cl_device_id devs[MAX_DEVICES];
    cl_uint nd = 0;
    rc = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, &nd);
    if (rc == CL_DEVICE_NOT_FOUND) continue; /* an empty platform (Clover, rusticl unconfigured): listed quietly */
    if (rc != CL_SUCCESS) {
      note(list, "skipped platform '%s': clGetDeviceIDs failed: %s\n", pname,
           clvae_cl_error_name(rc));
      continue;
    }
    if (nd > MAX_DEVICES) nd = MAX_DEVICES;
    for (cl_uint d = 0; d < nd; d++) {
      clvae_device_info *info = &list->devices[list->count++];
      info->platform_index = (int)p;
      info->device_index = (int)d;
      snprintf(info->platform, sizeof info->platform, "%s", pname);
      describe(devs[d], info);
    }
  }
  return CLVAE_OK;
}

void clvae_device_list_free(clvae_device_list *list) {
  free(list->platforms);
  free(list->devices);
  list->platforms = NULL;
  list->devices = NULL;
  list->count = list->platform_count = 0;
}

/* A whole non-negative decimal number? Sets *v. */
static int parse_index(const char *s, int *v) {
  if (!*s) return 0;
  long x = 0;
  for (const char *c = s; *c; c++) {
    if (!isdigit((unsigned char)*c) || x > 100000) return 0;
    x = x * 10 + (*c - '0');
  }
  *v = (int)x;
  return 1;
}

static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

/* "platforms: 0 'A' (devices: 0 'x', 1 'y'); 1 'B' (...)" for error messages. */
static void describe_all(const clvae_device_list *l, char *out, size_t n) {
  size_t used = 0;
  used += (size_t)snprintf(out, n, "available:");
  for (int p = 0; p < l->platform_count && used < n; p++) {
    used += (size_t)snprintf(out + used, n - used, "\n  platform %d: %s", p, l->platforms[p]);
    for (int i = 0; i < l->count && used < n; i++)
      if (l->devices[i].platform_index == p)
        used += (size_t)snprintf(out + used, n - used, "\n    device %d: %s (%s)",
                                 l->devices[i].device_index, l->devices[i].name,
                                 l->devices[i].type);
  }
}

static int match_platform(const clvae_device_list *l, const char *spec) {
  int idx;
  if (parse_index(spec, &idx)) return idx < l->platform_count ? idx : -1;
  for (int p = 0; p < l->platform_count; p++)
    if (contains_nocase(l->platforms[p], spec)) return p;
  return -1;
}

/* The default among the devices of platform `p` (-1: any): first GPU, else first. */
static int default_device(const clvae_device_list *l, int p) {
  for (int i = 0; i < l->count; i++)
    if ((p < 0 || l->devices[i].platform_index == p) && l->devices[i].is_gpu) return i;
  for (int i = 0; i < l->count; i++)
    if (p < 0 || l->devices[i].platform_index == p) return i;
  return -1;
}

clvae_status clvae_select(const clvae_device_list *l, const char *platform, const char *device,
                          int *index) {
  char avail[1536];
  int p = -1, found = -1;
  describe_all(l, avail, sizeof avail);
  if (platform && *platform) {
    p = match_platform(l, platform);
    if (p < 0)
      return clvae__fail(CLVAE_ERR_NOT_FOUND, "no OpenCL platform matches '%s'; %s",
                        platform, avail);
  }
  if (device && *device) {
    int idx;
    if (parse_index(device, &idx)) {
      int plat = p >= 0 ? p : (default_device(l, -1) >= 0 ? l->devices[default_device(l, -1)].platform_index : 0);
      for (int i = 0; i < l->count; i++)
        if (l->devices[i].platform_index == plat && l->devices[i].device_index == idx) found = i;
    } else {
      for (int i = 0; i < l->count && found < 0; i++)
        if ((p < 0 || l->devices[i].platform_index == p) && contains_nocase(l->devices[i].name, device))
          found = i;
    }
    if (found < 0)
      return clvae__fail(CLVAE_ERR_NOT_FOUND, "no OpenCL device matches '%s'%s%s%s; %s",
                        device, p >= 0 ? " on platform '" : "", p >= 0 ? l->platforms[p] : "",
                        p >= 0 ? "'" : "", avail);
  } else {
    found = default_device(l, p);
    if (found < 0 && p >= 0)
      return clvae__fail(CLVAE_ERR_NOT_FOUND, "OpenCL platform '%s' has no device%s; %s", l->platforms[p],
                         contains_nocase(l->platforms[p], "portable") ? " (PoCL reports none when it cannot use its "
                         "kernel cache: check that $POCL_CACHE_DIR, or ~/.cache/pocl, is writable)" : "", avail);
    if (found < 0)
      return clvae__fail(CLVAE_ERR_NOT_FOUND, "no OpenCL platform has a device (a driver that cannot start lists "
                         "none: PoCL, for one, needs a writable kernel cache, $POCL_CACHE_DIR or ~/.cache/pocl); %s",
                         avail);
  }
  *index = found;
  return CLVAE_OK;
}
