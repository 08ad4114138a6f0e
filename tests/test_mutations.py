#!/usr/bin/env python3
"""Proves the kernel checks can fail: for each kernel, a copy of cl/ with one deliberate
bug is loaded through CLVAE_KERNEL_DIR and `clvae selftest --kernel K` must report FAIL
(exit 1), with the odd sizes that reach the edge paths. The unmodified sources must pass, and a syntax error must surface the build log.
usage: test_mutations.py PATH/TO/clvae PATH/TO/cl"""
import os
import shutil
import subprocess
import sys
import tempfile

from testlib import check, summary

CLVAE, CL = sys.argv[1], sys.argv[2]

# (kernel checked, file, original text, mutated text, extra selftest arguments)
MUTATIONS = [
    ('gemm', 'gemm.cl', 'for (int k = k0; k < k1; k++) {', 'for (int k = k0 + 1; k < k1; k++) {', ['--gemm', 'builtin', '--small']),
    # split K: the parts' ranges and their sum
    ('gemm', 'gemm.cl', 'int k0 = z * kz, k1 = k0 + kz < K ? k0 + kz : K;', 'int k0 = z * kz, k1 = k0 + kz < K ? k0 + kz - 1 : K;',
     ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'for (int z = 0; z < splits; z++)', 'for (int z = 1; z < splits; z++)', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'j0 + e < N;', 'j0 + e <= N;', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', '(size_t)rr * asr;', '(size_t)rr * ask;', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', '? B[b_off + (size_t)j * ldb + k]', '? B[b_off + (size_t)k * ldb + j]', ['--gemm', 'builtin', '--small']),
    # the fused epilogue (bias, ReLU, sigmoid, mask) and the packing of several matrices at once
    ('gemm', 'gemm.cl', 'if (has_bias) v += vload16(0, bias);', 'if (has_bias) v += vload16(0, bias + 1);', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'v += vload16(0, bias);\n  if (act == ACT_RELU) v = fmax(v, 0.0f);',
     'v += vload16(0, bias);\n  if (act == ACT_RELU) v = fmax(v, -0.01f);', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'v += bias;\n  if (act == ACT_RELU) v = fmax(v, 0.0f);', 'v += bias;\n  if (act == ACT_RELU) v = fmax(v, -0.01f);',
     ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'else if (act == ACT_SIGMOID) v = 1.0f / (1.0f + exp(-v));\n  if (has_mask) v = select',
     'else if (act == ACT_SIGMOID) v = 1.0f / (1.0f + exp(v));\n  if (has_mask) v = select', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'isgreater(vload16(0, mask), 0.0f)', 'isgreaterequal(vload16(0, mask), 0.0f)', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'if (has_mask && !(mask > 0.0f)) v = 0.0f;', 'if (has_mask && !(mask >= 0.0f)) v = 0.0f;', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'while (m + 1 < njobs && jobs[8 * (m + 1) + 5] <= u) m++;', 'while (m + 1 < njobs && jobs[8 * (m + 1) + 5] < u) m++;', ['--gemm', 'builtin', '--small']),
    # the packing of a transposed matrix in 16 × 16 blocks (whole and partial), and the count of 16-row units
    ('gemm', 'gemm.cl', 'r[15 * ldb + e]', 'r[14 * ldb + e]', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', '? r[(size_t)c * ldb + e] : 0.0f', '? r[(size_t)c * ldb + e + 1] : 0.0f', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'int kb = (K + 15) / 16,', 'int kb = (K + 14) / 16,', ['--gemm', 'builtin', '--small']),
    # the loops over a last panel's real columns exist only in blocks wider than 16 columns:
    # this one runs at the default block (a longer compile)
    ('gemm', 'gemm.cl', 'K_LOOP(2)', 'K_LOOP(1)', ['--gemm', 'builtin', '--small'], None),
    ('bias_act', 'act.cl', 'fmax(v, 0.0f)', 'fmax(v, -0.01f)', []),
    ('bias_act', 'act.cl', 'size_t i = y_off + (size_t)b * ldy + j;', 'size_t i = y_off + (size_t)b * N + j;', []),
    ('relu_backward', 'act.cl', 'y[y_off + (size_t)b * ld_y + j] > 0.0f', 'y[y_off + (size_t)b * ld_y + j] >= 0.0f', []),
    ('relu_backward', 'act.cl', '(size_t)b * ld_y + j] > 0.0f', '(size_t)b * ldy + j] > 0.0f', []),
    ('colsum', 'act.cl', 'for (int b = 0; b < B; b++) s += vload16', 'for (int b = 1; b < B; b++) s += vload16', []),
    ('colsum', 'act.cl', 'for (int j = j0; j < N && j < j0 + COLSUM_W; j++) {', 'for (int j = j0 + 1; j < N && j < j0 + COLSUM_W; j++) {', []),
    ('sample_forward', 'sample.cl', 'exp(0.5f * lv[l]) * n[e]', 'exp(lv[l]) * n[e]', []),
    ('sample_forward', 'sample.cl', 'z[z_off + (size_t)b * ldz + l]', 'z[z_off + (size_t)b * L + l]', []),
    ('sample_backward', 'sample.cl', 'g * eps[e_off + i] * 0.5f * s', 'g * eps[e_off + i] * s', []),
    ('rng', 'sample.cl', 'k.x += PHILOX_W0;', 'k.x += PHILOX_W1;', []),
    ('loss_mse', 'loss.cl', 'scale * 2.0f * diff', 'scale * diff', []),
    ('loss_bce', 'loss.cl', 'log1p(exp(-fabs(y)))', 'log1p(exp(-y))', []),
    ('loss_mse', 'loss.cl', 'float4 b = a.lo + a.hi;', 'float4 b = a.lo + a.lo;', []),
    ('loss_bce', 'loss.cl', 'xx[e] = d + e < D ? xr[d + e] : 0.0f;', 'xx[e] = d + e < D ? xr[d + e - 1] : 0.0f;', []),
    ('loss_mse', 'loss.cl', '*xr = x + x_off + (size_t)b * ldx;', '*xr = x + x_off + (size_t)b * D;', []),
    # the gradient also stored in the panels of the GEMM that reads it: by the loss (whole and
    # partial chunks) and by the masked tile kernel
    ('loss_mse', 'loss.cl', 'P + (size_t)(d / pw) * rows * pw', 'P + (size_t)(d / pw) * pw', ['--gemm', 'builtin', '--small']),
    ('loss_bce', 'loss.cl', 'if (pnr) pr[e] = gg[e];', 'if (pnr) pr[e] = gg[15 - e];', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'P + p_off + (size_t)(j0 / pw) * M * pw', 'P + p_off + (size_t)(j0 / pw) * pw', ['--gemm', 'builtin', '--small']),
    ('gemm', 'gemm.cl', 'if (has_panels) prow[e] = o;', 'if (has_panels) prow[e] = -o;', ['--gemm', 'builtin', '--small']),
    ('adam', 'adam.cl', '(sqrt(vi * c2) + eps), 0, p', '(sqrt(vi) + eps), 0, p', []),
    ('adam', 'adam.cl', 'return p[i] - lr * (mi * c1)', 'return p[i] - lr * mi', []),
    ('gather', 'data.cl', 'convert_float16(vload16(0, src)) / 255.0f', 'convert_float16(vload16(0, src)) / 256.0f', []),
    ('gather', 'data.cl', 'dst[e] = (float)src[e] / 255.0f;', 'dst[e] = (float)src[e + 1] / 255.0f;', []),
    # the one-hot classes of a conditional model (checked with the gather kernel) and the
    # row stride of dz that sample_backward reads (z, then the one-hot)
    ('gather', 'data.cl', 'labels[lab_off + idx[idx_off + b]] == (uint)k', 'labels[lab_off + b] == (uint)k', []),
    ('gather', 'data.cl', 'x[x_off + (size_t)b * ldx + col0 + k]', 'x[x_off + (size_t)b * ldx + k]', []),
    ('sample_backward', 'sample.cl', 'dz[dz_off + (size_t)b * ldz + l]', 'dz[dz_off + (size_t)b * L + l]', []),
    # convolutions (the CPU build: a row per work-item): taps, padding, the ones column, the
    # vector and scalar channel paths, the epilogue
    ('conv', 'conv.cl', 'int r = (y + pt) % S;', 'int r = (y + pt + 1) % S;', ['--small']),
    ('conv', 'conv.cl', 'int x = ox * S + kx - pl;', 'int x = ox * S + kx - pl + 1;', ['--small']),
    ('conv', 'conv.cl', 'if (ones) dst[K * kc] = 1.0f;', 'if (ones) dst[K * kc] = 0.0f;', ['--small']),
    ('conv', 'conv.cl', 'for (; c + 16 <= C; c += 16) vstore16(vload16(0, src + c), 0, d + c);',
     'for (; c + 16 <= C; c += 16) vstore16(vload16(0, src + c + 1), 0, d + c);', ['--small']),
    ('conv', 'conv.cl', 'if (n == 16) acc16 += vload16(0, src);', 'if (n == 16) acc16 += vload16(0, src + 1);', ['--small']),
    ('conv', 'conv.cl', 'for (int e = 0; e < n; e++) acc[e] += src[e];', 'for (int e = 1; e < n; e++) acc[e] += src[e];',
     ['--small']),
    ('conv', 'conv.cl', 'if (has_bias) v += vload16(0, bias + b_off + c0);', 'if (has_bias) v += vload16(0, bias + b_off);',
     ['--small']),
    ('conv', 'conv.cl', 'if (has_mask && !(mask > 0.0f)) v = 0.0f;', 'if (has_mask && !(mask >= 0.0f)) v = 0.0f;', ['--small']),
]

# The GPU build of the convolutions (an element per work-item), run in that style.
GPU_MUTATIONS = [
    ('conv', 'conv.cl', 'acc += patches[p_off + (((size_t)b * Ho + oy) * Wo + ox) * ldp + (size_t)(ky * K + kx) * C + c];',
     'acc += patches[p_off + (((size_t)b * Ho + oy) * Wo + ox) * ldp + (size_t)(ky * K + kx) * C];', ['--small']),
    ('conv', 'conv.cl', 'for (int c = 0; c < C; c++) dst[c] = src[c];', 'for (int c = 1; c < C; c++) dst[c] = src[c];', ['--small']),
]



# The GEMM at a small block (2 rows × 16 columns, no second build for narrow N): the mutations
# are in logic every block shares, and PoCL compiles this block about 3× faster than the
# default 6 × 64 (the suite runs with a cold kernel cache in CI: 81 s against 285 s here).
# The default block is checked by 'kernel gemm builtin' and every selftest.
GEMM_BLOCK = '2,1,1,4'


def selftest(kdir, kernel, extra, block=GEMM_BLOCK, style=None):
    env = dict(os.environ, CLVAE_KERNEL_DIR=kdir, CLVAE_GEMM_TUNE=block)
    if style:
        env['CLVAE_KERNEL_STYLE'] = style
    if block is None:  # the device's default block
        env.pop('CLVAE_GEMM_TUNE')
    p = subprocess.run([CLVAE, 'selftest', '--kernel', kernel, *extra],  # odd sizes reach edge paths
                       capture_output=True, text=True, env=env, timeout=300)
    return p.returncode, p.stdout + p.stderr




def main():
    rc, out = selftest(CL, 'gemm', ['--gemm', 'builtin'])
    if rc == 2 and 'no OpenCL platform' in out:
        print('SKIP: no OpenCL platform')
        return 77
    check(rc == 0, f'unmodified cl/ passes (gemm, block {GEMM_BLOCK})', out)
    for kernel, fname, old, new, extra, *block in MUTATIONS + [m + (GEMM_BLOCK, 'gpu') for m in GPU_MUTATIONS]:
        with tempfile.TemporaryDirectory() as tmp:
            for f in os.listdir(CL):
                if f.endswith('.cl'):
                    shutil.copy(os.path.join(CL, f), tmp)
            path = os.path.join(tmp, fname)
            src = open(path).read()
            if src.count(old) != 1:
                check(False, f'{kernel}: the text to mutate occurs once in {fname}: {old!r}')
                continue
            open(path, 'w').write(src.replace(old, new))
            rc, out = selftest(tmp, kernel, extra, *block)
            # a mutation that reads out of bounds may also crash selftest: caught as well
            check((rc == 1 and 'FAIL' in out) or rc < 0, f'{kernel}: {old!r} -> {new!r} is caught', f'rc={rc} {out}')
    with tempfile.TemporaryDirectory() as tmp:
        for f in os.listdir(CL):
            shutil.copy(os.path.join(CL, f), tmp)
        with open(os.path.join(tmp, 'adam.cl'), 'a') as f:
            f.write('\nthis is not OpenCL C;\n')
        rc, out = selftest(tmp, 'adam', [])
        check(rc == 1 and 'clBuildProgram failed' in out and 'CL_BUILD_PROGRAM_FAILURE' in out
              and 'build log' in out and 'adam.cl' in out, 'a kernel that does not compile shows its build log', out)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
