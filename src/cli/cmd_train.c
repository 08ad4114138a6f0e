/* `clvae train` and `clvae eval`: argument handling, data loading, progress output and
 * signals around the library's training loop. */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/loader.h"
#include "clvae/export.h"
#include "clvae/files.h"
#include "clvae/image.h"
#include "clvae/tfevents.h"
#include "clvae/train.h"

#define DEFAULT_EPOCHS 20

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  if (stop_signal) { /* a second signal: leave now; the last checkpoint stays */
    clvae_output_cleanup();
    _exit(128 + sig);
  }
  stop_signal = sig;
}

static void train_usage(void) {
  printf("usage: clvae train [--epochs N] [--out DIR] [--resume] [--data DIR] [--hidden N]\n"
         "                   [--latent-dim N] [--loss mse|bce] [--lr X] [--batch-size N] [--seed N]\n"
         "                   [--limit N] [--beta B] [--conditional] [--report-every N] [--logdir DIR]\n"
         "                   [--preview] [--quiet]\n"
         "                   [--platform P] [--device D] [--gemm auto|builtin|clblast]\n\n"
         "Trains a VAE on the images of --data (TF.js example defaults: hidden 512, latent 2, D*MSE + KL\n"
         "for D pixels, Adam 1e-3, batch 256; the image shape comes from the data). Writes\n"
         "DIR/checkpoint.clvae after every epoch and on Ctrl-C/SIGTERM, a row per epoch to\n"
         "DIR/metrics.csv, DIR/loss.png and DIR/preview-epochN.png, the loss every --report-every steps\n"
         "to DIR/progress.csv, and at the end the decoder for\n"
         "TF.js in DIR/decoder/ (model.json, weights.bin; as the TF.js example's trainer does).\n\n"
         "  --epochs N       train until N epochs are complete (default %d; 0: initialize only)\n"
         "  --out DIR        output directory (default runs/<date-time>)\n"
         "  --resume         continue from DIR/checkpoint.clvae; its configuration wins\n"
         "  --data DIR       IDX files (raw or .gz; rank 3 N,H,W or rank 4 N,H,W,C), or PNG files in\n"
         "                   DIR/train/ and DIR/test/, optionally one sub-folder per class\n"
         "                   (default %s)\n"
         "  --hidden N[,N..] hidden layer widths from the image side; the decoder mirrors them (512)\n"
         "  --encoder LIST   the encoder's layers from the image, comma-separated items: dense:N,\n"
         "                   conv:C:K:S[:same|valid] (Conv2D: C filters, KxK, stride S; default same),\n"
         "                   deconv:C:K:S[:same|valid] (Conv2DTranspose), reshape:H:W:C; ReLU after each\n"
         "                   layer, at most 8 a side; a spatial encoder is flattened before (mu, logvar)\n"
         "  --decoder LIST   the decoder's, from z; the output layer is added: a dense of H*W*C units,\n"
         "                   or after a spatial decoder deconv:C:3:1:same to the image's channels, then\n"
         "                   the sigmoid. E.g. the TF tutorial's convolutional VAE:\n"
         "                     --encoder conv:32:3:2:valid,conv:64:3:2:valid\n"
         "                     --decoder dense:1568,reshape:7:7:32,deconv:64:3:2,deconv:32:3:2\n"
         "  --init K         glorot (TF's: truncated normal kernels, zero biases), torch (PyTorch's:\n"
         "                   uniform in +-1/sqrt(fan_in)), or auto (default): glorot without\n"
         "                   convolutions (the TF.js example), torch with them (learns faster)\n"
         "  --latent-dim N   latent dimensions (2)\n"
         "  --beta B         the KL term's weight, 0..1000 (1): loss = reconstruction + B*KL (a beta-VAE)\n"
         "  --conditional    a conditional VAE: the one-hot class joins the encoder's input and z (dense\n"
         "                   layers only); the classes are the training set's labels (1 + the largest)\n"
         "                   or its class folders; then sample --class, grid --class\n"
         "  --loss K         mse (D*MSE) or bce      --lr X           Adam learning rate (0.001)\n"
         "  --batch-size N   batch size (256)         --seed N         initialization/shuffle/noise seed (1)\n"
         "  --limit N        train on the first N training images only\n"
         "  --report-every N read the loss back every N steps (20): the progress line, a row of\n"
         "                   DIR/progress.csv (step,epoch,loss,seconds)\n"
         "  --logdir DIR     TensorBoard event files in DIR: `loss` per batch, test_loss/recon/kl per\n"
         "                   epoch (tensorboard --logdir DIR); --resume adds a file beside the others\n"
         "  --preview        after each epoch, show the decoding of z = 0 in the terminal\n"
         "  --quiet          only errors\n\n"
         "Under mpirun -np N (clvae built with MPI): one model on N devices, each rank computing a slice\n"
         "of every batch, the gradients summed over MPI; rank 0 reads and writes DIR. See the README.\n\n"
         "Exit: 0 done, 1 failure (OpenCL error, NaN loss), 2 bad usage or data,\n"
         "130/143 interrupted by SIGINT/SIGTERM (checkpoint saved; resume with --resume).\n",
         DEFAULT_EPOCHS, CLVAE_DEFAULT_DATA_DIR);
}

int cli_parse_train(int argc, char **argv, train_args *a) {
  const char *v;
  long x;
  int r;
  for (int i = 1; i < argc; i++) {
    if ((r = cli_device_option(argc, argv, &i, &a->dev)) != 0) {
      if (r < 0) return EXIT_USAGE;
    } else if (!strcmp(argv[i], "--resume")) a->resume = 1;
    else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) a->quiet = 1;
    else if (!strcmp(argv[i], "--preview")) a->preview = 1;
    else if (!strcmp(argv[i], "--conditional")) a->set[CFG_CONDITIONAL] = 1; /* its classes come from the data */
    else if ((r = cli_value(argc, argv, &i, "--beta", &v))) {
      double b;
      char *end;
      if (r < 0) return EXIT_USAGE;
      if (!cli_number(v, &end, &b) || *end || !(b >= 0 && b <= 1000)) {
        fprintf(stderr, "clvae: --beta '%s' is not a number from 0 to 1000 (the KL term's weight; 1: the plain VAE)\n", v);
        return EXIT_USAGE;
      }
      a->cfg.beta = (float)b, a->set[CFG_BETA] = 1;
    }
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return train_usage(), EXIT_OK;
    else if ((r = cli_value(argc, argv, &i, "--out", &a->out)) || (r = cli_value(argc, argv, &i, "--data", &a->data)) ||
             (r = cli_value(argc, argv, &i, "--logdir", &a->logdir))) {
      if (r < 0) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--epochs", &v))) {
      if (r < 0 || !cli_int("--epochs", v, 0, 100000, &a->epochs)) return EXIT_USAGE;
    } else if ((r = cli_layer_option(argc, argv, &i, &a->cfg, a->set))) {
      if (r < 0) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--latent-dim", &v))) {
      if (r < 0 || !cli_int("--latent-dim", v, 1, 1024, &x)) return EXIT_USAGE;
      a->cfg.latent = (int)x, a->set[CFG_LATENT] = 1;
    } else if ((r = cli_value(argc, argv, &i, "--batch-size", &v))) {
      if (r < 0 || !cli_int("--batch-size", v, 1, 65536, &x)) return EXIT_USAGE;
      a->cfg.batch = (int)x, a->set[CFG_BATCH] = 1;
    } else if ((r = cli_value(argc, argv, &i, "--seed", &v))) {
      if (r < 0 || !cli_int("--seed", v, 0, 2147483647L, &x)) return EXIT_USAGE;
      a->cfg.seed = (uint64_t)x, a->set[CFG_SEED] = 1;
    } else if ((r = cli_value(argc, argv, &i, "--limit", &v))) {
      if (r < 0 || !cli_int("--limit", v, 1, 2147483647L, &a->limit)) return EXIT_USAGE;
      a->set[CFG_LIMIT] = 1;
    } else if ((r = cli_value(argc, argv, &i, "--report-every", &v))) {
      if (r < 0 || !cli_int("--report-every", v, 1, 1000000, &a->report_every)) return EXIT_USAGE;
    } else if ((r = cli_value(argc, argv, &i, "--loss", &v))) {
      if (r < 0) return EXIT_USAGE;
      if (strcmp(v, "mse") && strcmp(v, "bce")) {
        fprintf(stderr, "clvae: --loss '%s' is not one of mse, bce\n", v);
        return EXIT_USAGE;
      }
      a->cfg.loss = !strcmp(v, "bce") ? CLVAE_LOSS_BCE : CLVAE_LOSS_MSE, a->set[CFG_LOSS] = 1;
    } else if ((r = cli_value(argc, argv, &i, "--lr", &v))) {
      if (r < 0) return EXIT_USAGE;
      char *end;
      double lr = strtod(v, &end);
      if (end == v || *end || !(lr > 0 && lr < 10) || (float)lr < FLT_MIN) { /* kept as a 32-bit float */
        fprintf(stderr, "clvae: --lr '%s' is not a number in (0, 10) that a 32-bit float holds (at least %g)\n", v,
                (double)FLT_MIN);
        return EXIT_USAGE;
      }
      if ((float)lr >= 10.0f) {
        fprintf(stderr, "clvae: --lr '%s' rounds to 10 as the 32-bit float training uses; the learning rate must be "
                        "below 10 (at most %.7g)\n", v, (double)nextafterf(10.0f, 0.0f));
        return EXIT_USAGE;
      }
      a->cfg.lr = (float)lr, a->set[CFG_LR] = 1;
    } else return cli_unknown("train", argv[i]);
  }
  return cli_layer_flags_done(&a->cfg, a->set);
}

/* With --resume the checkpoint's configuration wins; a flag that says otherwise is an error. */
static int check_conflicts(const train_args *a, const clvae_checkpoint *ck, const char *path) {
  const clvae_config *c = &ck->cfg, *f = &a->cfg;
  if (cli_layers_conflict(f, a->set, c, path) != 0) return -1;
  struct { int set, same; const char *flag; double mine, theirs; } t[] = {
    {a->set[CFG_LATENT], f->latent == c->latent, "--latent-dim", f->latent, c->latent},
    {a->set[CFG_LOSS], f->loss == c->loss, "--loss (0 mse, 1 bce)", f->loss, c->loss},
    {a->set[CFG_LR], f->lr == c->lr, "--lr", f->lr, c->lr},
    {a->set[CFG_BATCH], f->batch == c->batch, "--batch-size", f->batch, c->batch},
    {a->set[CFG_SEED], f->seed == c->seed, "--seed", (double)f->seed, (double)c->seed},
    {a->set[CFG_LIMIT], a->limit == ck->train_limit, "--limit", (double)a->limit, ck->train_limit},
    {a->set[CFG_BETA], f->beta == c->beta, "--beta", f->beta, c->beta},
  };
  if (a->set[CFG_CONDITIONAL] && !c->classes) {
    fprintf(stderr, "clvae: --conditional conflicts with %s, which is not a conditional model; drop the flag to "
                    "resume\n", path);
    return -1;
  }
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (t[i].set && !t[i].same) {
      fprintf(stderr, "clvae: %s %g conflicts with %s, which was trained with %g; drop the flag to resume\n",
              t[i].flag, t[i].mine, path, t[i].theirs);
      return -1;
    }
  return 0;
}

typedef struct progress_state {
  int tty, quiet, preview;
  int metrics_off;           /* metrics.csv could not be appended to: said once, no more rows */
  int progress_off;          /* likewise progress.csv */
  int loss_png_off;          /* loss.png could not be written: said once */
  clvae_model *m;
  const char *out;
  clvae_checkpoint *ck;      /* what save() writes */
  const char *path;          /* DIR/checkpoint.clvae */
  clvae_events *events;      /* --logdir, or NULL */
} progress_state;

/* A TensorBoard log that cannot be written does not stop training: said once, then off. */
static void events_failed(progress_state *ps) {
  fprintf(stderr, "%sclvae: %s; TensorBoard logging is off for the rest of the run\n", ps->tty ? "\n" : "",
          clvae_error_message());
  clvae_events_close(ps->events);
  ps->events = NULL;
}

/* The example's per-batch scalar: `loss` at the run's step, counted from 0. The steps ran
 * between t0 and t1 (the loss is read back at epoch ends): their wall times are spread
 * evenly over that span. */
static void log_batch_losses(int64_t first, const double *loss, int n, double t0, double t1, void *user) {
  progress_state *ps = user;
  for (int i = 0; i < n && ps->events; i++)
    if (clvae_events_scalar(ps->events, "loss", first + i, (float)loss[i], t0 + (t1 - t0) * (i + 1) / n) != CLVAE_OK)
      events_failed(ps);
}

/* A row of DIR/<name> (the header first if the file is new), appended only to a regular
 * file, never through a symlink, never blocking on a FIFO (clvae_append_open); a last line
 * without its newline gets one first, so that every row keeps its fields. A file that
 * cannot be appended to (replaced by a FIFO or a link, a full disk) is reported once and
 * the run goes on without rows (*off), as it does without a TensorBoard log. */
static void append_row(const progress_state *ps, const char *name, const char *header, const char *row, int *off) {
  char path[4200];
  FILE *f = NULL;
  struct stat sb;
  unsigned char last = '\n';
  if (*off) return;
  snprintf(path, sizeof path, "%s/%s", ps->out, name);
  char why[4400] = "";
  if (clvae_append_open(path, &f) != CLVAE_OK) snprintf(why, sizeof why, "%s", clvae_error_message());
  else {
    int fd = fileno(f);
    if (fstat(fd, &sb) == 0 && sb.st_size > 0 && pread(fd, &last, 1, sb.st_size - 1) != 1) last = '\n';
    if (sb.st_size == 0) fprintf(f, "%s\n", header);
    else if (last != '\n') fputc('\n', f);
    fprintf(f, "%s\n", row);
    if (fclose(f) != 0) snprintf(why, sizeof why, "%s: write failed: %s", path, strerror(errno));
  }
  if (why[0]) {
    fprintf(stderr, "%sclvae: %s; no more rows are written to it in this run\n", ps->tty ? "\n" : "", why);
    *off = 1;
  }
}

/* DIR/metrics.csv: one row per epoch. */
static void append_metrics(progress_state *ps, int epoch, const clvae_train_progress *p) {
  char row[512];
  snprintf(row, sizeof row, "%d,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f", epoch, p->train_loss, p->test.loss, p->test.recon,
           p->test.kl, p->seconds, p->samples_per_sec);
  append_row(ps, "metrics.csv", "epoch,train_loss,test_loss,test_recon,test_kl,seconds,samples_per_sec", row,
             &ps->metrics_off);
}

/* DIR/progress.csv: a row at each loss read-back inside an epoch (every --report-every
 * steps) and for each epoch's last step: the run's step count, the epoch (from 1), that
 * step's batch loss, the seconds spent in the epoch so far. */
static void append_progress(progress_state *ps, const clvae_train_progress *p) {
  char row[256];
  snprintf(row, sizeof row, "%lld,%d,%.6f,%.3f", (long long)p->run_step, p->epoch, p->step_loss, p->seconds);
  append_row(ps, "progress.csv", "step,epoch,loss,seconds", row, &ps->progress_off);
}

/* The training loop's save: the checkpoint (atomically), then at an epoch's end its
 * metrics row; a row never names an epoch the checkpoint does not hold. Reports its own
 * failures, as CLVAE_ERR_IO. */
static clvae_status save(clvae_model *m, const clvae_train_state *st, const clvae_train_progress *p, void *user) {
  progress_state *ps = user;
  clvae_checkpoint *ck = ps->ck;
  clvae_status s = clvae_model_get_state(m, ck->params, ck->adam_m, ck->adam_v, NULL);
  if (s != CLVAE_OK) {
    fprintf(stderr, "%sclvae: reading the parameters back: %s\n", ps->tty ? "\n" : "", clvae_error_message());
    return CLVAE_ERR_IO;
  }
  ck->step = clvae_model_step(m), ck->train = *st;
  if ((s = clvae_checkpoint_save(ps->path, ck)) != CLVAE_OK) {
    fprintf(stderr, "%sclvae: %s\n", ps->tty ? "\n" : "", clvae_error_message());
    return CLVAE_ERR_IO;
  }
  if (p) append_metrics(ps, st->epoch, p);
  if (ps->events) { /* the epoch's test figures (step: the epoch number), as in metrics.csv */
    const char *tags[3] = {"test_loss", "test_recon", "test_kl"};
    double v[3] = {p ? p->test.loss : 0, p ? p->test.recon : 0, p ? p->test.kl : 0};
    for (int i = 0; i < 3 && p && s == CLVAE_OK; i++) s = clvae_events_scalar(ps->events, tags[i], st->epoch, (float)v[i], 0);
    if (s != CLVAE_OK || clvae_events_flush(ps->events) != CLVAE_OK) events_failed(ps);
  }
  return CLVAE_OK;
}

/* The decoding of z = 0 in the terminal: two pixel rows per character cell (upper half
 * block, foreground = top, background = bottom) in the 256-colour palette: its 24 greys
 * for grey images, its 6×6×6 colour cube for RGB. */
static int palette_index(const float *px, int channels) {
  if (channels == 1) return 232 + (int)(px[0] * 23 + 0.5f);
  int q[3];
  for (int k = 0; k < 3; k++) q[k] = (int)((px[k] < 0 ? 0 : px[k] > 1 ? 1 : px[k]) * 5 + 0.5f);
  return 16 + 36 * q[0] + 6 * q[1] + q[2];
}

static void terminal_preview(clvae_model *m) {
  const clvae_config *c = clvae_model_config(m);
  const int H = c->height, W = c->width, C = c->channels;
  float *z = calloc((size_t)c->latent, 4), *p = malloc((size_t)clvae_config_pixels(c) * 4);
  const float black[3] = {0, 0, 0};
  if (z && p && clvae_model_decode(m, z, 1, p) == CLVAE_OK && W <= 200) {
    for (int y = 0; y < H; y += 2) {
      for (int x = 0; x < W; x++) {
        const float *top = p + ((size_t)y * W + x) * C, *bot = y + 1 < H ? p + ((size_t)(y + 1) * W + x) * C : black;
        printf("\033[38;5;%dm\033[48;5;%dm\u2580", palette_index(top, C), palette_index(bot, C));
      }
      printf("\033[0m\n");
    }
  }
  free(z), free(p);
}

/* DIR/loss.png from every row of DIR/metrics.csv, and DIR/preview-epochN.png. */
static void epoch_pictures(progress_state *ps, int epoch) {
  char path[4200], line[512];
  double tr[4096], te[4096];
  int n = 0;
  snprintf(path, sizeof path, "%s/metrics.csv", ps->out);
  FILE *f = NULL;
  if (!ps->metrics_off && clvae_fopen_regular(path, &f) != CLVAE_OK) f = NULL; /* a FIFO there is not waited on */
  while (f && n < 4096 && fgets(line, sizeof line, f)) {
    int e;
    if (sscanf(line, "%d,%lf,%lf", &e, &tr[n], &te[n]) == 3) n++;
  }
  if (f) fclose(f);
  snprintf(path, sizeof path, "%s/loss.png", ps->out);
  if (n > 0 && clvae_have_plots() && !ps->loss_png_off && clvae_plot_loss(path, tr, te, n) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s; loss.png is not drawn again in this run\n", clvae_error_message()); /* said once */
    ps->loss_png_off = 1;
  }
  const clvae_config *c = clvae_model_config(ps->m);
  snprintf(path, sizeof path, "%s/preview-epoch%04d.png", ps->out, epoch); /* 0001..: listed in order */
  if (c->classes) { /* a conditional model: a row per class, along z[0] from -3 to 3 (other coordinates 0) */
    float *z = calloc((size_t)10 * c->latent, sizeof *z);
    for (int j = 0; z && j < 10; j++) z[(size_t)j * c->latent] = (float)(-3 + j * 6.0 / 9);
    if (z) cli_write_class_rows(ps->m, path, z, 10); /* reports its own failure */
    free(z);
  } else
    cli_write_grid(ps->m, path, 10, -3, 3, 0, c->latent > 1 ? 1 : -1, -1); /* reports its own failure */
}

static void fmt_time(char *out, size_t n, double s) {
  if (s >= 3600) snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
  else snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

static void on_progress(const clvae_train_progress *p, void *user) {
  progress_state *ps = user;
  char eta[32];
  append_progress(ps, p);
  if (p->epoch_end) epoch_pictures(ps, p->epoch);
  if (ps->quiet) return;
  if (!p->epoch_end) {
    if (!ps->tty) return;
    fmt_time(eta, sizeof eta, p->eta_seconds);
    printf("\r\033[Kepoch %d/%d  step %d/%d  loss %.3f  %.0f samples/s  ETA %s", p->epoch, p->epochs, p->step,
           p->steps, p->loss, p->samples_per_sec, eta);
    fflush(stdout);
    return;
  }
  printf("%sepoch %d/%d  train %.3f  test %.3f (recon %.3f, kl %.3f)  %.1f s  %.0f samples/s\n",
         ps->tty ? "\r\033[K" : "", p->epoch, p->epochs, p->train_loss, p->test.loss, p->test.recon, p->test.kl,
         p->seconds, p->samples_per_sec);
  if (ps->preview && ps->tty) terminal_preview(ps->m);
  fflush(stdout);
}

/* The run's data as given and as an absolute path, for the commands that later default to it. */
static void record_data(clvae_checkpoint *ck, const char *data) {
  char abs[PATH_MAX];
  snprintf(ck->data, sizeof ck->data, "%s", data);
  /* a path realpath cannot resolve (longer than PATH_MAX) is not recorded as absolute: a
   * relative one would name another directory from elsewhere */
  if (realpath(data, abs)) snprintf(ck->data_abs, sizeof ck->data_abs, "%s", abs);
  else if (data[0] == '/') snprintf(ck->data_abs, sizeof ck->data_abs, "%s", data);
  else ck->data_abs[0] = '\0';
}

/* Loads or creates the checkpoint state; returns an exit code or -1 to go on. */
static int prepare_state(train_args *a, const clvae_images *train, clvae_checkpoint *ck, char *path, size_t n) {
  snprintf(path, n, "%s/checkpoint.clvae", a->out);
  if (a->resume) {
    if (clvae_checkpoint_load(path, ck) != CLVAE_OK) {
      fprintf(stderr, "clvae: cannot resume: %s\n", clvae_error_message());
      return EXIT_USAGE;
    }
    if (check_conflicts(a, ck, path) != 0) return EXIT_USAGE;
    if (!cli_same_shape(train, ck->cfg.height, ck->cfg.width, ck->cfg.channels, path)) return EXIT_USAGE;
    int count = ck->train_limit > 0 && ck->train_limit < train->count ? ck->train_limit : train->count;
    if (ck->train_limit > train->count || (ck->train_count && ck->train_count != count) || ck->cfg.batch > count) {
      fprintf(stderr, "clvae: %s was trained on %d images%s in batches of %d, but %s holds %d: resume it with its "
                      "own data\n", path, ck->train_count ? ck->train_count : ck->train_limit,
              ck->train_limit ? " (--limit)" : "", ck->cfg.batch, train->source, train->count);
      return EXIT_USAGE;
    }
    ck->train_count = count; /* a format-1 checkpoint did not record it */
    if (a->data || !ck->data[0]) record_data(ck, a->data ? a->data : CLVAE_DEFAULT_DATA_DIR); /* --data overrides */
    int steps = (count + ck->cfg.batch - 1) / ck->cfg.batch;
    if (ck->train.epoch_step >= steps) {
      fprintf(stderr, "clvae: %s: damaged checkpoint: %d steps into an epoch of %d steps\n", path, ck->train.epoch_step,
              steps);
      return EXIT_USAGE;
    }
    return -1;
  }
  if (access(path, F_OK) == 0) {
    fprintf(stderr, "clvae: %s already exists: continue it with --resume, or choose another --out\n", path);
    return EXIT_USAGE;
  }
  a->cfg.height = train->height, a->cfg.width = train->width, a->cfg.channels = train->channels;
  int count = a->limit > 0 && a->limit < train->count ? (int)a->limit : train->count;
  if (a->cfg.batch > count) {
    fprintf(stderr, "clvae: --batch-size %d is larger than the %d training images\n", a->cfg.batch, count);
    return EXIT_USAGE;
  }
  if (a->set[CFG_CONDITIONAL]) { /* the training set's classes: 1 + the largest label, or the class folders */
    if (!train->classes) {
      fprintf(stderr, "clvae: --conditional needs labelled images, but %s has no labels (a PNG set without class "
                      "folders)\n", train->source);
      return EXIT_USAGE;
    }
    if (train->classes > CLVAE_MAX_CLASSES) {
      fprintf(stderr, "clvae: --conditional: %s has %d classes; a conditional model takes at most %d\n", train->source,
              train->classes, CLVAE_MAX_CLASSES);
      return EXIT_USAGE;
    }
    a->cfg.classes = train->classes;
  }
  clvae_net net; /* validated now; allocated once the device has accepted it (init_params) */
  if (clvae_net_build(&net, &a->cfg) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s (from the data %s and the flags)\n", clvae_error_message(), train->source);
    return EXIT_USAGE;
  }
  ck->cfg = net.cfg, ck->train_limit = (int32_t)a->limit, ck->train_count = count; /* canonical: items, init */
  record_data(ck, a->data ? a->data : CLVAE_DEFAULT_DATA_DIR);
  return -1;
}

/* A new run's parameters: allocated and initialized from the seed. */
static int init_params(clvae_checkpoint *ck) {
  clvae_checkpoint fresh;
  clvae_net net;
  if (ck->params) return -1; /* resumed */
  if (clvae_checkpoint_alloc(&fresh, &ck->cfg) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    return EXIT_FAIL;
  }
  fresh.train_limit = ck->train_limit, fresh.train_count = ck->train_count;
  fresh.class_names = ck->class_names; /* (a new conditional run's, set before) */
  memcpy(fresh.data, ck->data, sizeof fresh.data), memcpy(fresh.data_abs, ck->data_abs, sizeof fresh.data_abs);
  *ck = fresh;
  clvae_net_build(&net, &ck->cfg);
  clvae_init_params(&net, ck->params);
  return -1;
}

/* A new run's initial checkpoint, written once the device has accepted the model (so a
 * refused configuration leaves nothing behind to --resume). */
static int save_initial(const char *path, const clvae_checkpoint *ck) {
  clvae_status st = clvae_checkpoint_save(path, ck);
  if (st == CLVAE_OK) return -1;
  fprintf(stderr, "clvae: %s\n", clvae_error_message());
  return st == CLVAE_ERR_NOMEM || st == CLVAE_ERR_IO || st == CLVAE_ERR_WRITE ? EXIT_FAIL : EXIT_USAGE; /* a full disk is a failure (1) */
}

/* Device (info from cli_choose_device, or NULL to choose now), model with the checkpoint's
 * state, and both image sets on the device. */
static int setup_device(const cli_device_opts *o, const clvae_device_info *info, const clvae_checkpoint *ck,
                        const clvae_images *train, const clvae_images *test, clvae_device **dev, clvae_model **m,
                        clvae_dataset **dtrain, clvae_dataset **dtest) {
  int r = info ? cli_create_device(o, info, 0, dev) : cli_open_device(o, 0, dev);
  if (r != EXIT_OK) return r;
  if ((r = cli_make_model(*dev, ck, m)) != EXIT_OK) return r;
  clvae_status st = train ? clvae_dataset_create(dtrain, *dev, train, ck->train_limit) : CLVAE_OK;
  if (st == CLVAE_OK) st = clvae_dataset_create(dtest, *dev, test, 0);
  if (st != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    if (st == CLVAE_ERR_LIMIT) fprintf(stderr, "clvae: use --limit to train on fewer images\n");
    return st == CLVAE_ERR_LIMIT || st == CLVAE_ERR_ARG ? EXIT_USAGE : EXIT_FAIL; /* a set the device cannot hold */
  }
  return EXIT_OK;
}

/* As the example's trainer does at the end (its --savePath): the decoder for TF.js in
 * OUT/decoder/. An exit code, the failure reported. */
static int write_decoder(const char *out, const clvae_checkpoint *ck) {
  char dec[4200];
  snprintf(dec, sizeof dec, "%s/decoder", out);
  if (clvae_export_tfjs(dec, ck, CLVAE_EXPORT_DECODER, 1) == CLVAE_OK) return EXIT_OK;
  fprintf(stderr, "clvae: writing the TF.js decoder to %s/: %s\n", dec, clvae_error_message());
  return EXIT_FAIL;
}

/* Under mpirun: rank 0's checkpoint state (configuration, position; the arrays follow
 * once every rank has allocated them: share_arrays) to every rank. */
static int share_state(clvae_checkpoint *ck) {
  clvae_checkpoint head = *ck;
  int resumed = ck->params != NULL;
  head.params = head.adam_m = head.adam_v = NULL;
  head.class_names = NULL; /* rank 0's to save; the others never write a checkpoint */
  if (clvae_comm_bcast(cli_comm, &head, sizeof head, 0) != CLVAE_OK ||
      clvae_comm_bcast(cli_comm, &resumed, sizeof resumed, 0) != CLVAE_OK)
    return -1;
  if (clvae_comm_rank(cli_comm) == 0) return 0;
  if (resumed) {
    if (clvae_checkpoint_alloc(ck, &head.cfg) != CLVAE_OK) return -1; /* validated by rank 0 */
    float *p = ck->params, *m = ck->adam_m, *v = ck->adam_v;
    *ck = head, ck->params = p, ck->adam_m = m, ck->adam_v = v;
  } else *ck = head;
  return 0;
}

static int share_arrays(clvae_checkpoint *ck) {
  size_t bytes = ck->n * sizeof(float);
  return clvae_comm_bcast(cli_comm, ck->params, bytes, 0) == CLVAE_OK &&
                 clvae_comm_bcast(cli_comm, ck->adam_m, bytes, 0) == CLVAE_OK &&
                 clvae_comm_bcast(cli_comm, ck->adam_v, bytes, 0) == CLVAE_OK
             ? 0
             : -1;
}

/* FNV-1a over the pixels and the shape. */
static uint64_t images_hash(const clvae_images *im) {
  uint64_t h = 0xcbf29ce484222325ull;
  int dims[4] = {im->count, im->height, im->width, im->channels};
  const unsigned char *p = (const unsigned char *)dims;
  for (size_t i = 0; i < sizeof dims; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  size_t n = (size_t)im->count * im->height * im->width * im->channels;
  for (size_t i = 0; i < n; i++) h = (h ^ im->pixels[i]) * 0x100000001b3ull;
  return h;
}

/* Under mpirun every rank reads --data itself (on several machines, each its own copy):
 * they must hold the same images, or the replicas would train on different batches. */
static int same_data_as_lead(const clvae_images *train, const clvae_images *test, const char *dir) {
  uint64_t mine[2] = {images_hash(train), images_hash(test)}, lead[2] = {mine[0], mine[1]};
  if (clvae_comm_bcast(cli_comm, lead, sizeof lead, 0) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s%s\n", cli_rank_prefix(), clvae_error_message());
    clvae_comm_abort(cli_comm, EXIT_FAIL);
  }
  for (int k = 0; k < 2; k++)
    if (mine[k] != lead[k]) {
      fprintf(stderr, "clvae: %sthe %s images of %s differ from those rank 0 read: every rank must read the same "
                      "data (on several machines, identical copies at the same path)\n", cli_rank_prefix(),
              k ? "test" : "training", dir);
      return EXIT_USAGE;
    }
  return -1;
}

static int parse_train(int argc, char **argv, void *a) { return cli_parse_train(argc, argv, a); }

/* A training position, said one way everywhere: "3 epochs" or "1 epoch and 141 steps". */
static const char *position(const clvae_train_state *t, char *buf, size_t n) {
  int e = t->epoch, s = t->epoch_step;
  if (s) snprintf(buf, n, "%d epoch%s and %d step%s", e, e == 1 ? "" : "s", s, s == 1 ? "" : "s");
  else snprintf(buf, n, "%d epoch%s", e, e == 1 ? "" : "s");
  return buf;
}

/* DIR as one shell word, absolute: as it is when it needs no quotes, else in single quotes
 * (a quote inside written '\'') — so that the line printed works pasted anywhere. */
static const char *shell_word(const char *dir, char *out, size_t n) {
  char abs[PATH_MAX];
  const char *d = realpath(dir, abs) ? abs : dir;
  if (strspn(d, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-") == strlen(d) && *d)
    return snprintf(out, n, "%s", d), out;
  size_t used = 0;
  out[used++] = '\'';
  for (const char *p = d; *p && used + 6 < n; p++) {
    if (*p == '\'') memcpy(out + used, "'\\''", 4), used += 4;
    else out[used++] = *p;
  }
  out[used++] = '\'', out[used] = '\0';
  return out;
}

/* Under the lock: the checkpoint a resume read is still the one there (no other run wrote
 * it between the read and the lock). */
static int unchanged(const char *path, const struct stat *seen) {
  struct stat now;
  if (stat(path, &now) == 0 && now.st_ino == seen->st_ino && now.st_size == seen->st_size &&
      now.st_mtim.tv_sec == seen->st_mtim.tv_sec && now.st_mtim.tv_nsec == seen->st_mtim.tv_nsec)
    return -1;
  fprintf(stderr, "clvae: %s changed while this run started (another run wrote it): start again\n", path);
  return EXIT_USAGE;
}

/* The data a run reads: --data if given, else, on --resume, what the run recorded (rank
 * 0's checkpoint; a recorded path that is gone is refused), else the default. Under mpirun
 * a rank without --data takes rank 0's choice. An exit code, or -1 with `out` set. */
static int run_data(const train_args *a, int lead, char *out, size_t n) {
  char path[4200];
  int rc = -1;
  snprintf(out, n, "%s", a->data ? a->data : CLVAE_DEFAULT_DATA_DIR);
  if (lead && a->resume && !a->data) {
    snprintf(path, sizeof path, "%s/checkpoint.clvae", a->out);
    rc = cli_run_data(path, NULL, out, n);
  }
  if (clvae_comm_size(cli_comm) > 1) {
    char lead_choice[4200];
    snprintf(lead_choice, sizeof lead_choice, "%s", out);
    if (clvae_comm_bcast(cli_comm, lead_choice, sizeof lead_choice, 0) != CLVAE_OK) return EXIT_FAIL;
    if (!a->data) snprintf(out, n, "%s", lead_choice);
  }
  return rc;
}

/* FNV-1a of the item lists, as a double that holds it exactly (53 bits). */
static double items_hash(const clvae_config *c) {
  uint64_t h = 0xcbf29ce484222325ull;
  const int *f[] = {&c->nenc, &c->ndec};
  for (int k = 0; k < 2; k++) h = (h ^ (uint64_t)*f[k]) * 0x100000001b3ull;
  const unsigned char *p = (const unsigned char *)c->enc;
  for (size_t i = 0; i < sizeof c->enc + sizeof c->dec; i++) h = (h ^ p[i]) * 0x100000001b3ull; /* enc, then dec */
  return (double)(h >> 11);
}

int cmd_train(int argc, char **argv) {
  train_args a = {0};
  char path[4200] = "", outbuf[64], data_dir[4200];
  struct stat ck_seen = {0};
  clvae_images train = {0}, test = {0};
  clvae_checkpoint ck = {0};
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  clvae_dataset *dtrain = NULL, *dtest = NULL;
  clvae_dir_lock_t lock = {-1, -1, ""};
  /* Under mpirun every rank runs this; rank 0 ("lead") alone reads and writes the run
   * directory, and the ranks agree after each stage of the setup, so that a failure on
   * any rank stops all of them with its exit code. */
  const int size = clvae_comm_size(cli_comm), lead = clvae_comm_rank(cli_comm) == 0;
  cli_device_defaults(&a.dev);
  clvae_config_default(&a.cfg);
  a.epochs = DEFAULT_EPOCHS;
  int rc = cli_parse_agreed(parse_train, argc, argv, &a);
  if (rc >= 0) return rc;
  if (size > 1) { /* what rank 0 decides with must be what every rank was told */
    static const char *const names[] = {"--epochs", "--report-every", "--resume (0/1)", "--preview (0/1)", "--limit",
                                        "--latent-dim", "--loss (0 mse, 1 bce)", "--lr", "--batch-size", "--seed",
                                        "--hidden (layers)", "--hidden (width 1)", "--hidden (width 2)",
                                        "--hidden (width 3)", "--hidden (width 4)", "--hidden (width 5)",
                                        "--hidden (width 6)", "--hidden (width 7)", "--hidden (width 8)",
                                        "--encoder/--decoder (a hash of the items)", "--init", "--beta",
                                        "--conditional (0/1)"};
    double v[] = {(double)a.epochs, (double)a.report_every, a.resume, a.preview, (double)a.limit, a.cfg.latent,
                  a.cfg.loss, a.cfg.lr, a.cfg.batch, (double)a.cfg.seed, a.cfg.depth, a.cfg.hidden[0],
                  a.cfg.hidden[1], a.cfg.hidden[2], a.cfg.hidden[3], a.cfg.hidden[4], a.cfg.hidden[5],
                  a.cfg.hidden[6], a.cfg.hidden[7], items_hash(&a.cfg), a.cfg.init, a.cfg.beta,
                  a.set[CFG_CONDITIONAL]};
    if ((rc = cli_same_as_lead(names, v, (int)(sizeof v / sizeof v[0]))) >= 0) return rc;
  }
  rc = -1;
  if (a.resume && !a.out && lead) { /* rank 0's --out is the one that counts */
    fprintf(stderr, "clvae: --resume needs --out DIR (the run to continue)\n");
    rc = EXIT_USAGE;
  }
  if ((rc = cli_agree(rc)) >= 0) return rc;
  if (!a.out) {
    time_t t = time(NULL);
    strftime(outbuf, sizeof outbuf, "runs/%Y%m%d-%H%M%S", localtime(&t));
    /* a run started in the same second as another: the next free name (…-2, -3, …) */
    struct stat taken;
    size_t stem = strlen(outbuf);
    for (int k = 2; k < 1000 && lstat(outbuf, &taken) == 0; k++) snprintf(outbuf + stem, sizeof outbuf - stem, "-%d", k);
    a.out = outbuf;
  }
  if (!lead) a.quiet = 1;
  cli_loader_quiet(a.quiet);
  rc = -1;
  /* Everything that can be refused is refused before anything is created, read in full,
   * started or written: the directories (whether they could be made), the sets' headers,
   * the flags against a checkpoint, whether the device can hold the model, the images. Only
   * then rank 0 creates the run directory and takes its lock: a refused run leaves nothing. */
  struct stat out_sb;
  if (lead && (cli_dir_creatable(a.out, "--out") != 0 || (a.logdir && cli_dir_creatable(a.logdir, "--logdir") != 0) ||
               (stat(a.out, &out_sb) == 0 && !cli_outputs_writable(a.out))))
    rc = EXIT_USAGE;
  if (rc < 0 && lead && clvae_dir_in_use(a.out) != CLVAE_OK) { /* another run's: said now, not after the start-up */
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    rc = EXIT_USAGE;
  }
  if (rc < 0 && (rc = run_data(&a, lead, data_dir, sizeof data_dir)) < 0) a.data = data_dir;
  if (rc < 0 && cli_probe_both(&train, &test, a.data) != 0) rc = EXIT_USAGE; /* every rank reads the data */
  if (rc < 0 && lead) rc = prepare_state(&a, &train, &ck, path, sizeof path);
  if (rc < 0 && lead && ck.cfg.classes) { /* a conditional model: every label of both sets within its classes */
    const clvae_images *sets[2] = {&train, &test};
    for (int k = 0; k < 2 && rc < 0; k++)
      if (!sets[k]->classes || sets[k]->classes > ck.cfg.classes) {
        if (!sets[k]->classes)
          fprintf(stderr, "clvae: %s: a conditional model needs labelled images\n", sets[k]->source);
        else
          fprintf(stderr, "clvae: %s has a label of %d, but the conditional model has %d classes (0..%d)\n",
                  sets[k]->source, sets[k]->classes - 1, ck.cfg.classes, ck.cfg.classes - 1);
        rc = EXIT_USAGE;
      }
    if (rc < 0 && !a.resume) { /* a new run records its classes' names: the PNG set's folders, Fashion-MNIST's */
      char **owned;
      const char *const *names = cli_class_names(&train, a.data ? a.data : CLVAE_DEFAULT_DATA_DIR, &owned);
      if (clvae_checkpoint_set_classes(&ck, ck.cfg.classes, owned ? NULL : names) != CLVAE_OK) rc = cli_oom();
      free(owned);
    }
  }
  if (rc < 0 && lead && a.resume) stat(path, &ck_seen);
  if ((rc = cli_agree(rc)) >= 0) goto done;
  if (size > 1 && share_state(&ck) != 0) {
    fprintf(stderr, "clvae: %s%s\n", cli_rank_prefix(), clvae_error_message());
    clvae_comm_abort(cli_comm, EXIT_FAIL);
  }
  fflush(stdout);
  if (ck.train.epoch >= a.epochs && ck.train.epoch_step == 0) {
    if (lead) rc = cli_own_run_dir(a.out, NULL, !a.resume, &lock);
    if (lead && rc < 0 && a.out == outbuf) cli_link_latest(a.out);
    if (lead && rc < 0 && a.resume) rc = unchanged(path, &ck_seen);
    if (lead && rc < 0 && !a.resume) {
      if ((rc = init_params(&ck)) < 0) rc = save_initial(path, &ck);
    }
    if (lead && rc < 0) rc = write_decoder(a.out, &ck) == EXIT_OK ? -1 : EXIT_FAIL;
    if ((rc = cli_agree(rc)) >= 0) goto done;
    if (!a.quiet && !a.resume) {
      char layers[2100];
      printf("clvae: initialized %s: a VAE of %dx%dx%d images (%s), latent %d, seed %llu, init %s; the decoder "
             "for TF.js is in %s/decoder/\n", path, ck.cfg.height, ck.cfg.width, ck.cfg.channels,
             cli_layers_text(&ck.cfg, layers, sizeof layers), ck.cfg.latent, (unsigned long long)ck.cfg.seed,
             cli_init_name(ck.cfg.init), a.out);
      cli_print_layers(&ck.cfg);
    } else if (!a.quiet)
      printf("clvae: %s holds %s already; nothing to do for --epochs %ld (the decoder for TF.js is in %s/decoder/)\n",
             path, position(&ck.train, (char[64]){0}, 64), a.epochs, a.out);
    rc = EXIT_OK;
    goto done;
  }
  a.dev.quiet = a.quiet && size < 2; /* under mpirun every rank says which device it took */
  clvae_device_info info;
  if ((rc = cli_choose_device(&a.dev, &info)) == EXIT_OK) {
    rc = -1;
    if (clvae_model_fits(&ck.cfg, &info) != CLVAE_OK) {
      fprintf(stderr, "clvae: %s%s\nclvae: use a smaller --batch-size, or smaller layers (--hidden, --encoder, "
                      "--decoder)\n", cli_rank_prefix(),
              clvae_error_message());
      rc = EXIT_USAGE;
    }
  }
  if (rc < 0) rc = init_params(&ck);
  if ((rc = cli_agree(rc)) >= 0) goto done;
  if (size > 1 && share_arrays(&ck) != 0) { /* identical replicas, whatever each rank's libm */
    fprintf(stderr, "clvae: %s%s\n", cli_rank_prefix(), clvae_error_message());
    clvae_comm_abort(cli_comm, EXIT_FAIL);
  }
  clvae_images_free(&train), clvae_images_free(&test); /* the headers: now the images */
  rc = cli_load_both(&train, &test, a.data) != 0 ? EXIT_USAGE : -1;
  if ((rc = cli_agree(rc)) >= 0) goto done;
  if (size > 1 && (rc = cli_agree(same_data_as_lead(&train, &test, a.data))) >= 0) goto done;
  /* From here on SIGINT/SIGTERM ask for a clean stop (after the current step, with a
   * checkpoint). They are held back while the device starts and the programs build: a
   * signal inside the driver's compiler makes the build fail, and the driver's threads,
   * created now, inherit the mask and never see them. Held signals arrive afterwards. */
  sigset_t stops, old;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  sigaddset(&stops, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stops, &old);
  rc = setup_device(&a.dev, &info, &ck, &train, &test, &dev, &m, &dtrain, &dtest);
  clvae_status built = rc == EXIT_OK ? clvae_ops_build_all(dev) : CLVAE_OK;
  if (built != CLVAE_OK) { /* kernels that cannot be read or settings the device refuses: 2; the driver failing: 1 */
    fprintf(stderr, "clvae: %s%s\n", cli_rank_prefix(), clvae_error_message());
    rc = built == CLVAE_ERR_IO || built == CLVAE_ERR_ARG || built == CLVAE_ERR_LIMIT ? EXIT_USAGE : EXIT_FAIL;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == EXIT_OK) rc = -1;
  if ((rc = cli_agree(rc)) >= 0) goto done;
  /* every rank is ready: only now the run directory (a refusal by the device, its driver or
   * the kernel settings leaves nothing behind), then the new run's checkpoint */
  if (lead && (rc = cli_own_run_dir(a.out, a.logdir, !a.resume, &lock)) < 0 && a.resume) rc = unchanged(path, &ck_seen);
  if ((rc = cli_agree(rc)) >= 0) goto done;
  if (lead && !a.resume) rc = save_initial(path, &ck);
  if (lead && rc < 0 && a.out == outbuf) cli_link_latest(a.out);
  if ((rc = cli_agree(rc)) >= 0) goto done;
  if (!a.quiet) {
    char shape[64], layers[2100];
    char kind[64] = "", beta[48] = "";
    if (ck.cfg.classes) snprintf(kind, sizeof kind, "conditional (%d classes) ", ck.cfg.classes);
    if (ck.cfg.beta != 1.0f) snprintf(beta, sizeof beta, " + %g KL", (double)ck.cfg.beta);
    printf("clvae: training a %sVAE of %s images (%s), latent %d (%s%s) on %d images, batch %d, lr %g, seed %llu, init "
           "%s; output in %s\n", kind, clvae_images_shape(&train, shape, sizeof shape),
           cli_layers_text(&ck.cfg, layers, sizeof layers), ck.cfg.latent, ck.cfg.loss ? "BCE" : "D*MSE", beta,
           ck.train_limit > 0 && ck.train_limit < train.count ? ck.train_limit : train.count, ck.cfg.batch,
           ck.cfg.lr, (unsigned long long)ck.cfg.seed, cli_init_name(ck.cfg.init), a.out);
    cli_print_layers(&ck.cfg);
    if (size > 1)
      printf("clvae: %d ranks, each computing %d or %d rows of every batch of %d; gradients summed over MPI\n", size,
             ck.cfg.batch / size, (ck.cfg.batch + size - 1) / size, ck.cfg.batch);
  }
  fflush(stdout);
  if (!a.quiet && (ck.train.epoch || ck.train.epoch_step))
    printf("clvae: resuming after %s\n", position(&ck.train, (char[64]){0}, 64));
  /* under mpirun a rank's stdout is a pseudo-terminal whatever mpirun's own is: plain lines */
  progress_state ps = {isatty(STDOUT_FILENO) && !clvae_comm_launched(), a.quiet, a.preview, 0, 0, 0, m, a.out, &ck, path,
                       NULL};
  if (lead && a.logdir) {
    if (clvae_events_open(&ps.events, a.logdir) != CLVAE_OK) events_failed(&ps);
    else if (!a.quiet) printf("clvae: TensorBoard log %s (tensorboard --logdir %s)\n", clvae_events_path(ps.events), a.logdir);
  }
  clvae_train_opts o = {(int)a.epochs, (int)a.report_every, &stop_signal, on_progress, save, &ps, cli_comm, 0,
                        log_batch_losses};
  clvae_train_state state = ck.train;
  clvae_status st = clvae_train(m, dtrain, dtest, &state, &o);
  const char *nl = ps.tty && !a.quiet ? "\n" : "";
  if (st == CLVAE_ERR_COMM) { /* the ranks are out of step: nothing else can be agreed on */
    fprintf(stderr, "%sclvae: %s%s; aborting the job\n", nl, cli_rank_prefix(), clvae_error_message());
    clvae_comm_abort(cli_comm, EXIT_FAIL);
  }
  if (st == CLVAE_INTERRUPTED && size > 1) { /* the signal some rank got, the same exit code everywhere */
    int sig = stop_signal;
    if (clvae_comm_max_ints(cli_comm, &sig, 1) == CLVAE_OK) stop_signal = sig;
  }
  if (!lead) { /* every rank returns the same status; rank 0 tells the story */
    rc = st == CLVAE_OK ? EXIT_OK : st == CLVAE_INTERRUPTED ? 128 + (stop_signal ? (int)stop_signal : SIGINT) : EXIT_FAIL;
  } else if (st == CLVAE_OK) {
    if ((rc = write_decoder(a.out, &ck)) == EXIT_OK && !a.quiet)
      printf("clvae: done; %s holds %d epoch%s; the decoder for TF.js is in %s/decoder/\n", path, state.epoch,
             state.epoch == 1 ? "" : "s", a.out);
  } else if (st == CLVAE_INTERRUPTED) {
    const char *why = stop_signal == SIGTERM ? "SIGTERM" : stop_signal == SIGHUP ? "SIGHUP" : "SIGINT";
    char dir[8400];
    fprintf(stderr, "%sclvae: interrupted by %s; saved %s after %s.\n"
                    "Resume with: clvae train --resume --out %s --epochs %ld\n",
            nl, why, path, position(&state, (char[64]){0}, 64), shell_word(a.out, dir, sizeof dir), a.epochs);
    rc = 128 + (stop_signal ? (int)stop_signal : SIGINT);
  } else if (st == CLVAE_ERR_DIVERGED) {
    fprintf(stderr, "%sclvae: %s; stopped without saving: %s still holds the last good state (epoch %d). "
                    "Try a lower --lr.\n", nl, clvae_error_message(), path, state.epoch);
    rc = EXIT_FAIL;
  } else if (st == CLVAE_ERR_OPENCL) {
    fprintf(stderr, "%sclvae: %s\n%s is unchanged (epoch %d); resume with --resume\n", nl, clvae_error_message(),
            path, state.epoch);
    rc = EXIT_FAIL;
  } else {
    if (st != CLVAE_ERR_IO) fprintf(stderr, "%sclvae: %s\n", nl, clvae_error_message()); /* save() reported its own */
    rc = EXIT_FAIL;
  }
  if (ps.events && clvae_events_close(ps.events) != CLVAE_OK)
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
done:
  clvae_dataset_free(dtrain), clvae_dataset_free(dtest);
  clvae_model_free(m);
  clvae_device_free(dev);
  clvae_checkpoint_free(&ck);
  clvae_images_free(&train), clvae_images_free(&test);
  clvae_dir_unlock(&lock);
  clvae_files_anchor(NULL);
  return rc;
}

int cmd_eval(int argc, char **argv) {
  cli_device_opts o;
  const char *model = NULL, *data = NULL;
  char data_dir[4200];
  int json = 0, r, rc = EXIT_USAGE;
  cli_device_defaults(&o);
  for (int i = 1; i < argc; i++) {
    if ((r = cli_device_option(argc, argv, &i, &o)) || (r = cli_value(argc, argv, &i, "--model", &model)) ||
        (r = cli_value(argc, argv, &i, "--data", &data))) {
      if (r < 0) return EXIT_USAGE;
    } else if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: clvae eval --model FILE [--data DIR] [--json] [--platform P] [--device D] [--gemm G]\n\n"
             "Test-set loss of a checkpoint, per image: total, reconstruction term and KL.\n");
      return EXIT_OK;
    } else return cli_unknown("eval", argv[i]);
  }
  if (!model) {
    fprintf(stderr, "clvae eval: --model FILE is required\n");
    return EXIT_USAGE;
  }
  if ((r = cli_run_data(model, data, data_dir, sizeof data_dir)) >= 0) return r; /* the run's own data */
  data = data_dir;
  clvae_checkpoint ck = {0};
  clvae_images test = {0};
  clvae_device *dev = NULL;
  clvae_model *m = NULL;
  clvae_dataset *dtest = NULL;
  clvae_eval_result res;
  if (clvae_checkpoint_load(model, &ck) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    goto done;
  }
  if (cli_load_images(&test, data, "test", NULL) != 0) goto done;
  if (!cli_same_shape(&test, ck.cfg.height, ck.cfg.width, ck.cfg.channels, model)) goto done;
  if ((rc = setup_device(&o, NULL, &ck, NULL, &test, &dev, &m, NULL, &dtest)) != EXIT_OK) goto done;
  if (clvae_evaluate(m, dtest, &res) != CLVAE_OK) {
    fprintf(stderr, "clvae: %s\n", clvae_error_message());
    rc = EXIT_FAIL;
    goto done;
  }
  if (!isfinite(res.loss) || !isfinite(res.recon) || !isfinite(res.kl)) {
    fprintf(stderr, "clvae: the test loss of %s is not finite (the %s term overflows): its parameters are too large "
                    "to evaluate\n", model, isfinite(res.recon) ? "KL" : "reconstruction");
    rc = EXIT_FAIL;
    goto done;
  }
  if (json) /* (fields are only ever appended: their names and order stay) */
    printf("{\"test_loss\": %.6f, \"test_recon\": %.6f, \"test_kl\": %.6f, \"images\": %d, \"epoch\": %d, "
           "\"beta\": %.9g}\n", res.loss, res.recon, res.kl, res.images, ck.train.epoch, (double)ck.cfg.beta);
  else if (ck.cfg.beta != 1.0f)
    printf("test loss %.4f (reconstruction %.4f + beta %g x KL %.4f) per image over %d images; the model has trained "
           "%s\n", res.loss, res.recon, (double)ck.cfg.beta, res.kl, res.images, position(&ck.train, (char[64]){0}, 64));
  else
    printf("test loss %.4f (reconstruction %.4f + KL %.4f) per image over %d images; the model has trained %s\n",
           res.loss, res.recon, res.kl, res.images, position(&ck.train, (char[64]){0}, 64));
  rc = EXIT_OK;
done:
  clvae_dataset_free(dtest);
  clvae_model_free(m);
  clvae_device_free(dev);
  clvae_checkpoint_free(&ck);
  clvae_images_free(&test);
  return rc;
}
