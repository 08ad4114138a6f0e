/* Host-only tests (no OpenCL device needed): the reference Philox against Random123's
 * published known answers, error naming, the GEMM reference against a naive product,
 * and device selection on a made-up list of platforms. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/ops.h"
#include "ref/ref.h"

static int passed, failed;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (cond) passed++;                                    \
    else {                                                 \
      failed++;                                            \
      printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      printf(__VA_ARGS__);                                 \
      printf("\n");                                        \
    }                                                      \
  } while (0)

static void test_philox(void) {
  /* Random123 tests/kat_vectors, "philox4x32 10": counter, key, expected output. */
  static const uint32_t kat[3][10] = {
    {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
     0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
     0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    ref_philox4x32_10(kat[i], kat[i] + 4, out);
    CHECK(memcmp(out, kat[i] + 6, sizeof out) == 0, "vector %d: got %08x %08x %08x %08x", i,
          out[0], out[1], out[2], out[3]);
  }
  /* Normals: different (seed, step, row, group) give different numbers. */
  float a[4], b[4], c[4];
  ref_normal4(1, 0, 0, 0, a);
  ref_normal4(2, 0, 0, 0, b);
  ref_normal4(1, 1, 0, 0, c);
  CHECK(memcmp(a, b, sizeof a) && memcmp(a, c, sizeof a), "seed or step does not change the numbers");
}

static void test_error_names(void) {
  CHECK(!strcmp(clvae_cl_error_name(-5), "CL_OUT_OF_RESOURCES"), "%s", clvae_cl_error_name(-5));
  CHECK(!strcmp(clvae_cl_error_name(-11), "CL_BUILD_PROGRAM_FAILURE"), "%s", clvae_cl_error_name(-11));
  CHECK(!strcmp(clvae_cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR"), "%s", clvae_cl_error_name(-1001));
  CHECK(!strcmp(clvae_cl_error_name(-2049), "CLBlastInsufficientMemoryTemp"), "%s", clvae_cl_error_name(-2049));
  CHECK(!strcmp(clvae_cl_error_name(12345), "CL_UNKNOWN_ERROR"), "%s", clvae_cl_error_name(12345));
  CHECK(clvae_gemm_impl_parse("clblast") == CLVAE_GEMM_CLBLAST && clvae_gemm_impl_parse("cuBLAS") == -1, "gemm names");
}

/* ref_gemm with all transposes against a product written out from the definition on
 * explicitly transposed copies. */
static void test_ref_gemm(void) {
  enum { M = 3, N = 4, K = 5 };
  float A[M * K], B[K * N], At[K * M], Bt[N * K];
  for (int i = 0; i < M * K; i++) A[i] = (float)(i % 7) - 3.0f;
  for (int i = 0; i < K * N; i++) B[i] = (float)(i % 5) * 0.5f - 1.0f;
  for (int i = 0; i < M; i++)
    for (int k = 0; k < K; k++) At[k * M + i] = A[i * K + k];
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) Bt[j * K + k] = B[k * N + j];
  for (int t = 0; t < 4; t++) {
    float C[M * N], want[M * N];
    for (int i = 0; i < M * N; i++) C[i] = want[i] = (float)i;
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        float s = 0;
        for (int k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
        want[i * N + j] = 2.0f * s + 0.5f * want[i * N + j];
      }
    int ta = t & 1, tb = t >> 1;
    ref_gemm(ta, tb, M, N, K, 2.0f, ta ? At : A, ta ? M : K, tb ? Bt : B, tb ? K : N, 0.5f, C, N);
    float err = 0;
    for (int i = 0; i < M * N; i++) err = fmaxf(err, fabsf(C[i] - want[i]));
    CHECK(err < 1e-5f, "transposes %d%d: max error %g", ta, tb, err);
  }
}

static void add(clvae_device_list *l, int p, int d, const char *name, int gpu) {
  clvae_device_info *x = &l->devices[l->count++];
  memset(x, 0, sizeof *x);
  x->platform_index = p, x->device_index = d, x->is_gpu = gpu;
  snprintf(x->name, sizeof x->name, "%s", name);
  snprintf(x->platform, sizeof x->platform, "%s", l->platforms[p]);
  snprintf(x->type, sizeof x->type, gpu ? "GPU" : "CPU");
}

static void test_select(void) {
  char names[3][256] = {"Portable Computing Language", "NVIDIA CUDA", "Empty"};
  clvae_device_info devs[8];
  clvae_device_list l = {0, devs, 3, names, ""};
  add(&l, 0, 0, "pthread-skylake", 0);
  add(&l, 0, 1, "basic-cpu", 0);
  add(&l, 1, 0, "NVIDIA H200", 1);
  add(&l, 1, 1, "NVIDIA A100", 1);
  int i = -1;
  CHECK(clvae_select(&l, NULL, NULL, &i) == CLVAE_OK && i == 2, "default is the first GPU, got %d", i);
  CHECK(clvae_select(&l, "0", NULL, &i) == CLVAE_OK && i == 0, "platform 0 → its first device, got %d", i);
  CHECK(clvae_select(&l, "portable", "1", &i) == CLVAE_OK && i == 1, "name + index, got %d", i);
  CHECK(clvae_select(&l, NULL, "a100", &i) == CLVAE_OK && i == 3, "substring, any case, got %d", i);
  CHECK(clvae_select(&l, NULL, "1", &i) == CLVAE_OK && i == 3, "index within the default platform, got %d", i);
  CHECK(clvae_select(&l, "9", NULL, &i) == CLVAE_ERR_NOT_FOUND && strstr(clvae_error_message(), "NVIDIA CUDA") &&
        strstr(clvae_error_message(), "matches '9'"), "bad platform: %s", clvae_error_message());
  CHECK(clvae_select(&l, NULL, "nosuch", &i) == CLVAE_ERR_NOT_FOUND && strstr(clvae_error_message(), "basic-cpu") &&
        strstr(clvae_error_message(), "'nosuch'"), "bad device: %s", clvae_error_message());
  CHECK(clvae_select(&l, "cuda", "pthread", &i) == CLVAE_ERR_NOT_FOUND, "device not on that platform");
  CHECK(clvae_select(&l, "empty", NULL, &i) == CLVAE_ERR_NOT_FOUND && strstr(clvae_error_message(), "no device"),
        "platform without devices: %s", clvae_error_message());
}

int main(void) {
  test_philox();
  test_error_names();
  test_ref_gemm();
  test_select();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
