/* Image commands: each PNG reads back (libpng) with the documented size and non-constant
 * content; every tile of `clvae grid` equals the direct decoding of its z (the formula in
 * the grid's help, computed here independently), pixel for pixel; bad paths exit 2.
 * A 3-dimensional latent space checks --dims with a dimension other than 0,1.
 * usage: test_images PATH/TO/clvae TMPDIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clvae/image.h"
#include "clvae/checkpoint.h"

static int passed, failed;
static const char *clvae, *tmp;

static void check(int ok, const char *what) {
  printf("%s %s\n", ok ? "PASS" : "FAIL", what);
  ok ? passed++ : failed++;
}

static int sh(const char *fmt, const char *a, const char *b) {
  char cmd[2048], args[1024];
  snprintf(args, sizeof args, fmt, a, b);
  snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>%s/stderr.txt", clvae, args, tmp);
  int r = system(cmd);
  return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static int stderr_has(const char *s) {
  char path[1024], buf[8192] = "";
  snprintf(path, sizeof path, "%s/stderr.txt", tmp);
  FILE *f = fopen(path, "r");
  if (f) buf[fread(buf, 1, sizeof buf - 1, f)] = '\0', fclose(f);
  return strstr(buf, s) != NULL;
}

/* Reads a PNG and checks its size and that it is not one flat colour. */
static uint8_t *png_ok(const char *name, int w, int h, int ch, const char *what) {
  char path[1024], msg[256];
  int pw, ph, pc;
  uint8_t *px;
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  if (clvae_png_read(path, &pw, &ph, &pc, &px) != CLVAE_OK) {
    printf("    %s\n", clvae_error_message());
    check(0, what);
    return NULL;
  }
  size_t n = (size_t)pw * ph * pc, distinct = 0;
  for (size_t i = 1; i < n; i++) distinct += px[i] != px[0];
  snprintf(msg, sizeof msg, "%s: %dx%d, %d channel(s), not flat (%dx%dx%d expected)", what, pw, ph, pc, w, h, ch);
  check(pw == w && ph == h && pc == ch && distinct > n / 100, msg);
  return px;
}

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: test_images CLVAE TMPDIR\n"), 2;
  clvae = argv[1], tmp = argv[2];
  clvae_config c;
  clvae_config_default(&c);
  c.latent = 3, c.seed = 5;
  clvae_checkpoint ck;
  char model[1024];
  snprintf(model, sizeof model, "%s/model.clvae", tmp);
  if (clvae_checkpoint_alloc(&ck, &c) != CLVAE_OK) return 1;
  clvae_net net;
  clvae_net_build(&net, &c);
  clvae_init_params(&net, ck.params);
  if (clvae_checkpoint_save(model, &ck) != CLVAE_OK) return printf("FAIL %s\n", clvae_error_message()), 1;

  clvae_device *dev;
  clvae_model *m;
  clvae_status st = clvae_device_open(&dev, getenv("CLVAE_PLATFORM"), getenv("CLVAE_DEVICE"), NULL);
  if (st == CLVAE_ERR_NO_PLATFORM) return printf("SKIP: %s\n", clvae_error_message()), 77;
  if (st != CLVAE_OK || clvae_model_create(&m, dev, &c) != CLVAE_OK ||
      clvae_model_set_state(m, ck.params, NULL, NULL, 0) != CLVAE_OK)
    return printf("FAIL: %s\n", st == CLVAE_OK ? clvae_error_message() : clvae_error_message()), 1;

  /* grid: n 5 over [-2, 3] on dims x = 2, y = 0 */
  const int n = 5, x = 2, y = 0;
  const double lo = -2, hi = 3;
  check(sh("grid --model %s --out %s/grid.png --n 5 --range -2,3 --dims 2,0", model, tmp) == 0, "clvae grid exits 0");
  uint8_t *g = png_ok("grid.png", n * 28, n * 28, 1, "grid.png");
  float z[25 * 3] = {0}, p[25 * 784];
  for (int r = 0; r < n; r++)
    for (int col = 0; col < n; col++) {
      z[(r * n + col) * 3 + x] = (float)(lo + col * (hi - lo) / (n - 1));
      z[(r * n + col) * 3 + y] = (float)(lo + (n - 1 - r) * (hi - lo) / (n - 1));
    }
  int same = 0;
  if (g && clvae_model_decode(m, z, n * n, p) == CLVAE_OK)
    for (int t = 0; t < n * n; t++)
      for (int i = 0; i < 784; i++) {
        int want = (int)floor(255.0 * p[t * 784 + i] + 0.5);
        same += g[((t / n) * 28 + i / 28) * n * 28 + (t % n) * 28 + i % 28] == want;
      }
  check(same == n * n * 784, "every grid tile equals the decoding of its z, pixel for pixel");
  free(g);

  check(sh("sample --model %s --out %s/samples.png --count 10 --seed 3", model, tmp) == 0, "clvae sample exits 0");
  free(png_ok("samples.png", 4 * 28, 3 * 28, 1, "samples.png (10 samples, 4 columns)"));
  if (access("/usr/share/datasets/fashion-mnist", F_OK) == 0) {
    check(sh("reconstruct --model %s --out %s/recon.png --count 5", model, tmp) == 0, "clvae reconstruct exits 0");
    uint8_t *rp = png_ok("recon.png", 5 * 28, 2 * 28, 1, "recon.png (5 pairs)");
    clvae_images im;
    int orig_ok = 0;
    if (rp && clvae_images_load(&im, "/usr/share/datasets/fashion-mnist", "test", NULL, NULL, NULL) == CLVAE_OK) {
      orig_ok = 1; /* the first row holds the test images themselves */
      for (int t = 0; t < 5; t++)
        for (int i = 0; i < 784; i++) orig_ok &= rp[(i / 28) * 140 + t * 28 + i % 28] == im.pixels[t * 784 + i];
      clvae_images_free(&im);
    }
    check(orig_ok, "reconstruct's first row is the first test images");
    free(rp);
    if (clvae_have_plots()) {
      check(sh("scatter --model %s --out %s/latent.png --dims 1,2", model, tmp) == 0, "clvae scatter exits 0");
      free(png_ok("latent.png", 1000, 760, 3, "latent.png"));
    } else /* built without cairo: scatter says how to get it */
      check(sh("scatter --model %s --out %s/latent.png --dims 1,2", model, tmp) == 2 && stderr_has("without plots"),
            "without cairo: clvae scatter exits 2 saying how to get plots");
  }
  check(sh("grid --model %s/missing.clvae --out %s/x.png", tmp, tmp) == 2 && stderr_has("missing.clvae"),
        "a missing model: exit 2, names it");
  check(sh("grid --model %s --out %s/no/such/dir/x.png", model, tmp) == 2 && stderr_has("no/such/dir"),
        "an unwritable output: exit 2, names it");
  check(sh("grid --model %s --out %s/x.png --dims 0,3", model, tmp) == 2 && stderr_has("3 latent dimensions"),
        "--dims beyond the latent dimension: exit 2");
  check(sh("grid --model %s --out %s/x.png --n 1", model, tmp) == 2 && stderr_has("--n"), "--n 1: exit 2");
  check(sh("grid --model %s --out %s/x.png --range 1", model, tmp) == 2 && stderr_has("--range"),
        "a malformed --range: exit 2");
  /* A PNG that cannot be written (a full disk; here a 4 KiB file-size limit, in a child so
   * that nothing else runs under it): CLVAE_ERR_WRITE (exit 1) with the reason, libpng's own
   * message not printed, no file and no temporary left. */
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    char path[1100], dir[1024];
    snprintf(dir, sizeof dir, "%s/full-XXXXXX", tmp); /* a new one: the suite can run again */
    if (!mkdtemp(dir)) _exit(10);
    snprintf(path, sizeof path, "%s/big.png", dir);
    uint8_t *px = malloc(300 * 300);
    for (int i = 0; px && i < 300 * 300; i++) px[i] = (uint8_t)(i * 2654435761u >> 24);
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &(struct rlimit){4096, 4096});
    clvae_status ws = clvae_png_write(path, 300, 300, 1, px);
    DIR *d = opendir(dir);
    int left = 0;
    for (struct dirent *e; d && (e = readdir(d));) left += e->d_name[0] != '.';
    if (d) closedir(d);
    rmdir(dir);
    _exit(ws == CLVAE_ERR_WRITE && strstr(clvae_error_message(), "big.png") &&
          strstr(clvae_error_message(), "File too large") && left == 0 ? 0 : 11);
  }
  int status = 0;
  waitpid(child, &status, 0);
  check(child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "a PNG that cannot be written (ulimit -f): a write failure naming the file and why, nothing left");
  clvae_model_free(m);
  clvae_device_free(dev);
  clvae_checkpoint_free(&ck);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
