/* A protobuf writer for the few messages clvae emits (the ONNX export): a growing byte
 * buffer with varint and length-delimited fields. A nested message is written
 * into a buffer of its own and then appended as a length-delimited field. */
#ifndef CLVAE_IO_PROTOBUF_H
#define CLVAE_IO_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

/* A message being written. An allocation failure sets `oom` and makes every later write a
 * no-op, so that a writer checks once, at the end. */
typedef struct pb_buf {
  unsigned char *data;
  size_t len, cap;
  int oom;
} pb_buf;

void pb_free(pb_buf *b);
/* An int32, int64 or enum field (wire type 0; a negative value takes 10 bytes, as protobuf
 * writes it). */
void pb_int(pb_buf *b, int field, int64_t v);
/* A bytes or string field (wire type 2). */
void pb_bytes(pb_buf *b, int field, const void *data, size_t n);
void pb_string(pb_buf *b, int field, const char *s);
/* A nested message (wire type 2); takes sub's out-of-memory state along. */
void pb_message(pb_buf *b, int field, const pb_buf *sub);
/* Bytes that are already encoded fields (one message's fields, concatenated). */
void pb_raw(pb_buf *b, const void *data, size_t n);
/* A bytes field of n bytes that the caller fills in place: returns where (NULL when out of
 * memory). */
unsigned char *pb_bytes_reserve(pb_buf *b, int field, size_t n);

#endif
