/* TensorBoard event files (see include/clvae/tfevents.h), framed and serialized by hand:
 * the few protobuf fields a scalar summary needs are written directly.
 *
 *   message Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   message Summary { repeated Value value = 1; }
 *   message Value   { string tag = 1; float simple_value = 2; }
 *
 * Wire format: each field is a key (field << 3 | wire type: 0 varint, 1 fixed 64-bit,
 * 2 length-delimited, 5 fixed 32-bit) followed by its value, little-endian. */
#include "clvae/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "device/internal.h"

struct clvae_events {
  int fd;
  char path[4200];
  unsigned char *buf;        /* framed records not yet written */
  size_t len, cap;
  off_t committed;           /* the file's length after the last complete flush */
  clvae_status failed;       /* a write failed: reported by every later call */
};

/* ---- CRC-32C: reflected polynomial 0x82F63B78, one table of 256 ---- */

static uint32_t crc_table[256];

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[i] = c;
  }
}

uint32_t clvae_crc32c(const void *data, size_t n) {
  static int ready;
  if (!ready) crc_init(), ready = 1; /* idempotent: a race writes the same values */
  const unsigned char *p = data;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t clvae_crc32c_masked(const void *data, size_t n) {
  uint32_t c = clvae_crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

/* ---- protobuf pieces, into a fixed message buffer ---- */

typedef struct msg {
  unsigned char b[512];
  size_t n;
} msg;

static void put_varint(msg *m, uint64_t v) {
  do {
    m->b[m->n++] = (unsigned char)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
    v >>= 7;
  } while (v);
}

static void put_fixed(msg *m, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) m->b[m->n++] = (unsigned char)(v >> (8 * i));
}

static void put_bytes(msg *m, int field, const void *data, size_t n) {
  put_varint(m, (uint64_t)field << 3 | 2);
  put_varint(m, n);
  memcpy(m->b + m->n, data, n);
  m->n += n;
}

static void put_double(msg *m, int field, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  put_varint(m, (uint64_t)field << 3 | 1);
  put_fixed(m, u, 8);
}

/* One framed record appended to the buffer. */
static clvae_status record(clvae_events *e, const msg *m) {
  if (e->failed) return e->failed;
  size_t need = e->len + m->n + 16;
  if (need > e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 65536;
    while (cap < need) cap *= 2;
    unsigned char *b = realloc(e->buf, cap);
    if (!b) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory for %s", e->path);
    e->buf = b, e->cap = cap;
  }
  unsigned char len[8], *p = e->buf + e->len;
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)m->n >> (8 * i));
  uint32_t lc = clvae_crc32c_masked(len, 8), dc = clvae_crc32c_masked(m->b, m->n);
  memcpy(p, len, 8);
  for (int i = 0; i < 4; i++) p[8 + i] = (unsigned char)(lc >> (8 * i));
  memcpy(p + 12, m->b, m->n);
  for (int i = 0; i < 4; i++) p[12 + m->n + i] = (unsigned char)(dc >> (8 * i));
  e->len += m->n + 16;
  return CLVAE_OK;
}

static double wall_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

clvae_status clvae_events_open(clvae_events **out, const char *dir) {
  *out = NULL;
  struct stat sb;
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return clvae__fail(CLVAE_ERR_IO, "cannot create the log directory %s: %s", dir, strerror(errno));
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return clvae__fail(CLVAE_ERR_IO, "--logdir %s is not a directory", dir);
  clvae_events *e = calloc(1, sizeof *e);
  if (!e) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
  for (char *c = host; *c; c++)
    if (*c == '/') *c = '_';
  double now = wall_now();
  e->fd = -1;
  for (int k = 1; e->fd < 0 && k < 1000; k++) {
    int n = k == 1 ? snprintf(e->path, sizeof e->path, "%s/events.out.tfevents.%010lld.%s", dir, (long long)now, host)
                   : snprintf(e->path, sizeof e->path, "%s/events.out.tfevents.%010lld.%s.%d", dir, (long long)now, host, k);
    if (n < 0 || (size_t)n >= sizeof e->path) {
      free(e);
      return clvae__fail(CLVAE_ERR_ARG, "--logdir %s: the path is too long", dir);
    }
    e->fd = open(e->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (e->fd < 0 && errno != EEXIST) {
      clvae_status st = clvae__fail(CLVAE_ERR_IO, "cannot create %s: %s", e->path, strerror(errno));
      free(e);
      return st;
    }
  }
  if (e->fd < 0) {
    free(e);
    return clvae__fail(CLVAE_ERR_IO, "%s: too many event files of this second", dir);
  }
  msg m = {{0}, 0};
  put_double(&m, 1, now);
  put_bytes(&m, 3, "brain.Event:2", 13);
  clvae_status st = record(e, &m);
  if (st == CLVAE_OK) st = clvae_events_flush(e);
  if (st != CLVAE_OK) { /* not even the first record: no file left behind */
    unlink(e->path);
    e->len = 0;
    clvae_events_close(e);
    return st;
  }
  *out = e;
  return CLVAE_OK;
}

clvae_status clvae_events_scalar(clvae_events *e, const char *tag, int64_t step, float value, double wall_time) {
  size_t tn = strlen(tag);
  if (tn > 200) return clvae__fail(CLVAE_ERR_ARG, "event tag '%.40s...' is too long", tag);
  msg v = {{0}, 0}, s = {{0}, 0}, ev = {{0}, 0};
  uint32_t f;
  memcpy(&f, &value, 4);
  put_bytes(&v, 1, tag, tn);
  put_varint(&v, 2 << 3 | 5);
  put_fixed(&v, f, 4);
  put_bytes(&s, 1, v.b, v.n);
  put_double(&ev, 1, wall_time > 0 ? wall_time : wall_now());
  put_varint(&ev, 2 << 3 | 0);
  put_varint(&ev, (uint64_t)step);
  put_bytes(&ev, 5, s.b, s.n);
  return record(e, &ev);
}

clvae_status clvae_events_flush(clvae_events *e) {
  if (e->failed) return e->failed;
  for (size_t done = 0; done < e->len;) {
    ssize_t w = write(e->fd, e->buf + done, e->len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { /* a full disk: back to the last whole record, which readers take as the end */
      e->failed = clvae__fail(CLVAE_ERR_IO, "%s: write failed: %s", e->path, w < 0 ? strerror(errno) : "no progress");
      if (ftruncate(e->fd, e->committed) != 0 || lseek(e->fd, e->committed, SEEK_SET) < 0) { /* reported above */ }
      return e->failed;
    }
    done += (size_t)w;
  }
  e->committed += (off_t)e->len;
  e->len = 0;
  if (fsync(e->fd) != 0 && errno != EINVAL && errno != EROFS) {
    e->failed = clvae__fail(CLVAE_ERR_IO, "%s: fsync failed: %s", e->path, strerror(errno));
    return e->failed;
  }
  return CLVAE_OK;
}

const char *clvae_events_path(const clvae_events *e) { return e->path; }

clvae_status clvae_events_close(clvae_events *e) {
  if (!e) return CLVAE_OK;
  clvae_status st = e->fd >= 0 ? clvae_events_flush(e) : CLVAE_OK;
  if (e->fd >= 0 && close(e->fd) != 0 && st == CLVAE_OK)
    st = clvae__fail(CLVAE_ERR_IO, "%s: close failed: %s", e->path, strerror(errno));
  free(e->buf);
  free(e);
  return st;
}
