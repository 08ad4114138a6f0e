/* Runs a fuzz target's entry point on every file of the given directories or files: the
 * regression corpus (inputs that once crashed, and the seeds) in the normal test suite,
 * without libFuzzer. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return fprintf(stderr, "cannot open %s\n", path), 1;
  unsigned char *buf = NULL;
  size_t n = 0, cap = 0, got;
  do {
    if (n == cap && !(buf = realloc(buf, cap = cap * 2 + 4096))) return fclose(f), 1;
    got = fread(buf + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  int files = 0, bad = 0;
  for (int i = 1; i < argc; i++) {
    struct stat sb;
    if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
      DIR *d = opendir(argv[i]);
      struct dirent *e;
      while (d && (e = readdir(d))) {
        char path[4096];
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
        bad += run_file(path), files++;
      }
      if (d) closedir(d);
    } else bad += run_file(argv[i]), files++;
  }
  printf("%d passed, %d failed\n", files - bad, bad); /* reaching here: no input crashed */
  return bad ? 1 : 0;
}
