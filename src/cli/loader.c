/* Reads and decompresses image sets on a host thread, so that the OpenCL platform, the
 * context and the program builds proceed at the same time (half of clvae's start-up on a
 * CPU is gunzip). */
#include <stdio.h>
#include <string.h>

#include "cli/loader.h"

/* The error of a failed load, naming the file; for the default directory, where it comes from. */
static void report(clvae_status st, const char *msg, const char *dir) {
  fprintf(stderr, "clvae: %s\n", msg);
  if (st == CLVAE_ERR_IO && !strcmp(dir, CLVAE_DEFAULT_DATA_DIR))
    fprintf(stderr, "clvae: the default data comes from the Debian package dataset-fashion-mnist "
                    "(apt-get install dataset-fashion-mnist), or give --data DIR\n");
}

int cli_load_images(clvae_images *im, const char *dir, const char *set) {
  clvae_status st = clvae_images_load(im, dir, set);
  if (st == CLVAE_OK) return 0;
  report(st, clvae_error_message(), dir);
  return -1;
}

static void *load_main(void *arg) {
  cli_loader *l = arg;
  l->status = clvae_images_load(&l->train, l->dir, "train");
  if (l->status == CLVAE_OK && l->want_test) l->status = clvae_images_load(&l->test, l->dir, "t10k");
  /* the message is this thread's: keep a copy for the waiting thread */
  if (l->status != CLVAE_OK) snprintf(l->msg, sizeof l->msg, "%s", clvae_error_message());
  return NULL;
}

int cli_loader_start(cli_loader *l, const char *dir, int want_test) {
  memset(l, 0, sizeof *l);
  l->dir = dir, l->want_test = want_test;
  l->started = pthread_create(&l->thread, NULL, load_main, l) == 0;
  if (!l->started) load_main(l); /* no thread: load now */
  return 0;
}

int cli_loader_wait(cli_loader *l) {
  if (l->started) pthread_join(l->thread, NULL);
  l->started = 0;
  if (l->status == CLVAE_OK) return 0;
  report(l->status, l->msg, l->dir);
  return -1;
}

void cli_loader_free(cli_loader *l) {
  if (l->started) pthread_join(l->thread, NULL);
  clvae_images_free(&l->train);
  clvae_images_free(&l->test);
}
