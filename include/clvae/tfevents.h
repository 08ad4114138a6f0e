/* clvae TensorBoard logs: event files as TensorFlow's summary writers make them, so that
 * `tensorboard --logdir DIR` shows a run's scalars. */
#ifndef CLVAE_TFEVENTS_H
#define CLVAE_TFEVENTS_H

#include <stdint.h>

#include "clvae/clvae.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clvae_events clvae_events;

/* Creates DIR (one level) if needed and a new file DIR/events.out.tfevents.<seconds>.<host>
 * (".2", ".3", ... appended if that name is taken: never an existing file), starting with
 * the "brain.Event:2" file_version record. Each record is TFRecord-framed: little-endian
 * length, masked CRC-32C of the length, the serialized tensorflow.Event, its masked CRC-32C. */
CLVAE_API clvae_status clvae_events_open(clvae_events **out, const char *dir);
/* An Event {wall_time, step, summary {value {tag, simple_value}}}. Buffered. */
CLVAE_API clvae_status clvae_events_scalar(clvae_events *e, const char *tag, int64_t step, float value,
                                           double wall_time);
/* Writes what is buffered and fsyncs the file. */
CLVAE_API clvae_status clvae_events_flush(clvae_events *e);
/* The file's path. */
CLVAE_API const char *clvae_events_path(const clvae_events *e);
/* Flushes and closes; returns the flush's status. NULL is fine. */
CLVAE_API clvae_status clvae_events_close(clvae_events *e);

/* CRC-32C (Castagnoli) of n bytes, and TFRecord's masking of it. */
CLVAE_API uint32_t clvae_crc32c(const void *data, size_t n);
CLVAE_API uint32_t clvae_crc32c_masked(const void *data, size_t n);

#ifdef __cplusplus
}
#endif

#endif
