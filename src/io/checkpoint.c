/* Checkpoint file: a header, then parameters, Adam m and v (float32), then a CRC-32 of
 * everything before it. All fields little-endian. Version 2 (written):
 *   0 "CLVAECKP"   8 u32 version   12 u32 header bytes (where the parameters start)
 *  16 i32 height, width, channels, depth, latent, loss, batch   44 f32 lr, beta1, beta2, eps
 *  60 u64 seed   68 i64 step   76 i32 epoch, epoch_step, train_limit   88 f64 epoch_loss_sum
 *  96 f64 epoch_seconds   104 u64 n   112 i32 hidden[8]   144 u32 layers   148 i32 train_count
 * 152 per layer, 32 bytes: u32 kind, act, in, out; u64 kernel and bias offsets (~0: none)
 *     ... zero padding to a multiple of 16.
 * Version 1 (read only): a 128-byte header; 16 i32 input, hidden, latent, loss, batch
 *  36 f32 lr, beta1, beta2, eps   52 u64 seed   60 i64 step   68 i32 epoch, epoch_step,
 *  train_limit   80 f64 epoch_loss_sum   88 u64 n   96 f64 epoch_seconds; square grey
 *  images of `input` pixels, one hidden layer. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "clvae/checkpoint.h"
#include "clvae/files.h"
#include "device/internal.h"

#define V1_HEADER 128
#define LAYERS_AT 152
#define LAYER_BYTES 32
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

static size_t header_bytes(int nlayers) { return (LAYERS_AT + (size_t)LAYER_BYTES * nlayers + 15) / 16 * 16; }

clvae_status clvae_checkpoint_alloc(clvae_checkpoint *c, const clvae_config *cfg) {
  clvae_net net;
  memset(c, 0, sizeof *c);
  clvae_status st = clvae_net_build(&net, cfg);
  if (st != CLVAE_OK) return st;
  c->cfg = *cfg;
  c->n = net.total;
  c->params = calloc(net.total, 4), c->adam_m = calloc(net.total, 4), c->adam_v = calloc(net.total, 4);
  if (!c->params || !c->adam_m || !c->adam_v) {
    clvae_checkpoint_free(c);
    return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory for %zu parameters", net.total);
  }
  return CLVAE_OK;
}

void clvae_checkpoint_free(clvae_checkpoint *c) {
  free(c->params), free(c->adam_m), free(c->adam_v);
  c->params = c->adam_m = c->adam_v = NULL;
}

/* The layer records of a net: what a checkpoint stores and a reader compares. */
static void put_layers(unsigned char *b, const clvae_net *net) {
  put32(b + 144, (uint32_t)net->nlayers);
  for (int i = 0; i < net->nlayers; i++) {
    const clvae_layer *l = &net->layers[i];
    unsigned char *r = b + LAYERS_AT + (size_t)LAYER_BYTES * i;
    put32(r, (uint32_t)l->kind), put32(r + 4, (uint32_t)l->act), put32(r + 8, (uint32_t)l->in);
    put32(r + 12, (uint32_t)l->out);
    put64(r + 16, l->kernel >= 0 ? net->tensors[l->kernel].offset : ~(uint64_t)0);
    put64(r + 24, l->bias >= 0 ? net->tensors[l->bias].offset : ~(uint64_t)0);
  }
}

static unsigned char *serialize(const clvae_checkpoint *c, size_t *size) {
  clvae_net net;
  if (clvae_net_build(&net, &c->cfg) != CLVAE_OK || net.total != c->n) return NULL;
  size_t n = c->n, hdr = header_bytes(net.nlayers), total = hdr + 3 * n * 4 + 4;
  unsigned char *b = calloc(1, total);
  if (!b) return NULL;
  memcpy(b, MAGIC, 8);
  put32(b + 8, CLVAE_CHECKPOINT_VERSION), put32(b + 12, (uint32_t)hdr);
  const clvae_config *g = &c->cfg;
  const int ints[7] = {g->height, g->width, g->channels, g->depth, g->latent, g->loss, g->batch};
  for (int i = 0; i < 7; i++) put32(b + 16 + 4 * i, (uint32_t)ints[i]);
  putf(b + 44, g->lr), putf(b + 48, g->beta1), putf(b + 52, g->beta2), putf(b + 56, g->eps);
  put64(b + 60, g->seed), put64(b + 68, (uint64_t)c->step);
  put32(b + 76, (uint32_t)c->train.epoch), put32(b + 80, (uint32_t)c->train.epoch_step), put32(b + 84, (uint32_t)c->train_limit);
  putd(b + 88, c->train.epoch_loss_sum), putd(b + 96, c->train.epoch_seconds), put64(b + 104, n);
  for (int i = 0; i < CLVAE_MAX_DEPTH; i++) put32(b + 112 + 4 * i, (uint32_t)(i < g->depth ? g->hidden[i] : 0));
  put_layers(b, &net);
  put32(b + 148, (uint32_t)c->train_count);
  const float *arrays[3] = {c->params, c->adam_m, c->adam_v};
  for (int a = 0; a < 3; a++)
    for (size_t i = 0; i < n; i++) putf(b + hdr + (a * n + i) * 4, arrays[a][i]);
  put32(b + total - 4, (uint32_t)crc32(0L, b, (uInt)(total - 4)));
  *size = total;
  return b;
}

/* Test hook (test builds only): CLVAE_TEST_SLOW_CHECKPOINT=1 writes in small, slow pieces
 * so that a test can kill the process in the middle of a write. */
static int slow_writes(void) {
#ifdef CLVAE_TEST_HOOKS
  const char *s = getenv("CLVAE_TEST_SLOW_CHECKPOINT");
  return s && *s == '1';
#else
  return 0;
#endif
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
  size_t size;
  clvae_output out;
  unsigned char *b = serialize(c, &size);
  if (!b) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory writing %s", path);
  clvae_status st = clvae_output_open(&out, path);
  if (st != CLVAE_OK) {
    free(b);
    return st;
  }
  if (write_all(fileno(out.f), b, size) != 0) {
    int e = errno ? errno : EIO;
    free(b);
    clvae_output_abort(&out);
    return clvae__fail(CLVAE_ERR_IO, "%s: write failed: %s (the previous checkpoint, if any, is unchanged)", path,
                       strerror(e));
  }
  free(b);
  return clvae_output_commit(&out, 1);
}

/* The configuration and position of a version-2 header; `hdr` bytes are present. */
static clvae_status parse_v2(const char *path, const unsigned char *b, clvae_checkpoint *c) {
  clvae_config *g = &c->cfg;
  memset(g, 0, sizeof *g);
  int *ints[7] = {&g->height, &g->width, &g->channels, &g->depth, &g->latent, &g->loss, &g->batch};
  for (int i = 0; i < 7; i++) *ints[i] = (int)get32(b + 16 + 4 * i);
  g->lr = getf(b + 44), g->beta1 = getf(b + 48), g->beta2 = getf(b + 52), g->eps = getf(b + 56);
  g->seed = get64(b + 60), c->step = (int64_t)get64(b + 68);
  c->train.epoch = (int32_t)get32(b + 76), c->train.epoch_step = (int32_t)get32(b + 80);
  c->train_limit = (int32_t)get32(b + 84), c->train_count = (int32_t)get32(b + 148);
  c->train.epoch_loss_sum = getd(b + 88), c->train.epoch_seconds = getd(b + 96);
  if (g->depth < 1 || g->depth > CLVAE_MAX_DEPTH)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: %d hidden layers (1..%d)", path, g->depth, CLVAE_MAX_DEPTH);
  for (int i = 0; i < CLVAE_MAX_DEPTH; i++) g->hidden[i] = i < g->depth ? (int)get32(b + 112 + 4 * i) : 0;
  return CLVAE_OK;
}

/* Version 1: one hidden layer, and images of `input` pixels taken as a grey square. */
static clvae_status parse_v1(const char *path, const unsigned char *b, clvae_checkpoint *c) {
  clvae_config *g = &c->cfg;
  memset(g, 0, sizeof *g);
  int input = (int)get32(b + 16), side = (int)lround(sqrt((double)(input > 0 ? input : 0)));
  if (input < 1 || side * side != input)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: a format-1 checkpoint for %d-pixel images: format 1 does not record "
                       "the image shape, and %d is not a square; it cannot be used", path, input, input);
  g->height = g->width = side, g->channels = 1, g->depth = 1, g->hidden[0] = (int)get32(b + 20);
  g->latent = (int)get32(b + 24), g->loss = (int)get32(b + 28), g->batch = (int)get32(b + 32);
  g->lr = getf(b + 36), g->beta1 = getf(b + 40), g->beta2 = getf(b + 44), g->eps = getf(b + 48);
  g->seed = get64(b + 52), c->step = (int64_t)get64(b + 60);
  c->train.epoch = (int32_t)get32(b + 68), c->train.epoch_step = (int32_t)get32(b + 72);
  c->train_limit = (int32_t)get32(b + 76);
  c->train.epoch_loss_sum = getd(b + 80), c->train.epoch_seconds = getd(b + 96);
  return CLVAE_OK;
}

/* Everything behind the checksum is still checked: it may have been edited and re-summed. */
static clvae_status check_fields(const char *path, const unsigned char *b, uint32_t version, clvae_checkpoint *c,
                                 uint64_t n, clvae_net *net) {
  if (clvae_net_build(net, &c->cfg) != CLVAE_OK)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: %s", path, clvae_error_message());
  if (net->total != n)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: %llu parameters, but its configuration has %zu", path,
                       (unsigned long long)n, net->total);
  if (version >= 2) {
    unsigned char want[LAYERS_AT + LAYER_BYTES * CLVAE_MAX_LAYERS] = {0};
    put_layers(want, net);
    if (get32(b + 12) != header_bytes(net->nlayers) || get32(b + 144) != (uint32_t)net->nlayers ||
        memcmp(b + LAYERS_AT, want + LAYERS_AT, (size_t)LAYER_BYTES * net->nlayers) != 0)
      return clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: its layer list is not the one its configuration "
                         "describes (%d layers expected)", path, net->nlayers);
  }
  const clvae_train_state *t = &c->train;
  if (c->step < 0 || t->epoch < 0 || t->epoch > 100000 || t->epoch_step < 0 || c->train_limit < 0 || c->train_count < 0 ||
      (c->train_limit && c->train_count > c->train_limit) ||
      !isfinite(t->epoch_loss_sum) || !(t->epoch_seconds >= 0 && t->epoch_seconds < 1e12))
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: training position step %lld, epoch %d, epoch step "
                       "%d, limit %d, images %d, loss sum %g, seconds %g", path, (long long)c->step, t->epoch,
                       t->epoch_step, c->train_limit, c->train_count, t->epoch_loss_sum, t->epoch_seconds);
  return CLVAE_OK;
}

static clvae_status read_file(const char *path, unsigned char **out, size_t *size) {
  struct stat sb;
  FILE *f;
  *out = NULL;
  clvae_status st = clvae_fopen_regular(path, &f);
  if (st != CLVAE_OK) return st;
  if (fstat(fileno(f), &sb) != 0 || sb.st_size < V1_HEADER + 4 || (uint64_t)sb.st_size > ((uint64_t)1 << 35)) {
    fclose(f);
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: %lld bytes: %s for a clvae checkpoint", path, (long long)sb.st_size,
                       sb.st_size < V1_HEADER + 4 ? "too short" : "too large");
  }
  *size = (size_t)sb.st_size;
  unsigned char *b = malloc(*size);
  if (!b) st = clvae__fail(CLVAE_ERR_NOMEM, "%s: out of host memory for %zu bytes", path, *size);
  else if (fread(b, 1, *size, f) != *size || fgetc(f) != EOF)
    st = clvae__fail(CLVAE_ERR_IO, "%s: read failed (the file changed while it was read)", path);
  fclose(f);
  if (st != CLVAE_OK) free(b);
  else *out = b;
  return st;
}

clvae_status clvae_checkpoint_load(const char *path, clvae_checkpoint *c) {
  unsigned char *b;
  size_t size;
  clvae_net net;
  memset(c, 0, sizeof *c);
  clvae_status st = read_file(path, &b, &size);
  if (st != CLVAE_OK) return st;
  st = CLVAE_ERR_FORMAT;
  uint32_t version = get32(b + 8);
  uint64_t hdr = version == 1 ? V1_HEADER : get32(b + 12), n = get64(b + (version == 1 ? 88 : 104));
  if (memcmp(b, MAGIC, 8) != 0) {
    clvae__fail(st, "%s: not a clvae checkpoint (bad magic)", path);
    goto done;
  }
  if ((version != 1 && version != 2) || (version == 1 && get32(b + 12) != V1_HEADER)) {
    clvae__fail(st, "%s: checkpoint format version %u; this clvae reads versions 1 and 2", path, version);
    goto done;
  }
  if (version == 2 && (hdr < LAYERS_AT || hdr > header_bytes(CLVAE_MAX_LAYERS))) {
    clvae__fail(st, "%s: damaged checkpoint: header of %llu bytes", path, (unsigned long long)hdr);
    goto done;
  }
  if (n == 0 || n > 0x7fffffffu || size != hdr + 3 * n * 4 + 4) {
    clvae__fail(st, "%s: truncated or damaged: %zu bytes, but the header describes %llu parameters", path, size,
                (unsigned long long)n);
    goto done;
  }
  if (get32(b + size - 4) != (uint32_t)crc32(0L, b, (uInt)(size - 4))) {
    clvae__fail(st, "%s: checksum mismatch: the file is damaged", path);
    goto done;
  }
  if ((version == 1 ? parse_v1(path, b, c) : parse_v2(path, b, c)) != CLVAE_OK) goto done;
  if (check_fields(path, b, version, c, n, &net) != CLVAE_OK) goto done;
  clvae_checkpoint tmp = *c;
  if ((st = clvae_checkpoint_alloc(c, &tmp.cfg)) != CLVAE_OK) goto done;
  c->step = tmp.step, c->train = tmp.train, c->train_limit = tmp.train_limit, c->train_count = tmp.train_count;
  float *arrays[3] = {c->params, c->adam_m, c->adam_v};
  static const char *const names[3] = {"parameter", "Adam first moment", "Adam second moment"};
  for (int a = 0; a < 3; a++)
    for (size_t i = 0; i < n; i++) {
      float v = arrays[a][i] = getf(b + hdr + (a * n + i) * 4);
      if (!isfinite(v) || (a == 2 && v < 0)) {
        clvae_checkpoint_free(c);
        st = clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: %s %zu is %g", path, names[a], i, (double)v);
        goto done;
      }
    }
  st = CLVAE_OK;
done:
  free(b);
  return st;
}
