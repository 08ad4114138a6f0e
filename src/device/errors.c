/* Names for statuses and OpenCL/CLBlast error codes, and the library's one error channel:
 * the message of the last failure on each thread. */
#include <stdio.h>
#include <string.h>

#include "device/internal.h"

const char *clvae_version(void) { return CLVAE_VERSION; }

const char *clvae_status_name(clvae_status s) {
  switch (s) {
  case CLVAE_OK: return "ok";
  case CLVAE_ERR_OPENCL: return "OpenCL error";
  case CLVAE_ERR_NO_PLATFORM: return "no OpenCL platform";
  case CLVAE_ERR_NOT_FOUND: return "not found";
  case CLVAE_ERR_BUILD: return "kernel build failed";
  case CLVAE_ERR_ARG: return "invalid argument";
  case CLVAE_ERR_IO: return "I/O error";
  case CLVAE_ERR_FORMAT: return "invalid file format";
  case CLVAE_ERR_NOMEM: return "out of host memory";
  case CLVAE_INTERRUPTED: return "interrupted";
  case CLVAE_ERR_DIVERGED: return "training diverged";
  case CLVAE_ERR_LIMIT: return "too large";
  case CLVAE_ERR_EXISTS: return "already exists";
  case CLVAE_ERR_COMM: return "MPI communication failed";
  case CLVAE_ERR_WRITE: return "write failed";
  }
  return "unknown status";
}

const char *clvae_cl_error_name(int code) {
  switch (code) {
#define N(c) case c: return #c
  N(CL_SUCCESS); N(CL_DEVICE_NOT_FOUND); N(CL_DEVICE_NOT_AVAILABLE);
  N(CL_COMPILER_NOT_AVAILABLE); N(CL_MEM_OBJECT_ALLOCATION_FAILURE); N(CL_OUT_OF_RESOURCES);
  N(CL_OUT_OF_HOST_MEMORY); N(CL_PROFILING_INFO_NOT_AVAILABLE); N(CL_MEM_COPY_OVERLAP);
  N(CL_IMAGE_FORMAT_MISMATCH); N(CL_IMAGE_FORMAT_NOT_SUPPORTED); N(CL_BUILD_PROGRAM_FAILURE);
  N(CL_MAP_FAILURE); N(CL_MISALIGNED_SUB_BUFFER_OFFSET);
  N(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST); N(CL_COMPILE_PROGRAM_FAILURE);
  N(CL_LINKER_NOT_AVAILABLE); N(CL_LINK_PROGRAM_FAILURE); N(CL_DEVICE_PARTITION_FAILED);
  N(CL_KERNEL_ARG_INFO_NOT_AVAILABLE); N(CL_INVALID_VALUE); N(CL_INVALID_DEVICE_TYPE);
  N(CL_INVALID_PLATFORM); N(CL_INVALID_DEVICE); N(CL_INVALID_CONTEXT);
  N(CL_INVALID_QUEUE_PROPERTIES); N(CL_INVALID_COMMAND_QUEUE); N(CL_INVALID_HOST_PTR);
  N(CL_INVALID_MEM_OBJECT); N(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR); N(CL_INVALID_IMAGE_SIZE);
  N(CL_INVALID_SAMPLER); N(CL_INVALID_BINARY); N(CL_INVALID_BUILD_OPTIONS);
  N(CL_INVALID_PROGRAM); N(CL_INVALID_PROGRAM_EXECUTABLE); N(CL_INVALID_KERNEL_NAME);
  N(CL_INVALID_KERNEL_DEFINITION); N(CL_INVALID_KERNEL); N(CL_INVALID_ARG_INDEX);
  N(CL_INVALID_ARG_VALUE); N(CL_INVALID_ARG_SIZE); N(CL_INVALID_KERNEL_ARGS);
  N(CL_INVALID_WORK_DIMENSION); N(CL_INVALID_WORK_GROUP_SIZE); N(CL_INVALID_WORK_ITEM_SIZE);
  N(CL_INVALID_GLOBAL_OFFSET); N(CL_INVALID_EVENT_WAIT_LIST); N(CL_INVALID_EVENT);
  N(CL_INVALID_OPERATION); N(CL_INVALID_GL_OBJECT); N(CL_INVALID_BUFFER_SIZE);
  N(CL_INVALID_MIP_LEVEL); N(CL_INVALID_GLOBAL_WORK_SIZE); N(CL_INVALID_PROPERTY);
  N(CL_INVALID_IMAGE_DESCRIPTOR); N(CL_INVALID_COMPILER_OPTIONS); N(CL_INVALID_LINKER_OPTIONS);
  N(CL_INVALID_DEVICE_PARTITION_COUNT);
#undef N
  case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
  /* CLBlast's own status codes (clblast_c.h). */
  case -1024: return "CLBlastNotImplemented";
  case -1022: return "CLBlastInvalidMatrixA";
  case -1021: return "CLBlastInvalidMatrixB";
  case -1020: return "CLBlastInvalidMatrixC";
  case -1019: return "CLBlastInvalidVectorX";
  case -1018: return "CLBlastInvalidVectorY";
  case -1017: return "CLBlastInvalidDimension";
  case -1016: return "CLBlastInvalidLeadDimA";
  case -1015: return "CLBlastInvalidLeadDimB";
  case -1014: return "CLBlastInvalidLeadDimC";
  case -1013: return "CLBlastInvalidIncrementX";
  case -1012: return "CLBlastInvalidIncrementY";
  case -1011: return "CLBlastInsufficientMemoryA";
  case -1010: return "CLBlastInsufficientMemoryB";
  case -1009: return "CLBlastInsufficientMemoryC";
  case -1008: return "CLBlastInsufficientMemoryX";
  case -1007: return "CLBlastInsufficientMemoryY";
  case -2049: return "CLBlastInsufficientMemoryTemp";
  case -2050: return "CLBlastInvalidBatchCount";
  case -2051: return "CLBlastInvalidOverrideKernel";
  case -2052: return "CLBlastMissingOverrideParameter";
  case -2053: return "CLBlastInvalidLocalMemUsage";
  case -2054: return "CLBlastNoHalfPrecision";
  case -2055: return "CLBlastNoDoublePrecision";
  case -2056: return "CLBlastInvalidVectorScalar";
  case -2057: return "CLBlastInsufficientMemoryScalar";
  case -2058: return "CLBlastDatabaseError";
  case -2059: return "CLBlastUnknownError";
  case -2060: return "CLBlastUnexpectedError";
  }
  return "CL_UNKNOWN_ERROR";
}

/* One message per thread: the library is used from the loader thread and the main thread
 * at once, and each must see its own failure. */
static _Thread_local char last_error[CLVAE_ERROR_MSG_SIZE];

const char *clvae_error_message(void) { return last_error; }

clvae_status clvae__fail(clvae_status st, const char *fmt, ...) {
  /* Formatted aside first: the arguments may include the previous message itself. */
  char msg[CLVAE_ERROR_MSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(last_error, msg, sizeof msg);
  return st;
}

clvae_status clvae__cl_fail(cl_int code, const char *call, const char *what, const char *file, int line) {
  return clvae__fail(CLVAE_ERR_OPENCL, "%s failed: %s (%d)%s%s%s at %s:%d", call, clvae_cl_error_name(code),
                     (int)code, what ? " [" : "", what ? what : "", what ? "]" : "", file, line);
}
