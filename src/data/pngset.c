/* A folder of PNG files as an image set: DIR/<set>/ holds PNGs directly (unlabelled) or
 * in one sub-folder per class (labels: the sorted folder names). Headers are read first
 * (size and colour of every file, so that nothing is allocated before the set is known
 * to be consistent), then the images are decoded on a few threads straight into place,
 * brought to 8-bit grey or RGB by libpng's own transforms. */
#define _DEFAULT_SOURCE /* d_type, DT_* */
#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clvae/files.h"
#include "data/internal.h"

#define MAX_FILES 10000000
#define MAX_THREADS 4

typedef struct entry {
  char *path;
  int label;                 /* -1: unlabelled */
} entry;

typedef struct listing {
  entry *e;
  int n, cap;
  char **classes;            /* the set's own class folders, sorted */
  int nclasses;
} listing;

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_entries(const void *a, const void *b) {
  return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

static int is_png_name(const char *name) {
  size_t n = strlen(name);
  return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* The names in a directory (no dot-files), sorted, each followed by a byte of its d_type
 * (after the name's NUL); NULL with the message set on failure. */
static char **read_names(const char *dir, int *count) {
  DIR *d = opendir(dir);
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *de;
  *count = 0;
  if (!d) {
    clvae__fail(CLVAE_ERR_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    return NULL;
  }
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    if (n == cap) {
      char **nn = realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *nn);
      if (!nn) goto oom;
      names = nn;
    }
    size_t len = strlen(de->d_name);
    if (!(names[n] = malloc(len + 2))) goto oom;
    memcpy(names[n], de->d_name, len + 1);
    names[n][len + 1] = (char)de->d_type;
    n++;
    if (n > MAX_FILES) {
      clvae__fail(CLVAE_ERR_LIMIT, "%s: more than %d entries", dir, MAX_FILES);
      goto fail;
    }
  }
  closedir(d);
  if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_names); /* (an empty folder has no array to sort) */
  *count = n;
  return names ? names : calloc(1, sizeof *names);
oom:
  clvae__fail(CLVAE_ERR_NOMEM, "out of host memory listing %s", dir);
fail:
  closedir(d);
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  return NULL;
}

static void free_names(char **names, int n) {
  for (int i = 0; names && i < n; i++) free(names[i]);
  free(names);
}

static clvae_status add_entry(listing *l, const char *dir, const char *name, int label) {
  if (l->n == l->cap) {
    entry *ne = realloc(l->e, (size_t)(l->cap = l->cap ? 2 * l->cap : 256) * sizeof *ne);
    if (!ne) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory listing %s", dir);
    l->e = ne;
  }
  size_t len = strlen(dir) + strlen(name) + 2;
  char *p = malloc(len);
  if (!p) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory listing %s", dir);
  snprintf(p, len, "%s/%s", dir, name);
  l->e[l->n++] = (entry){p, label};
  return CLVAE_OK;
}

/* Whether a name that is not *.png is a class folder (at the top level): a directory,
 * or a link to one. Its d_type says without a stat where the file system tells; a link or
 * an unknown type is followed, and one that leads nowhere (a dangling README.txt) is not a
 * folder, just a file the set ignores. */
static int is_folder(const char *path, const char *name) {
  struct stat sb;
  unsigned char type = (unsigned char)name[strlen(name) + 1];
  if (type == DT_DIR) return 1;
  if (type != DT_LNK && type != DT_UNKNOWN) return 0;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The PNG files of one folder (with `label`); sub-folders are classes when `classes` is
 * non-NULL (the top level), skipped below it. Entries not named *.png (any case) are
 * ignored without a stat or an open (at the top level a folder among them is a class); a
 * *.png must be a readable regular file after links, or the set is refused naming it
 * (reading a FIFO would block, a directory or a dangling link is no image). */
static clvae_status list_folder(listing *l, const char *dir, int label, char ***classes, int *nclasses) {
  int n;
  char **names = read_names(dir, &n);
  clvae_status st = names ? CLVAE_OK : CLVAE_ERR_IO;
  int direct = 0;
  for (int i = 0; i < n && st == CLVAE_OK; i++) {
    char path[8192];
    struct stat sb;
    int png = is_png_name(names[i]);
    if (!png && !classes) continue;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
      st = clvae__fail(CLVAE_ERR_IO, "%s/%s: path too long", dir, names[i]);
    } else if (!png) {
      if (!is_folder(path, names[i])) continue;
      char **nc = realloc(*classes, (size_t)(*nclasses + 1) * sizeof *nc);
      if (!nc || !(nc[*nclasses] = strdup(names[i]))) {
        if (nc) *classes = nc;
        st = clvae__fail(CLVAE_ERR_NOMEM, "out of host memory listing %s", dir);
      } else {
        *classes = nc;
        ++*nclasses;
      }
    } else if (stat(path, &sb) != 0) {
      st = clvae__fail(CLVAE_ERR_IO, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
      st = clvae__fail(CLVAE_ERR_IO, "%s: named *.png but not a regular file (%s)", path,
                       S_ISDIR(sb.st_mode) ? "a directory" : S_ISFIFO(sb.st_mode) ? "a FIFO" : "a special file");
    } else if (access(path, R_OK) != 0) {
      st = clvae__fail(CLVAE_ERR_IO, "%s: cannot read it: %s", path, strerror(errno));
    } else {
      st = add_entry(l, dir, names[i], label), direct++;
    }
  }
  if (st == CLVAE_OK && classes && *nclasses && direct)
    st = clvae__fail(CLVAE_ERR_FORMAT, "%s holds both PNG files (%s) and class folders (%s/): put every image in "
                     "a class folder, or none", dir, l->e[0].path, (*classes)[0]);
  free_names(names, n);
  return st;
}

/* The files of DIR/<set>, with labels: the index of their folder among the training
 * classes (`known`, when given) or among the set's own sorted folders. */
static clvae_status list_set(listing *l, const char *root, const clvae_images *known) {
  clvae_status st = list_folder(l, root, -1, &l->classes, &l->nclasses);
  for (int c = 0; c < l->nclasses && st == CLVAE_OK; c++) {
    char sub[8192];
    int label = c;
    if ((size_t)snprintf(sub, sizeof sub, "%s/%s", root, l->classes[c]) >= sizeof sub)
      return clvae__fail(CLVAE_ERR_IO, "%s/%s: path too long", root, l->classes[c]);
    if (known) {
      label = -1;
      for (int k = 0; k < known->classes && known->class_names; k++)
        if (!strcmp(known->class_names[k], l->classes[c])) label = k;
      if (label < 0)
        return clvae__fail(CLVAE_ERR_FORMAT, "%s: class '%s' is not one of the training set's %d classes (%s/)", sub,
                           l->classes[c], known->classes, known->source);
    }
    st = list_folder(l, sub, label, NULL, NULL);
  }
  if (st == CLVAE_OK && l->n == 0)
    st = clvae__fail(CLVAE_ERR_FORMAT, "%s: no PNG files (expected *.png, directly or in one folder per class)", root);
  if (st == CLVAE_OK) qsort(l->e, (size_t)l->n, sizeof *l->e, cmp_entries);
  return st;
}

/* ---- reading PNGs ---- */

typedef struct png_job {
  char msg[512];             /* libpng's complaint */
  jmp_buf jmp;
} png_job;

static void on_png_error(png_structp png, png_const_charp msg) {
  png_job *j = png_get_error_ptr(png);
  snprintf(j->msg, sizeof j->msg, "%s", msg);
  longjmp(j->jmp, 1);
}
static void on_png_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Opens `path` and reads its header. want_channels 0: only the header (w, h, colour);
 * else decodes into px as 8-bit with that many channels. */
static clvae_status read_png(const char *path, int want_channels, int *w, int *h, int *colour, uint8_t *px) {
  png_job job;
  unsigned char sig[8];
  FILE *f;
  clvae_status rs = clvae_fopen_regular(path, &f);
  if (rs != CLVAE_OK) return rs;
  if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
    fclose(f);
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: not a PNG file", path);
  }
  /* the size from the IHDR chunk (length, "IHDR", width, height) before libpng, whose own
   * limit would say no more than "Invalid IHDR data" */
  unsigned char ihdr[16];
  if (fread(ihdr, 1, 16, f) == 16 && !memcmp(ihdr + 4, "IHDR", 4)) {
    uint32_t iw = (uint32_t)ihdr[8] << 24 | (uint32_t)ihdr[9] << 16 | (uint32_t)ihdr[10] << 8 | ihdr[11];
    uint32_t ih = (uint32_t)ihdr[12] << 24 | (uint32_t)ihdr[13] << 16 | (uint32_t)ihdr[14] << 8 | ihdr[15];
    if (iw > CLVAE_MAX_IMAGE_SIDE || ih > CLVAE_MAX_IMAGE_SIDE) {
      fclose(f);
      return clvae__fail(CLVAE_ERR_LIMIT, "%s: an image of %ux%u pixels: at most %d pixels a side are supported", path,
                         iw, ih, CLVAE_MAX_IMAGE_SIDE);
    }
  }
  if (fseek(f, 8, SEEK_SET) != 0) {
    fclose(f);
    return clvae__fail(CLVAE_ERR_IO, "%s: cannot read it again: %s", path, strerror(errno));
  }
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  png_bytep *volatile rows = NULL;
  volatile clvae_status st = CLVAE_ERR_NOMEM;
  job.msg[0] = '\0';
  if (png && info && !setjmp(job.jmp)) {
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, CLVAE_MAX_IMAGE_SIDE, CLVAE_MAX_IMAGE_SIDE);
    png_read_info(png, info);
    *w = (int)png_get_image_width(png, info), *h = (int)png_get_image_height(png, info);
    *colour = (png_get_color_type(png, info) & PNG_COLOR_MASK_COLOR) != 0;
    st = CLVAE_OK;
    if (want_channels) {
      png_set_expand(png);          /* palette → RGB, grey < 8 bits → 8, tRNS → alpha */
      png_set_strip_16(png);
      png_set_strip_alpha(png);
      if (want_channels == 3) png_set_gray_to_rgb(png);
      png_set_interlace_handling(png);
      png_read_update_info(png, info);
      st = CLVAE_ERR_NOMEM;
      if (png_get_rowbytes(png, info) != (size_t)*w * want_channels) {
        snprintf(job.msg, sizeof job.msg, "decodes to %zu bytes per row, not %d", png_get_rowbytes(png, info),
                 *w * want_channels);
        st = CLVAE_ERR_FORMAT;
      } else if ((rows = malloc((size_t)*h * sizeof *rows))) {
        for (int y = 0; y < *h; y++) rows[y] = px + (size_t)y * *w * want_channels;
        png_read_image(png, rows);
        png_read_end(png, NULL);
        st = CLVAE_OK;
      }
    }
  } else if (png && info) {
    st = CLVAE_ERR_FORMAT;
  }
  png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
  free(rows);
  fclose(f);
  if (st == CLVAE_ERR_FORMAT) return clvae__fail(st, "%s: not a readable PNG (%s)", path, job.msg);
  if (st == CLVAE_ERR_NOMEM) return clvae__fail(st, "%s: out of host memory", path);
  return CLVAE_OK;
}

/* ---- decoding on a few threads ---- */

typedef struct pool {
  const listing *l;
  clvae_images *out;
  pthread_mutex_t lock;
  int next, done, failed;
  clvae_status status;
  char msg[CLVAE_ERROR_MSG_SIZE];
} pool;

/* The next image to decode, or -1 when all are taken or one failed. */
static int take(pool *p) {
  pthread_mutex_lock(&p->lock);
  int i = p->failed || p->next >= p->l->n ? -1 : p->next++;
  pthread_mutex_unlock(&p->lock);
  return i;
}

static void decode_one(pool *p, int i) {
  const char *path = p->l->e[i].path;
  size_t bytes = (size_t)p->out->height * p->out->width * p->out->channels;
  int w, h, colour;
  clvae_status st = read_png(path, p->out->channels, &w, &h, &colour, p->out->pixels + (size_t)i * bytes);
  if (st == CLVAE_OK && (w != p->out->width || h != p->out->height)) /* replaced since its header was read */
    st = clvae__fail(CLVAE_ERR_FORMAT, "%s: changed while the set was read", path);
  pthread_mutex_lock(&p->lock);
  if (st != CLVAE_OK && !p->failed) { /* the message is this thread's: keep it for the caller */
    p->failed = 1, p->status = st;
    snprintf(p->msg, sizeof p->msg, "%s", clvae_error_message());
  }
  p->done++;
  pthread_mutex_unlock(&p->lock);
}

static void *decode_worker(void *arg) {
  for (int i; (i = take(arg)) >= 0;) decode_one(arg, i);
  return NULL;
}

static clvae_status decode_all(const listing *l, clvae_images *out, clvae_load_progress progress, void *user) {
  pool p = {.l = l, .out = out, .status = CLVAE_OK};
  pthread_t th[MAX_THREADS];
  int nth = 0, last = 0;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int want = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
  pthread_mutex_init(&p.lock, NULL);
  for (int t = 1; t < want && t < l->n; t++)
    if (pthread_create(&th[nth], NULL, decode_worker, &p) == 0) nth++;
  for (int i; (i = take(&p)) >= 0;) { /* this thread decodes too, and reports progress */
    decode_one(&p, i);
    if (progress && p.done - last >= 500) progress(last = p.done, l->n, user);
  }
  for (int t = 0; t < nth; t++) pthread_join(th[t], NULL);
  pthread_mutex_destroy(&p.lock);
  if (p.status != CLVAE_OK) return clvae__fail(p.status, "%s", p.msg);
  if (progress && last) progress(l->n, l->n, user);
  return CLVAE_OK;
}

/* Whether any PNG of the other set (test/ for train/, and the reverse) is in colour; its
 * problems, if any, are reported when that set itself is read. */
static int other_set_in_colour(const char *dir, const char *set) {
  char root[4096];
  listing l = {0};
  int colour = 0;
  snprintf(root, sizeof root, "%s/%s", dir, strcmp(set, "train") ? "train" : "test");
  if (list_set(&l, root, NULL) == CLVAE_OK)
    for (int i = 0; i < l.n && !colour; i++) {
      int w, h, c;
      colour = read_png(l.e[i].path, 0, &w, &h, &c, NULL) == CLVAE_OK && c;
    }
  for (int i = 0; i < l.n; i++) free(l.e[i].path);
  free(l.e);
  free_names(l.classes, l.nclasses);
  return colour;
}

clvae_status clvae__load_png_set(clvae_images *out, const char *dir, const char *set, const clvae_images *classes_from,
                                 clvae_load_progress progress, void *user, int probe) {
  char root[4096];
  struct stat sb;
  listing l = {0};
  snprintf(root, sizeof root, "%s/%s", dir, set);
  snprintf(out->source, sizeof out->source, "%s", root);
  if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return clvae__fail(CLVAE_ERR_IO, "%s: %s (a PNG set holds train/ and test/ folders)", root,
                       stat(root, &sb) != 0 ? strerror(errno) : "not a folder");
  clvae_status st = list_set(&l, root, classes_from);
  /* Headers: one size for all; RGB if any image of the data set (train/ and test/) is in
   * colour, so that both sets come out with one shape. */
  int colour_any = st == CLVAE_OK && other_set_in_colour(dir, set);
  for (int i = 0; i < l.n && st == CLVAE_OK; i++) {
    int w, h, colour;
    st = read_png(l.e[i].path, 0, &w, &h, &colour, NULL);
    if (st == CLVAE_OK && i > 0 && (w != out->width || h != out->height))
      st = clvae__fail(CLVAE_ERR_FORMAT, "%s is %dx%d pixels, but %s is %dx%d: all images of a set must be one size",
                       l.e[i].path, w, h, l.e[0].path, out->width, out->height);
    out->width = w, out->height = h, colour_any |= colour;
  }
  out->channels = colour_any ? 3 : 1, out->count = l.n;
  uint64_t bytes = (uint64_t)l.n * (uint64_t)out->height * (uint64_t)out->width * (uint64_t)out->channels;
  if (st == CLVAE_OK && bytes > CLVAE_MAX_IMAGE_BYTES)
    st = clvae__fail(CLVAE_ERR_LIMIT, "%s: %d images of %dx%dx%d are %llu bytes; at most %llu are supported", root, l.n,
                     out->height, out->width, out->channels, (unsigned long long)bytes,
                     (unsigned long long)CLVAE_MAX_IMAGE_BYTES);
  if (probe && st == CLVAE_OK && !classes_from && l.nclasses) { /* the classes: a conditional model's size and names */
    out->classes = l.nclasses;
    out->class_names = calloc((size_t)out->classes, sizeof *out->class_names);
    for (int c = 0; out->class_names && c < out->classes; c++) out->class_names[c] = strdup(l.classes[c]);
    if (!out->class_names) st = clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  }
  if (probe) goto done;
  if (st == CLVAE_OK && !(out->pixels = malloc(bytes)))
    st = clvae__fail(CLVAE_ERR_NOMEM, "out of host memory for %llu bytes of images from %s", (unsigned long long)bytes, root);
  if (st == CLVAE_OK) st = decode_all(&l, out, progress, user);
  int labelled = st == CLVAE_OK && l.nclasses > 0;
  if (labelled && !(out->labels = malloc((size_t)l.n * sizeof *out->labels)))
    st = clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  if (st == CLVAE_OK && labelled) {
    const clvae_images *names = classes_from ? classes_from : NULL;
    for (int i = 0; i < l.n; i++) out->labels[i] = l.e[i].label;
    out->classes = names ? names->classes : l.nclasses;
    out->class_names = calloc((size_t)out->classes, sizeof *out->class_names);
    for (int c = 0; out->class_names && c < out->classes; c++)
      out->class_names[c] = strdup(names ? names->class_names[c] : l.classes[c]);
    if (!out->class_names) st = clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  }
done:
  for (int i = 0; i < l.n; i++) free(l.e[i].path);
  free(l.e);
  free_names(l.classes, l.nclasses);
  return st;
}
