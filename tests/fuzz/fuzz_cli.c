/* libFuzzer target: the command-line parsers of train and of the picture/export commands.
 * The input is split into arguments at newlines; the parsers must accept or reject them
 * with a message, never crash. Run it with -close_fd_mask=3: the parsers' messages would
 * drown libFuzzer's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char *buf = malloc(size + 1), *args[64];
  int argc = 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  args[argc++] = "cmd";
  for (char *p = buf; argc < 63;) {
    args[argc++] = p;
    char *nl = strchr(p, '\n');
    if (!nl) break;
    *nl = '\0';
    p = nl + 1;
  }
  args[argc] = NULL;
  train_args t;
  memset(&t, 0, sizeof t);
  cli_device_defaults(&t.dev);
  clvae_config_default(&t.cfg);
  cli_parse_train(argc, args, &t);
  static const char *cmds[] = {"grid", "sample", "reconstruct", "scatter", "export"};
  for (int c = 0; c < 5; c++) {
    image_args a;
    memset(&a, 0, sizeof a);
    cli_device_defaults(&a.dev);
    cli_parse_images(cmds[c], argc, args, &a);
  }
  free(buf);
  return 0;
}
