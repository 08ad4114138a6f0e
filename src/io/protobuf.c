/* The protobuf wire format, written by hand for the ONNX export: a few messages do not
 * justify a dependency on libprotobuf or protobuf-c (and a code generator in the build).
 * Fields are written in the order the caller gives; parsers accept any order. */
#include <stdlib.h>
#include <string.h>

#include "io/protobuf.h"

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* Room for n more bytes; 0 (and b->oom set) if there is none. */
static int reserve(pb_buf *b, size_t n) {
  if (b->oom) return 0;
  if (n <= b->cap - b->len) return 1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) return b->oom = 1, 0;
    cap *= 2;
  }
  unsigned char *d = realloc(b->data, cap);
  if (!d) return b->oom = 1, 0;
  b->data = d, b->cap = cap;
  return 1;
}

static void put_varint(pb_buf *b, uint64_t v) {
  if (!reserve(b, 10)) return;
  do {
    unsigned char byte = (unsigned char)(v & 0x7f);
    v >>= 7;
    b->data[b->len++] = v ? (unsigned char)(byte | 0x80) : byte;
  } while (v);
}

static void put_tag(pb_buf *b, int field, int wire) { put_varint(b, ((uint64_t)field << 3) | (uint64_t)wire); }

void pb_free(pb_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

void pb_int(pb_buf *b, int field, int64_t v) {
  put_tag(b, field, WIRE_VARINT);
  put_varint(b, (uint64_t)v);
}

unsigned char *pb_bytes_reserve(pb_buf *b, int field, size_t n) {
  put_tag(b, field, WIRE_LEN);
  put_varint(b, (uint64_t)n);
  if (!reserve(b, n)) return NULL;
  b->len += n;
  return b->data + b->len - n;
}

void pb_bytes(pb_buf *b, int field, const void *data, size_t n) {
  unsigned char *o = pb_bytes_reserve(b, field, n);
  if (o && n) memcpy(o, data, n);
}

void pb_string(pb_buf *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

void pb_message(pb_buf *b, int field, const pb_buf *sub) {
  if (sub->oom) b->oom = 1;
  pb_bytes(b, field, sub->data, sub->len);
}

void pb_raw(pb_buf *b, const void *data, size_t n) {
  if (!n || !reserve(b, n)) return;
  memcpy(b->data + b->len, data, n);
  b->len += n;
}
