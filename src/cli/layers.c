/* The layer flags shared by `train` and `bench`: --hidden, and --encoder/--decoder item
 * lists (src/model/net.c has the syntax); the conflict rule on --resume; the layer list
 * with shapes and parameter counts that `train` prints. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* "1024,512" → depth 2, hidden {1024, 512}. */
static int parse_hidden(const char *s, clvae_config *c) {
  int depth = 0, w[CLVAE_MAX_DEPTH];
  const char *p = s;
  for (;;) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || errno || v < 1 || v > CLVAE_MAX_WIDTH || depth == CLVAE_MAX_DEPTH || (*end && *end != ',')) {
      fprintf(stderr, "clvae: --hidden '%s' is not a list of 1 to %d layer widths from 1 to %d (e.g. 1024,512)\n", s,
              CLVAE_MAX_DEPTH, CLVAE_MAX_WIDTH);
      return 0;
    }
    w[depth++] = (int)v;
    if (!*end) break;
    p = end + 1;
  }
  c->depth = depth;
  memset(c->hidden, 0, sizeof c->hidden);
  memcpy(c->hidden, w, (size_t)depth * sizeof *w);
  c->nenc = c->ndec = 0;
  return 1;
}

int cli_layer_option(int argc, char **argv, int *i, clvae_config *c, int *set) {
  const char *v;
  int r;
  if ((r = cli_value(argc, argv, i, "--hidden", &v))) {
    if (r < 0 || !parse_hidden(v, c)) return -1;
    set[CFG_HIDDEN] = 1;
  } else if ((r = cli_value(argc, argv, i, "--encoder", &v)) || (r = cli_value(argc, argv, i, "--decoder", &v))) {
    int enc = !strcmp(argv[*i - 1], "--encoder");
    if (r < 0) return -1;
    if (clvae_items_parse(v, enc ? c->enc : c->dec, enc ? &c->nenc : &c->ndec) != CLVAE_OK) {
      fprintf(stderr, "clvae: %s '%.200s': %s\n", argv[*i - 1], v, clvae_error_message());
      return -1;
    }
    set[enc ? CFG_ENCODER : CFG_DECODER] = 1;
  } else if ((r = cli_value(argc, argv, i, "--init", &v))) {
    static const char *const kinds[] = {"auto", "glorot", "torch"};
    int k = 0;
    if (r < 0) return -1;
    while (k < 3 && strcmp(v, kinds[k])) k++;
    if (k == 3) {
      fprintf(stderr, "clvae: --init '%s' is not one of auto, glorot, torch\n", v);
      return -1;
    }
    c->init = k, set[CFG_INIT] = 1;
  } else
    return 0;
  return 1;
}

const char *cli_init_name(int init) {
  return init == CLVAE_INIT_GLOROT ? "glorot" : init == CLVAE_INIT_TORCH ? "torch" : "auto";
}

int cli_layer_flags_done(clvae_config *c, const int *set) {
  if (set[CFG_HIDDEN] && (set[CFG_ENCODER] || set[CFG_DECODER])) {
    fprintf(stderr, "clvae: --hidden and --encoder/--decoder both describe the layers: give one or the other "
                    "(--hidden A,B is --encoder dense:A,dense:B --decoder dense:B,dense:A)\n");
    return EXIT_USAGE;
  }
  if (set[CFG_ENCODER] != set[CFG_DECODER]) {
    fprintf(stderr, "clvae: %s needs %s too: the encoder and the decoder are described together\n",
            set[CFG_ENCODER] ? "--encoder" : "--decoder", set[CFG_ENCODER] ? "--decoder" : "--encoder");
    return EXIT_USAGE;
  }
  if (set[CFG_ENCODER]) c->depth = 0, memset(c->hidden, 0, sizeof c->hidden);
  return -1;
}

/* The items of a side as the command line writes them. */
static void items_text(const clvae_item *items, int n, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && used < len; i++) {
    char one[64];
    clvae_item_format(&items[i], one, sizeof one);
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", one);
  }
}

const char *cli_layers_text(const clvae_config *c, char *buf, size_t n) {
  clvae_net net;
  const clvae_config *k = clvae_net_build(&net, c) == CLVAE_OK ? &net.cfg : c; /* a list that cannot be built: as given */
  if (k == c && !c->nenc && !c->depth) return snprintf(buf, n, "(no layers)"), buf;
  char enc[1024], dec[1024];
  if (k->depth) {
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "--hidden ");
    for (int i = 0; i < k->depth && used < n; i++) used += (size_t)snprintf(buf + used, n - used, "%s%d", i ? "," : "", k->hidden[i]);
    return buf;
  }
  items_text(k->enc, k->nenc, enc, sizeof enc);
  items_text(k->dec, k->ndec, dec, sizeof dec);
  snprintf(buf, n, "--encoder %s --decoder %s", enc, dec);
  return buf;
}

int cli_layers_conflict(const clvae_config *flags, const int *set, const clvae_config *ck, const char *path) {
  if (set[CFG_INIT] && flags->init != CLVAE_INIT_AUTO && flags->init != ck->init) {
    fprintf(stderr, "clvae: --init %s conflicts with %s, which was initialized with %s; drop the flag to resume\n",
            cli_init_name(flags->init), path, cli_init_name(ck->init));
    return -1;
  }
  if (!set[CFG_HIDDEN] && !set[CFG_ENCODER]) return 0;
  clvae_config mine = *ck; /* the checkpoint's image shape and settings, the flags' layers */
  mine.depth = flags->depth, mine.nenc = flags->nenc, mine.ndec = flags->ndec;
  memcpy(mine.hidden, flags->hidden, sizeof mine.hidden);
  memcpy(mine.enc, flags->enc, sizeof mine.enc), memcpy(mine.dec, flags->dec, sizeof mine.dec);
  clvae_net a, b;
  char m[2100], t[2100];
  if (clvae_net_build(&a, &mine) != CLVAE_OK) { /* say why, not only that they differ */
    fprintf(stderr, "clvae: %s, for the images of %s; drop the layer flags to resume it\n", clvae_error_message(), path);
    return -1;
  }
  if (clvae_net_build(&b, ck) == CLVAE_OK && a.cfg.nenc == b.cfg.nenc &&
      a.cfg.ndec == b.cfg.ndec && !memcmp(a.cfg.enc, b.cfg.enc, sizeof a.cfg.enc) &&
      !memcmp(a.cfg.dec, b.cfg.dec, sizeof a.cfg.dec))
    return 0;
  fprintf(stderr, "clvae: %s conflicts with %s, which was trained with %s; drop the flags to resume\n",
          cli_layers_text(&mine, m, sizeof m), path, cli_layers_text(ck, t, sizeof t));
  return -1;
}

void cli_print_layers(const clvae_config *c) {
  clvae_net net;
  char line[256];
  if (clvae_net_build(&net, c) != CLVAE_OK) return;
  for (int i = 0; i < net.nlayers; i++) {
    clvae_net_describe(&net, i, line, sizeof line);
    printf("  %s\n", line);
  }
  printf("  %zu parameters\n", net.total);
}
