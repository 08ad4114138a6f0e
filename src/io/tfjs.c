/* TF.js layers-model export, in the format tfjs-layers' model.save() writes: model.json
 * (topology of a Sequential of Dense layers + weights manifest) and weights.bin (float32,
 * little-endian, manifest order, no padding; kernels row-major [in, out]). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clvae/export.h"
#include "clvae/files.h"
#include "device/internal.h"

typedef struct dense {
  const char *name, *activation;
  int in, out;
  const float *kernel;       /* (in, out), row stride `kstride` */
  int kstride;
  const float *bias;         /* (out) */
} dense;

static int dir_is_empty(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int empty = 1;
  if (!d) return 1;
  while (empty && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
  closedir(d);
  return empty;
}

static void write_layer_json(FILE *f, const dense *l, int first) {
  fprintf(f, "%s{\"class_name\": \"Dense\", \"config\": {\"units\": %d, \"activation\": \"%s\", \"use_bias\": true, "
             "\"kernel_initializer\": {\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 1, \"mode\": "
             "\"fan_avg\", \"distribution\": \"normal\", \"seed\": null}}, \"bias_initializer\": {\"class_name\": "
             "\"Zeros\", \"config\": {}}, \"kernel_regularizer\": null, \"bias_regularizer\": null, "
             "\"activity_regularizer\": null, \"kernel_constraint\": null, \"bias_constraint\": null, "
             "\"name\": \"%s\", \"trainable\": true, ",
          first ? "" : ", ", l->out, l->activation, l->name);
  if (first) fprintf(f, "\"batch_input_shape\": [null, %d], ", l->in);
  fprintf(f, "\"dtype\": \"float32\"}}");
}

/* Writes the files of an export through temporary files (files.h): all are opened and
 * written before any is renamed into place, so that a refused target (a symlink, say)
 * leaves the directory as it was. Renamed in order: weights.bin before the model.json
 * that points at it. */
static clvae_status put_files(const char *dir, const char *const *names, const void *const *data, const size_t *size,
                              int n) {
  char path[4200];
  clvae_output out[2];
  clvae_status st = CLVAE_OK;
  int opened = 0;
  for (; opened < n && st == CLVAE_OK; opened++) {
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[opened]) >= sizeof path) {
      st = clvae__fail(CLVAE_ERR_IO, "%.100s...: path too long", dir);
      break;
    }
    if ((st = clvae_output_open(&out[opened], path)) != CLVAE_OK) break;
    if (fwrite(data[opened], 1, size[opened], out[opened].f) != size[opened])
      st = clvae__fail(CLVAE_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  }
  for (int i = 0; i < opened; i++) {
    if (st == CLVAE_OK) st = clvae_output_commit(&out[i], 0);
    else if (out[i].f) clvae_output_abort(&out[i]);
  }
  return st;
}

static clvae_status write_model(const char *dir, const char *model_name, const dense *layers, int n) {
  char *json = NULL;
  size_t jsize = 0, wsize = 0;
  for (int i = 0; i < n; i++) wsize += ((size_t)layers[i].in * layers[i].out + layers[i].out) * 4;
  unsigned char *w = malloc(wsize), *o = w;
  FILE *f = open_memstream(&json, &jsize);
  if (!w || !f) {
    free(w);
    if (f) fclose(f);
    free(json);
    return clvae__fail(CLVAE_ERR_NOMEM, "out of memory exporting %s", model_name);
  }
  fprintf(f, "{\"format\": \"layers-model\", \"generatedBy\": \"clvae %s\", \"convertedBy\": null, "
             "\"modelTopology\": {\"class_name\": \"Sequential\", \"config\": {\"name\": \"%s\", \"layers\": [",
          CLVAE_VERSION, model_name);
  for (int i = 0; i < n; i++) write_layer_json(f, &layers[i], i == 0);
  fprintf(f, "]}, \"keras_version\": \"tfjs-layers 4.22.0\", \"backend\": \"tensor_flow.js\"}, "
             "\"weightsManifest\": [{\"paths\": [\"weights.bin\"], \"weights\": [");
  for (int i = 0; i < n; i++) {
    const dense *l = &layers[i];
    fprintf(f, "%s{\"name\": \"%s/kernel\", \"shape\": [%d, %d], \"dtype\": \"float32\"}, "
               "{\"name\": \"%s/bias\", \"shape\": [%d], \"dtype\": \"float32\"}",
            i ? ", " : "", l->name, l->in, l->out, l->name, l->out);
    for (int r = 0; r < l->in; r++)
      for (int c = 0; c < l->out; c++, o += 4) {
        uint32_t u;
        memcpy(&u, &l->kernel[(size_t)r * l->kstride + c], 4);
        o[0] = (unsigned char)u, o[1] = (unsigned char)(u >> 8), o[2] = (unsigned char)(u >> 16), o[3] = (unsigned char)(u >> 24);
      }
    for (int c = 0; c < l->out; c++, o += 4) {
      uint32_t u;
      memcpy(&u, &l->bias[c], 4);
      o[0] = (unsigned char)u, o[1] = (unsigned char)(u >> 8), o[2] = (unsigned char)(u >> 16), o[3] = (unsigned char)(u >> 24);
    }
  }
  fprintf(f, "]}]}\n");
  fclose(f);
  const char *const names[2] = {"weights.bin", "model.json"};
  const void *const data[2] = {w, json};
  const size_t sizes[2] = {wsize, jsize};
  clvae_status st = put_files(dir, names, data, sizes, 2);
  free(w);
  free(json);
  return st;
}

clvae_status clvae_export_tfjs(const char *dir, const clvae_checkpoint *ck, clvae_export_part part, int force) {
  struct stat sb;
  if (stat(dir, &sb) == 0) {
    if (!S_ISDIR(sb.st_mode)) return clvae__fail(CLVAE_ERR_IO, "%s exists and is not a directory", dir);
    if (!force && !dir_is_empty(dir))
      return clvae__fail(CLVAE_ERR_EXISTS, "%s is not empty", dir);
  } else if (mkdir(dir, 0755) != 0) {
    return clvae__fail(CLVAE_ERR_IO, "cannot create directory %s: %s", dir, strerror(errno));
  }
  clvae_net net;
  dense layers[CLVAE_MAX_LAYERS];
  char names[CLVAE_MAX_LAYERS][32];
  int n = 0;
  clvae_status st = clvae_net_build(&net, &ck->cfg);
  if (st != CLVAE_OK) return st;
  const float *p = ck->params;
  /* The decoder: the layers after sampling. The encoder: the layers up to the heads, then
   * z_mean, the μ half (first L columns) of the (H, 2L) heads kernel. Layers are named as
   * the TF.js example's code names them, so that its page finds them (its debug view asks
   * the decoder for 'dense_Dense2' and 'dense_Dense3'): tf.layers.dense numbers its layers
   * dense_Dense1, 2, ... in creation order, the encoder's hidden layers first, then the
   * decoder's; the heads are z_mean and z_log_var. */
  int first = part == CLVAE_EXPORT_DECODER ? net.sample + 1 : 0, last = part == CLVAE_EXPORT_DECODER ? net.nlayers : net.sample;
  for (int i = first, dense_no = 1; i < last; i++) {
    const clvae_layer *l = &net.layers[i];
    int heads = part == CLVAE_EXPORT_ENCODER && i == net.sample - 1;
    if (part == CLVAE_EXPORT_DECODER && i == first) dense_no = net.cfg.depth + 1;
    snprintf(names[n], sizeof names[n], heads ? "z_mean" : "dense_Dense%d", dense_no++);
    layers[n] = (dense){names[n], l->act == CLVAE_ACT_RELU ? "relu" : l->act == CLVAE_ACT_SIGMOID ? "sigmoid" : "linear",
                        l->in, heads ? net.L : l->out, p + net.tensors[l->kernel].offset, l->out,
                        p + net.tensors[l->bias].offset};
    n++;
  }
  return write_model(dir, part == CLVAE_EXPORT_DECODER ? "decoder" : "encoder", layers, n);
}
