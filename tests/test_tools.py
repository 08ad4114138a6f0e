#!/usr/bin/env python3
"""The benchmark tools the README quotes run and report what they say: step_ab alternates the
steps of several settings and gives each a ratio to the first (the first's is 1 by
construction, a setting that changes nothing stays near 1), and refuses a malformed setting;
gemm_bench (where OpenBLAS was found) times the big GEMMs both ways with positive ratios.
bench-vs-blas.sh refuses a round count that is not one; `clvae bench` counts the README's
launches per step.
usage: test_tools.py BUILD_DIR/tools SOURCE_DIR/tools"""
import json
import os
import re
import subprocess
import sys

from testlib import check, no_opencl, summary

TOOLS, SRC_TOOLS = sys.argv[1], sys.argv[2]
STEP_AB = os.path.join(TOOLS, 'step_ab')
GEMM_BENCH = os.path.join(TOOLS, 'gemm_bench')
CLVAE = os.path.join(os.path.dirname(TOOLS), 'src', 'clvae')


def run(args, timeout=300):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def main():
    if no_opencl(CLVAE):
        print('SKIP: no OpenCL platform')
        return 77
    # two settings that build the same kernels (no extra compilation): the environment as it
    # is, and one that only repeats the affinity clvae sets anyway
    rc, out = run([STEP_AB, '--steps', '12', '-', 'POCL_AFFINITY=1'])
    rows = re.findall(r'^(\S+)\s+step ([0-9.]+) ms median; per-step ratio to the first ([0-9.]+) \(quartiles ([0-9.]+), ([0-9.]+)\)',
                      out, re.M)
    check(rc == 0 and len(rows) == 2, 'step_ab: one line per setting', out)
    if len(rows) == 2:
        check(rows[0][0] == '-' and float(rows[0][2]) == 1.0, "step_ab: the first setting's ratio to itself is 1", out)
        r = float(rows[1][2])
        check(float(rows[1][1]) > 0 and 0.5 < r < 2.0 and float(rows[1][3]) <= r <= float(rows[1][4]),
              'step_ab: a setting that changes nothing has a ratio near 1, within its quartiles', out)
    for bad in (['-', 'NOEQUALS'], ['--steps', '3', '-'], ['--frobnicate']):
        rc, out = run([STEP_AB, *bad])
        check(rc == 2 and ('usage' in out or 'NAME=VALUE' in out), f'step_ab {" ".join(bad)}: refused with exit 2', out)
    # the README's launches per step (default model, builtin GEMM), from the profiled kernels
    p = subprocess.run([CLVAE, 'bench', '--steps', '10', '--gemm', 'builtin', '--json'], capture_output=True, text=True,
                       timeout=300)
    rc, out = p.returncode, p.stdout + p.stderr
    try:
        d = json.loads(p.stdout)
        per_step = sum(k['launches'] for k in d['kernels']) / d['steps']
    except (ValueError, KeyError):
        per_step = None
    check(rc == 0 and per_step == 18, f'clvae bench: 18 launches per step, as the README says (got {per_step})', out)
    for rounds in ('0', 'x'):
        rc, out = run(['bash', os.path.join(SRC_TOOLS, 'bench-vs-blas.sh'), os.path.dirname(TOOLS), rounds])
        check(rc == 2 and 'ROUNDS' in out, f'bench-vs-blas.sh ROUNDS {rounds}: refused with exit 2', out)
    if os.path.exists(GEMM_BENCH):
        rc, out = run([GEMM_BENCH, '--reps', '3'], timeout=600)
        ratios = re.findall(r'^\S+ (?:forward|dW db|dx)\s+(?:NN|NT|TN)\s+\S+\s+([0-9.]+)\s+([0-9.]+)\s+\S+\s+\S+\s+([0-9.]+)$',
                            out, re.M)
        check(rc == 0 and len(ratios) == 5 and all(float(x) > 0 for r in ratios for x in r),
              'gemm_bench: five GEMMs timed both ways, positive ratios', out)
    else:
        print('SKIP gemm_bench: not built (no OpenBLAS)')
    return summary()


if __name__ == '__main__':
    sys.exit(main())
