/* Checkpoint file: a 128-byte header, then parameters, Adam m and v (float32), then a
 * CRC-32 of everything before it. All fields little-endian.
 *   0 "CLVAECKP"   8 u32 version   12 u32 header bytes (128)
 *  16 i32 input, hidden, latent, loss, batch   36 f32 lr, beta1, beta2, eps   52 u64 seed
 *  60 i64 step   68 i32 epoch, epoch_step, train_limit   80 f64 epoch_loss_sum
 *  88 u64 n      96 f64 epoch_seconds   104..127 zero */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "clvae/checkpoint.h"
#include "device/internal.h"

#define HEADER 128
static const char MAGIC[8] = {'C', 'L', 'V', 'A', 'E', 'C', 'K', 'P'};

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }
static void putf(unsigned char *p, float f) { uint32_t u; memcpy(&u, &f, 4); put32(p, u); }
static float getf(const unsigned char *p) { uint32_t u = get32(p); float f; memcpy(&f, &u, 4); return f; }
static void putd(unsigned char *p, double d) { uint64_t u; memcpy(&u, &d, 8); put64(p, u); }
static double getd(const unsigned char *p) { uint64_t u = get64(p); double d; memcpy(&d, &u, 8); return d; }

clvae_status clvae_checkpoint_alloc(clvae_checkpoint *c, const clvae_config *cfg) {
  clvae_layout l;
  memset(c, 0, sizeof *c);
  c->cfg = *cfg;
  clvae_layout_of(cfg, &l);
  c->n = l.total;
  c->params = calloc(l.total, 4), c->adam_m = calloc(l.total, 4), c->adam_v = calloc(l.total, 4);
  if (!c->params || !c->adam_m || !c->adam_v) {
    clvae_checkpoint_free(c);
    return clvae__fail(CLVAE_ERR_NOMEM, "out of memory for %zu parameters", l.total);
  }
  return CLVAE_OK;
}

void clvae_checkpoint_free(clvae_checkpoint *c) {
  free(c->params), free(c->adam_m), free(c->adam_v);
  c->params = c->adam_m = c->adam_v = NULL;
}

static unsigned char *serialize(const clvae_checkpoint *c, size_t *size) {
  size_t n = c->n, total = HEADER + 3 * n * 4 + 4;
  unsigned char *b = calloc(1, total);
  if (!b) return NULL;
  memcpy(b, MAGIC, 8);
  put32(b + 8, CLVAE_CHECKPOINT_VERSION), put32(b + 12, HEADER);
  const clvae_config *g = &c->cfg;
  put32(b + 16, (uint32_t)g->input), put32(b + 20, (uint32_t)g->hidden), put32(b + 24, (uint32_t)g->latent);
  put32(b + 28, (uint32_t)g->loss), put32(b + 32, (uint32_t)g->batch);
  putf(b + 36, g->lr), putf(b + 40, g->beta1), putf(b + 44, g->beta2), putf(b + 48, g->eps);
  put64(b + 52, g->seed), put64(b + 60, (uint64_t)c->step);
  put32(b + 68, (uint32_t)c->epoch), put32(b + 72, (uint32_t)c->epoch_step), put32(b + 76, (uint32_t)c->train_limit);
  putd(b + 80, c->epoch_loss_sum), put64(b + 88, n), putd(b + 96, c->epoch_seconds);
  const float *arrays[3] = {c->params, c->adam_m, c->adam_v};
  for (int a = 0; a < 3; a++)
    for (size_t i = 0; i < n; i++) putf(b + HEADER + (a * n + i) * 4, arrays[a][i]);
  put32(b + total - 4, (uint32_t)crc32(0L, b, (uInt)(total - 4)));
  *size = total;
  return b;
}

/* Test hook: CLVAE_TEST_SLOW_CHECKPOINT=1 writes in small, slow pieces so that a test
 * can kill the process in the middle of a write. */
static int slow_writes(void) {
  const char *s = getenv("CLVAE_TEST_SLOW_CHECKPOINT");
  return s && *s == '1';
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  int slow = slow_writes();
  size_t piece = slow ? 65536 : n;
  while (n > 0) {
    ssize_t w = write(fd, p, n < piece ? n : piece);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (size_t)w;
    if (slow) nanosleep(&(struct timespec){0, 20000000}, NULL);
  }
  return 0;
}

clvae_status clvae_checkpoint_save(const char *path, const clvae_checkpoint *c) {
  char tmp[4200], dir[4096];
  size_t size;
  unsigned char *b = serialize(c, &size);
  if (!b) return clvae__fail(CLVAE_ERR_NOMEM, "out of memory writing %s", path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    free(b);
    return clvae__fail(CLVAE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  }
  int e = 0;
  const char *what = "write";
  if (write_all(fd, b, size) != 0) e = errno ? errno : EIO;
  else if (fsync(fd) != 0) e = errno, what = "fsync";
  if (close(fd) != 0 && !e) e = errno, what = "close";
  free(b);
  if (!e && rename(tmp, path) != 0) e = errno, what = "rename";
  if (e) {
    unlink(tmp);
    return clvae__fail(CLVAE_ERR_IO, "%s: %s failed: %s (the previous checkpoint, if any, is unchanged)",
                      path, what, strerror(e));
  }
  /* Make the rename itself durable. */
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  int dfd = open(slash ? dir : ".", O_RDONLY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return CLVAE_OK;
}

clvae_status clvae_checkpoint_load(const char *path, clvae_checkpoint *c) {
  struct stat sb;
  memset(c, 0, sizeof *c);
  if (stat(path, &sb) != 0) return clvae__fail(CLVAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  if (S_ISDIR(sb.st_mode)) return clvae__fail(CLVAE_ERR_IO, "%s: is a directory, not a checkpoint", path);
  if (sb.st_size < HEADER + 4)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: too short for a clvae checkpoint (%lld bytes)", path, (long long)sb.st_size);
  if ((uint64_t)sb.st_size > ((uint64_t)1 << 34))
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: too large for a clvae checkpoint", path);
  size_t size = (size_t)sb.st_size;
  unsigned char *b = malloc(size);
  FILE *f = fopen(path, "rb");
  clvae_status st = CLVAE_ERR_FORMAT;
  if (!b || !f) {
    st = clvae__fail(b ? CLVAE_ERR_IO : CLVAE_ERR_NOMEM, "%s: cannot read: %s", path, strerror(errno));
    goto done;
  }
  if (fread(b, 1, size, f) != size) { st = clvae__fail(CLVAE_ERR_IO, "%s: read failed", path); goto done; }
  if (memcmp(b, MAGIC, 8) != 0) { clvae__fail(st, "%s: not a clvae checkpoint (bad magic)", path); goto done; }
  uint32_t version = get32(b + 8);
  if (version != CLVAE_CHECKPOINT_VERSION || get32(b + 12) != HEADER) {
    clvae__fail(st, "%s: checkpoint format version %u; this clvae reads version %d", path, version, CLVAE_CHECKPOINT_VERSION);
    goto done;
  }
  uint64_t n = get64(b + 88);
  if (n == 0 || n > ((uint64_t)1 << 31) || size != HEADER + 3 * n * 4 + 4) {
    clvae__fail(st, "%s: truncated or damaged: %zu bytes, but the header describes %llu parameters", path,
               size, (unsigned long long)n);
    goto done;
  }
  if (get32(b + size - 4) != (uint32_t)crc32(0L, b, (uInt)(size - 4))) {
    clvae__fail(st, "%s: checksum mismatch: the file is damaged", path);
    goto done;
  }
  clvae_config g;
  g.input = (int)get32(b + 16), g.hidden = (int)get32(b + 20), g.latent = (int)get32(b + 24);
  g.loss = (int)get32(b + 28), g.batch = (int)get32(b + 32);
  g.lr = getf(b + 36), g.beta1 = getf(b + 40), g.beta2 = getf(b + 44), g.eps = getf(b + 48);
  g.seed = get64(b + 52);
  clvae_layout l;
  if (g.input < 1 || g.hidden < 1 || g.latent < 1 || g.batch < 1 || (g.loss != 0 && g.loss != 1) ||
      (clvae_layout_of(&g, &l), l.total != n)) {
    clvae__fail(st, "%s: inconsistent configuration (input %d, hidden %d, latent %d, loss %d, batch %d)",
               path, g.input, g.hidden, g.latent, g.loss, g.batch);
    goto done;
  }
  if ((st = clvae_checkpoint_alloc(c, &g)) != CLVAE_OK) goto done;
  c->step = (int64_t)get64(b + 60);
  c->epoch = (int32_t)get32(b + 68), c->epoch_step = (int32_t)get32(b + 72), c->train_limit = (int32_t)get32(b + 76);
  c->epoch_loss_sum = getd(b + 80), c->epoch_seconds = getd(b + 96);
  float *arrays[3] = {c->params, c->adam_m, c->adam_v};
  for (int a = 0; a < 3; a++)
    for (size_t i = 0; i < n; i++) arrays[a][i] = getf(b + HEADER + (a * n + i) * 4);
  st = CLVAE_OK;
done:
  if (f) fclose(f);
  free(b);
  return st;
}
