/* Reads and decompresses image sets, on a host thread when the OpenCL platform, the
 * context and the program builds can proceed at the same time (half of clvae's start-up
 * on a CPU is gunzip); checks that sets agree in shape; names their classes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/loader.h"

/* The error of a failed load, naming the file; for the default directory, where it comes from. */
static void report(clvae_status st, const char *msg, const char *dir) {
  fprintf(stderr, "clvae: %s%s\n", cli_rank_prefix(), msg);
  if (st == CLVAE_ERR_IO && !strcmp(dir, CLVAE_DEFAULT_DATA_DIR))
    fprintf(stderr, "clvae: %sthe default data comes from the Debian package dataset-fashion-mnist "
                    "(apt-get install dataset-fashion-mnist), or give --data DIR\n", cli_rank_prefix());
}

static int quiet;
void cli_loader_quiet(int q) { quiet = q; }

/* A progress line while a large PNG folder is decoded (on a terminal, rewritten in place). */
static void on_progress(int done, int total, void *user) {
  const char *what = user;
  int tty = isatty(STDERR_FILENO);
  if (quiet || (!tty && done < total)) return;
  fprintf(stderr, "%sclvae: reading %s: %d of %d images%s", tty ? "\r\033[K" : "", what, done, total,
          done == total || !tty ? "\n" : "");
  fflush(stderr);
}

static clvae_status load(clvae_images *im, const char *dir, const char *set, const clvae_images *classes_from) {
  char what[4200];
  snprintf(what, sizeof what, "%s/%s", dir, set);
  return clvae_images_load(im, dir, set, classes_from, on_progress, what);
}

int cli_load_images(clvae_images *im, const char *dir, const char *set, const clvae_images *classes_from) {
  clvae_status st = load(im, dir, set, classes_from);
  if (st == CLVAE_OK) return 0;
  report(st, clvae_error_message(), dir);
  return -1;
}

static int same_sets(const clvae_images *train, const clvae_images *test) {
  char a[64], b[64];
  if (train->height == test->height && train->width == test->width && train->channels == test->channels) return 0;
  fprintf(stderr, "clvae: %sthe training images (%s) are %s, but the test images (%s) are %s: both sets must have "
                  "one shape\n", cli_rank_prefix(), train->source, clvae_images_shape(train, a, sizeof a), test->source,
          clvae_images_shape(test, b, sizeof b));
  return -1;
}

int cli_load_both(clvae_images *train, clvae_images *test, const char *dir) {
  if (cli_load_images(train, dir, "train", NULL) != 0 || cli_load_images(test, dir, "test", train) != 0) return -1;
  return same_sets(train, test);
}

int cli_probe_both(clvae_images *train, clvae_images *test, const char *dir) {
  clvae_status st = clvae_images_probe(train, dir, "train");
  if (st == CLVAE_OK) st = clvae_images_probe(test, dir, "test");
  if (st != CLVAE_OK) {
    report(st, clvae_error_message(), dir);
    return -1;
  }
  return same_sets(train, test);
}

int cli_same_shape(const clvae_images *im, int height, int width, int channels, const char *model) {
  char a[64], b[64];
  clvae_images want = {.height = height, .width = width, .channels = channels};
  if (im->height == height && im->width == width && im->channels == channels) return 1;
  fprintf(stderr, "clvae: %s%s is a model of %s images, but %s holds %s images\n", cli_rank_prefix(), model,
          clvae_images_shape(&want, a, sizeof a), im->source, clvae_images_shape(im, b, sizeof b));
  return 0;
}

static void *load_main(void *arg) {
  cli_loader *l = arg;
  l->status = load(&l->train, l->dir, "train", NULL);
  if (l->status == CLVAE_OK && l->want_test) l->status = load(&l->test, l->dir, "test", &l->train);
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
  if (l->status != CLVAE_OK) {
    report(l->status, l->msg, l->dir);
    return -1;
  }
  return l->want_test ? same_sets(&l->train, &l->test) : 0;
}

void cli_loader_free(cli_loader *l) {
  if (l->started) pthread_join(l->thread, NULL);
  clvae_images_free(&l->train);
  clvae_images_free(&l->test);
}

static const char *const fashion_mnist[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

const char *const *cli_class_names(const clvae_images *im, const char *dir, char ***owned) {
  *owned = NULL;
  if (im->class_names) return (const char *const *)im->class_names;
  if (!strcmp(dir, CLVAE_DEFAULT_DATA_DIR) && im->classes <= 10) return fashion_mnist;
  /* one block: the pointers, then "class N" strings of 32 bytes each */
  size_t n = (size_t)im->classes;
  char **names = malloc(n * (sizeof *names + 32) + 1);
  for (size_t c = 0; names && c < n; c++) {
    names[c] = (char *)(names + n) + 32 * c;
    snprintf(names[c], 32, "class %zu", c);
  }
  *owned = names;
  return (const char *const *)names;
}
