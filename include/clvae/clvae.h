/* clvae: a portable OpenCL backend and VAE trainer.
 * This header holds what every layer shares: the export macro, status codes and the one
 * error channel that carries a human-readable message from the library to its caller. */
#ifndef CLVAE_CLVAE_H
#define CLVAE_CLVAE_H

#include <stddef.h>
#include <stdint.h>

#if defined(CLVAE_BUILDING) && defined(__GNUC__)
#define CLVAE_API __attribute__((visibility("default")))
#else
#define CLVAE_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Every fallible call returns one of these; the details are in one place, the message of
 * the last failure on the calling thread (clvae_error_message). */
typedef enum clvae_status {
  CLVAE_OK = 0,
  CLVAE_ERR_OPENCL,      /* an OpenCL or CLBlast call failed */
  CLVAE_ERR_NO_PLATFORM, /* no OpenCL platform is installed */
  CLVAE_ERR_NOT_FOUND,   /* a platform/device selection matched nothing */
  CLVAE_ERR_BUILD,       /* a kernel failed to compile; the message holds the build log */
  CLVAE_ERR_ARG,         /* an argument is out of range or inconsistent */
  CLVAE_ERR_IO,          /* a file could not be read or written */
  CLVAE_ERR_FORMAT,      /* a file's contents are invalid */
  CLVAE_ERR_NOMEM,       /* a host allocation failed */
  CLVAE_INTERRUPTED,     /* stopped on request (a signal); state was saved */
  CLVAE_ERR_DIVERGED,    /* the loss became NaN or infinite */
  CLVAE_ERR_LIMIT,       /* a size exceeds what the device (or a format) can hold */
  CLVAE_ERR_EXISTS,      /* an output would replace something that is already there */
  CLVAE_ERR_COMM,        /* the ranks of an MPI job could not communicate */
  CLVAE_ERR_WRITE        /* writing an output failed (a full disk, a file too large, the device): not bad input */
} clvae_status;

#define CLVAE_ERROR_MSG_SIZE 8192

/* The message of the last failed call made on this thread: what failed, with the OpenCL
 * error name, the call, the kernel, file:line, the file or the value involved, and build
 * logs. It stays until the next failure on the thread. The library never prints. */
CLVAE_API const char *clvae_error_message(void);

CLVAE_API const char *clvae_version(void);
CLVAE_API const char *clvae_status_name(clvae_status s);
/* "CL_OUT_OF_RESOURCES" for -5, CLBlast's own codes too; "CL_UNKNOWN_ERROR" otherwise. */
CLVAE_API const char *clvae_cl_error_name(int code);

#ifdef __cplusplus
}
#endif

#endif
