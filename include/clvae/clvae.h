/* clvae: a portable OpenCL backend and VAE trainer.
 * This header holds what every layer shares: the export macro, status codes and the
 * error record that carries a human-readable message from the library to its caller. */
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

/* Every fallible call returns one of these; the details are in a message kept by the
 * device handle (clvae_device_error) or in a caller-provided clvae_error. */
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
  CLVAE_ERR_DIVERGED     /* the loss became NaN or infinite */
} clvae_status;

#define CLVAE_ERROR_MSG_SIZE 8192

/* Error record for calls that have no device handle to keep a message in. */
typedef struct clvae_error {
  clvae_status status;
  char msg[CLVAE_ERROR_MSG_SIZE];
} clvae_error;

CLVAE_API const char *clvae_version(void);
CLVAE_API const char *clvae_status_name(clvae_status s);
/* "CL_OUT_OF_RESOURCES" for -5, CLBlast's own codes too; "CL_UNKNOWN_ERROR" otherwise. */
CLVAE_API const char *clvae_cl_error_name(int code);

#ifdef __cplusplus
}
#endif

#endif
