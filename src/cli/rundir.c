/* The run directory of `clvae train`: checked before anything is created (a refused run
 * leaves no directory and no lock behind), then created, locked, rechecked under the lock,
 * and cleared of the temporary files that killed runs left. */
#define _DEFAULT_SOURCE /* kill's ESRCH probe needs only POSIX; dirent */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "clvae/files.h"

/* mkdir -p; returns 0 or prints the failing path with the OS error. */
int cli_make_dirs(const char *path, const char *flag) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "clvae: cannot create directory %s: %s\n", buf, strerror(errno));
        return -1;
      }
      *p = c;
      if (!c) break;
    }
  }
  struct stat sb;
  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "clvae: %s %s is not a directory\n", flag, path);
    return -1;
  }
  if (access(path, W_OK) != 0) {
    fprintf(stderr, "clvae: cannot write to %s: %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}

int cli_dir_creatable(const char *dir, const char *flag) {
  char buf[4096];
  struct stat sb;
  if (stat(dir, &sb) == 0) {
    if (!S_ISDIR(sb.st_mode)) return fprintf(stderr, "clvae: %s %s is not a directory\n", flag, dir), -1;
    if (access(dir, W_OK | X_OK) != 0)
      return fprintf(stderr, "clvae: %s %s: cannot write there: %s\n", flag, dir, strerror(errno)), -1;
    return 0;
  }
  if (errno != ENOENT) return fprintf(stderr, "clvae: %s %s: %s\n", flag, dir, strerror(errno)), -1;
  /* the nearest existing ancestor must be a directory we may create entries in */
  snprintf(buf, sizeof buf, "%s", dir);
  for (;;) {
    char *slash = strrchr(buf, '/');
    while (slash && slash > buf && slash[1] == '\0') *slash = '\0', slash = strrchr(buf, '/');
    if (!slash) snprintf(buf, sizeof buf, ".");
    else if (slash == buf) buf[1] = '\0';
    else *slash = '\0';
    if (stat(buf, &sb) == 0) break;
    if (errno != ENOENT || !strcmp(buf, ".") || !strcmp(buf, "/"))
      return fprintf(stderr, "clvae: %s %s: %s: %s\n", flag, dir, buf, strerror(errno)), -1;
  }
  if (!S_ISDIR(sb.st_mode) || access(buf, W_OK | X_OK) != 0)
    return fprintf(stderr, "clvae: %s %s cannot be created: %s is %s\n", flag, dir, buf,
                   S_ISDIR(sb.st_mode) ? "not writable" : "not a directory"), -1;
  return 0;
}

/* The files a run writes in its directory must be regular files or absent: refused before
 * the run starts, not after its first epoch. */
int cli_outputs_writable(const char *dir) {
  const char *names[] = {"checkpoint.clvae", "metrics.csv", "loss.png", "progress.csv", "decoder"};
  const size_t dec = 4;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (i == dec && stat(path, &sb) == 0) { /* the decoder's directory (a link to one is fine) and its two files */
      const char *files[] = {"model.json", "weights.bin"};
      if (!S_ISDIR(sb.st_mode) || access(path, W_OK) != 0) {
        fprintf(stderr, "clvae: %s %s: a run writes the TF.js decoder there (move it away, or choose another --out)\n",
                path, S_ISDIR(sb.st_mode) ? "is not writable" : "exists and is not a directory");
        return 0;
      }
      for (int k = 0; k < 2; k++) {
        char f[4300];
        snprintf(f, sizeof f, "%s/%s", path, files[k]);
        if (lstat(f, &sb) == 0 && !S_ISREG(sb.st_mode)) {
          fprintf(stderr, "clvae: %s exists and is not a regular file: a run writes it (move it away, or choose "
                          "another --out)\n", f);
          return 0;
        }
      }
      continue;
    }
    if (i == dec) continue;
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
      fprintf(stderr, "clvae: %s exists and is not a regular file: a run writes it (move it away, or choose "
                      "another --out)\n", path);
      return 0;
    }
  }
  return 1;
}


/* Whether `name` is a temporary file of one of `targets` left by a process that is gone:
 * "<target>.<pid>.<count>.<8 hex>.tmp" (clvae_output_open's names; the target's name may be
 * cut to keep the whole within NAME_MAX). */
static int stale_temp(const char *name, const char *const *targets, int n) {
  size_t len = strlen(name);
  if (len < 5 || strcmp(name + len - 4, ".tmp")) return 0;
  const char *p = name + len - 4; /* back over ".<8 hex>", ".<count>", ".<pid>" */
  const char *dots[3];
  for (int k = 0; k < 3; k++) {
    const char *q = p;
    while (q > name && q[-1] != '.') q--;
    if (q == name || q == p) return 0;
    dots[k] = q - 1, p = q - 1;
  }
  long pid = strtol(dots[2] + 1, NULL, 10);
  size_t base = (size_t)(dots[2] - name);
  int ours = 0;
  for (int i = 0; i < n && !ours; i++)
    ours = !strncmp(name, targets[i], base) && (base == strlen(targets[i]) || base >= 100);
  if (!ours && !strncmp(name, "preview-epoch", 13) && base > 17 && !strncmp(name + base - 4, ".png", 4)) ours = 1;
  return ours && pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static void remove_stale(const char *dir, const char *const *targets, int n) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4400];
  while (d && (e = readdir(d)))
    if (stale_temp(e->d_name, targets, n)) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
  if (d) closedir(d);
}

int cli_own_run_dir(const char *out, const char *logdir, int new_run, clvae_dir_lock_t *lock) {
  char path[4200];
  struct stat sb;
  if (cli_make_dirs(out, "--out") != 0 || (logdir && cli_make_dirs(logdir, "--logdir") != 0)) return EXIT_USAGE;
  if (clvae_dir_lock(out, lock) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    return EXIT_USAGE;
  }
  snprintf(path, sizeof path, "%s/checkpoint.clvae", out);
  int rc = !cli_outputs_writable(out) ? EXIT_USAGE : -1;
  if (rc < 0 && new_run && lstat(path, &sb) == 0) { /* another run started there since we looked */
    fprintf(stderr, "clvae: %s already exists: continue it with --resume, or choose another --out\n", path);
    rc = EXIT_USAGE;
  }
  if (rc >= 0) {
    clvae_dir_unlock(lock);
    return rc;
  }
  static const char *const top[] = {"checkpoint.clvae", "loss.png"}, *const dec[] = {"model.json", "weights.bin"};
  remove_stale(out, top, 2);
  snprintf(path, sizeof path, "%s/decoder", out);
  remove_stale(path, dec, 2);
  /* the run's files go to this directory whatever happens to its name meanwhile */
  if (clvae_files_anchor(out) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    clvae_dir_unlock(lock);
    return EXIT_FAIL;
  }
  return -1;
}

void cli_link_latest(const char *out) {
  char tmp[4200], target[4200];
  struct stat sb;
  const char *slash = strrchr(out, '/');
  if (!slash || strncmp(out, "runs/", 5) || strchr(out + 5, '/')) return; /* only runs/<date-time> */
  if (lstat("runs/latest", &sb) == 0 && !S_ISLNK(sb.st_mode)) return; /* the user's own: left alone */
  snprintf(target, sizeof target, "%s", slash + 1);
  snprintf(tmp, sizeof tmp, "runs/.latest.%ld.tmp", (long)getpid());
  unlink(tmp);
  if (symlink(target, tmp) != 0 || rename(tmp, "runs/latest") != 0) unlink(tmp); /* a convenience: no error */
}
