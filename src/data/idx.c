/* IDX files (the MNIST format) through zlib, which reads gzip and raw files alike, and the
 * choice between an IDX and a PNG set. Every size from a header is validated before
 * anything is allocated. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "clvae/data.h"
#include "data/internal.h"


/* Reads exactly n bytes; returns the count read (less at the end of the data), -1 on a
 * decompression error (message in *why). */
static long long read_exact(gzFile f, void *buf, uint64_t n, const char **why) {
  uint64_t got = 0;
  while (got < n) {
    unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int r = gzread(f, (char *)buf + got, chunk);
    if (r < 0) {
      int code;
      *why = gzerror(f, &code);
      return -1;
    }
    if (r == 0) break;
    got += (uint64_t)r;
  }
  if (got < n) {
    int code;
    const char *m = gzerror(f, &code);
    if (code != Z_OK && code != Z_STREAM_END) { /* a gzip stream cut short says so here */
      *why = m;
      return -1;
    }
  }
  return (long long)got;
}

clvae_status clvae_idx_read(const char *path, int want_images, int *dims, int *rank, uint8_t **data) {
  const char *why = NULL;
  unsigned char hdr[20]; /* magic and up to four dimensions */
  struct stat sb;
  *data = NULL;
  if (stat(path, &sb) != 0)
    return clvae__fail(CLVAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  if (S_ISDIR(sb.st_mode)) return clvae__fail(CLVAE_ERR_IO, "%s: is a directory, not an IDX file", path);
  gzFile f = gzopen(path, "rb");
  if (!f) return clvae__fail(CLVAE_ERR_IO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOMEM));
  gzbuffer(f, 1 << 20); /* zlib's default 8 KiB input buffer costs ~10% on a 26 MB file */
  clvae_status st = CLVAE_ERR_FORMAT;
  long long got = read_exact(f, hdr, 4, &why);
  if (got < 0) { clvae__fail(st, "%s: not a valid gzip file (%s)", path, why); goto done; }
  if (got == 0) { clvae__fail(st, "%s: file is empty", path); goto done; }
  if (got < 4) { clvae__fail(st, "%s: file too short for an IDX header (%lld bytes)", path, got); goto done; }
  uint32_t magic = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
  /* unsigned bytes (type 0x08), rank in the last byte: images 3 or 4, labels 1 */
  if (want_images ? magic != 2051 && magic != 2052 : magic != 2049) {
    clvae__fail(st, "%s: wrong magic number %u (expected %s: IDX %s of unsigned bytes)", path, magic,
                want_images ? "2051 or 2052" : "2049", want_images ? "images of rank 3 or 4" : "labels");
    goto done;
  }
  *rank = hdr[3] & 0xff;
  got = read_exact(f, hdr + 4, (uint64_t)4 * *rank, &why);
  if (got < 0) { clvae__fail(st, "%s: not a valid gzip file (%s)", path, why); goto done; }
  if (got < 4 * *rank) { clvae__fail(st, "%s: truncated in the IDX header", path); goto done; }
  uint64_t total = 1;
  for (int i = 0; i < *rank; i++) {
    const unsigned char *p = hdr + 4 + 4 * i;
    uint32_t d = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    if (d == 0 || d > 0x7fffffffu) { clvae__fail(st, "%s: dimension %d is %u", path, i, d); goto done; }
    dims[i] = (int)d;
    total *= d;
    if (total > CLVAE_MAX_IMAGE_BYTES) {
      clvae__fail(st, "%s: header dimensions describe more than %llu bytes of data", path,
                 (unsigned long long)CLVAE_MAX_IMAGE_BYTES);
      goto done;
    }
  }
  /* A raw file holds exactly its header and data. */
  if (gzdirect(f) && (uint64_t)sb.st_size > 4 + 4 * (uint64_t)*rank + total) {
    clvae__fail(st, "%s: %llu bytes after the data the header describes", path,
                (unsigned long long)((uint64_t)sb.st_size - 4 - 4 * (uint64_t)*rank - total));
    goto done;
  }
  /* A raw file's length is known: check it before allocating. */
  if (gzdirect(f) && (uint64_t)sb.st_size < 4 + 4 * (uint64_t)*rank + total) {
    clvae__fail(st, "%s: truncated: header promises %llu bytes of data, file holds %llu", path,
               (unsigned long long)total, (unsigned long long)(sb.st_size - 4 - 4 * *rank));
    goto done;
  }
  /* Grow the buffer as data arrives: a compressed file's length says nothing about the
   * size it expands to, and a header must not make us allocate what the data is not. */
  uint64_t have = 0, cap = 0;
  while (have < total) {
    uint64_t want = total - have < ((uint64_t)16 << 20) ? total - have : ((uint64_t)16 << 20);
    if (have + want > cap) {
      uint8_t *nd = realloc(*data, have + want);
      if (!nd) {
        st = clvae__fail(CLVAE_ERR_NOMEM, "%s: out of memory for %llu bytes", path, (unsigned long long)(have + want));
        goto done;
      }
      *data = nd, cap = have + want;
    }
    got = read_exact(f, *data + have, want, &why);
    if (got < 0) { clvae__fail(st, "%s: corrupt gzip data (%s)", path, why); goto done; }
    have += (uint64_t)got;
    if ((uint64_t)got < want) {
      clvae__fail(st, "%s: truncated: header promises %llu bytes of data, file holds %llu", path,
                 (unsigned long long)total, (unsigned long long)have);
      goto done;
    }
  }
  /* Read past the end: zlib checks the gzip trailer (CRC-32 and length) there, and any
   * further bytes (a second member) are data the header does not describe. */
  unsigned char extra;
  got = read_exact(f, &extra, 1, &why);
  if (got < 0) { clvae__fail(st, "%s: corrupt gzip data (%s)", path, why); goto done; }
  if (got > 0) { clvae__fail(st, "%s: more data after the %llu bytes the header describes", path, (unsigned long long)total); goto done; }
  st = CLVAE_OK;
done:
  gzclose(f);
  if (st != CLVAE_OK) {
    free(*data);
    *data = NULL;
  }
  return st;
}

/* dir/name or dir/name.gz (the raw file first); 0 if neither exists. */
static int find_file(char *out, size_t n, const char *dir, const char *name) {
  struct stat sb;
  snprintf(out, n, "%s/%s", dir, name);
  if (stat(out, &sb) == 0) return 1;
  snprintf(out, n, "%s/%s.gz", dir, name);
  if (stat(out, &sb) == 0) return 1;
  snprintf(out, n, "%s/%s[.gz]", dir, name); /* for the error message */
  return 0;
}

static clvae_status load_idx(clvae_images *out, const char *dir, const char *name) {
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
  if ((st = clvae_idx_read(ipath, 1, idims, &rank, &out->pixels)) != CLVAE_OK) return st;
  if (rank == 4 && idims[3] != 1 && idims[3] != 3)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: %d channels per pixel; 1 (grey) or 3 (RGB) are supported", ipath, idims[3]);
  if (idims[1] > CLVAE_MAX_IMAGE_SIDE || idims[2] > CLVAE_MAX_IMAGE_SIDE)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: images of %dx%d pixels; at most %d on a side are supported", ipath, idims[1],
                       idims[2], CLVAE_MAX_IMAGE_SIDE);
  out->count = idims[0], out->height = idims[1], out->width = idims[2], out->channels = idims[3];
  if ((st = clvae_idx_read(lpath, 0, ldims, &lrank, &labels)) != CLVAE_OK) return st;
  if (ldims[0] != idims[0]) {
    free(labels);
    return clvae__fail(CLVAE_ERR_FORMAT, "%s holds %d labels but %s holds %d images", lpath, ldims[0], ipath, idims[0]);
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

clvae_status clvae_images_load(clvae_images *out, const char *dir, const char *set, const clvae_images *classes_from,
                               clvae_load_progress progress, void *user) {
  char path[4096];
  struct stat sb;
  memset(out, 0, sizeof *out);
  snprintf(path, sizeof path, "%s/train", dir);
  clvae_status st = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)
                        ? clvae__load_png_set(out, dir, set, classes_from, progress, user)
                        : load_idx(out, dir, strcmp(set, "test") == 0 ? "t10k" : set);
  if (st != CLVAE_OK) clvae_images_free(out);
  return st;
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
