/* `clvae serve`: a local web page for exploring what a model learned, decoding on the
 * OpenCL device. libmicrohttpd runs the HTTP side on one internal thread, which is also the
 * only thread that touches the device: every request is handled there in turn. The main
 * thread waits for SIGINT/SIGTERM/SIGHUP and then stops the server.
 *
 * Routes (GET only; anything else 404, other methods 405):
 *   /, /app.js, /style.css, /favicon.ico  the page: embedded assets, nothing from the file system
 *   /api/info                  the model (shape, layers, latent size, epoch, step) and data
 *   /api/state                 a version that changes when the checkpoint file does; whether a
 *                              `clvae train` holds the run (its position and ETA); the curve's files
 *   /api/grid?n&start&end&dx&dy[&class]  the n×n mosaic `clvae grid` draws, as raw bytes
 *   /api/decode?z=a,b,...[&class]  one decoding, raw bytes; Server-Timing says how long it took
 *   /api/walk?from&to|from_z&to_z[&steps][&class]  the row `clvae interpolate` draws, raw bytes
 *   /api/scatter               the test set's latent means and labels
 *   /api/reconstruct?count=8   the mosaic `clvae reconstruct --count 8` draws, as raw bytes
 *   /api/metrics               the run's metrics.csv (beside the checkpoint) as JSON
 *   /api/progress              the run's progress.csv (the loss every few steps) as JSON
 * A conditional model (classes K > 0) decodes for a class: `class` (an index) is required by
 * the grid, the decoding and a walk between latent points, and refused by other models. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#ifdef CLVAE_HAVE_HTTP
#include <arpa/inet.h>
#include <fcntl.h>
#include <libgen.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/loader.h"
#include "clvae/files.h"
#include "clvae/image.h"
#include "clvae/train.h"
#include "util/timing.h"

extern const unsigned char clvae_serve_html[], clvae_serve_js[], clvae_serve_css[];
extern const size_t clvae_serve_html_len, clvae_serve_js_len, clvae_serve_css_len;

#define MAX_N 64             /* grid points per dimension */
#define MAX_Z 1000.0         /* latent coordinates, as clvae grid accepts them */
#define METRICS_CAP (1 << 20) /* bytes of metrics.csv read: ~17,000 epochs' rows */
#define PROGRESS_CAP (256 << 10) /* bytes of progress.csv read, its last: ~8,000 rows */
#define MAX_RECON 64         /* test images reconstructed in one request */
#define MAX_STEPS 64         /* points of a walk, as clvae interpolate --steps */
#define LOG_LINES 10         /* libmicrohttpd's messages shown, the last saying that more are dropped */

typedef struct server {
  const char *model_path, *data_dir;
  char metrics_path[4200], progress_path[4200], lock_path[4200]; /* beside the checkpoint */
  clvae_device *dev;
  clvae_model *m;
  clvae_checkpoint ck;
  struct stat seen;          /* the checkpoint file as last loaded (or last refused) */
  double checked;            /* when it was last stat'ed */
  int version;               /* bumped by every reload */
  char reload_error[1024];   /* why the last change could not be loaded ("" if it could) */
  clvae_images test;         /* the test set (count 0: none) */
  clvae_dataset *dtest;      /* on the device, when its shape is the model's */
  const char *const *classes;
  char **owned_classes;
  float *mu;                 /* (test.count, latent): the encodings for the scatter */
  char *scatter;             /* its JSON, built on demand */
  size_t scatter_len;
  int loopback;              /* listening on a loopback address only */
  char self[INET6_ADDRSTRLEN + 2]; /* that address as the URL shows it: "127.1.2.3", "[::1]" */
  atomic_int logged;         /* libmicrohttpd's messages so far */
} server;

/* ---- responses ---- */

typedef struct buf {
  char *p;
  size_t n, cap;
  int oom;
} buf;

static void put(buf *b, const char *fmt, ...) {
  va_list ap;
  for (int pass = 0; pass < 2 && !b->oom; pass++) {
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if (b->p && b->n + (size_t)n < b->cap) {
      b->n += (size_t)n;
      return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap <= b->n + (size_t)n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p, b->cap = cap;
  }
}

/* The length of the well-formed UTF-8 sequence at s (1 to 4 bytes), or 0 where the bytes
 * are not one: a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF,
 * or cut short (the NUL ends a sequence like any other non-continuation byte). */
static int utf8_length(const unsigned char *s) {
  int n = s[0] < 0x80 ? 1 : s[0] < 0xc2 ? 0 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] < 0xf5 ? 4 : 0;
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xf0 && s[1] < 0x90)) return 0; /* overlong */
  if (s[0] == 0xed && s[1] >= 0xa0) return 0;                                    /* U+D800..U+DFFF */
  if (s[0] == 0xf4 && s[1] >= 0x90) return 0;                                    /* beyond U+10FFFF */
  return n;
}

/* s as a JSON string: file and class names are bytes, not always UTF-8. Well-formed UTF-8
 * passes through as it is (JSON needs only '"', '\\' and controls escaped); each byte
 * of anything else becomes U+FFFD, so the answer is always valid UTF-8. */
static void put_json_string(buf *b, const char *s) {
  put(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    int n = utf8_length(p);
    if (*p == '"' || *p == '\\') put(b, "\\%c", *p);
    else if (*p < 0x20) put(b, "\\u%04x", *p);
    else if (n == 0) put(b, "\\ufffd");
    else put(b, "%.*s", n, (const char *)p);
    p += n ? n : 1;
  }
  put(b, "\"");
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type, const void *data,
                               size_t n, enum MHD_ResponseMemoryMode mode, const char *timing) {
  struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)data, mode);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Content-Security-Policy", "default-src 'self'; img-src 'self' data:");
  if (timing) MHD_add_response_header(r, "Server-Timing", timing);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result json(struct MHD_Connection *c, unsigned status, buf *b) {
  if (b->oom) {
    free(b->p);
    static const char oom[] = "{\"error\": \"out of host memory\"}";
    return respond(c, 500, "application/json", oom, sizeof oom - 1, MHD_RESPMEM_PERSISTENT, NULL);
  }
  return respond(c, status, "application/json", b->p ? b->p : "", b->n, MHD_RESPMEM_MUST_FREE, NULL);
}

static enum MHD_Result error(struct MHD_Connection *c, unsigned status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  buf b = {0};
  put(&b, "{\"error\": ");
  put_json_string(&b, msg);
  put(&b, "}");
  return json(c, status, &b);
}

/* ---- the model and the checkpoint file ---- */

/* Configurations as clvae_net_build makes them canonical: the same layers, however given. */
static int same_net(const clvae_config *a, const clvae_config *b) {
  return a->height == b->height && a->width == b->width && a->channels == b->channels && a->nenc == b->nenc &&
         a->ndec == b->ndec && !memcmp(a->enc, b->enc, sizeof a->enc) && !memcmp(a->dec, b->dec, sizeof a->dec) &&
         a->latent == b->latent && a->classes == b->classes;
}

/* The test set's encodings under the current parameters (none when the shapes differ). */
static void encode_test(server *s) {
  const clvae_config *c = clvae_model_config(s->m);
  free(s->mu), s->mu = NULL;
  free(s->scatter), s->scatter = NULL;
  if (!s->test.count || s->test.height != c->height || s->test.width != c->width || s->test.channels != c->channels) {
    clvae_dataset_free(s->dtest), s->dtest = NULL;
    return;
  }
  if (!s->dtest && clvae_dataset_create(&s->dtest, s->dev, &s->test, 0) != CLVAE_OK) {
    fprintf(stderr, "clvae serve: the test set for the scatter: %s\n", clvae_error_message());
    return;
  }
  s->mu = malloc((size_t)s->test.count * c->latent * sizeof *s->mu);
  if (s->mu && clvae_dataset_encode(s->m, s->dtest, s->mu) != CLVAE_OK) {
    fprintf(stderr, "clvae serve: encoding the test set: %s\n", clvae_error_message());
    free(s->mu), s->mu = NULL;
  }
}

/* Loads the checkpoint into the model (a new model if its layers changed). */
static clvae_status load(server *s, const clvae_checkpoint *ck) {
  clvae_model *m = s->m;
  clvae_status st = CLVAE_OK;
  if (!m || !same_net(clvae_model_config(m), &ck->cfg)) {
    clvae_config cfg = ck->cfg;
    cfg.batch = 256; /* decoding and encoding in batches of this size */
    if ((st = clvae_model_create(&m, s->dev, &cfg)) != CLVAE_OK) return st;
  }
  if ((st = clvae_model_set_state(m, ck->params, ck->adam_m, ck->adam_v, ck->step)) != CLVAE_OK) {
    if (m != s->m) clvae_model_free(m);
    return st;
  }
  if (m != s->m) clvae_model_free(s->m), s->m = m;
  encode_test(s);
  s->version++;
  return CLVAE_OK;
}

/* A changed checkpoint file (a training run writing it) is loaded, at most every 0.25 s. */
static void maybe_reload(server *s) {
  double now = clvae_now();
  struct stat sb;
  if (now - s->checked < 0.25) return;
  s->checked = now;
  if (stat(s->model_path, &sb) != 0) {
    snprintf(s->reload_error, sizeof s->reload_error, "%s: %s (still showing the last one loaded)", s->model_path,
             strerror(errno));
    memset(&s->seen, 0, sizeof s->seen); /* whatever comes back at that path is loaded */
    return;
  }
  if (sb.st_ino == s->seen.st_ino && sb.st_size == s->seen.st_size && sb.st_mtim.tv_sec == s->seen.st_mtim.tv_sec &&
      sb.st_mtim.tv_nsec == s->seen.st_mtim.tv_nsec)
    return;
  s->seen = sb; /* tried once per change, whatever the outcome */
  clvae_checkpoint ck = {0};
  clvae_status st = clvae_checkpoint_load(s->model_path, &ck);
  if (st == CLVAE_OK) st = load(s, &ck);
  if (st == CLVAE_OK) {
    clvae_checkpoint_free(&s->ck);
    s->ck = ck;
    s->reload_error[0] = '\0';
    printf("clvae serve: reloaded %s (epoch %d, step %lld)\n", s->model_path, ck.train.epoch, (long long)ck.step);
    fflush(stdout);
  } else {
    snprintf(s->reload_error, sizeof s->reload_error, "%s (still showing the last one loaded)", clvae_error_message());
    fprintf(stderr, "clvae serve: %s\n", s->reload_error);
    clvae_checkpoint_free(&ck);
  }
}

/* ---- request parameters ---- */

/* A number in [lo, hi] from the query (cli_number's rule, as for the CLI's flags), or the
 * default when absent; 0 on error (the message in err). */
static int param_num(struct MHD_Connection *c, const char *name, double def, double lo, double hi, int whole,
                     double *out, char *err, size_t n) {
  const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
  if (!v) {
    *out = def;
    return 1;
  }
  char *end;
  double x;
  if (!cli_number(v, &end, &x) || *end || x < lo || x > hi || (whole && x != floor(x))) {
    snprintf(err, n, "%s '%.60s' is not a%s number from %g to %g", name, v, whole ? " whole" : " finite", lo, hi);
    return 0;
  }
  *out = x;
  return 1;
}

/* The two latent dimensions shown: dx and dy, distinct, below L. */
static int param_dims(struct MHD_Connection *c, int L, int *dx, int *dy, char *err, size_t n) {
  double x, y;
  if (!param_num(c, "dx", 0, 0, L - 1, 1, &x, err, n)) return 0;
  if (!param_num(c, "dy", L > 1 ? 1 : 0, 0, L - 1, 1, &y, err, n)) return 0;
  *dx = (int)x, *dy = L > 1 ? (int)y : -1;
  if (L > 1 && *dx == *dy) {
    snprintf(err, n, "dx and dy are both %d: choose two different latent dimensions", *dx);
    return 0;
  }
  return 1;
}

/* A conditional model's class: `class`, an index below K, into *k. -1 when the model is
 * unconditional (the parameter is then refused) or when it may be left out and is. */
static int param_class(server *s, struct MHD_Connection *c, int required, int *k, char *err, size_t n) {
  const int K = clvae_model_config(s->m)->classes;
  const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "class");
  double x;
  *k = -1;
  if (!K && v) {
    snprintf(err, n, "class '%.60s': the model is not conditional (it has no class input); leave class out", v);
    return 0;
  }
  if (K && !v && required) {
    char list[4096];
    snprintf(err, n, "class is required: the model is conditional (class=INDEX, one of %s)",
             cli_class_list(&s->ck, list, sizeof list));
    return 0;
  }
  if (!v) return 1;
  if (!param_num(c, "class", 0, 0, K - 1, 1, &x, err, n)) return 0;
  *k = (int)x;
  return 1;
}

/* A latent point `name`=a,b,...: exactly L numbers within ±MAX_Z (cli_number's rule; numbers
 * and single commas, nothing else) into z; 0 on error (the message in err). */
static int param_point(struct MHD_Connection *c, const char *name, int L, float *z, char *err, size_t n) {
  const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
  int k = 0, ok = v != NULL && *v != '\0';
  for (const char *p = v; ok && *p;) {
    char *end;
    double x = 0;
    ok = cli_number(p, &end, &x) && fabs(x) <= MAX_Z && (*end == ',' || !*end) && k < L;
    if (ok) z[k++] = (float)x;
    p = end;
    if (ok && *p == ',') ok = *++p != '\0';
  }
  if (ok && k == L) return 1;
  snprintf(err, n, "%s '%.80s' is not %d finite numbers within ±%g separated by commas", name, v ? v : "", L, MAX_Z);
  return 0;
}

/* n rows of the one-hot class k of K (NULL for k < 0: no class input). */
static float *class_rows(int n, int K, int k) {
  if (k < 0) return NULL;
  float *c = calloc((size_t)n * K, sizeof *c);
  for (int i = 0; c && i < n; i++) c[(size_t)i * K + k] = 1.0f;
  return c;
}

/* ---- the run's other files: progress.csv and the training lock ---- */

/* Steps in an epoch of the run: its training images in batches, the last one partial (as
 * clvae_train counts them; --batch-size and --limit cannot change on --resume); 0 when the
 * checkpoint does not record how many images it trained on. */
static int steps_per_epoch(const server *s) {
  const clvae_checkpoint *ck = &s->ck;
  if (ck->train_count <= 0 || ck->cfg.batch <= 0) return 0;
  return (int)(((int64_t)ck->train_count + ck->cfg.batch - 1) / ck->cfg.batch);
}

/* The last `cap` bytes of a file of the run (all of it when it is smaller) from its first
 * whole line on, NUL-terminated in *text (malloc'ed; NULL and 0 when there is none): a
 * regular file only, never a FIFO or a device (nothing blocks), and never more than cap + 1
 * bytes read whatever its size or its lines' lengths. */
static size_t read_tail(const char *path, size_t cap, char **text) {
  int fd;
  struct stat sb;
  *text = NULL;
  if (clvae_open_regular(path, &fd) != CLVAE_OK) return 0; /* none yet, or not a file: no rows */
  if (fstat(fd, &sb) != 0 || !(*text = malloc(cap + 2))) {
    close(fd);
    return 0;
  }
  /* from the byte before the last cap: whether the first of them starts a line */
  off_t from = sb.st_size > (off_t)cap ? sb.st_size - (off_t)cap - 1 : 0;
  size_t len = 0, want = cap + (from > 0);
  while (len < want) {
    ssize_t n = pread(fd, *text + len, want - len, from + (off_t)len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  (*text)[len] = '\0';
  size_t skip = 0;
  if (from > 0) { /* a line cut at the start: the rows begin after its newline */
    char *nl = memchr(*text, '\n', len);
    skip = nl ? (size_t)(nl + 1 - *text) : len;
  }
  memmove(*text, *text + skip, len - skip + 1);
  return len - skip;
}

typedef struct progress_row {
  int64_t step;              /* the run's steps done after it */
  int epoch;                 /* the epoch it belongs to, from 1 */
  double loss, seconds;      /* the mean batch loss since the previous row; seconds into the epoch */
} progress_row;

/* One row of progress.csv, "step,epoch,loss,seconds" (a line without its newline; fields
 * after these four are ignored); 0 for the header or anything malformed. */
static int progress_parse(const char *line, progress_row *r) {
  const char *p = line;
  char *end;
  errno = 0;
  long long step = strtoll(p, &end, 10);
  if (end == p || *end != ',' || errno || step < 0 || step > (1LL << 53)) return 0;
  long ep = strtol(p = end + 1, &end, 10);
  if (end == p || *end != ',' || errno || ep < 1 || ep > 100000000) return 0;
  double loss = strtod(p = end + 1, &end);
  if (end == p || *end != ',' || !isfinite(loss)) return 0;
  double sec = strtod(p = end + 1, &end);
  if (end == p || (*end != ',' && *end) || !isfinite(sec) || sec < 0) return 0;
  *r = (progress_row){step, (int)ep, loss, sec};
  return 1;
}

/* Calls fn for each row of text that is whole: a line ended by its newline (the last one
 * may still be being written) without a NUL. Returns how many. */
static int progress_rows(char *text, size_t len, void (*fn)(const progress_row *r, void *user), void *user) {
  int n = 0;
  for (char *line = text, *stop = text + len; line < stop;) {
    char *nl = memchr(line, '\n', (size_t)(stop - line));
    if (!nl) break;
    *nl = '\0';
    progress_row r;
    if (strlen(line) == (size_t)(nl - line) && progress_parse(line, &r)) fn(&r, user), n++;
    line = nl + 1;
  }
  return n;
}

typedef struct progress_json {
  buf step, epoch, loss, seconds;
  int n;
} progress_json;

static void progress_put(const progress_row *r, void *user) {
  progress_json *j = user;
  const char *sep = j->n++ ? "," : "";
  put(&j->step, "%s%lld", sep, (long long)r->step), put(&j->epoch, "%s%d", sep, r->epoch);
  put(&j->loss, "%s%.6f", sep, r->loss), put(&j->seconds, "%s%.3f", sep, r->seconds);
}

/* The run's progress.csv (beside the checkpoint; `clvae train` appends a row at each loss
 * read-back): its last PROGRESS_CAP bytes only, the newest rows, whatever its size. */
static enum MHD_Result api_progress(server *s, struct MHD_Connection *c) {
  char *text;
  size_t len = read_tail(s->progress_path, PROGRESS_CAP, &text);
  progress_json j = {0};
  if (text) progress_rows(text, len, progress_put, &j);
  free(text);
  buf b = {0};
  put(&b, "{\"steps_per_epoch\": %d, \"step\": [%s], \"epoch\": [%s], \"loss\": [%s], \"seconds\": [%s]}",
      steps_per_epoch(s), j.n ? j.step.p : "", j.n ? j.epoch.p : "", j.n ? j.loss.p : "", j.n ? j.seconds.p : "");
  b.oom |= j.step.oom | j.epoch.oom | j.loss.oom | j.seconds.oom;
  free(j.step.p), free(j.epoch.p), free(j.loss.p), free(j.seconds.p);
  return json(c, 200, &b);
}

/* The pid of the `clvae train` that holds the run, or 0: DIR/.clvae.lock exists, is a
 * regular file and names a live process. The lock itself is never taken (a train starting
 * then would refuse the directory): a finished run removes the file, a killed one leaves it
 * naming a dead process. */
static long training_pid(const server *s, struct timespec *since) {
  int fd;
  char text[32];
  struct stat sb;
  if (clvae_open_regular(s->lock_path, &fd) != CLVAE_OK) return 0;
  ssize_t n = fstat(fd, &sb) == 0 ? read(fd, text, sizeof text - 1) : -1;
  close(fd);
  if (n <= 0) return 0; /* not written yet, or unreadable */
  text[n] = '\0';
  char *end;
  errno = 0;
  long pid = strtol(text, &end, 10);
  if (end == text || errno || pid <= 0 || pid > INT_MAX || (*end && *end != '\n')) return 0;
  *since = sb.st_mtim; /* when the run took the lock (it writes its pid then) */
  return kill((pid_t)pid, 0) == 0 || errno == EPERM ? pid : 0;
}

static void progress_last(const progress_row *r, void *user) { *(progress_row *)user = *r; }

static double seconds_since(struct timespec t) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return (double)(now.tv_sec - t.tv_sec) + (now.tv_nsec - t.tv_nsec) * 1e-9;
}

/* Where a running `clvae train` stands, as JSON (null when none holds the run): its epoch
 * and step from progress.csv's last row when this run wrote it and it is not older than the
 * checkpoint (else from the checkpoint), and the time left in the epoch in progress at the
 * pace of that row's epoch, counted down from when the row was written (or from when the run
 * started, if that was later). The run's --epochs is not known here: no ETA for the run. */
static void put_training(server *s, buf *b) {
  struct timespec started;
  long pid = training_pid(s, &started);
  if (!pid) {
    put(b, "null");
    return;
  }
  char *text;
  struct stat sb = {0};
  progress_row last = {0};
  int have = 0, spe = steps_per_epoch(s);
  size_t len = read_tail(s->progress_path, 4096, &text);
  if (text) have = progress_rows(text, len, progress_last, &last) > 0 && stat(s->progress_path, &sb) == 0;
  free(text);
  int epoch = s->ck.train.epoch + 1, k = s->ck.train.epoch_step;
  int64_t step = s->ck.step;
  double per_step = 0; /* seconds */
  if (have && spe) {
    int64_t done = last.step - (int64_t)(last.epoch - 1) * spe; /* the row's steps into its epoch */
    if (done >= 1 && done <= spe && last.seconds > 0) per_step = last.seconds / (double)done;
    /* a row of this run (not one a killed run wrote past the checkpoint it resumes from) */
    if (last.step >= step && done >= 0 && done <= spe && seconds_since(sb.st_mtim) <= seconds_since(started)) {
      step = last.step, epoch = last.epoch + (done == spe), k = done == spe ? 0 : (int)done;
    }
  }
  put(b, "{\"pid\": %ld, \"epoch\": %d, \"step\": %lld, \"epoch_step\": %d, \"steps_per_epoch\": %d, "
         "\"epoch_eta_seconds\": ", pid, epoch, (long long)step, k, spe);
  if (per_step > 0) {
    double since = fmin(seconds_since(sb.st_mtim), seconds_since(started));
    double eta = (spe - k) * per_step - (since > 0 ? since : 0);
    put(b, "%.1f", eta > 0 ? eta : 0.0);
  } else put(b, "null");
  put(b, "}");
}

/* A file's identity and state, for the page to know when to fetch it again ("" if none). */
static void put_signature(buf *b, const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) put(b, "\"\"");
  else put(b, "\"%llu.%lld.%lld.%ld\"", (unsigned long long)sb.st_ino, (long long)sb.st_size,
           (long long)sb.st_mtim.tv_sec, (long)sb.st_mtim.tv_nsec);
}

/* ---- routes ---- */

static enum MHD_Result api_info(server *s, struct MHD_Connection *c) {
  const clvae_config *cfg = clvae_model_config(s->m);
  buf b = {0};
  put(&b, "{\"height\": %d, \"width\": %d, \"channels\": %d, \"latent\": %d, \"hidden\": [", cfg->height, cfg->width,
      cfg->channels, cfg->latent);
  for (int i = 0; i < cfg->depth; i++) put(&b, "%s%d", i ? ", " : "", cfg->hidden[i]);
  char layers[2100];
  put(&b, "], \"layers\": ");
  put_json_string(&b, cli_layers_text(cfg, layers, sizeof layers));
  put(&b, ", \"epoch\": %d, \"step\": %lld, \"version\": %d, \"checkpoint\": ", s->ck.train.epoch,
      (long long)s->ck.step, s->version);
  put_json_string(&b, s->model_path);
  put(&b, ", \"test_images\": %d, \"scatter\": %s, \"max_n\": %d, \"max_reconstruct\": %d, \"batch\": %d, "
         "\"train_images\": %d, \"steps_per_epoch\": %d, \"reload_error\": ", s->mu ? s->test.count : 0,
      s->mu ? "true" : "false", MAX_N, MAX_RECON, s->ck.cfg.batch, s->ck.train_count, steps_per_epoch(s));
  put_json_string(&b, s->reload_error);
  put(&b, ", \"classes\": [");
  for (int i = 0; s->mu && s->classes && i < s->test.classes; i++) {
    put(&b, i ? ", " : "");
    put_json_string(&b, s->classes[i]);
  }
  put(&b, "], \"conditional\": "); /* the model's classes, named as the CLI's --class takes them */
  if (!cfg->classes) put(&b, "null");
  else {
    put(&b, "{\"classes\": %d, \"class_names\": [", cfg->classes);
    for (int k = 0; k < cfg->classes; k++) {
      char name[32];
      snprintf(name, sizeof name, "class %d", k);
      put(&b, k ? ", " : "");
      put_json_string(&b, s->ck.class_names && s->ck.class_names[k][0] ? s->ck.class_names[k] : name);
    }
    put(&b, "]}");
  }
  put(&b, "}");
  return json(c, 200, &b);
}

static enum MHD_Result api_state(server *s, struct MHD_Connection *c) {
  buf b = {0};
  put(&b, "{\"version\": %d, \"epoch\": %d, \"step\": %lld, \"reload_error\": ", s->version, s->ck.train.epoch,
      (long long)s->ck.step);
  put_json_string(&b, s->reload_error);
  put(&b, ", \"metrics\": "); /* when these change, the page fetches the curve again */
  put_signature(&b, s->metrics_path);
  put(&b, ", \"progress\": ");
  put_signature(&b, s->progress_path);
  put(&b, ", \"training\": ");
  put_training(s, &b);
  put(&b, "}");
  return json(c, 200, &b);
}

/* Decodes n latent points (with a conditional model's class rows cond (n, K), else NULL) into a
 * mosaic of `cols` columns: raw bytes, (rows·H, cols·W, C). */
static enum MHD_Result send_mosaic(server *s, struct MHD_Connection *c, const float *z, const float *cond, int n,
                                   int cols) {
  const clvae_config *cfg = clvae_model_config(s->m);
  size_t D = (size_t)clvae_config_pixels(cfg), rows = (size_t)(n + cols - 1) / cols;
  float *p = malloc((size_t)n * D * sizeof *p);
  uint8_t *px = calloc(rows * cols * D, 1);
  double t0 = clvae_now();
  clvae_status st = p && px ? clvae_model_decode_cond(s->m, z, cond, n, p) : CLVAE_ERR_NOMEM;
  double ms = (clvae_now() - t0) * 1e3;
  if (st == CLVAE_OK) clvae_mosaic(px, p, n, cols, cfg->height, cfg->width, cfg->channels);
  free(p);
  if (st != CLVAE_OK) {
    free(px);
    return error(c, 500, "decoding failed: %s", st == CLVAE_ERR_NOMEM ? "out of host memory" : clvae_error_message());
  }
  char timing[64];
  snprintf(timing, sizeof timing, "decode;dur=%.3f", ms);
  return respond(c, 200, "application/octet-stream", px, rows * cols * D, MHD_RESPMEM_MUST_FREE, timing);
}

static enum MHD_Result api_grid(server *s, struct MHD_Connection *c) {
  const int L = clvae_model_config(s->m)->latent;
  char err[1024];
  double n, start, end;
  int dx, dy, k;
  if (!param_num(c, "n", 30, 2, MAX_N, 1, &n, err, sizeof err) ||
      !param_num(c, "start", -4, -MAX_Z, MAX_Z, 0, &start, err, sizeof err) ||
      !param_num(c, "end", 4, -MAX_Z, MAX_Z, 0, &end, err, sizeof err) ||
      !param_dims(c, L, &dx, &dy, err, sizeof err) || !param_class(s, c, 1, &k, err, sizeof err))
    return error(c, 400, "%s", err);
  if (!(start < end)) return error(c, 400, "start %g must be less than end %g", start, end);
  const int K = clvae_model_config(s->m)->classes;
  float *z = malloc((size_t)n * n * L * sizeof *z), *cond = class_rows((int)(n * n), K, k);
  if (!z || (k >= 0 && !cond)) {
    free(z), free(cond);
    return error(c, 500, "out of host memory");
  }
  cli_grid_latents(z, (int)n, L, start, end, dx, dy);
  enum MHD_Result r = send_mosaic(s, c, z, cond, (int)(n * n), (int)n);
  free(z), free(cond);
  return r;
}

static enum MHD_Result api_decode(server *s, struct MHD_Connection *c) {
  const int L = clvae_model_config(s->m)->latent, K = clvae_model_config(s->m)->classes;
  char err[1024];
  int k;
  float *z = calloc((size_t)L, sizeof *z);
  if (!z) return error(c, 500, "out of host memory");
  if (!param_point(c, "z", L, z, err, sizeof err) || !param_class(s, c, 1, &k, err, sizeof err)) {
    free(z);
    return error(c, 400, "%s", err);
  }
  float *cond = class_rows(1, K, k);
  enum MHD_Result r = k >= 0 && !cond ? error(c, 500, "out of host memory") : send_mosaic(s, c, z, cond, 1, 1);
  free(z), free(cond);
  return r;
}

static enum MHD_Result api_scatter(server *s, struct MHD_Connection *c) {
  if (!s->mu) return error(c, 404, "no test set to encode (its shape is not the model's, or it could not be read)");
  if (!s->scatter) {
    const int L = clvae_model_config(s->m)->latent, n = s->test.count;
    buf b = {0};
    put(&b, "{\"dims\": %d, \"count\": %d, \"mu\": [", L, n);
    for (size_t i = 0; i < (size_t)n * L && !b.oom; i++) put(&b, "%s%.5g", i ? "," : "", s->mu[i]);
    put(&b, "], \"labels\": ");
    if (s->test.labels) {
      put(&b, "[");
      for (int i = 0; i < n && !b.oom; i++) put(&b, "%s%d", i ? "," : "", s->test.labels[i]);
      put(&b, "]");
    } else put(&b, "null");
    put(&b, "}");
    if (b.oom) return json(c, 500, &b);
    s->scatter = b.p, s->scatter_len = b.n;
  }
  return respond(c, 200, "application/json", s->scatter, s->scatter_len, MHD_RESPMEM_MUST_COPY, NULL);
}

/* The first `count` test images and the decodings of their means, as `clvae reconstruct
 * --count N` draws them (cmd_images.c) and with its library calls: those images uploaded as a
 * set of their own, encoded, their means decoded. Raw bytes, (2·chunks·H, cols·W, C): chunks
 * of up to 8 columns, the originals in row 2k, their reconstructions in row 2k + 1. */
static enum MHD_Result api_reconstruct(server *s, struct MHD_Connection *c) {
  char err[256];
  double count;
  if (!param_num(c, "count", 8, 1, MAX_RECON, 1, &count, err, sizeof err)) return error(c, 400, "%s", err);
  if (!s->mu)
    return error(c, 404, "no test set to reconstruct (its shape is not the model's, or it could not be read)");
  const clvae_config *cfg = clvae_model_config(s->m);
  const int n = (int)count < s->test.count ? (int)count : s->test.count, cols = n < 8 ? n : 8;
  const size_t D = (size_t)clvae_config_pixels(cfg), cells_n = (size_t)2 * ((n + cols - 1) / cols) * cols;
  clvae_dataset *d = NULL;
  float *mu = malloc((size_t)n * cfg->latent * sizeof *mu), *rec = malloc((size_t)n * D * sizeof *rec);
  float *cells = calloc(cells_n * D, sizeof *cells);
  uint8_t *px = malloc(cells_n * D);
  double t0 = clvae_now();
  clvae_status st = mu && rec && cells && px ? CLVAE_OK : CLVAE_ERR_NOMEM;
  if (st == CLVAE_OK) st = clvae_dataset_create(&d, s->dev, &s->test, n);
  if (st == CLVAE_OK) st = clvae_dataset_encode(s->m, d, mu);
  float *cond = NULL; /* a conditional model decodes each image with its class, as reconstruct does */
  if (st == CLVAE_OK && cfg->classes && !(cond = calloc((size_t)n * cfg->classes, sizeof *cond))) st = CLVAE_ERR_NOMEM;
  for (int i = 0; cond && s->test.labels && i < n; i++)
    if (s->test.labels[i] < cfg->classes) cond[(size_t)i * cfg->classes + s->test.labels[i]] = 1.0f;
  if (st == CLVAE_OK) st = clvae_model_decode_cond(s->m, mu, cond, n, rec);
  free(cond);
  double ms = (clvae_now() - t0) * 1e3;
  clvae_dataset_free(d);
  for (int i = 0; i < n && st == CLVAE_OK; i++) { /* chunk k: originals in row 2k, reconstructions in row 2k + 1 */
    float *orig = cells + ((size_t)(i / cols) * 2 * cols + i % cols) * D, *r = orig + (size_t)cols * D;
    for (size_t j = 0; j < D; j++) orig[j] = s->test.pixels[(size_t)i * D + j] / 255.0f;
    memcpy(r, rec + (size_t)i * D, D * sizeof *r);
  }
  if (st == CLVAE_OK) clvae_mosaic(px, cells, (int)cells_n, cols, cfg->height, cfg->width, cfg->channels);
  free(mu), free(rec), free(cells);
  if (st != CLVAE_OK) {
    free(px);
    return error(c, 500, "reconstructing failed: %s",
                 st == CLVAE_ERR_NOMEM ? "out of host memory" : clvae_error_message());
  }
  char timing[64];
  snprintf(timing, sizeof timing, "reconstruct;dur=%.3f", ms);
  return respond(c, 200, "application/octet-stream", px, cells_n * D, MHD_RESPMEM_MUST_FREE, timing);
}

/* ---- a walk through the latent space, as `clvae interpolate` draws it (cmd_images.c) ---- */

/* Which ends a walk names: 1 two test images (from, to), 0 two latent points (from_z, to_z);
 * -1 for anything else (the message in err). */
static int walk_kind(struct MHD_Connection *c, char *err, size_t n) {
  const char *const names[4] = {"from", "to", "from_z", "to_z"};
  int has[4];
  for (int i = 0; i < 4; i++) has[i] = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, names[i]) != NULL;
  if ((has[0] || has[1]) && (has[2] || has[3]))
    snprintf(err, n, "from/to (test images) and from_z/to_z (latent points): give one pair of ends");
  else if (has[0] != has[1] || has[2] != has[3]) {
    int missing = has[0] != has[1] ? (has[0] ? 1 : 0) : (has[2] ? 3 : 2);
    snprintf(err, n, "%s is missing: a walk needs both ends", names[missing]);
  } else if (!has[0] && !has[2])
    snprintf(err, n, "from and to (test image indices) or from_z and to_z (latent points) are required");
  else return has[0];
  return -1;
}

/* The means of test images I and J into ends (2, L), with those images' labels in lab (-1:
 * unlabelled): the two uploaded as a set of their own and encoded, as interpolate does.
 * Returns the HTTP status: 200, or the failure's with its message in err. */
static unsigned walk_images(server *s, struct MHD_Connection *c, float *ends, int idx[2], int lab[2], char *err,
                            size_t n) {
  const size_t D = (size_t)clvae_config_pixels(clvae_model_config(s->m));
  double x[2];
  if (!s->mu) {
    snprintf(err, n, "no test images to walk between (their shape is not the model's, or they could not be read)");
    return 404;
  }
  if (!param_num(c, "from", 0, 0, s->test.count - 1, 1, &x[0], err, n) ||
      !param_num(c, "to", 0, 0, s->test.count - 1, 1, &x[1], err, n))
    return 400;
  clvae_images two = s->test;
  int labels[2];
  two.count = 2, two.class_names = NULL, two.labels = s->test.labels ? labels : NULL;
  if (!(two.pixels = malloc(2 * D))) return snprintf(err, n, "out of host memory"), 500;
  for (int e = 0; e < 2; e++) {
    idx[e] = (int)x[e];
    memcpy(two.pixels + e * D, s->test.pixels + (size_t)idx[e] * D, D);
    lab[e] = s->test.labels ? (labels[e] = s->test.labels[idx[e]]) : -1;
  }
  clvae_dataset *d = NULL;
  clvae_status st = clvae_dataset_create(&d, s->dev, &two, 0);
  if (st == CLVAE_OK) st = clvae_dataset_encode(s->m, d, ends);
  clvae_dataset_free(d);
  free(two.pixels);
  if (st == CLVAE_OK) return 200;
  snprintf(err, n, "encoding images %d and %d failed: %s", idx[0], idx[1], clvae_error_message());
  return 500;
}

/* The walk's N points z_k = a + k/(N−1)·(b − a) (a, b: ends (2, L)) into z (N, L), and a
 * conditional model's classes into cond (N, K): class k, or from lab[0]'s one-hot to lab[1]'s
 * the same way (k < 0). The arithmetic is interpolate's, so that the bytes are its. */
static void walk_points(float *z, float *cond, const float *ends, int N, int L, int K, int k, const int lab[2]) {
  for (int i = 0; i < N; i++) {
    double t = (double)i / (N - 1);
    for (int l = 0; l < L; l++) z[(size_t)i * L + l] = (float)(ends[l] + t * (ends[L + l] - ends[l]));
    if (!K) continue;
    if (k >= 0) cond[(size_t)i * K + k] = 1.0f;
    else if (lab[0] >= 0 && lab[0] < K && lab[1] >= 0 && lab[1] < K) { /* as encoding them required */
      cond[(size_t)i * K + lab[0]] += (float)(1 - t);
      cond[(size_t)i * K + lab[1]] += (float)t;
    }
  }
}

/* The row of tiles of a walk between ends (2, L) of N points into px, (H, tiles·W, C): with
 * images, test images idx[0] and idx[1] in their own pixels at its ends, as interpolate lays it. */
static clvae_status walk_row(server *s, const float *ends, int N, int k, const int lab[2], int images,
                             const int idx[2], uint8_t *px) {
  const clvae_config *cfg = clvae_model_config(s->m);
  const int L = cfg->latent, K = cfg->classes, tiles = N + 2 * images;
  const size_t D = (size_t)clvae_config_pixels(cfg);
  float *z = malloc((size_t)N * L * sizeof *z), *cond = K ? calloc((size_t)N * K, sizeof *cond) : NULL;
  float *cells = malloc((size_t)tiles * D * sizeof *cells);
  clvae_status st = z && cells && (!K || cond) ? CLVAE_OK : CLVAE_ERR_NOMEM;
  if (st == CLVAE_OK) {
    walk_points(z, cond, ends, N, L, K, k, lab);
    st = clvae_model_decode_cond(s->m, z, cond, N, cells + (size_t)images * D);
  }
  for (int e = 0; st == CLVAE_OK && images && e < 2; e++) {
    float *cell = cells + (size_t)(e ? tiles - 1 : 0) * D;
    for (size_t i = 0; i < D; i++) cell[i] = s->test.pixels[(size_t)idx[e] * D + i] / 255.0f;
  }
  if (st == CLVAE_OK) clvae_mosaic(px, cells, tiles, tiles, cfg->height, cfg->width, cfg->channels);
  free(z), free(cond), free(cells);
  return st;
}

/* /api/walk: from&to (test images I, J; a = μ(I), b = μ(J)): one row of N + 2 tiles, I's own
 * pixels, the N decodings, J's pixels; from_z&to_z (latent points): N tiles, and a conditional
 * model needs `class`. N = steps (2..64, default 8). Raw bytes, (H, tiles·W, C). */
static enum MHD_Result api_walk(server *s, struct MHD_Connection *c) {
  const clvae_config *cfg = clvae_model_config(s->m);
  const int L = cfg->latent;
  char err[1024];
  double steps;
  int k, idx[2] = {0, 0}, lab[2] = {-1, -1}, images = walk_kind(c, err, sizeof err);
  if (images < 0 || !param_num(c, "steps", 8, 2, MAX_STEPS, 1, &steps, err, sizeof err) ||
      !param_class(s, c, !images, &k, err, sizeof err))
    return error(c, 400, "%s", err);
  const int N = (int)steps;
  const size_t bytes = (size_t)(N + 2 * images) * clvae_config_pixels(cfg);
  float *ends = malloc((size_t)2 * L * sizeof *ends);
  if (!ends) return error(c, 500, "out of host memory");
  double t0 = clvae_now(); /* the device's part: encoding the images, decoding the walk */
  unsigned status = 200;
  if (images) status = walk_images(s, c, ends, idx, lab, err, sizeof err);
  else if (!param_point(c, "from_z", L, ends, err, sizeof err) || !param_point(c, "to_z", L, ends + L, err, sizeof err))
    status = 400;
  if (status != 200) {
    free(ends);
    return error(c, status, "%s", err);
  }
  uint8_t *px = malloc(bytes);
  clvae_status st = px ? walk_row(s, ends, N, k, lab, images, idx, px) : CLVAE_ERR_NOMEM;
  double ms = (clvae_now() - t0) * 1e3;
  free(ends);
  if (st != CLVAE_OK) {
    free(px);
    return error(c, 500, "walking failed: %s", st == CLVAE_ERR_NOMEM ? "out of host memory" : clvae_error_message());
  }
  char timing[64];
  snprintf(timing, sizeof timing, "walk;dur=%.3f", ms);
  return respond(c, 200, "application/octet-stream", px, bytes, MHD_RESPMEM_MUST_FREE, timing);
}

/* One row of metrics.csv ("epoch,train_loss,test_loss,..."; line without its newline)
 * appended to the three lists; the header and anything malformed are skipped. */
static void metrics_row(const char *line, buf *e, buf *tr, buf *te, int *n) {
  const char *p = line;
  char *end;
  errno = 0;
  long ep = strtol(p, &end, 10);
  if (end == p || *end != ',' || errno || ep < 0 || ep > 100000000) return;
  double a = strtod(p = end + 1, &end);
  if (end == p || *end != ',') return;
  double b = strtod(p = end + 1, &end);
  if (end == p || (*end != ',' && *end) || !isfinite(a) || !isfinite(b)) return;
  put(e, "%s%ld", *n ? "," : "", ep), put(tr, "%s%.6f", *n ? "," : "", a), put(te, "%s%.6f", *n ? "," : "", b);
  ++*n;
}

/* The run's metrics.csv (the file beside the checkpoint; never a path from the request):
 * a regular file only (not a FIFO, not a device), and only its first METRICS_CAP bytes are
 * read, whatever its lines' lengths: the rows wholly within them (a line the cap cuts, or
 * one holding a NUL, is skipped), so one huge line costs the server nothing more. */
static enum MHD_Result api_metrics(server *s, struct MHD_Connection *c) {
  buf e = {0}, tr = {0}, te = {0};
  char *text = malloc(METRICS_CAP + 1);
  size_t len = 0;
  int n = 0;
  FILE *f = NULL;
  if (!text) return error(c, 500, "out of host memory");
  if (clvae_fopen_regular(s->metrics_path, &f) == CLVAE_OK) { /* none yet, or not a file: no curve */
    len = fread(text, 1, METRICS_CAP, f);
    fclose(f);
  }
  text[len] = '\0';
  for (char *line = text, *stop = text + len; line < stop;) {
    char *nl = memchr(line, '\n', (size_t)(stop - line));
    if (!nl && len == METRICS_CAP) break; /* cut by the cap */
    if (!nl) nl = stop;
    *nl = '\0';
    if (strlen(line) == (size_t)(nl - line)) metrics_row(line, &e, &tr, &te, &n);
    line = nl + 1;
  }
  free(text);
  buf b = {0};
  put(&b, "{\"epoch\": [%s], \"train_loss\": [%s], \"test_loss\": [%s]}", n ? e.p : "", n ? tr.p : "", n ? te.p : "");
  b.oom |= e.oom | tr.oom | te.oom;
  free(e.p), free(tr.p), free(te.p);
  return json(c, 200, &b);
}

/* ---- the favicon: 16×16 PNG, a decoded point on the page's dark blue (no 404 in the log) ---- */

static const unsigned char favicon_png[] = {
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
  0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0xf3, 0xff,
  0x61, 0x00, 0x00, 0x01, 0x27, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0xad, 0x93, 0xcb, 0x4a, 0x42,
  0x51, 0x14, 0x86, 0xf7, 0xdb, 0x94, 0x17, 0x24, 0x05, 0x53, 0xbc, 0x1f, 0x95, 0x34, 0x89, 0x42,
  0x41, 0x43, 0x70, 0xa0, 0x13, 0x31, 0x02, 0x21, 0x82, 0xa8, 0x89, 0x38, 0x73, 0x68, 0xd3, 0xe6,
  0x8e, 0x6d, 0x1e, 0xce, 0x85, 0x1e, 0xa0, 0x41, 0x0f, 0xe0, 0x6b, 0xfc, 0x9e, 0x6f, 0x0d, 0x44,
  0x9c, 0x6e, 0x37, 0x2c, 0x58, 0xfc, 0x97, 0x75, 0xd9, 0xe7, 0x6c, 0xe7, 0x8e, 0xce, 0xe5, 0x75,
  0x41, 0x91, 0x6c, 0x49, 0xd1, 0x5c, 0x45, 0xb1, 0x42, 0x55, 0xf1, 0x62, 0xcd, 0x82, 0x1c, 0x0c,
  0x0e, 0x8d, 0x3b, 0x3d, 0x17, 0xe9, 0xbc, 0x22, 0x99, 0xa2, 0x89, 0xe2, 0xa5, 0xba, 0x12, 0xd5,
  0x5b, 0x5d, 0xdd, 0xdc, 0x29, 0xd9, 0xbc, 0xb7, 0x20, 0x07, 0x83, 0xb3, 0x42, 0xa1, 0x16, 0xcf,
  0xa1, 0x00, 0x40, 0x2c, 0x1f, 0x28, 0x11, 0x34, 0xcc, 0x90, 0x7e, 0xe8, 0x29, 0xdb, 0x1d, 0x28,
  0xd7, 0x1f, 0x5a, 0x90, 0x83, 0xc1, 0xa1, 0x41, 0x8b, 0xe7, 0x30, 0x36, 0x55, 0x21, 0x52, 0xad,
  0xb6, 0x89, 0xcb, 0xa3, 0x27, 0xd5, 0x9f, 0x5f, 0xd5, 0x78, 0xf9, 0xb0, 0x20, 0x07, 0x83, 0x43,
  0x83, 0x16, 0x8f, 0xad, 0xc3, 0x5e, 0x8c, 0x46, 0x75, 0x04, 0xc1, 0x78, 0xaa, 0xd6, 0xfb, 0x5c,
  0x9d, 0xc5, 0xa7, 0x1e, 0x97, 0x5f, 0x16, 0xe4, 0x60, 0x70, 0x68, 0xd0, 0xe2, 0xc1, 0xeb, 0xac,
  0x7b, 0xb8, 0x1f, 0x23, 0xd2, 0x05, 0x21, 0xa6, 0xd1, 0x6a, 0xad, 0xc9, 0xf7, 0x8f, 0x05, 0x39,
  0x18, 0x1c, 0x1a, 0xb4, 0x78, 0xf0, 0x3a, 0x6e, 0x98, 0x4b, 0xa2, 0x32, 0xa3, 0xd2, 0x0d, 0xc3,
  0x74, 0xb3, 0xd5, 0xdb, 0xef, 0x9f, 0x05, 0x39, 0x18, 0x1c, 0x1a, 0xb4, 0x78, 0xf0, 0x3a, 0x3e,
  0x13, 0x23, 0x71, 0x59, 0xec, 0x4b, 0x27, 0xba, 0x62, 0x9c, 0xfd, 0xef, 0x2c, 0xc8, 0xc1, 0xe0,
  0xd0, 0xa0, 0xb5, 0x35, 0x42, 0xaf, 0x7f, 0x01, 0xef, 0x15, 0xbc, 0x2f, 0xd1, 0xfb, 0x33, 0x7a,
  0xff, 0x48, 0xde, 0xbf, 0xf2, 0x59, 0x1e, 0x93, 0xcf, 0x73, 0xde, 0x03, 0x90, 0x02, 0xdb, 0x54,
  0xdb, 0x25, 0xc2, 0x41, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82
};

/* Whether a Host header's value names this server by a loopback name: `localhost` (in any
 * case, as host names are), `127.0.0.1`, `[::1]`, or the address it listens on as its URL
 * shows it (`127.1.2.3`, `[::ffff:127.0.0.1]`), exactly, then nothing or ':' and 1 to 5
 * digits. Nothing else: not `localhost.`, not `localhost:evil.example`. */
static int loopback_host(const char *h, const char *self) {
  const char *colon = h[0] == '[' ? strchr(h, ']') : strchr(h, ':');
  size_t n = !colon ? strlen(h) : (size_t)(colon - h) + (h[0] == '[');
  const char *port = h + n;
  if (*port) {
    size_t digits = strspn(port + 1, "0123456789");
    if (*port != ':' || digits < 1 || digits > 5 || port[1 + digits]) return 0;
  }
  const char *const names[] = {"localhost", "127.0.0.1", "[::1]", self};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i][0] && n == strlen(names[i]) && !strncasecmp(h, names[i], n)) return 1;
  return 0;
}

/* A server on the loopback interface answers only requests addressed to it by a loopback
 * name: a web page whose own name has been re-pointed at 127.0.0.1 (DNS rebinding) sends
 * its own Host, and is refused. */
static int host_allowed(const server *s, struct MHD_Connection *c) {
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
  return !s->loopback || (h && loopback_host(h, s->self));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  server *s = cls;
  (void)version, (void)upload, (void)con_cls;
  if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
    if (*upload_size) *upload_size = 0; /* ignore any body */
    return error(c, 405, "%s is not supported: the page only reads", method);
  }
  if (!host_allowed(s, c)) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    int other = strcmp(s->self, "127.0.0.1") && strcmp(s->self, "[::1]"); /* 127.1.2.3, [::ffff:127.0.0.1] */
    return error(c, 403, "this server answers only requests addressed to localhost, 127.0.0.1, [::1]%s%s, "
                 "optionally with :PORT (Host '%.100s')", other ? ", " : "", other ? s->self : "", h ? h : "(none)");
  }
  maybe_reload(s);
  if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
    return respond(c, 200, "text/html; charset=utf-8", clvae_serve_html, clvae_serve_html_len, MHD_RESPMEM_PERSISTENT, NULL);
  if (!strcmp(url, "/app.js"))
    return respond(c, 200, "text/javascript; charset=utf-8", clvae_serve_js, clvae_serve_js_len, MHD_RESPMEM_PERSISTENT, NULL);
  if (!strcmp(url, "/style.css"))
    return respond(c, 200, "text/css; charset=utf-8", clvae_serve_css, clvae_serve_css_len, MHD_RESPMEM_PERSISTENT, NULL);
  if (!strcmp(url, "/favicon.ico"))
    return respond(c, 200, "image/png", favicon_png, sizeof favicon_png, MHD_RESPMEM_PERSISTENT, NULL);
  if (!strcmp(url, "/api/info")) return api_info(s, c);
  if (!strcmp(url, "/api/state")) return api_state(s, c);
  if (!strcmp(url, "/api/grid")) return api_grid(s, c);
  if (!strcmp(url, "/api/decode")) return api_decode(s, c);
  if (!strcmp(url, "/api/walk")) return api_walk(s, c);
  if (!strcmp(url, "/api/scatter")) return api_scatter(s, c);
  if (!strcmp(url, "/api/reconstruct")) return api_reconstruct(s, c);
  if (!strcmp(url, "/api/metrics")) return api_metrics(s, c);
  if (!strcmp(url, "/api/progress")) return api_progress(s, c);
  return error(c, 404, "no such page: %.200s", url);
}

/* ---- start-up ---- */

/* libmicrohttpd's messages (a client gone mid-request, a header too large), one line each
 * with our prefix and control characters made '?': a client can cause any number of them,
 * so only the first LOG_LINES lines are printed, the last of them saying so. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  server *s = cls;
  int k = atomic_fetch_add(&s->logged, 1);
  if (k >= LOG_LINES) return;
  if (k == LOG_LINES - 1) {
    fprintf(stderr, "clvae serve: libmicrohttpd: further messages are not shown\n");
    return;
  }
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' ')) msg[--n] = '\0';
  for (char *p = msg; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
  fprintf(stderr, "clvae serve: libmicrohttpd: %s\n", msg);
}

/* Whether a bound address is on the loopback interface, however --host spelled it:
 * 127.0.0.0/8, ::1, and 127.x.y.z mapped into IPv6 (::ffff:127.0.0.1, ::ffff:7f00:1). */
static int is_loopback(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) return ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24 == 127;
  if (ss->ss_family != AF_INET6) return 0;
  const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

/* A listening socket on host:port; prints the failure and returns -1. Sets s->loopback
 * and s->self, and the URL. */
static int listen_on(const char *host, long port, char *url, size_t n, server *s) {
  struct addrinfo hints = {0}, *res = NULL;
  char ports[16];
  snprintf(ports, sizeof ports, "%ld", port);
  hints.ai_family = AF_UNSPEC, hints.ai_socktype = SOCK_STREAM, hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int rc = getaddrinfo(host, ports, &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "clvae: --host '%s': %s\n", host, gai_strerror(rc));
    return -1;
  }
  int fd = -1, err = 0;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    int one = 1;
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      err = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    fprintf(stderr, "clvae: cannot listen on %s port %ld: %s%s\n", host, port, strerror(err),
            err == EADDRINUSE ? " (choose another --port, or --port 0 for a free one)" : "");
    return -1;
  }
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char addr[INET6_ADDRSTRLEN] = "?";
  getsockname(fd, (struct sockaddr *)&ss, &len);
  int actual = 0;
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof addr), actual = ntohs(a->sin6_port);
    snprintf(s->self, sizeof s->self, "[%s]", addr);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr), actual = ntohs(a->sin_port);
    snprintf(s->self, sizeof s->self, "%s", addr);
  }
  snprintf(url, n, "http://%s:%d/", s->self, actual);
  s->loopback = is_loopback(&ss);
  return fd;
}

static void serve_usage(void) {
  printf("usage: clvae serve --model FILE [--data DIR] [--port 8080] [--host 127.0.0.1]\n"
         "                   [--platform P] [--device D] [--gemm G]\n\n"
         "A local web page for exploring the model, decoding on the OpenCL device: the grid of the\n"
         "TF.js example (points per dimension, start, end; z[x] across the columns, z[y] up the rows),\n"
         "the decoding of z = 0, then of the point under the pointer while you hover or drag, marked\n"
         "on both planes; the test set's latent means as a scatter by class on axes, with the grid's\n"
         "range (--data, default %s); a choice of the two dimensions shown for a\n"
         "latent space of more than 2; a conditional model's class; 8 test images and their\n"
         "reconstructions; latent walks (as clvae interpolate) between two test images or two points;\n"
         "the loss from the run's metrics.csv and progress.csv. When the checkpoint file changes (a\n"
         "`clvae train` writing it), the page follows within seconds; while a train holds the run, it\n"
         "shows its epoch, step and the time left in the epoch.\n\n"
         "  --port N   TCP port (default 8080; 0: any free port). The URL is printed.\n"
         "  --host H   address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for all)\n\n"
         "Stop with Ctrl-C (or SIGTERM). Exit: 0 stopped, 1 failure, 2 bad usage, model or data.\n",
         CLVAE_DEFAULT_DATA_DIR);
}

int cmd_serve(int argc, char **argv) {
  cli_device_opts o;
  const char *model = NULL, *data = NULL, *host = "127.0.0.1", *v;
  long port = 8080;
  int r;
  cli_device_defaults(&o);
  for (int i = 1; i < argc; i++) {
    if ((r = cli_device_option(argc, argv, &i, &o)) || (r = cli_value(argc, argv, &i, "--model", &model)) ||
        (r = cli_value(argc, argv, &i, "--data", &data)) || (r = cli_value(argc, argv, &i, "--host", &host))) {
      if (r < 0) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--port", &v))) {
      if (r < 0 || !cli_int("--port", v, 0, 65535, &port)) return EXIT_USAGE;
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      serve_usage();
      return EXIT_OK;
    } else return cli_unknown("serve", argv[i]);
  }
  if (!model) {
    fprintf(stderr, "clvae serve: --model FILE is required (a checkpoint, e.g. runs/<date-time>/checkpoint.clvae)\n");
    return EXIT_USAGE;
  }
  server s = {0};
  char data_dir[4200];
  if ((r = cli_run_data(model, data, data_dir, sizeof data_dir)) >= 0) return r; /* the run's own data */
  s.model_path = model, s.data_dir = data_dir;
  char url[128], dir[4200];
  snprintf(dir, sizeof dir, "%s", model);
  const char *run_dir = dirname(dir); /* the run's other files, beside the checkpoint */
  snprintf(s.metrics_path, sizeof s.metrics_path, "%s/metrics.csv", run_dir);
  snprintf(s.progress_path, sizeof s.progress_path, "%s/progress.csv", run_dir);
  snprintf(s.lock_path, sizeof s.lock_path, "%s/.clvae.lock", run_dir);
  int rc = EXIT_USAGE, fd = -1;
  struct MHD_Daemon *d = NULL;
  if (stat(model, &s.seen) != 0) {
    fprintf(stderr, "clvae: --model %s: %s\n", model, strerror(errno));
    goto done;
  }
  if (clvae_checkpoint_load(model, &s.ck) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    goto done;
  }
  /* the test set for the scatter: required to load when named; the default data is optional */
  if (cli_load_images(&s.test, s.data_dir, "test", NULL) != 0) {
    if (data) goto done;
    fprintf(stderr, "clvae serve: no scatter of the test set (the default data could not be read)\n");
    memset(&s.test, 0, sizeof s.test);
  } else if (!cli_same_shape(&s.test, s.ck.cfg.height, s.ck.cfg.width, s.ck.cfg.channels, model)) {
    if (data) goto done;
    clvae_images_free(&s.test);
    memset(&s.test, 0, sizeof s.test);
  }
  if (s.test.count) s.classes = cli_class_names(&s.test, s.data_dir, &s.owned_classes);
  if ((fd = listen_on(host, port, url, sizeof url, &s)) < 0) goto done;
  /* SIGINT/SIGTERM/SIGHUP go to sigwait below: blocked in every thread from here on (the
   * driver's and the server's inherit the mask) */
  sigset_t stops;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT), sigaddset(&stops, SIGTERM), sigaddset(&stops, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stops, NULL);
  if ((rc = cli_open_device(&o, 0, &s.dev)) != EXIT_OK) goto done;
  clvae_status st = load(&s, &s.ck);
  if (st != CLVAE_OK) { /* the device cannot hold it (2), or failed (1) */
    rc = cli_status(st);
    goto done;
  }
  rc = EXIT_FAIL;
  s.checked = clvae_now();
  d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, &s,
                       MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &s, /* first: it applies from here on */
                       MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                       MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)262144, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "clvae: the HTTP server did not start (libmicrohttpd)\n");
    goto done;
  }
  fd = -1; /* the daemon's now */
  printf("clvae serve: %s (model %s, epoch %d; Ctrl-C to stop)\n", url, model, s.ck.train.epoch);
  fflush(stdout);
  int sig = 0;
  sigwait(&stops, &sig);
  printf("clvae serve: stopped by %s\n", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP");
  rc = EXIT_OK;
done:
  if (d) MHD_stop_daemon(d);
  if (fd >= 0) close(fd);
  clvae_dataset_free(s.dtest);
  clvae_model_free(s.m);
  clvae_device_free(s.dev);
  clvae_checkpoint_free(&s.ck);
  clvae_images_free(&s.test);
  free(s.owned_classes), free(s.mu), free(s.scatter);
  return rc;
}

int cli_have_serve(void) { return 1; }

#else

int cli_have_serve(void) { return 0; }

int cmd_serve(int argc, char **argv) {
  (void)argc, (void)argv;
  fprintf(stderr, "clvae: serve needs libmicrohttpd, which this clvae was built without: apt install "
                  "libmicrohttpd-dev, then meson setup --reconfigure -Dhttp=enabled build && ninja -C build\n");
  return EXIT_USAGE;
}

#endif
