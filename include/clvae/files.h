/* clvae files: how clvae reads and writes, so that no input blocks or lies and no output
 * is lost or replaces what it should not.
 *  - Inputs are read only when they are regular files (after symlinks): a FIFO, a device or
 *    a directory is refused at once, never waited on.
 *  - Whole-file outputs (checkpoint, PNGs, plots, exports) are written to a temporary file
 *    with a unique name beside the target and renamed over it only when complete, and only
 *    over a regular file or a missing path: a symlink, FIFO, device or directory there is
 *    refused and left alone. A signal handler can remove the temporary files in progress.
 *  - Appended files (metrics.csv) are opened without following a symlink and refused unless
 *    regular.
 *  - A run directory is locked (flock on DIR/.clvae.lock, holding the owner's pid) for as
 *    long as a training run owns it; a lock of a killed process is released with it, and a
 *    run that ends removes the file. */
#ifndef CLVAE_FILES_H
#define CLVAE_FILES_H

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "clvae/clvae.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opens `path` for reading if it is a regular file; *fd / *f on success. */
CLVAE_API clvae_status clvae_open_regular(const char *path, int *fd);
CLVAE_API clvae_status clvae_fopen_regular(const char *path, FILE **f);

typedef struct clvae_output {
  FILE *f;                   /* write here, then commit or abort */
  char path[4096];
  char tmp[4200];            /* the temporary file's path, for messages */
  char base[256], tmp_name[256]; /* the target's and the temporary file's names in their directory */
  int dirfd;                 /* that directory: files are created and renamed relative to it */
  int slot;                  /* in the table of temporary files a signal handler removes */
} clvae_output;

/* Creates the temporary file for `path` (refusing a target that exists and is not a
 * regular file, and a path too long to name). */
CLVAE_API clvae_status clvae_output_open(clvae_output *o, const char *path);
/* Flushes (and with `durable`, fsyncs the file and then its directory) and renames the
 * temporary file over the target. On failure the target is untouched and the temporary
 * file removed. */
CLVAE_API clvae_status clvae_output_commit(clvae_output *o, int durable);
/* Closes and removes the temporary file; the target is untouched. */
CLVAE_API void clvae_output_abort(clvae_output *o);
/* Removes the temporary files of every output still open. Async-signal-safe: for a
 * signal handler that then exits. */
CLVAE_API void clvae_output_cleanup(void);

/* Opens `path` for appending (created 0644 if missing), refusing a symlink or anything
 * but a regular file, without blocking on a FIFO. */
CLVAE_API clvae_status clvae_append_open(const char *path, FILE **f);

/* From now on, paths under `dir` (dir itself, dir/...) are opened, created and renamed
 * through a descriptor of the directory, not its name: a run directory renamed (or
 * replaced) while a run writes keeps receiving the run's files, and its lock. NULL: none.
 * One anchor per process (the run's directory). */
CLVAE_API clvae_status clvae_files_anchor(const char *dir);
/* mkdir, rmdir and opendir through the anchor. */
CLVAE_API int clvae_files_mkdir(const char *path, mode_t mode);
CLVAE_API int clvae_files_rmdir(const char *path);
CLVAE_API int clvae_files_stat(const char *path, struct stat *sb); /* follows symlinks, as stat does */
CLVAE_API DIR *clvae_files_opendir(const char *path);

/* A run directory's lock: DIR/.clvae.lock, flock'ed, holding the owner's pid. */
typedef struct clvae_dir_lock_t {
  int fd;                    /* -1: not held */
  int dirfd;                 /* the directory, held while locked */
  char path[4200];
} clvae_dir_lock_t;

/* Locks the directory for this process until clvae_dir_unlock or exit; a lock file that a
 * finishing run removed (or replaced) meanwhile is not trusted: the lock is taken again on
 * the file now there. CLVAE_ERR_EXISTS when another process holds it: the message names
 * its pid. */
CLVAE_API clvae_status clvae_dir_lock(const char *dir, clvae_dir_lock_t *lock);
/* Whether another process holds DIR's lock now (CLVAE_ERR_EXISTS, naming its pid, as
 * clvae_dir_lock says it), without taking it or creating anything: for refusing a second
 * run before its slow start-up. CLVAE_OK when DIR or its lock file does not exist or no one
 * holds it; only clvae_dir_lock decides. */
CLVAE_API clvae_status clvae_dir_in_use(const char *dir);
/* Removes the lock file while still holding it, then releases it (a killed run's lock file
 * stays, unlocked: the next run takes it). */
CLVAE_API void clvae_dir_unlock(clvae_dir_lock_t *lock);

#ifdef __cplusplus
}
#endif

#endif
