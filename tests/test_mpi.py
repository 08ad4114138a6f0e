#!/usr/bin/env python3
"""Data-parallel training over MPI (Open MPI's mpirun, 2 ranks on PoCL) against one process:
the same losses with the same seed and global batch (uneven slices, a last batch with fewer
rows than ranks), files written by rank 0 alone, checkpoints that resume across rank
counts, SIGINT to mpirun, a rank that fails at setup or in the middle of training, ranks
whose data differ, and `clvae bench` under mpirun. A plain run must not start MPI.
usage: test_mpi.py PATH/TO/clvae [--hooks PATH/TO/clvae-test-hooks]; exit 77 without
mpirun, without MPI in clvae, or without OpenCL."""
import csv
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

from testlib import check, read_checkpoint, summary, wait_for

CLVAE = os.path.abspath(sys.argv[1])
HOOKS = os.path.abspath(sys.argv[sys.argv.index('--hooks') + 1]) if '--hooks' in sys.argv else None
# Open MPI refuses root without these; on 2 cores 2 ranks need --oversubscribe.
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1', OMPI_MCA_rmaps_base_oversubscribe='1')
for k in [k for k in ENV if k.startswith(('OMPI_COMM_WORLD', 'PMI_', 'PMIX_'))]:
    del ENV[k]  # a test run inside a job must not look launched itself
TOL = 0.002  # 0.2 %: the bound; the float sums differ in order only


def run(cmd, timeout=240, cwd=None, env=None):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env or ENV)
    except subprocess.TimeoutExpired as e:
        return -999, f'timed out after {timeout} s: {e.stdout}{e.stderr}', time.time() - t0
    return p.returncode, p.stdout + p.stderr, time.time() - t0


def mpirun(*args, np=2, **kw):
    return run(['mpirun', '--oversubscribe', '-np', str(np), CLVAE, *args], **kw)


def metrics(d):
    with open(os.path.join(d, 'metrics.csv')) as f:
        return [(int(r['epoch']), float(r['train_loss']), float(r['test_loss'])) for r in csv.DictReader(f)]


def close(a, b):
    return len(a) == len(b) and len(a) > 0 and all(
        x[0] == y[0] and abs(x[1] - y[1]) <= TOL * abs(y[1]) and abs(x[2] - y[2]) <= TOL * abs(y[2]) for x, y in zip(a, b))


def idx(magic, dims, data):
    return struct.pack('>i', magic) + b''.join(struct.pack('>i', d) for d in dims) + data


def small_set(d, ntrain=300, ntest=60, bump=False):
    os.makedirs(d, exist_ok=True)
    for name, n in (('train', ntrain), ('t10k', ntest)):
        px = bytearray((i * 37 + (i // 784) * 11) % 256 for i in range(n * 784))
        if bump:
            px[-1] ^= 1  # one pixel of one image
        open(os.path.join(d, f'{name}-images-idx3-ubyte'), 'wb').write(idx(2051, (n, 28, 28), bytes(px)))
        open(os.path.join(d, f'{name}-labels-idx1-ubyte'), 'wb').write(idx(2049, (n,), bytes(i % 10 for i in range(n))))
    return d


def plain_run_has_no_mpi(tmp):
    """Without mpirun, clvae must not initialize MPI: an MPI_Init (a singleton) would leave
    Open MPI's session directory in TMPDIR."""
    t = os.path.join(tmp, 'tmpdir')
    os.makedirs(t)
    rc, out, _ = run([CLVAE, 'train', '--limit', '512', '--epochs', '1', '--out', os.path.join(tmp, 'plain'), '--quiet'],
                     env=dict(ENV, TMPDIR=t))
    check(rc == 0 and not [e for e in os.listdir(t) if e.startswith('ompi')],
          'a plain run (no mpirun) trains without starting MPI (no Open MPI session directory)', f'{rc} {out} {os.listdir(t)}')


def same_mathematics(tmp):
    """2 ranks against 1 process, same seed and global batch 255 (slices of 128 and 127 rows;
    the last batch of 4096 images has 16 rows), over 2 epochs, and one with a last batch of
    1 row (rank 1 has none)."""
    one, two = os.path.join(tmp, 'one'), os.path.join(tmp, 'two')
    common = ['--limit', '4096', '--batch-size', '255', '--epochs', '2', '--seed', '3', '--quiet']
    rc1, out1, _ = run([CLVAE, 'train', *common, '--out', one])
    cwd = os.path.join(tmp, 'cwd')
    os.makedirs(cwd)
    rc2, out2, took = mpirun('train', *common, '--out', two, cwd=cwd)
    check(rc1 == 0 and rc2 == 0, f'1 process and 2 ranks train 2 epochs ({took:.1f} s for the 2 ranks)', out1 + out2)
    if rc1 or rc2:
        return
    m1, m2 = metrics(one), metrics(two)
    check(close(m2, m1), 'per-epoch train and test losses of 2 ranks are within 0.2 % of 1 process', f'{m1}\n{m2}')
    check(out2.count('using platform') == 2 and 'rank 0/2' in out2 and 'rank 1/2' in out2,
          'each rank says which device it took', out2)
    # rank 0 alone wrote: the run directory holds what a one-process run writes, nothing else appeared
    check(sorted(os.listdir(two)) == sorted(os.listdir(one)) and os.listdir(cwd) == [],
          'only rank 0 wrote files (the same set as one process; nothing in the working directory)',
          f'{sorted(os.listdir(one))} {sorted(os.listdir(two))} {os.listdir(cwd)}')
    c1, c2 = read_checkpoint(os.path.join(one, 'checkpoint.clvae')), read_checkpoint(os.path.join(two, 'checkpoint.clvae'))
    diff = max(abs(a - b) for a, b in zip(c1['params'], c2['params']))
    check(c1['step'] == c2['step'] == 34 and diff < 1e-3, f'the parameters after 34 steps agree (max |Δ| {diff:.2e})',
          f"{c1['step']} {c2['step']}")

    # across rank counts: the 2-rank run resumed by 1 process, the 1-process run by 2 ranks
    rc1, out1, _ = run([CLVAE, 'train', '--resume', '--out', two, '--epochs', '3', '--quiet'])
    rc2, out2, _ = mpirun('train', '--resume', '--out', one, '--epochs', '3', '--quiet')
    check(rc1 == 0 and rc2 == 0 and close(metrics(two), metrics(one)) and len(metrics(one)) == 3,
          'a 2-rank checkpoint resumes in 1 process and a 1-process one under 2 ranks, with the same losses',
          f'{out1}{out2}{metrics(one)}\n{metrics(two)}')

    # the TF tutorial's convolutional model: the same mathematics (slices of 64 and 63 images)
    a, b = os.path.join(tmp, 'conv1'), os.path.join(tmp, 'conv2')
    common = ['--limit', '1024', '--batch-size', '127', '--epochs', '2', '--quiet', '--encoder', 'conv:32:3:2:valid,conv:64:3:2:valid',
              '--decoder', 'dense:1568,reshape:7:7:32,deconv:64:3:2,deconv:32:3:2']
    rc1, out1, _ = run([CLVAE, 'train', *common, '--out', a])
    rc2, out2, _ = mpirun('train', *common, '--out', b)
    check(rc1 == 0 and rc2 == 0 and close(metrics(b), metrics(a)),
          "the TF tutorial's conv model: 2 ranks within 0.2 % of 1 process per epoch",
          f'{out1}{out2}{metrics(a) if rc1 == 0 else ""}\n{metrics(b) if rc2 == 0 else ""}')

    # 257 images in batches of 256: the last batch has one row, so rank 1 computes nothing
    a, b = os.path.join(tmp, 'a257'), os.path.join(tmp, 'b257')
    common = ['--limit', '257', '--epochs', '2', '--quiet']
    rc1, out1, _ = run([CLVAE, 'train', *common, '--out', a])
    rc2, out2, _ = mpirun('train', *common, '--out', b)
    check(rc1 == 0 and rc2 == 0 and close(metrics(b), metrics(a)),
          'a last batch with fewer rows than ranks (1 row, 2 ranks) trains as one process does',
          f'{out1}{out2}{metrics(a) if rc1 == 0 else ""}')


def sigint(tmp):
    """SIGINT to mpirun: Open MPI sends the ranks SIGCONT, then SIGTERM a second later, then
    SIGKILL another second later (odls_base_sigkill_timeout, 1 s). Every rank stops after the
    agreed step and rank 0 saves before the SIGKILL."""
    d = os.path.join(tmp, 'int')
    # Long by construction (1000 epochs): the stop falls in a later epoch on any machine.
    p = subprocess.Popen(['mpirun', '--oversubscribe', '-np', '2', CLVAE, 'train', '--epochs', '1000', '--limit', '8192',
                          '--out', d], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    wait_for(lambda: len(metrics(d)) >= 1, proc=p, poll=0.05)  # the end of epoch 1: the stop falls later
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    try:
        out, _ = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    took = time.time() - t0
    check(took < 6, f'SIGINT to mpirun stops every rank within a few seconds ({took:.1f} s)', out)
    try:
        ck = read_checkpoint(os.path.join(d, 'checkpoint.clvae'))
    except (OSError, ValueError) as e:
        check(False, 'the checkpoint is loadable after SIGINT', str(e))
        return
    said = re.search(r'saved \S+ after (\d+) epochs?(?: and (\d+) steps?)?\.', out)
    check(ck['epoch'] >= 1 and 'interrupted by SIGTERM' in out and said is not None
          and (int(said.group(1)), int(said.group(2) or 0)) == (ck['epoch'], ck['epoch_step']),
          f"rank 0 saved where the ranks stopped, before the SIGKILL (epoch {ck['epoch']} + {ck['epoch_step']} steps)",
          out)
    e = ck['epoch'] + 1
    rc, out, _ = run([CLVAE, 'train', '--resume', '--out', d, '--epochs', str(e), '--quiet'])
    check(rc == 0 and len(metrics(d)) == e, f'the interrupted run resumes to the end of epoch {e}', out)


def failures(tmp):
    # a device that does not exist on one rank: exit 2 with that rank's message, nothing written
    d = os.path.join(tmp, 'nosuch')
    args = ['train', '--limit', '512', '--epochs', '1', '--out', d]
    rc, out, took = run(['mpirun', '--oversubscribe', '-np', '1', CLVAE, *args, ':', '-np', '1', '-x',
                         'CLVAE_DEVICE=nosuch', CLVAE, *args], timeout=120)
    check(rc == 2 and "rank 1/2: --platform/--device" in out and "'nosuch'" in out and 'rank 1 of 2 failed' in out,
          f'a rank given a device that does not exist stops the job: exit 2 with its message ({took:.1f} s)', f'{rc} {out}')
    check(not os.path.exists(os.path.join(d, 'checkpoint.clvae')), '... and nothing was written')

    # data that differ between the ranks (another machine's copy): refused before training
    a, b = small_set(os.path.join(tmp, 'data_a')), small_set(os.path.join(tmp, 'data_b'), bump=True)
    d = os.path.join(tmp, 'differ')
    args = ['train', '--epochs', '1', '--batch-size', '64', '--out', d]
    rc, out, _ = run(['mpirun', '--oversubscribe', '-np', '1', CLVAE, *args, '--data', a, ':', '-np', '1', CLVAE,
                      *args, '--data', b], timeout=120)
    check(rc == 2 and 'rank 1/2: the training images of' in out and 'differ from those rank 0 read' in out,
          'ranks whose data differ are refused (exit 2, naming the rank and the set)', f'{rc} {out}')
    rc, out, _ = run(['mpirun', '--oversubscribe', '-np', '1', CLVAE, *args, '--data', a, ':', '-np', '1', CLVAE,
                      *args, '--data', os.path.join(tmp, 'missing')], timeout=120)
    said = [line for line in out.splitlines() if os.path.join(tmp, 'missing') in line]
    check(rc == 2 and said and all('rank 1/2: ' in line for line in said) and 'rank 1 of 2 failed' in out,
          "a rank that cannot read --data stops the job with exit 2 naming the path, its message prefixed 'rank 1/2: '",
          f'{rc} {out}')

    # a device failure on rank 1 in the middle of an epoch: every rank exits 1, none hangs
    if HOOKS:
        d = os.path.join(tmp, 'fail')
        args = ['train', '--limit', '4096', '--epochs', '2', '--out', d]
        rc, out, took = run(['mpirun', '--oversubscribe', '-np', '1', HOOKS, *args, ':', '-np', '1', '-x',
                             'CLVAE_TEST_FAIL_LAUNCH=700', HOOKS, *args], timeout=120)
        ck = read_checkpoint(os.path.join(d, 'checkpoint.clvae')) if os.path.exists(os.path.join(d, 'checkpoint.clvae')) else {}
        check(rc == 1 and 'rank 1: ' in out and 'CL_OUT_OF_RESOURCES' in out and took < 60,
              f'a device failure on rank 1 mid-training ends every rank with exit 1 and its message ({took:.1f} s)',
              f'{rc} {out}')
        check(ck.get('epoch') == 1 and ck.get('epoch_step') == 0,
              '... and the checkpoint still holds the last complete epoch', str({k: ck.get(k) for k in ('epoch', 'epoch_step')}))

    # flags that differ between the ranks (mpirun's A : B form): refused, not a hang
    d = os.path.join(tmp, 'differ-flags')
    args = ['train', '--limit', '512', '--out', d, '--quiet']
    rc, out, took = run(['mpirun', '--oversubscribe', '-np', '1', CLVAE, *args, '--epochs', '1', ':', '-np', '1', CLVAE,
                         *args, '--epochs', '2'], timeout=120)
    check(rc == 2 and 'rank 1/2: --epochs is 2 here but 1 on rank 0' in out,
          f'ranks given different --epochs: exit 2 naming the flag ({took:.1f} s)', f'{rc} {out}')
    rc, out, took = run(['mpirun', '--oversubscribe', '-np', '1', CLVAE, *args, ':', '-np', '1', CLVAE, *args,
                         '--epochs', 'x'], timeout=120)
    check(rc == 2 and out.count("--epochs 'x'") == 1 and 'rank 1 of 2 failed' in out,
          f'a bad flag on rank 1 only: exit 2 with its message, once ({took:.1f} s)', f'{rc} {out}')
    # a rank that fails while starting its device: the new run leaves no checkpoint behind
    d = os.path.join(tmp, 'late-fail')
    args = ['train', '--limit', '512', '--epochs', '1', '--out', d, '--quiet']
    rc, out, _ = run(['mpirun', '--oversubscribe', '-np', '1', CLVAE, *args, ':', '-np', '1', '-x', 'CLVAE_GEMM_TUNE=99',
                      CLVAE, *args], timeout=120)
    check(rc == 2 and 'CLVAE_GEMM_TUNE' in out and not os.path.exists(os.path.join(d, 'checkpoint.clvae')),
          'a rank failing at device start: exit 2, and no checkpoint left to block the next run', f'{rc} {out}')

    # commands with nothing to share refuse several ranks
    rc, out, _ = mpirun('devices')
    check(rc == 2 and out.count('only train and bench run on several ranks') == 1,
          'other commands refuse several ranks, said once (exit 2)', f'{rc} {out}')
    rc, out, _ = mpirun('train', '--epochs', 'x')
    check(rc == 2 and out.count("--epochs 'x'") == 1, 'a bad flag under mpirun is reported once, exit 2', f'{rc} {out}')


def bench(tmp):
    import json
    rc, out, _ = mpirun('bench', '--steps', '10', '--warmup', '2', '--json')
    try:
        j = json.loads(out[out.index('{'):out.rindex('}') + 1])
    except ValueError:
        check(False, 'bench under mpirun prints one JSON object', out)
        return
    ok = (rc == 0 and j['ranks'] == 2 and j['arena_floats'] == 807700 and j['ms_per_step'] > 0 and j['allreduce_ms'] > 0
          and j['ms_per_step_one_device'] > 0 and abs(j['samples_per_sec'] - 256 / j['ms_per_step'] * 1e3) < 1)
    check(ok, f"bench under mpirun: step {j['ms_per_step']:.1f} ms, waiting {j['reduce_wait_ms']:.2f} ms, "
              f"3.2 MB allreduce {j['allreduce_ms']:.2f} ms, one device {j['ms_per_step_one_device']:.1f} ms", out)


def conditional(tmp):
    """A conditional beta-VAE over 2 ranks: the labels travel with each rank's rows."""
    d = small_set(os.path.join(tmp, 'cond-data'))
    one, two = os.path.join(tmp, 'cond1'), os.path.join(tmp, 'cond2')
    args = ['train', '--data', d, '--epochs', '2', '--batch-size', '50', '--conditional', '--beta', '0.5', '--quiet']
    rc1, o1, _ = run([CLVAE, *args, '--out', one])
    rc2, o2, _ = mpirun(*args, '--out', two)
    check(rc1 == rc2 == 0 and close(metrics(two), metrics(one)),
          'a conditional model with --beta 0.5 on 2 ranks: the losses of one process (within 0.2 %)',
          f'{o1}{o2}{metrics(one) if rc1 == 0 else ""} {metrics(two) if rc2 == 0 else ""}')


def main():
    if not shutil.which('mpirun'):
        print('SKIP: no mpirun (apt install openmpi-bin libopenmpi-dev)')
        return 77
    rc, out, _ = run([CLVAE, '--version'])
    if 'MPI: yes' not in out:
        print('SKIP: clvae was built without MPI (-Dmpi=disabled, or libopenmpi-dev missing)')
        return 77
    rc, out, _ = run([CLVAE, 'devices'])
    if rc == 2 and 'no OpenCL platform' in out:
        print('SKIP: no OpenCL platform')
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        plain_run_has_no_mpi(tmp)
        same_mathematics(tmp)
        conditional(tmp)
        failures(tmp)
        sigint(tmp)
        bench(tmp)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
