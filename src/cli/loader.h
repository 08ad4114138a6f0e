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

/* Loads dir's set ("train" or "t10k") now; 0, or -1 after printing the error (naming the
 * file, and where the default data comes from). */
int cli_load_images(clvae_images *im, const char *dir, const char *set);

/* Starts loading dir's "train" (and "t10k" if want_test) sets. */
int cli_loader_start(cli_loader *l, const char *dir, int want_test);
/* Waits; 0 on success, else prints the error (naming the file) and returns -1. */
int cli_loader_wait(cli_loader *l);
void cli_loader_free(cli_loader *l);

#endif
