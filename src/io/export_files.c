/* The output directory of an export and its files (export_files.h): shared by the TF.js
 * and the ONNX export, so that DIR, --force and refused targets behave alike. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clvae/files.h"
#include "device/internal.h"
#include "io/export_files.h"

static int dir_is_empty(const char *dir) {
  DIR *d = clvae_files_opendir(dir);
  struct dirent *e;
  int empty = 1;
  if (!d) return 1;
  while (empty && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
  closedir(d);
  return empty;
}

clvae_status export_prepare_dir(const char *dir, int force, int *created) {
  struct stat sb;
  *created = 0;
  if (clvae_files_stat(dir, &sb) == 0) {
    if (!S_ISDIR(sb.st_mode)) return clvae__fail(CLVAE_ERR_IO, "%s exists and is not a directory", dir);
    if (!force && !dir_is_empty(dir)) return clvae__fail(CLVAE_ERR_EXISTS, "%s is not empty", dir);
  } else if (clvae_files_mkdir(dir, 0755) != 0) {
    return clvae__fail(CLVAE_ERR_IO, "cannot create directory %s: %s", dir, strerror(errno));
  } else
    *created = 1;
  return CLVAE_OK;
}

clvae_status export_undo_dir(const char *dir, int created, clvae_status st) {
  if (created && st != CLVAE_OK) clvae_files_rmdir(dir);
  return st;
}

clvae_status export_put_files(const char *dir, const char *const *names, const void *const *data, const size_t *size,
                              int n) {
  char path[4200];
  clvae_output out[EXPORT_MAX_FILES];
  clvae_status st = CLVAE_OK;
  int opened = 0;
  if (n > EXPORT_MAX_FILES)
    return clvae__fail(CLVAE_ERR_ARG, "%d files in one export: at most %d", n, EXPORT_MAX_FILES);
  for (; opened < n && st == CLVAE_OK; opened++) {
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[opened]) >= sizeof path) {
      st = clvae__fail(CLVAE_ERR_IO, "%.100s...: path too long", dir);
      break;
    }
    if ((st = clvae_output_open(&out[opened], path)) != CLVAE_OK) break;
    if (fwrite(data[opened], 1, size[opened], out[opened].f) != size[opened])
      st = clvae__fail(CLVAE_ERR_WRITE, "%s: cannot write: %s", path, strerror(errno));
  }
  /* every file complete before any is renamed into place: a full disk leaves the old pair
   * (or nothing), never a new file beside an old one */
  for (int i = 0; i < opened && st == CLVAE_OK; i++)
    if (fflush(out[i].f) != 0 || ferror(out[i].f) || fsync(fileno(out[i].f)) != 0)
      st = clvae__fail(CLVAE_ERR_WRITE, "%s: write failed: %s (the previous files, if any, are unchanged)", out[i].path,
                       strerror(errno ? errno : EIO));
  for (int i = 0; i < opened; i++) {
    if (st == CLVAE_OK) st = clvae_output_commit(&out[i], 0);
    else if (out[i].f) clvae_output_abort(&out[i]);
  }
  return st;
}
