/* IDX files (the MNIST format) through zlib, which reads gzip and raw files alike.
 * Every size from a header is validated before anything is allocated. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "clvae/data.h"
#include "device/internal.h"

#define IDX_MAX_BYTES ((uint64_t)1 << 31) /* 2 GiB: far beyond any image set we train on */

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

clvae_status clvae_idx_read(const char *path, int want_magic, int *dims, int *rank,
                            uint8_t **data) {
  const char *why = NULL;
  unsigned char hdr[16];
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
  int want_rank = want_magic == 2051 ? 3 : 1;
  if (magic != (uint32_t)want_magic) {
    clvae__fail(st, "%s: wrong magic number %u (expected %d: IDX %s of unsigned bytes)", path,
               magic, want_magic, want_magic == 2051 ? "images" : "labels");
    goto done;
  }
  *rank = hdr[3] & 0xff;
  if (*rank != want_rank) { clvae__fail(st, "%s: rank %d, expected %d", path, *rank, want_rank); goto done; }
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
    if (total > IDX_MAX_BYTES) {
      clvae__fail(st, "%s: header dimensions describe more than %llu bytes of data", path,
                 (unsigned long long)IDX_MAX_BYTES);
      goto done;
    }
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
  st = CLVAE_OK;
done:
  gzclose(f);
  if (st != CLVAE_OK) {
    free(*data);
    *data = NULL;
  }
  return st;
}

/* dir/name, or dir/name.gz if only that exists. */
static void find_file(char *out, size_t n, const char *dir, const char *name) {
  struct stat sb;
  snprintf(out, n, "%s/%s", dir, name);
  if (stat(out, &sb) == 0) return;
  snprintf(out, n, "%s/%s.gz", dir, name);
  if (stat(out, &sb) == 0) return;
  snprintf(out, n, "%s/%s[.gz]", dir, name); /* for the error message */
}

clvae_status clvae_images_load(clvae_images *out, const char *dir, const char *set) {
  char ipath[4096], lpath[4096], name[64];
  int idims[3], ldims[1], rank;
  clvae_status st;
  memset(out, 0, sizeof *out);
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", set);
  find_file(ipath, sizeof ipath, dir, name);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", set);
  find_file(lpath, sizeof lpath, dir, name);
  if ((st = clvae_idx_read(ipath, 2051, idims, &rank, &out->pixels)) != CLVAE_OK) return st;
  if ((st = clvae_idx_read(lpath, 2049, ldims, &rank, &out->labels)) != CLVAE_OK) goto fail;
  if (ldims[0] != idims[0]) {
    st = clvae__fail(CLVAE_ERR_FORMAT, "%s holds %d labels but %s holds %d images", lpath, ldims[0], ipath, idims[0]);
    goto fail;
  }
  for (int i = 0; i < ldims[0]; i++)
    if (out->labels[i] > 9) {
      st = clvae__fail(CLVAE_ERR_FORMAT, "%s: label %d of item %d is outside 0..9", lpath, out->labels[i], i);
      goto fail;
    }
  out->count = idims[0], out->rows = idims[1], out->cols = idims[2];
  return CLVAE_OK;
fail:
  clvae_images_free(out);
  return st;
}

void clvae_images_free(clvae_images *im) {
  free(im->pixels);
  free(im->labels);
  memset(im, 0, sizeof *im);
}
