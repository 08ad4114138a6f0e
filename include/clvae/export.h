/* clvae export: the decoder (or the encoder up to μ) as a TF.js layers model that
 * tf.loadLayersModel() loads: DIR/model.json and DIR/weights.bin. */
#ifndef CLVAE_EXPORT_H
#define CLVAE_EXPORT_H

#include "clvae/checkpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clvae_export_part { CLVAE_EXPORT_DECODER = 0, CLVAE_EXPORT_ENCODER = 1 } clvae_export_part;

/* Refuses a non-empty `dir` unless `force`; creates it if missing. */
CLVAE_API clvae_status clvae_export_tfjs(const char *dir, const clvae_checkpoint *ck, clvae_export_part part,
                                         int force);

#ifdef __cplusplus
}
#endif

#endif
