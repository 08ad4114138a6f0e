/* clvae export: a trained model for other runtimes. TF.js: the decoder (or the encoder up
 * to μ) as a layers model that tf.loadLayersModel() loads, DIR/model.json and
 * DIR/weights.bin. ONNX: DIR/decoder.onnx (z → image) and DIR/encoder.onnx (image → μ,
 * log σ²), for ONNX Runtime and every framework that imports ONNX. */
#ifndef CLVAE_EXPORT_H
#define CLVAE_EXPORT_H

#include "clvae/checkpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clvae_export_part {
  CLVAE_EXPORT_DECODER = 0,
  CLVAE_EXPORT_ENCODER = 1,
  CLVAE_EXPORT_BOTH = 2      /* ONNX only: both files */
} clvae_export_part;

/* Refuses a non-empty `dir` unless `force`; creates it if missing. */
CLVAE_API clvae_status clvae_export_tfjs(const char *dir, const clvae_checkpoint *ck, clvae_export_part part,
                                         int force);

/* ONNX (IR version 8, opset 13), one file per part, float32, batch dimension "N":
 *  - decoder.onnx: input `z` [N, L], output `image` [N, C, H, W] in 0..1 (NCHW);
 *  - encoder.onnx: input `image` [N, C, H, W] (pixel bytes / 255), outputs `z_mean` and
 *    `z_log_var` [N, L].
 * Initializers are named as the net's tensors ("encoder_hidden1/kernel"); the model's
 * doc_string and metadata_props give clvae's version, the layers and the epoch. `dir` as
 * for clvae_export_tfjs; the files appear together or not at all (none replaces a symlink
 * or anything but a regular file). A part over protobuf's 2 GiB is refused
 * (CLVAE_ERR_LIMIT). */
CLVAE_API clvae_status clvae_export_onnx(const char *dir, const clvae_checkpoint *ck, clvae_export_part part,
                                         int force);

#ifdef __cplusplus
}
#endif

#endif
