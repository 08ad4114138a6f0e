#!/usr/bin/env python3
"""End-to-end tests of `clvae train` and `clvae eval`: bad data and flags (exit 2 with a
message naming the file or flag), learning on real images, bit-exact resume (after an
epoch and after SIGINT mid-run), SIGTERM, SIGKILL while a checkpoint is being written,
damaged checkpoints, and a diverging run.
usage: test_train.py PATH/TO/clvae [--hooks PATH/TO/clvae-test-hooks] [--errors-only].
Exit 77 (skip) without OpenCL. The failures that only test hooks can inject (a slow
checkpoint write, an OpenCL error at the N-th launch) use the --hooks build, which is the
same command with src/device/device.c and src/io/checkpoint.c compiled with them.
--errors-only runs just the paths that fail before a device is opened (sanitizer build)."""
import gzip
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

from testlib import check, read_checkpoint, summary, wait_for

CLVAE = sys.argv[1]
HOOKS = sys.argv[sys.argv.index('--hooks') + 1] if '--hooks' in sys.argv else None
ERRORS_ONLY = '--errors-only' in sys.argv  # only paths that fail before a device is opened
DATA = '/usr/share/datasets/fashion-mnist'


def run(*args, env=None, timeout=600, exe=None):
    e = dict(os.environ, **(env or {}))
    p = subprocess.run([exe or CLVAE, *args], capture_output=True, text=True, env=e, timeout=timeout)
    return p.returncode, p.stdout + p.stderr




def idx_images(n, seed, rows=28, cols=28):
    rnd = random.Random(seed)
    return struct.pack('>iiii', 2051, n, rows, cols) + bytes(rnd.randrange(256) for _ in range(n * rows * cols))


def idx_labels(n, seed):
    rnd = random.Random(seed)
    return struct.pack('>ii', 2049, n) + bytes(rnd.randrange(10) for _ in range(n))


def make_set(d, gz=False, ntrain=300, ntest=100):
    os.makedirs(d, exist_ok=True)
    files = {'train-images-idx3-ubyte': idx_images(ntrain, 1), 'train-labels-idx1-ubyte': idx_labels(ntrain, 2),
             't10k-images-idx3-ubyte': idx_images(ntest, 3), 't10k-labels-idx1-ubyte': idx_labels(ntest, 4)}
    for name, data in files.items():
        if gz:
            with gzip.open(os.path.join(d, name + '.gz'), 'wb') as f:
                f.write(data)
        else:
            with open(os.path.join(d, name), 'wb') as f:
                f.write(data)
    return d


def temps(path):
    """The temporary files of a write of `path` in progress (path.<pid>.<n>.tmp)."""
    import glob
    return glob.glob(glob.escape(path) + '.*.tmp')


def params_of(path):
    """The parameter and Adam sections of a checkpoint (header and checksum excluded)."""
    return read_checkpoint(path)['state']


def epoch_of(path):
    return read_checkpoint(path)['epoch']


def test_bad_data(tmp):
    train = ['train', '--epochs', '1', '--out']
    good = make_set(os.path.join(tmp, 'good'))
    goodgz = make_set(os.path.join(tmp, 'goodgz'), gz=True)
    if not ERRORS_ONLY:
        rc, out = run(*train, os.path.join(tmp, 'o-good'), '--data', good, '--batch-size', '64')
        check(rc == 0, 'a valid raw IDX set trains', out)
        rc, out = run(*train, os.path.join(tmp, 'o-goodgz'), '--data', goodgz, '--batch-size', '64')
        check(rc == 0, 'a valid gzip IDX set trains', out)

    def bad(name, mutate, expect, fname='train-images-idx3-ubyte', gz=False):
        d = make_set(os.path.join(tmp, 'bad-' + name), gz=gz)
        path = os.path.join(d, fname + ('.gz' if gz else ''))
        mutate(path)
        rc, out = run(*train, os.path.join(tmp, 'o-' + name), '--data', d, '--batch-size', '64')
        check(rc == 2 and expect in out and fname in out and 'Segmentation' not in out,
              f'bad data ({name}): exit 2, names {fname} and says "{expect}"', f'rc={rc} {out}')

    def write(data):
        return lambda p: open(p, 'wb').write(data)

    def truncate(n):
        return lambda p: open(p, 'r+b').truncate(n)

    bad('missing file', os.remove, 'cannot open', 'train-labels-idx1-ubyte')
    bad('empty file', write(b''), 'empty')
    bad('wrong magic', write(struct.pack('>iiii', 2049, 300, 28, 28) + bytes(300 * 784)), 'wrong magic')
    bad('truncated raw', truncate(16 + 299 * 784), 'truncated')
    bad('truncated header', truncate(9), 'truncated')
    bad('truncated gzip', truncate(5000), 'gzip', gz=True)
    bad('corrupt gzip', write(b'\x1f\x8b\x08\x00' + bytes(range(256)) * 8), 'gzip')
    bad('absurd size', write(struct.pack('>iiii', 2051, 0x7fffffff, 28, 28)), 'more than')
    bad('zero dimension', write(struct.pack('>iiii', 2051, 0, 28, 28)), 'dimension')
    bad('count mismatch', write(idx_labels(299, 2)), '299 labels', 'train-labels-idx1-ubyte')
    bad('directory instead of file', lambda p: (os.remove(p), os.mkdir(p)), 'directory')
    rc, out = run(*train, os.path.join(tmp, 'o-nodir'), '--data', os.path.join(tmp, 'no-such-dir'))
    check(rc == 2 and 'no-such-dir' in out, 'missing data directory: exit 2, names it', out)
    return good


def test_flags(tmp, good):
    o = os.path.join(tmp, 'flags')
    cases = [
        (['--batch-size', '0'], '--batch-size'), (['--batch-size', 'x'], '--batch-size'),
        (['--batch-size', '301'], 'larger than the 300 training images'), (['--latent-dim', '0'], '--latent-dim'),
        (['--loss', 'l1'], '--loss'), (['--lr', '-1'], '--lr'), (['--epochs', '-1'], '--epochs'),
        (['--epochs'], 'needs a value'), (['--resume'], '--resume needs --out'), (['--bogus'], '--bogus'),
        (['--hidden', '512,0'], '--hidden'), (['--hidden', '64,'], '--hidden'), (['--hidden', '1,2,3,4,5,6,7,8,9'], '--hidden'),
        (['--hidden', '70000'], '--hidden'),
    ]
    for flags, expect in cases:
        args = ['train', *flags] + ([] if '--resume' in flags else ['--out', o + '-' + str(len(flags))]) + ['--data', good]
        if flags == ['--epochs']:
            args = ['train', '--data', good, '--out', o, '--epochs']
        rc, out = run(*args)
        check(rc == 2 and expect in out, f'train {" ".join(flags)}: exit 2, says "{expect}"', f'rc={rc} {out}')
    for bad_out in ('/dev/null/run', '/proc/clvae-run'):  # under a file; not creatable (even for root)
        rc, out = run('train', '--data', good, '--out', bad_out)
        check(rc == 2 and bad_out.split('/')[1] in out and ('Not a directory' in out or 'No such file' in out
                                                            or 'denied' in out or 'not a directory' in out),
              f'--out {bad_out}: exit 2 with the path and the OS error', out)
    if ERRORS_ONLY:
        return
    rc, out = run('train', '--epochs', '1', '--batch-size', '64', '--data', good, '--out', o)
    rc2, out2 = run('train', '--epochs', '2', '--batch-size', '64', '--data', good, '--out', o)
    check(rc == 0 and rc2 == 2 and '--resume' in out2, 'an existing run is not overwritten without --resume', out2)
    rc, out = run('train', '--resume', '--epochs', '2', '--batch-size', '32', '--data', good, '--out', o)
    check(rc == 2 and 'conflicts' in out and '--batch-size' in out, 'a conflicting flag on --resume: exit 2', out)
    rc, out = run('train', '--resume', '--epochs', '2', '--hidden', '512,256', '--data', good, '--out', o)
    check(rc == 2 and 'conflicts' in out and '512,256' in out, 'a conflicting --hidden on --resume: exit 2', out)
    rc, out = run('train', '--resume', '--epochs', '2', '--data', good, '--out', o)
    check(rc == 0 and epoch_of(os.path.join(o, 'checkpoint.clvae')) == 2, '--resume continues to --epochs', out)


def test_checkpoint_damage(tmp, ck):
    for name, mutate, expect in (
            ('flipped byte', lambda b: b[:5000] + bytes([b[5000] ^ 0x10]) + b[5001:], 'checksum'),
            ('truncated', lambda b: b[:len(b) // 2], 'truncated'),
            ('not a checkpoint', lambda b: b'hello' * 100, 'bad magic'),
            ('empty', lambda b: b'', 'too short')):
        p = os.path.join(tmp, 'damaged.clvae')
        open(p, 'wb').write(mutate(open(ck, 'rb').read()))
        rc, out = run('eval', '--model', p)
        check(rc == 2 and expect in out and 'damaged.clvae' in out, f'checkpoint {name}: refused, exit 2, "{expect}"', out)
    rc, out = run('eval', '--model', os.path.join(tmp, 'nope.clvae'))
    check(rc == 2 and 'nope.clvae' in out, 'missing --model file: exit 2', out)


def test_learning(tmp):
    o = os.path.join(tmp, 'learn')
    rc, out = run('train', '--epochs', '0', '--limit', '3000', '--out', o)
    rc0, out0 = run('eval', '--model', os.path.join(o, 'checkpoint.clvae'), '--json')
    rc2, out2 = run('train', '--resume', '--epochs', '2', '--out', o)
    rc3, out3 = run('eval', '--model', os.path.join(o, 'checkpoint.clvae'), '--json')
    import json
    try:
        before, after = (json.loads([ln for ln in o.splitlines() if ln.startswith('{')][0]) for o in (out0, out3))
    except (ValueError, IndexError):
        check(False, 'eval --json prints JSON', out0 + out3)
        return
    check(list(after) == ['test_loss', 'test_recon', 'test_kl', 'images', 'epoch', 'beta'] and after['images'] == 10000
          and after['epoch'] == 2 and after['beta'] == 1, 'eval --json has the documented keys, in order, then the epoch and beta', out3)
    check(rc == rc0 == rc2 == rc3 == 0 and after['test_loss'] < 0.8 * before['test_loss'],
          f'2 epochs on 3000 real images lower the test loss ({before["test_loss"]:.2f} -> {after["test_loss"]:.2f})',
          out + out2)
    rows = open(os.path.join(o, 'metrics.csv')).read().splitlines()
    check(rows[0] == 'epoch,train_loss,test_loss,test_recon,test_kl,seconds,samples_per_sec' and len(rows) == 3,
          'metrics.csv: header and one row per epoch', rows)
    return os.path.join(o, 'checkpoint.clvae')


def test_resume_exact(tmp):
    base = ['train', '--limit', '2048', '--report-every', '1']
    a, b, c = (os.path.join(tmp, x) for x in ('straight', 'split', 'interrupted'))
    run(*base, '--epochs', '4', '--out', a)
    run(*base, '--epochs', '2', '--out', b)
    rc, out = run('train', '--resume', '--epochs', '4', '--out', b)
    ca = os.path.join(a, 'checkpoint.clvae')
    check(rc == 0 and params_of(ca) == params_of(os.path.join(b, 'checkpoint.clvae')),
          'bitwise: 4 epochs straight == 2 epochs, then --resume to 4', out)
    ma = [r.split(',')[:5] for r in open(os.path.join(a, 'metrics.csv')).read().splitlines()]
    mb = [r.split(',')[:5] for r in open(os.path.join(b, 'metrics.csv')).read().splitlines()]
    check(ma == mb, 'same losses in metrics.csv for the straight and the resumed run', (ma, mb))
    # progress.csv: with --report-every 1 a row per step (2048 images in batches of 256: 8 an
    # epoch), the run's step count, its epoch; the epoch's rows average to metrics.csv's train loss
    pa = [r.split(',') for r in open(os.path.join(a, 'progress.csv')).read().splitlines()]
    pb = [r.split(',') for r in open(os.path.join(b, 'progress.csv')).read().splitlines()]
    steps_ok = pa[0] == ['step', 'epoch', 'loss', 'seconds'] and [(int(r[0]), int(r[1])) for r in pa[1:]] == \
        [(k, (k - 1) // 8 + 1) for k in range(1, 33)]
    means_ok = steps_ok and all(abs(sum(float(r[2]) for r in pa[1 + 8 * e:9 + 8 * e]) / 8 - float(ma[1 + e][1])) < 1e-4
                                for e in range(4))
    # (the resumed run reads back every 20 steps, the default: its rows after epoch 2 are the epochs' last steps)
    check(steps_ok and means_ok and [r[:3] for r in pb] == [r[:3] for r in pa[:17]] + [pa[24][:3], pa[32][:3]],
          'progress.csv: a row per read-back (step, epoch, batch loss) averaging to the train loss; the same rows in '
          'the resumed run', (pa[:3], pb, ma))
    # SIGINT somewhere in the middle, then resume: still bitwise equal. The run is long by
    # construction (1000 epochs) and the signal waits for a state (epoch 1 saved), so the stop
    # falls in a later epoch on any machine; the straight run to compare with is made after.
    p = subprocess.Popen([CLVAE, *base, '--epochs', '1000', '--out', c], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    cc = os.path.join(c, 'checkpoint.clvae')
    saved = wait_for(lambda: epoch_of(cc) >= 1, proc=p)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    check(saved and p.returncode == 130 and 'Resume with' in err and '--resume' in err,
          'SIGINT: exit 130, says how to resume', f'rc={p.returncode} {out} {err}')
    ck = read_checkpoint(cc)
    e = ck['epoch'] + 1
    rc, out = run('train', '--resume', '--epochs', str(e), '--out', c)
    ce = ca if e == 4 else os.path.join(run_straight(base, e, os.path.join(tmp, f'straight{e}')), 'checkpoint.clvae')
    check(rc == 0 and params_of(cc) == params_of(ce),
          f"bitwise: interrupted by SIGINT (epoch {ck['epoch']} + {ck['epoch_step']} steps), resumed to {e} epochs "
          f"== {e} straight", out)
    d = os.path.join(tmp, 'term')
    cd = os.path.join(d, 'checkpoint.clvae')
    p = subprocess.Popen([CLVAE, *base, '--epochs', '1000', '--out', d], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    saved = wait_for(lambda: epoch_of(cd) >= 1, proc=p)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    rc, out2 = run('eval', '--model', cd)
    check(saved and p.returncode == 143 and 'SIGTERM' in err and rc == 0, 'SIGTERM: exit 143, checkpoint loadable',
          err + out2)
    return ca


def run_straight(base, epochs, out):
    run(*base, '--epochs', str(epochs), '--out', out)
    return out


def test_sigkill(tmp):
    o = os.path.join(tmp, 'kill')
    ck = os.path.join(o, 'checkpoint.clvae')
    for attempt, delay in enumerate((0.0, 1.0)):
        for t in temps(ck):
            os.remove(t)  # left by the previous kill
        p = subprocess.Popen([HOOKS, 'train', '--limit', '512', '--epochs', '1000', '--out', o] + (['--resume'] if attempt else []),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, CLVAE_TEST_SLOW_CHECKPOINT='1'))
        # Wait for a write that replaces a checkpoint of a finished epoch, then kill mid-write.
        deadline = time.time() + 120
        while time.time() < deadline and not (os.path.exists(ck) and epoch_of(ck) >= 1 and temps(ck)):
            time.sleep(0.01)
        time.sleep(delay)
        killed_mid_write = bool(temps(ck))
        p.kill()
        p.wait()
        rc, out = run('eval', '--model', ck)
        check(rc == 0 and killed_mid_write, f'SIGKILL during a checkpoint write (+{delay:.1f} s): the checkpoint loads', out)
    rc, out = run('train', '--resume', '--epochs', str(epoch_of(ck) + 1), '--out', o)
    check(rc == 0, 'and training resumes from it', out)


def test_poison(tmp):
    """No result depends on device memory that nothing wrote: with every new buffer filled
    with NaNs (CLVAE_TEST_POISON, test builds), selftest passes in both kernel styles and a
    dense and a conv model train to the same parameters, bit for bit."""
    for style in ('cpu', 'gpu'):
        p = subprocess.run([HOOKS, 'selftest', '--quick'], capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, CLVAE_TEST_POISON='1', CLVAE_KERNEL_STYLE=style))
        check(p.returncode == 0, f'selftest ({style} style) with every new buffer full of NaNs', p.stdout[-2000:] + p.stderr)
    conv = ['--encoder', 'conv:8:3:2:valid,conv:16:3:2', '--decoder', 'dense:392,reshape:7:7:8,deconv:8:3:2,deconv:4:3:2']
    for name, layers in (('dense', []), ('conv', conv)):
        outs = []
        for poison in ('0', '1'):
            o = os.path.join(tmp, f'poison-{name}-{poison}')
            p = subprocess.run([HOOKS, 'train', '--limit', '1024', '--epochs', '1', '--out', o, '--quiet', *layers],
                               capture_output=True, text=True, timeout=600, env=dict(os.environ, CLVAE_TEST_POISON=poison))
            outs.append(params_of(os.path.join(o, 'checkpoint.clvae')) if p.returncode == 0 else p.stderr)
        check(outs[0] == outs[1] and isinstance(outs[0], bytes),
              f'a {name} model trains to the same parameters with new buffers full of NaNs (bitwise)', str(outs)[-500:])


def test_kernel_limits(tmp):
    """A driver gives a register-heavy kernel a smaller work-group than the device's maximum
    (Mali, Apple, NVIDIA): with every kernel's limit lowered to 32 (CLVAE_TEST_KERNEL_WG, test
    builds), the launches fit within it and selftest passes in both styles; a CLVAE_GEMM_TUNE
    work-group over the built kernel's limit is refused by name, not shrunk."""
    for style in ('cpu', 'gpu'):
        p = subprocess.run([HOOKS, 'selftest', '--quick'], capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, CLVAE_TEST_KERNEL_WG='32', CLVAE_KERNEL_STYLE=style))
        check(p.returncode == 0, f'selftest ({style} style) with every kernel limited to work-groups of 32',
              p.stdout[-2000:] + p.stderr)
    p = subprocess.run([HOOKS, 'selftest', '--quick', '--kernel', 'gemm'], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, CLVAE_TEST_KERNEL_WG='8', CLVAE_GEMM_TUNE='6,4,4,4'))
    check(p.returncode == 2 and 'CLVAE_GEMM_TUNE asks for work-groups of 4 x 4' in p.stderr and 'allows 8' in p.stderr,
          'CLVAE_GEMM_TUNE beyond the built kernel\'s limit: selftest refuses it (exit 2) naming both', p.stderr[-1500:])
    out = os.path.join(tmp, 'tune-limit')
    p = subprocess.run([HOOKS, 'train', '--limit', '512', '--epochs', '1', '--out', out], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, CLVAE_TEST_KERNEL_WG='8', CLVAE_GEMM_TUNE='6,4,4,4'))
    check(p.returncode == 2 and 'allows 8' in p.stderr and not os.path.exists(out),
          'CLVAE_GEMM_TUNE beyond a kernel\'s limit: train refuses it before starting (exit 2), no directory', p.stderr[-800:])


def test_device_limits(tmp):
    o = os.path.join(tmp, 'huge')
    rc, out = run('train', '--batch-size', '60000', '--hidden', '20000', '--epochs', '1', '--out', o)
    check(rc == 2 and '--batch-size' in out and 'bytes' in out and not os.path.exists(os.path.join(o, 'checkpoint.clvae')),
          'a batch the device cannot hold: refused up front (exit 2, sizes, the flag to lower), nothing written', out)


def test_second_sigint(tmp):
    o = os.path.join(tmp, 'twice')
    ck = os.path.join(o, 'checkpoint.clvae')
    p = subprocess.Popen([HOOKS, 'train', '--epochs', '1000', '--report-every', '1', '--out', o],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, CLVAE_TEST_SLOW_CHECKPOINT='1'))
    # inside epoch 2, near its start (a row of progress.csv per step, 235 steps an epoch): the
    # stop falls inside the epoch, so that a checkpoint write follows it (a stop at an epoch's
    # end, just after that epoch's checkpoint, writes nothing more)
    progress = os.path.join(o, 'progress.csv')
    wait_for(lambda: os.path.exists(progress) and ',2,' in open(progress).read(), proc=p)
    p.send_signal(signal.SIGINT)  # asks for a checkpoint after this step (a slow write here)
    writing = wait_for(lambda: temps(ck), proc=p)  # the write has begun
    t0 = time.time()
    p.send_signal(signal.SIGINT)  # the second one leaves at once
    p.wait(timeout=60)
    took = time.time() - t0
    rc, out = run('eval', '--model', ck)
    check(writing and p.returncode == 130 and took < 2 and rc == 0,
          f'a second SIGINT during the checkpoint\'s write exits at once ({took:.2f} s, exit {p.returncode}) and the last checkpoint loads', out)


def test_disk_full(tmp):
    o = os.path.join(tmp, 'full')
    ck = os.path.join(o, 'checkpoint.clvae')
    rc, out = run('train', '--limit', '512', '--epochs', '1', '--out', o)
    before = open(ck, 'rb').read()

    def small_files():  # writes past 4 MB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))
    p = subprocess.run([CLVAE, 'train', '--resume', '--epochs', '2', '--out', o], capture_output=True, text=True,
                       preexec_fn=small_files, timeout=300)
    rows = open(os.path.join(o, 'metrics.csv')).read().splitlines()
    check(rc == 0 and p.returncode == 1 and 'checkpoint.clvae' in p.stderr and 'unchanged' in p.stderr
          and open(ck, 'rb').read() == before and len(rows) == 2,
          'a checkpoint that cannot be written (file too large / disk full): error, old checkpoint intact, no metrics row',
          p.stdout + p.stderr)


def test_opencl_failure(tmp):
    o = os.path.join(tmp, 'clfail')
    ck = os.path.join(o, 'checkpoint.clvae')
    rc0, _ = run('train', '--limit', '1024', '--epochs', '1', '--out', o)
    before = open(ck, 'rb').read()
    rc, out = run('train', '--resume', '--epochs', '3', '--out', o, env={'CLVAE_TEST_FAIL_LAUNCH': '150'}, exe=HOOKS)
    rc2, out2 = run('eval', '--model', ck)
    check(rc0 == 0 and rc == 1 and 'CL_OUT_OF_RESOURCES' in out and 'clEnqueueNDRangeKernel' in out and 'epoch 2' in out
          and 'step' in out and open(ck, 'rb').read() == before and rc2 == 0,
          'an OpenCL failure mid-training: exit 1 naming the error, the call, the kernel and the step; checkpoint intact',
          out + out2)


def test_diverge(tmp):
    o = os.path.join(tmp, 'nan')
    rc, out = run('train', '--limit', '1024', '--epochs', '3', '--lr', '9.9', '--out', o)
    rc2, _ = run('eval', '--model', os.path.join(o, 'checkpoint.clvae'))
    check(rc == 1 and 'NaN' in out and rc2 == 0, 'a diverging run stops with exit 1 and keeps its last checkpoint', out)


def main():
    rc, out = run('devices')
    if rc == 2 and 'no OpenCL platform' in out and not ERRORS_ONLY:
        print('SKIP: no OpenCL platform')
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        good = test_bad_data(tmp)
        test_flags(tmp, good)
        if ERRORS_ONLY:
            pass
        elif not os.path.isdir(DATA):
            print(f'SKIP (partly): no Fashion-MNIST in {DATA}')
        else:
            ck = test_learning(tmp)
            if ck:
                test_checkpoint_damage(tmp, ck)
            test_resume_exact(tmp)
            if HOOKS:
                test_sigkill(tmp)
                test_second_sigint(tmp)
                test_poison(tmp)
                test_kernel_limits(tmp)
            else:
                print('SKIP (partly): no --hooks build for the slow-checkpoint tests')
            test_disk_full(tmp)
            test_device_limits(tmp)
            if HOOKS:
                test_opencl_failure(tmp)
            test_diverge(tmp)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
