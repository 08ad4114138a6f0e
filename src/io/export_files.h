/* What every export (TF.js, ONNX) does with its output directory: the same rules for DIR
 * and --force, and files that appear all together or not at all. */
#ifndef CLVAE_IO_EXPORT_FILES_H
#define CLVAE_IO_EXPORT_FILES_H

#include <stddef.h>

#include "clvae/clvae.h"

#define EXPORT_MAX_FILES 4

/* A missing `dir` is created (its parent must exist; *created says so); one that exists
 * must be a directory, and empty unless `force` (else CLVAE_ERR_EXISTS). */
clvae_status export_prepare_dir(const char *dir, int force, int *created);
/* After a failed export: removes `dir` again if export_prepare_dir created it (and it is
 * still empty). Returns st. */
clvae_status export_undo_dir(const char *dir, int created, clvae_status st);
/* Writes n files (at most EXPORT_MAX_FILES) of `dir` through temporary files (files.h):
 * all are opened and written before any is renamed into place, so that a refused target
 * (a symlink, say) leaves the directory as it was. Renamed in the order given. */
clvae_status export_put_files(const char *dir, const char *const *names, const void *const *data, const size_t *size,
                              int n);

#endif
