/* IDX files (the MNIST format) through zlib, which reads gzip and raw files alike, and the
 * choice between an IDX and a PNG set. Every size from a header is validated before
 * anything is allocated. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "clvae/data.h"
#include "clvae/files.h"
#include "data/internal.h"


/* An IDX file as a byte stream: raw, or one gzip member inflated here (zlib's gz* reader
 * ignores bytes after a member and stops before its trailer when the data ends). */
typedef struct stream {
  const char *path;
  int fd, gz, zinit, ended; /* ended: the gzip member's trailer was read and checked */
  z_stream z;
  unsigned char in[1 << 16];
  size_t have;               /* undecoded bytes at in + (sizeof in - have) for raw files */
} stream;

static clvae_status stream_open(stream *s, const char *path) {
  memset(s, 0, offsetof(stream, in));
  s->path = path;
  clvae_status st = clvae_open_regular(path, &s->fd);
  if (st != CLVAE_OK) return st;
  ssize_t n = read(s->fd, s->in, 2);
  s->gz = n == 2 && s->in[0] == 0x1f && s->in[1] == 0x8b;
  if (s->gz) {
    s->z.next_in = s->in, s->z.avail_in = 2;
    if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) return clvae__fail(CLVAE_ERR_NOMEM, "%s: out of host memory", path);
    s->zinit = 1;
  } else if (n > 0) {
    lseek(s->fd, 0, SEEK_SET);
  }
  return CLVAE_OK;
}

static void stream_close(stream *s) {
  if (s->zinit) inflateEnd(&s->z);
  if (s->fd >= 0) close(s->fd);
  s->fd = -1, s->zinit = 0;
}

/* Reads up to n bytes (fewer only at the end of the data); -1 on corrupt gzip data, with
 * the message set. */
static long long stream_read(stream *s, void *buf, uint64_t n) {
  uint64_t got = 0;
  if (!s->gz) {
    while (got < n) {
      size_t chunk = n - got > (1u << 30) ? (1u << 30) : (size_t)(n - got);
      ssize_t r = read(s->fd, (char *)buf + got, chunk);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return clvae__fail(CLVAE_ERR_IO, "%s: read failed: %s", s->path, strerror(errno)), -1;
      if (r == 0) break;
      got += (uint64_t)r;
    }
    return (long long)got;
  }
  while (got < n && !s->ended) {
    if (s->z.avail_in == 0) {
      ssize_t r = read(s->fd, s->in, sizeof s->in);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return clvae__fail(CLVAE_ERR_IO, "%s: read failed: %s", s->path, strerror(errno)), -1;
      if (r == 0) return clvae__fail(CLVAE_ERR_FORMAT, "%s: truncated gzip data (the stream ends early)", s->path), -1;
      s->z.next_in = s->in, s->z.avail_in = (uInt)r;
    }
    uint64_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
    s->z.next_out = (unsigned char *)buf + got, s->z.avail_out = (uInt)want;
    int rc = inflate(&s->z, Z_NO_FLUSH);
    got += want - s->z.avail_out;
    if (rc == Z_STREAM_END) s->ended = 1; /* CRC-32 and length verified by zlib */
    else if (rc != Z_OK && rc != Z_BUF_ERROR)
      return clvae__fail(CLVAE_ERR_FORMAT, "%s: corrupt gzip data (%s)", s->path, s->z.msg ? s->z.msg : "inflate failed"), -1;
  }
  return (long long)got;
}

/* After the data the header describes: nothing more, and a gzip member complete and
 * intact (its trailer checked), with no bytes after it. */
static clvae_status stream_end(stream *s, uint64_t total) {
  unsigned char extra;
  long long r = stream_read(s, &extra, 1);
  if (r < 0) return CLVAE_ERR_FORMAT;
  if (r > 0)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: more data after the %llu bytes the header describes", s->path,
                       (unsigned long long)total);
  if (s->gz) {
    ssize_t more = s->z.avail_in ? 1 : read(s->fd, &extra, 1);
    if (more != 0) return clvae__fail(CLVAE_ERR_FORMAT, "%s: bytes after the end of the gzip data", s->path);
  }
  return CLVAE_OK;
}

/* The header: magic, rank and dimensions, all checked before anything is allocated. */
static clvae_status read_header(stream *s, int want_images, int *dims, int *rank, uint64_t *total) {
  unsigned char hdr[20]; /* magic and up to four dimensions */
  const char *path = s->path;
  long long got = stream_read(s, hdr, 4);
  if (got < 0) return CLVAE_ERR_FORMAT;
  if (got == 0) return clvae__fail(CLVAE_ERR_FORMAT, "%s: file is empty", path);
  if (got < 4) return clvae__fail(CLVAE_ERR_FORMAT, "%s: file too short for an IDX header (%lld bytes)", path, got);
  uint32_t magic = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
  /* unsigned bytes (type 0x08), rank in the last byte: images 3 or 4, labels 1 */
  if (want_images ? magic != 2051 && magic != 2052 : magic != 2049)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: wrong magic number %u (expected %s: IDX %s of unsigned bytes)", path, magic,
                       want_images ? "2051 or 2052" : "2049", want_images ? "images of rank 3 or 4" : "labels");
  *rank = hdr[3] & 0xff;
  got = stream_read(s, hdr + 4, (uint64_t)4 * *rank);
  if (got < 0) return CLVAE_ERR_FORMAT;
  if (got < 4 * *rank) return clvae__fail(CLVAE_ERR_FORMAT, "%s: truncated in the IDX header", path);
  *total = 1;
  for (int i = 0; i < *rank; i++) {
    const unsigned char *p = hdr + 4 + 4 * i;
    uint32_t d = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    if (d == 0 || d > 0x7fffffffu) return clvae__fail(CLVAE_ERR_FORMAT, "%s: dimension %d is %u", path, i, d);
    dims[i] = (int)d;
    *total *= d;
    if (*total > CLVAE_MAX_IMAGE_BYTES)
      return clvae__fail(CLVAE_ERR_FORMAT, "%s: header dimensions describe more than %llu bytes of data", path,
                         (unsigned long long)CLVAE_MAX_IMAGE_BYTES);
  }
  if (want_images && (dims[1] > CLVAE_MAX_IMAGE_SIDE || dims[2] > CLVAE_MAX_IMAGE_SIDE))
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: images of %dx%d pixels; at most %d on a side are supported", path, dims[1],
                       dims[2], CLVAE_MAX_IMAGE_SIDE);
  if (*rank == 4 && dims[3] != 1 && dims[3] != 3)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: %d channels per pixel; 1 (grey) or 3 (RGB) are supported", path, dims[3]);
  /* A raw file holds exactly its header and data. */
  struct stat sb;
  uint64_t want = 4 + 4 * (uint64_t)*rank + *total;
  if (!s->gz && fstat(s->fd, &sb) == 0 && (uint64_t)sb.st_size != want)
    return clvae__fail(CLVAE_ERR_FORMAT, (uint64_t)sb.st_size < want
                       ? "%s: truncated: the header promises %llu bytes of data, the file holds %llu"
                       : "%s: the header describes %llu bytes of data, but the file holds %llu",
                       path, (unsigned long long)*total, (unsigned long long)(sb.st_size - 4 - 4 * *rank));
  return CLVAE_OK;
}

clvae_status clvae_idx_read(const char *path, int want_images, int *dims, int *rank, uint8_t **data) {
  stream s;
  uint64_t total = 0;
  if (data) *data = NULL;
  clvae_status st = stream_open(&s, path);
  if (st == CLVAE_OK) st = read_header(&s, want_images, dims, rank, &total);
  /* Grow the buffer as data arrives: a compressed file's length says nothing about the
   * size it expands to, and a header must not make us allocate what the data is not. */
  uint64_t have = 0;
  uint8_t *buf = NULL;
  while (st == CLVAE_OK && data && have < total) {
    uint64_t want = total - have < ((uint64_t)16 << 20) ? total - have : ((uint64_t)16 << 20);
    uint8_t *nb = realloc(buf, have + want);
    if (!nb) {
      st = clvae__fail(CLVAE_ERR_NOMEM, "%s: out of host memory for %llu bytes", path, (unsigned long long)(have + want));
      break;
    }
    buf = nb;
    long long got = stream_read(&s, buf + have, want);
    if (got < 0) st = CLVAE_ERR_FORMAT;
    else if ((uint64_t)got < want)
      st = clvae__fail(CLVAE_ERR_FORMAT, "%s: truncated: the header promises %llu bytes of data, the file holds %llu",
                       path, (unsigned long long)total, (unsigned long long)(have + (uint64_t)got));
    else have += want;
  }
  if (st == CLVAE_OK && data) st = stream_end(&s, total);
  stream_close(&s);
  if (st != CLVAE_OK || !data) free(buf);
  else *data = buf;
  return st;
}

/* dir/name or dir/name.gz (the raw file first); 0 if neither exists. A path that exists
 * but cannot be looked at (a symlink loop, no permission) counts as found, so that reading
 * it reports why. */
static int find_file(char *out, size_t n, const char *dir, const char *name) {
  struct stat sb;
  const char *ext[2] = {"", ".gz"};
  for (int i = 0; i < 2; i++) {
    snprintf(out, n, "%s/%s%s", dir, name, ext[i]);
    if (stat(out, &sb) == 0 || errno != ENOENT) return 1;
  }
  snprintf(out, n, "%s/%s[.gz]", dir, name); /* for the error message */
  return 0;
}

/* The IDX set `name` ("train", "t10k") of dir; with `probe`, the headers only. */
static clvae_status load_idx(clvae_images *out, const char *dir, const char *name, int probe) {
  char ipath[4096], ipath4[4096], lpath[4096], fname[64];
  int idims[4] = {0, 0, 0, 1}, ldims[1], rank, lrank;
  uint8_t *labels = NULL;
  clvae_status st;
  snprintf(fname, sizeof fname, "%s-images-idx3-ubyte", name);
  int have3 = find_file(ipath, sizeof ipath, dir, fname);
  snprintf(fname, sizeof fname, "%s-images-idx4-ubyte", name);
  int have4 = find_file(ipath4, sizeof ipath4, dir, fname);
  if (have3 && have4)
    return clvae__fail(CLVAE_ERR_FORMAT, "both %s and %s exist: keep one", ipath, ipath4);
  if (have4) memcpy(ipath, ipath4, sizeof ipath);
  else if (!have3) snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte[.gz] (or -idx4-ubyte)", dir, name);
  snprintf(fname, sizeof fname, "%s-labels-idx1-ubyte", name);
  find_file(lpath, sizeof lpath, dir, fname);
  snprintf(out->source, sizeof out->source, "%s", ipath);
  if ((st = clvae_idx_read(ipath, 1, idims, &rank, probe ? NULL : &out->pixels)) != CLVAE_OK) return st;
  out->count = idims[0], out->height = idims[1], out->width = idims[2], out->channels = idims[3];
  /* the labels are read by a probe too (one byte per image): how many classes there are */
  if ((st = clvae_idx_read(lpath, 0, ldims, &lrank, &labels)) != CLVAE_OK) return st;
  if (ldims[0] != idims[0]) {
    free(labels);
    return clvae__fail(CLVAE_ERR_FORMAT, "%s holds %d labels but %s holds %d images", lpath, ldims[0], ipath, idims[0]);
  }
  if (probe) {
    for (int i = 0; i < ldims[0]; i++)
      if (labels[i] + 1 > out->classes) out->classes = labels[i] + 1;
    free(labels);
    return CLVAE_OK;
  }
  out->labels = malloc((size_t)ldims[0] * sizeof *out->labels);
  if (!out->labels) {
    free(labels);
    return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory for the labels of %s", lpath);
  }
  for (int i = 0; i < ldims[0]; i++) {
    out->labels[i] = labels[i];
    if (labels[i] + 1 > out->classes) out->classes = labels[i] + 1;
  }
  free(labels);
  return CLVAE_OK;
}

static clvae_status load(clvae_images *out, const char *dir, const char *set, const clvae_images *classes_from,
                         clvae_load_progress progress, void *user, int probe) {
  char path[4096];
  struct stat sb;
  memset(out, 0, sizeof *out);
  if (strcmp(set, "train") && strcmp(set, "test"))
    return clvae__fail(CLVAE_ERR_ARG, "image set '%s': 'train' or 'test'", set);
  if ((size_t)snprintf(path, sizeof path, "%s/train", dir) >= sizeof path - 64)
    return clvae__fail(CLVAE_ERR_IO, "%.100s...: a path of %zu bytes is too long", dir, strlen(dir));
  if (stat(dir, &sb) != 0) return clvae__fail(CLVAE_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) return clvae__fail(CLVAE_ERR_IO, "%s: not a directory", dir);
  clvae_status st = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)
                        ? clvae__load_png_set(out, dir, set, classes_from, progress, user, probe)
                        : load_idx(out, dir, strcmp(set, "test") == 0 ? "t10k" : set, probe);
  if (st != CLVAE_OK) clvae_images_free(out);
  return st;
}

clvae_status clvae_images_load(clvae_images *out, const char *dir, const char *set, const clvae_images *classes_from,
                               clvae_load_progress progress, void *user) {
  return load(out, dir, set, classes_from, progress, user, 0);
}

clvae_status clvae_images_probe(clvae_images *out, const char *dir, const char *set) {
  return load(out, dir, set, NULL, NULL, NULL, 1);
}

const char *clvae_images_shape(const clvae_images *im, char *buf, size_t n) {
  if (im->channels == 1) snprintf(buf, n, "%dx%d", im->height, im->width);
  else snprintf(buf, n, "%dx%dx%d", im->height, im->width, im->channels);
  return buf;
}

void clvae_images_free(clvae_images *im) {
  free(im->pixels);
  free(im->labels);
  for (int i = 0; im->class_names && i < im->classes; i++) free(im->class_names[i]);
  free(im->class_names);
  memset(im, 0, sizeof *im);
}
