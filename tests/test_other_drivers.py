#!/usr/bin/env python3
"""Every kernel on two more OpenCL implementations, each skipped when it is not installed:
- Oclgrind (Debian `oclgrind`), a simulator that reports out-of-bounds accesses, API misuse
  and data races (--check-api --data-races): `selftest --small` in both kernel styles
  (CPU: float16 register blocks; GPU: small blocks, work-group reductions) with the
  builtin GEMM must pass with zero reports.
- Mesa's rusticl on llvmpipe (Debian `mesa-opencl-icd`, RUSTICL_ENABLE=llvmpipe): `selftest
  --small` must pass in both styles. (Not the full selftest: llvmpipe runs a GEMM at the VAE's
  shapes in ~5 s, 85 s for the set; the small set runs every kernel, with odd tails, in
  ~2 s; the real shapes run on PoCL.)
usage: test_other_drivers.py PATH/TO/clvae (oclgrind|rusticl)"""
import os
import re
import shutil
import subprocess
import sys

from testlib import check, summary

CLVAE, WHICH = sys.argv[1], sys.argv[2]
# what Oclgrind prints when it finds something (its messages start with these)
REPORTS = re.compile(r'Invalid (read|write)|data race|Uninitialized|Oclgrind -|Work-group divergence|API error',
                     re.IGNORECASE)


def oclgrind():
    if not shutil.which('oclgrind'):
        print('SKIP: oclgrind is not installed (apt-get install oclgrind)')
        return 77
    for style in ('cpu', 'gpu'):
        env = dict(os.environ, CLVAE_KERNEL_STYLE=style)
        p = subprocess.run(['oclgrind', '--check-api', '--data-races', CLVAE, 'selftest', '--small', '--gemm', 'builtin'],
                           capture_output=True, text=True, env=env, timeout=600)
        out = p.stdout + p.stderr
        reports = [ln for ln in out.splitlines() if REPORTS.search(ln)]
        check(p.returncode == 0 and 'Oclgrind' in out and 'selftest passed' in out and not reports,
              f'every kernel ({style} style) under Oclgrind --check-api --data-races: passes, {len(reports)} reports',
              '\n'.join(reports[:20]) or out[-3000:])
    return summary()


def rusticl():
    env = dict(os.environ, RUSTICL_ENABLE='llvmpipe')
    p = subprocess.run([CLVAE, 'devices'], capture_output=True, text=True, env=env, timeout=120)
    if 'rusticl' not in p.stdout or re.search(r"platform \d+ 'rusticl' has no devices", p.stdout):
        print('SKIP: no rusticl device (apt-get install mesa-opencl-icd)')
        return 77
    for style in ('cpu', 'gpu'):
        p = subprocess.run([CLVAE, 'selftest', '--platform', 'rusticl', '--small'], capture_output=True, text=True,
                           env=dict(env, CLVAE_KERNEL_STYLE=style), timeout=900)
        out = p.stdout + p.stderr
        check(p.returncode == 0 and 'llvmpipe' in out and 'selftest passed' in out,
              f'every kernel in the {style.upper()} style on Mesa rusticl (llvmpipe, selftest --small)', out[-3000:])
    return summary()


if __name__ == '__main__':
    sys.exit(oclgrind() if WHICH == 'oclgrind' else rusticl())
