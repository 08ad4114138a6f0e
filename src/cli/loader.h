/* Image sets loaded on a host thread while the device starts (see loader.c). */
#ifndef CLVAE_CLI_LOADER_H
#define CLVAE_CLI_LOADER_H

#include <pthread.h>

#include "clvae/data.h"

typedef struct cli_loader {
  const char *dir;
  int want_test, started;
  pthread_t thread;
  clvae_images train, test;
  clvae_status status;
  char msg[CLVAE_ERROR_MSG_SIZE]; /* the loader thread's error message */
} cli_loader;

/* Loads dir's set ("train" or "test"; the test set takes its class names from
 * classes_from) now, with a progress line for a large PNG folder; 0, or -1 after printing
 * the error (naming the file, and where the default data comes from). */
int cli_load_images(clvae_images *im, const char *dir, const char *set, const clvae_images *classes_from);
/* Both sets, refusing (exit 2 printed, -1) a test set whose images differ from the
 * training set's in shape, naming both and their shapes. */
int cli_load_both(clvae_images *train, clvae_images *test, const char *dir);
/* The same from the headers alone (clvae_images_probe): count, shape, source. */
int cli_probe_both(clvae_images *train, clvae_images *test, const char *dir);
/* --quiet: no progress line while a PNG folder is decoded. */
void cli_loader_quiet(int q);
/* Whether the images are the model's shape; prints the refusal naming both if not. */
int cli_same_shape(const clvae_images *im, int height, int width, int channels, const char *model);

/* Starts loading dir's "train" (and "test" if want_test) sets. */
int cli_loader_start(cli_loader *l, const char *dir, int want_test);
/* Waits; 0 on success, else prints the error (naming the file) and returns -1. */
int cli_loader_wait(cli_loader *l);
void cli_loader_free(cli_loader *l);

/* Class names for the legend of a scatter: the set's own (PNG folders), Fashion-MNIST's
 * for the default data, else "class N". free(*owned) afterwards; NULL when out of memory. */
const char *const *cli_class_names(const clvae_images *im, const char *dir, char ***owned);

#endif
