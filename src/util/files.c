/* How clvae reads and writes files (see include/clvae/files.h): regular inputs only,
 * outputs through unique temporary files renamed into place, appends without following
 * links, and a lock per run directory. */
#define _DEFAULT_SOURCE /* flock */
#include "clvae/files.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "device/internal.h"

#define LOCK_NAME ".clvae.lock"

/* ---- the anchor: a directory whose paths resolve through its descriptor ---- */

static char anchor_dir[4096];
static int anchor_fd = -1;

/* For `path`: the directory descriptor to resolve it against and the path relative to it
 * (AT_FDCWD and path itself outside the anchor). */
static int resolve(const char *path, const char **rel) {
  size_t n = strlen(anchor_dir);
  *rel = path;
  if (anchor_fd < 0 || strncmp(path, anchor_dir, n) != 0 || (path[n] != '/' && path[n] != '\0')) return AT_FDCWD;
  const char *r = path + n;
  while (*r == '/') r++;
  *rel = *r ? r : ".";
  return anchor_fd;
}

clvae_status clvae_files_anchor(const char *dir) {
  if (anchor_fd >= 0) close(anchor_fd);
  anchor_fd = -1, anchor_dir[0] = '\0';
  if (!dir) return CLVAE_OK;
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--;
  if (n >= sizeof anchor_dir) return clvae__fail(CLVAE_ERR_IO, "%.100s...: path too long", dir);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return clvae__fail(CLVAE_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
  memcpy(anchor_dir, dir, n), anchor_dir[n] = '\0';
  anchor_fd = fd;
  return CLVAE_OK;
}

int clvae_files_mkdir(const char *path, mode_t mode) {
  const char *rel;
  int at = resolve(path, &rel);
  return mkdirat(at, rel, mode);
}

int clvae_files_stat(const char *path, struct stat *sb) {
  const char *rel;
  int at = resolve(path, &rel);
  return fstatat(at, rel, sb, 0);
}

int clvae_files_rmdir(const char *path) {
  const char *rel;
  int at = resolve(path, &rel);
  return unlinkat(at, rel, AT_REMOVEDIR);
}

DIR *clvae_files_opendir(const char *path) {
  const char *rel;
  int at = resolve(path, &rel);
  int fd = openat(at, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (fd >= 0 && !d) close(fd);
  return d;
}

static const char *kind_of(mode_t m) {
  return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) || S_ISBLK(m) ? "a device" :
         S_ISSOCK(m) ? "a socket" : S_ISLNK(m) ? "a symbolic link" : "not a regular file";
}

clvae_status clvae_open_regular(const char *path, int *fd) {
  struct stat sb;
  *fd = -1;
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just after. */
  const char *rel;
  int at = resolve(path, &rel);
  int f = openat(at, rel, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (f < 0) return clvae__fail(CLVAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    int e = errno;
    close(f);
    return clvae__fail(CLVAE_ERR_IO, "%s: is %s, not a regular file", path, S_ISREG(sb.st_mode) ? strerror(e) : kind_of(sb.st_mode));
  }
  fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
  *fd = f;
  return CLVAE_OK;
}

clvae_status clvae_fopen_regular(const char *path, FILE **f) {
  int fd;
  *f = NULL;
  clvae_status st = clvae_open_regular(path, &fd);
  if (st != CLVAE_OK) return st;
  if (!(*f = fdopen(fd, "rb"))) {
    close(fd);
    return clvae__fail(CLVAE_ERR_NOMEM, "%s: cannot open: %s", path, strerror(errno));
  }
  return CLVAE_OK;
}

/* ---- temporary files, removable from a signal handler ---- */

/* A slot is marked used before its file is created, so that a signal arriving while the
 * writer is preempted just after open() still finds the name. A handler running on another
 * thread (the OpenCL driver's) while the writer is inside open() could unlink before the file
 * exists: it then waits, briefly, for the open to finish and unlinks again. Lock-free
 * atomics: safe in a signal handler. One thread writes outputs at a time (the CLI's); slots
 * are taken round-robin, so a handler reading a name is not racing its slot's next use.
 * What remains: a signal whose handler runs on another thread in the microseconds just
 * before the writer publishes its slot can still leave a file behind. Names carry the pid,
 * a per-process count and a random part, so the name an O_EXCL open finds taken (and that a
 * handler might then remove) is never another live writer's. */
#define SLOTS 16
static char temp_name[SLOTS][256];   /* the temporary file's name in its directory */
static atomic_int temp_dir[SLOTS];   /* that directory's descriptor */
static atomic_int temp_used[SLOTS];
static atomic_int opening;

static void unlink_used(void) {
  for (int i = 0; i < SLOTS; i++)
    if (atomic_load(&temp_used[i])) unlinkat(atomic_load(&temp_dir[i]), temp_name[i], 0);
}

void clvae_output_cleanup(void) {
  unlink_used();
  struct timespec ms = {0, 1000000};
  /* at most 20 ms: if this handler interrupted the opening thread itself, it never finishes */
  for (int n = 0; atomic_load(&opening) && n < 20; n++) nanosleep(&ms, NULL);
  unlink_used();
}

static void release_slot(clvae_output *o) {
  if (o->slot >= 0) atomic_store(&temp_used[o->slot], 0);
  o->slot = -1;
}

static void close_dir(clvae_output *o) {
  if (o->dirfd >= 0) close(o->dirfd);
  o->dirfd = -1;
}

/* The directory part of `path` opened (the file is then created, renamed and removed
 * relative to it: a directory renamed during a write keeps its files, the temporary one
 * included, and a signal's cleanup finds it there). *base: the last component. */
static clvae_status open_parent(clvae_output *o, const char *path, const char **base) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  *base = slash ? slash + 1 : path;
  if (!**base) return clvae__fail(CLVAE_ERR_IO, "%s: names a directory, not a file", path);
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1, slash ? path : ".");
  const char *rel;
  int at = resolve(dir, &rel);
  o->dirfd = openat(at, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (o->dirfd < 0) return clvae__fail(CLVAE_ERR_IO, "%s: cannot open its directory %s: %s", path, dir, strerror(errno));
  return CLVAE_OK;
}

clvae_status clvae_output_open(clvae_output *o, const char *path) {
  struct stat sb;
  static unsigned counter;
  const char *base;
  memset(o, 0, sizeof *o);
  o->slot = o->dirfd = -1;
  if (strlen(path) >= sizeof o->path)
    return clvae__fail(CLVAE_ERR_IO, "%.100s...: a path of %zu bytes is too long", path, strlen(path));
  snprintf(o->path, sizeof o->path, "%s", path);
  clvae_status st = open_parent(o, path, &base);
  if (st != CLVAE_OK) return st;
  snprintf(o->base, sizeof o->base, "%s", base);
  if (fstatat(o->dirfd, o->base, &sb, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(sb.st_mode)) {
    close_dir(o);
    return clvae__fail(CLVAE_ERR_IO, "%s exists and is %s: not replaced (give a new file name)", path, kind_of(sb.st_mode));
  }
  static unsigned next_slot, salt;
  if (!salt) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    salt = ((unsigned)now.tv_nsec ^ (unsigned)now.tv_sec * 2654435761u ^ (unsigned)getpid() * 40503u) | 1u;
  }
  for (int n = 0; n < SLOTS && o->slot < 0; n++) {
    int i = (int)((next_slot + (unsigned)n) % SLOTS);
    if (!atomic_load(&temp_used[i])) o->slot = i, next_slot = (unsigned)i + 1;
  }
  if (o->slot < 0) {
    close_dir(o);
    return clvae__fail(CLVAE_ERR_IO, "%s: too many files being written at once", path);
  }
  int fd = -1, e = 0;
  atomic_store(&opening, 1);
  for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
    /* unique per process and call: two processes writing the same target never share it */
    salt = salt * 1103515245u + 12345u;
    char suffix[64];
    int sl = snprintf(suffix, sizeof suffix, ".%ld.%u.%08x.tmp", (long)getpid(), counter++, salt);
    /* the temporary name repeats the target's name, cut so that it stays within NAME_MAX:
     * a target named with up to 255 bytes is still writable */
    size_t keep = strlen(o->base);
    if (keep + (size_t)sl > 255) keep = 255 - (size_t)sl;
    snprintf(o->tmp_name, sizeof o->tmp_name, "%.*s%s", (int)keep, o->base, suffix);
    snprintf(o->tmp, sizeof o->tmp, "%.*s%s", (int)(base - path), path, o->tmp_name);
    memcpy(temp_name[o->slot], o->tmp_name, sizeof o->tmp_name);
    atomic_store(&temp_dir[o->slot], o->dirfd);
    atomic_store(&temp_used[o->slot], 1); /* published after the name (sequentially consistent) */
    fd = openat(o->dirfd, o->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      e = errno;
      atomic_store(&temp_used[o->slot], 0);
      if (e != EEXIST) break;
    }
  }
  atomic_store(&opening, 0);
  if (fd < 0) {
    o->slot = -1;
    close_dir(o);
    return clvae__fail(CLVAE_ERR_IO, "%s: cannot create a file there: %s", path, strerror(e));
  }
  if (!(o->f = fdopen(fd, "wb"))) {
    close(fd);
    unlinkat(o->dirfd, o->tmp_name, 0);
    release_slot(o);
    close_dir(o);
    return clvae__fail(CLVAE_ERR_NOMEM, "%s: out of host memory", o->tmp);
  }
  return CLVAE_OK;
}

void clvae_output_abort(clvae_output *o) {
  if (o->f) fclose(o->f);
  o->f = NULL;
  if (o->slot >= 0) unlinkat(o->dirfd, o->tmp_name, 0);
  release_slot(o);
  close_dir(o);
}

clvae_status clvae_output_commit(clvae_output *o, int durable) {
  struct stat sb;
  const char *what = "write";
  int e = 0;
  if (fflush(o->f) != 0 || ferror(o->f)) e = errno ? errno : EIO;
  else if (durable && fsync(fileno(o->f)) != 0) e = errno, what = "fsync";
  if (fclose(o->f) != 0 && !e) e = errno, what = "close";
  o->f = NULL;
  /* checked again: the target may have been replaced by something else meanwhile */
  if (!e && fstatat(o->dirfd, o->base, &sb, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(sb.st_mode)) {
    clvae_output_abort(o);
    return clvae__fail(CLVAE_ERR_IO, "%s exists and is %s: not replaced", o->path, kind_of(sb.st_mode));
  }
  if (!e && renameat(o->dirfd, o->tmp_name, o->dirfd, o->base) != 0) e = errno, what = "rename";
  if (e) {
    clvae_output_abort(o);
    return clvae__fail(CLVAE_ERR_WRITE, "%s: %s failed: %s (the previous file, if any, is unchanged)", o->path, what,
                       strerror(e));
  }
  release_slot(o);
  if (durable) fsync(o->dirfd); /* make the rename itself durable */
  close_dir(o);
  return CLVAE_OK;
}

clvae_status clvae_append_open(const char *path, FILE **f) {
  struct stat sb;
  const char *rel;
  int at = resolve(path, &rel);
  *f = NULL;
  int fd = openat(at, rel, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644); /* readable: its last byte */
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP || (fstatat(at, rel, &sb, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(sb.st_mode)))
      return clvae__fail(CLVAE_ERR_IO, "%s is %s: not appended to", path, e == ELOOP ? "a symbolic link" : kind_of(sb.st_mode));
    return clvae__fail(CLVAE_ERR_IO, "%s: cannot open for appending: %s", path, strerror(e));
  }
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return clvae__fail(CLVAE_ERR_IO, "%s is %s: not appended to", path, kind_of(sb.st_mode));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  if (!(*f = fdopen(fd, "ab"))) {
    close(fd);
    return clvae__fail(CLVAE_ERR_NOMEM, "%s: out of host memory", path);
  }
  return CLVAE_OK;
}

/* "DIR is in use by another clvae run (process PID)", the pid read from the lock file f. */
static clvae_status in_use(const char *dir, int f) {
  char pid[32];
  ssize_t n = pread(f, pid, sizeof pid - 1, 0);
  pid[n > 0 ? n : 0] = '\0';
  pid[strcspn(pid, "\n")] = '\0';
  return clvae__fail(CLVAE_ERR_EXISTS, "%s is in use by another clvae run (process %s)", dir, *pid ? pid : "?");
}

/* One attempt at the lock: CLVAE_OK (locked: *fd), CLVAE_ERR_EXISTS (held by another run),
 * or, in *stale, that the file we locked was unlinked or replaced meanwhile (a run that
 * finished removes it while holding it): the caller tries again on the file now there. */
static clvae_status lock_once(const char *dir, int dirfd, const char *path, int *fd, int *stale) {
  char pid[32] = "";
  struct stat sb, now;
  *fd = -1, *stale = 0;
  int f = openat(dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (f < 0 && errno == ELOOP)
    return clvae__fail(CLVAE_ERR_IO, "%s is a symbolic link: the lock is never taken through one (remove it)", path);
  if (f < 0) return clvae__fail(CLVAE_ERR_IO, "%s: cannot open the lock: %s", path, strerror(errno));
  if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(f);
    return clvae__fail(CLVAE_ERR_IO, "%s is %s: cannot lock the run directory", path, kind_of(sb.st_mode));
  }
  if (flock(f, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    clvae_status st = e == EWOULDBLOCK ? in_use(dir, f) : clvae__fail(CLVAE_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
    close(f);
    return st;
  }
  if (fstatat(dirfd, LOCK_NAME, &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_ino != sb.st_ino || now.st_dev != sb.st_dev) {
    close(f); /* we locked a file that is no longer the lock: two runs would own the directory */
    *stale = 1;
    return CLVAE_OK;
  }
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  int written = ftruncate(f, 0) == 0 && pwrite(f, pid, (size_t)len, 0) == len;
  (void)written; /* the pid is for messages only */
  *fd = f;
  return CLVAE_OK;
}

clvae_status clvae_dir_lock(const char *dir, clvae_dir_lock_t *lock) {
  lock->fd = lock->dirfd = -1;
  if ((size_t)snprintf(lock->path, sizeof lock->path, "%s/" LOCK_NAME, dir) >= sizeof lock->path)
    return clvae__fail(CLVAE_ERR_IO, "%.100s...: path too long", dir);
  /* the directory itself, not its name: a run directory renamed during the run keeps its lock */
  const char *rel;
  int at = resolve(dir, &rel);
  lock->dirfd = openat(at, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock->dirfd < 0) return clvae__fail(CLVAE_ERR_IO, "%s: cannot open the run directory: %s", dir, strerror(errno));
  for (int attempt = 0; attempt < 100; attempt++) {
    int stale;
    clvae_status st = lock_once(dir, lock->dirfd, lock->path, &lock->fd, &stale);
    if (st == CLVAE_OK && !stale) return st;
    if (st != CLVAE_OK) {
      close(lock->dirfd);
      lock->dirfd = -1;
      return st;
    }
  }
  close(lock->dirfd);
  lock->dirfd = -1;
  return clvae__fail(CLVAE_ERR_IO, "%s: the lock file keeps being replaced; is another program removing it?", lock->path);
}

clvae_status clvae_dir_in_use(const char *dir) {
  const char *rel;
  char path[4200];
  if ((size_t)snprintf(path, sizeof path, "%s/" LOCK_NAME, dir) >= sizeof path) return CLVAE_OK;
  struct stat sb;
  int at = resolve(path, &rel);
  if (fstatat(at, rel, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode)) return CLVAE_OK; /* none, or one clvae_dir_lock names */
  int f = openat(at, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (f < 0) return CLVAE_OK;
  /* A shared lock only for this instant: an owner holds it exclusively. (A run taking the
   * lock at this very instant is refused as if this one had it: of two runs started
   * together, one goes on, as with the lock alone.) */
  clvae_status st = CLVAE_OK;
  if (flock(f, LOCK_SH | LOCK_NB) != 0) st = errno == EWOULDBLOCK ? in_use(dir, f) : CLVAE_OK;
  close(f); /* releases the shared lock, if taken */
  return st;
}

void clvae_dir_unlock(clvae_dir_lock_t *lock) {
  if (lock->fd < 0) return;
  unlinkat(lock->dirfd, LOCK_NAME, 0); /* while still holding it: a run that locked it meanwhile sees it unlinked and retries */
  close(lock->fd);    /* closing releases the flock */
  close(lock->dirfd);
  lock->fd = lock->dirfd = -1;
}
