#!/usr/bin/env python3
"""clvae tried as a hostile user would: one group of cases for each class of failure that
clvae 1556621 had (non-square images, sets of other shapes, damaged or padded gzip, special
files, two runs in one directory, non-finite or edited checkpoint fields, sizes that
overflow, meaningless numbers, signals and pipes, knobs and hooks, messages). Every
refusal must exit 2 naming the file, flag or value, quickly, and leave nothing written or
replaced. Special files are made in a temporary directory, never in /dev.
usage: test_hostile.py PATH/TO/clvae [--hooks PATH/TO/clvae-test-hooks]; exit 77 without OpenCL."""
import glob
import gzip
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from testlib import check, have_plots, read_checkpoint, read_png, summary, wait_for

CLVAE = sys.argv[1]
PLOTS = have_plots(CLVAE)
HOOKS = sys.argv[sys.argv.index('--hooks') + 1] if '--hooks' in sys.argv else None
HERE = os.path.dirname(os.path.abspath(__file__))
FORMAT1 = os.path.join(HERE, 'data', 'format1-h16.clvae')


def run(*args, env=None, timeout=120, exe=None, **kw):
    e = dict(os.environ, **(env or {}))
    t0 = time.time()
    try:
        p = subprocess.run([exe or CLVAE, *args], capture_output=True, text=True, env=e, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        return -999, f'timed out after {timeout} s', time.time() - t0
    return p.returncode, p.stdout + p.stderr, time.time() - t0


def run_measured(*args, timeout=60):
    """run(), also returning the peak memory (KB) of that process alone (wait4's rusage)."""
    with tempfile.TemporaryFile() as f:
        t0 = time.time()
        pid = os.posix_spawn(CLVAE, [CLVAE, *args], dict(os.environ),
                             file_actions=[(os.POSIX_SPAWN_DUP2, f.fileno(), 1), (os.POSIX_SPAWN_DUP2, f.fileno(), 2)])
        while True:
            wpid, status, usage = os.wait4(pid, os.WNOHANG)
            if wpid:
                break
            if time.time() > t0 + timeout:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
        took = time.time() - t0
        f.seek(0)
        out = f.read().decode(errors='replace')
    return os.waitstatus_to_exitcode(status), out, took, usage.ru_maxrss


def refused(rc, out, *names):
    return rc == 2 and all(n in out for n in names) and 'Segmentation' not in out and 'core dumped' not in out


def idx(magic, dims, data=b''):
    return struct.pack('>i', magic) + b''.join(struct.pack('>i', d) for d in dims) + data


def make_set(d, h=28, w=28, ntrain=128, ntest=32, test_shape=None):
    os.makedirs(d, exist_ok=True)
    th, tw = test_shape or (h, w)
    for name, n, hh, ww in (('train', ntrain, h, w), ('t10k', ntest, th, tw)):
        px = bytes((i * 37 + (i // (hh * ww)) * 11) % 256 for i in range(n * hh * ww))
        open(os.path.join(d, f'{name}-images-idx3-ubyte'), 'wb').write(idx(2051, (n, hh, ww), px))
        open(os.path.join(d, f'{name}-labels-idx1-ubyte'), 'wb').write(idx(2049, (n,), bytes(i % 10 for i in range(n))))
    return d


def no_temps(d):
    return not glob.glob(os.path.join(d, '**', '*.tmp'), recursive=True)


def edited(src, dst, edit):
    """A copy of the format-1 checkpoint src with edit(bytearray) applied and its CRC redone."""
    b = bytearray(open(src, 'rb').read())
    edit(b)
    b[-4:] = struct.pack('<I', zlib.crc32(bytes(b[:-4])))
    open(dst, 'wb').write(b)
    return dst


def class1_shapes(tmp):
    d = make_set(os.path.join(tmp, 'c1'), 1, 7)
    o = os.path.join(tmp, 'c1-run')
    rc, out, _ = run('train', '--data', d, '--out', o, '--epochs', '1', '--batch-size', '32')
    ck = os.path.join(o, 'checkpoint.clvae')
    rc2, out2, _ = run('grid', '--model', ck, '--out', os.path.join(tmp, 'c1-grid.png'), '--n', '3')
    rc3, out3, _ = run('sample', '--model', ck, '--out', os.path.join(tmp, 'c1-sample.png'), '--count', '4')
    rc4, out4, _ = run('train', '--data', d, '--out', o, '--epochs', '2', '--resume')
    ok = rc == rc2 == rc3 == rc4 == 0 and read_png(os.path.join(tmp, 'c1-grid.png'))[:2] == (21, 3) and no_temps(o)
    check(ok, '1: 1x7 images train, resume, and draw 7x1 tiles (grid 21x3), no temporary file left',
          out + out2 + out3 + out4)


def class2_test_shapes(tmp):
    for shape in ((1, 1), (14, 14), (32, 32)):
        d = make_set(os.path.join(tmp, 'c2-%dx%d' % shape), test_shape=shape)
        rc, out, _ = run('train', '--data', d, '--out', os.path.join(tmp, 'c2-run-%dx%d' % shape), '--epochs', '1',
                         '--batch-size', '32')
        check(refused(rc, out, 'train-images-idx3-ubyte', 't10k-images-idx3-ubyte', '28x28', '%dx%d' % shape),
              f'2: a {shape[0]}x{shape[1]} test set with 28x28 training images is refused, naming both', out)
    d = make_set(os.path.join(tmp, 'c2-14x56'), test_shape=(14, 56))
    for cmd in ('eval', 'reconstruct', 'scatter') if PLOTS else ('eval', 'reconstruct'):  # (scatter needs cairo)
        extra = [] if cmd == 'eval' else ['--out', os.path.join(tmp, f'c2-{cmd}.png')]
        rc, out, _ = run(cmd, '--model', FORMAT1, '--data', d, *extra)
        check(refused(rc, out, '28x28', '14x56', 'format1-h16.clvae'),
              f'2: {cmd} refuses 14x56 images (as many pixels) for a 28x28 model', out)


def class3_gzip(tmp):
    base = make_set(os.path.join(tmp, 'c3-base'))
    raw = open(os.path.join(base, 'train-images-idx3-ubyte'), 'rb').read()

    def stored(data):  # gzip with a stored deflate block: payload bytes are the data itself
        c = zlib.compressobj(0, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    damaged = bytearray(stored(raw))
    damaged[len(damaged) // 2] ^= 0x40  # inflates to the right length; the CRC-32 no longer matches
    cases = {'a gzip whose data was damaged (CRC mismatch)': ('.gz', bytes(damaged), 'corrupt gzip'),
             'a raw file with bytes after the data': ('', raw + b'\0\0\0', 'bytes of data'),
             'a gzip with garbage after the member': ('.gz', gzip.compress(raw) + b'garbage!', 'after the end'),
             'a gzip with a second member': ('.gz', gzip.compress(raw) + gzip.compress(b'more'), 'after the end')}
    for what, (ext, blob, expect) in cases.items():
        d = os.path.join(tmp, 'c3-' + str(abs(hash(what))))
        shutil.copytree(base, d)
        os.remove(os.path.join(d, 'train-images-idx3-ubyte'))
        open(os.path.join(d, 'train-images-idx3-ubyte' + ext), 'wb').write(blob)
        rc, out, _ = run('train', '--data', d, '--out', os.path.join(d, 'run'), '--epochs', '1', '--batch-size', '32')
        check(refused(rc, out, 'train-images-idx3-ubyte', expect) and not os.path.exists(os.path.join(d, 'run', 'checkpoint.clvae')),
              f'3: {what}: refused, naming the file', out)


def class4_special_files(tmp):
    # "at once": a run that blocked on a FIFO would meet run()'s timeout (a failure); the
    # seconds are printed, not bounded, which would measure the machine
    d = make_set(os.path.join(tmp, 'c4'))
    good = os.path.join(tmp, 'c4-good')
    shutil.copytree(d, good)
    os.remove(os.path.join(d, 't10k-images-idx3-ubyte'))
    os.mkfifo(os.path.join(d, 't10k-images-idx3-ubyte'))
    rc, out, took = run('train', '--data', d, '--out', os.path.join(tmp, 'c4-run'), '--epochs', '1', timeout=30)
    check(refused(rc, out, 't10k-images-idx3-ubyte', 'FIFO'), f'4: a FIFO as a data file: refused at once ({took:.1f} s)', out)
    o = os.path.join(tmp, 'c4-metrics')
    os.makedirs(o)
    os.mkfifo(os.path.join(o, 'metrics.csv'))
    rc, out, took = run('train', '--data', good, '--out', o, '--epochs', '1', '--batch-size', '32', timeout=60)
    check(refused(rc, out, 'metrics.csv') and stat.S_ISFIFO(os.lstat(os.path.join(o, 'metrics.csv')).st_mode),
          f'4: a FIFO as metrics.csv: refused at once ({took:.1f} s), left as it is', out)
    o = os.path.join(tmp, 'c4-metrics-link')
    os.makedirs(o)
    elsewhere = os.path.join(tmp, 'c4-elsewhere.csv')
    open(elsewhere, 'w').write('not yours\n')
    os.symlink(elsewhere, os.path.join(o, 'metrics.csv'))
    rc, out, _ = run('train', '--data', good, '--out', o, '--epochs', '1', '--batch-size', '32', timeout=60)
    check(refused(rc, out, 'metrics.csv') and open(elsewhere).read() == 'not yours\n',
          '4: metrics.csv as a symlink: refused, its target untouched', out)
    ck = os.path.join(tmp, 'c4-model.clvae')
    shutil.copy(FORMAT1, ck)
    fifo = os.path.join(tmp, 'c4-out.fifo')
    os.mkfifo(fifo)
    target = os.path.join(tmp, 'c4-target.png')
    open(target, 'wb').write(b'precious')
    link = os.path.join(tmp, 'c4-link.png')
    os.symlink(target, link)
    outs = [('a FIFO', fifo, stat.S_ISFIFO), ('a symlink', link, stat.S_ISLNK)]
    try:
        dev = os.path.join(tmp, 'c4-null')
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        outs.append(('a device node', dev, stat.S_ISCHR))
    except (PermissionError, OSError):
        print('SKIP (partly): cannot make a device node here')
    for what, path, kind in outs:
        rc, out, took = run('grid', '--model', ck, '--out', path, '--n', '2', timeout=30)
        check(refused(rc, out, os.path.basename(path), 'not replaced') and kind(os.lstat(path).st_mode)
              and open(target, 'rb').read() == b'precious' and no_temps(tmp),
              f'4: grid --out {what}: refused, left as it is', out)
    rc, out, _ = run('eval', '--model', fifo, timeout=30)
    check(refused(rc, out, 'c4-out.fifo', 'FIFO'), '4: a FIFO as --model: refused at once', out)


def class5_two_runs(tmp):
    d = make_set(os.path.join(tmp, 'c5'), ntrain=2048, ntest=64)
    o = os.path.join(tmp, 'c5-run')
    run('train', '--data', d, '--out', o, '--epochs', '0', '--batch-size', '32')
    # The first run is long by construction (1000 epochs): it still holds the directory when
    # the second one tries, however fast the machine; it is stopped with SIGINT after.
    args = [CLVAE, 'train', '--data', d, '--out', o, '--resume', '--epochs', '1000']
    a = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = os.path.join(o, '.clvae.lock')
    wait_for(lambda: open(lock).read().strip() == str(a.pid), timeout=60, proc=a)
    rc, out, took = run(*args[1:])
    wait_for(lambda: read_checkpoint(os.path.join(o, 'checkpoint.clvae'))['epoch'] >= 1, proc=a)  # it went on
    a.send_signal(signal.SIGINT)
    a.communicate(timeout=300)
    rows = [r.split(',')[0] for r in open(os.path.join(o, 'metrics.csv')).read().splitlines()[1:]]
    epochs = read_checkpoint(os.path.join(o, 'checkpoint.clvae'))['epoch']
    # at once: before it opens the device (which would say "using platform")
    check(refused(rc, out, str(a.pid), 'in use') and 'using platform' not in out and a.returncode == 130
          and rows == [str(e) for e in range(1, epochs + 1)],
          f'5: a second train into a run in progress exits 2 at once ({took:.1f} s, before opening the device) naming process {a.pid}; the first goes on '
          f'undisturbed (metrics rows {rows}, checkpoint at epoch {epochs})', out)
    k = subprocess.Popen(args[:-1] + [str(epochs + 1000)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: open(lock).read().strip() == str(k.pid), timeout=60, proc=k)
    k.kill()
    k.wait()
    rc, out, _ = run(*args[1:-1], str(read_checkpoint(os.path.join(o, 'checkpoint.clvae'))['epoch'] + 1))
    check(rc == 0, '5: the lock of a killed run does not block the next one', out)


def class6_7_checkpoint_fields(tmp):
    # format 1: 16 input, 20 hidden, 24 latent, 28 loss, 32 batch, 36 lr, 40 beta1, 44 beta2, 48 eps, 52 seed,
    # 60 step, 68 epoch, 72 epoch_step, 76 limit, 80 loss sum, 88 n, 96 seconds; then parameters at 128
    def i32(off, v):
        return lambda b: b.__setitem__(slice(off, off + 4), struct.pack('<i', v))

    def f32(off, v):
        return lambda b: b.__setitem__(slice(off, off + 4), struct.pack('<f', v))
    n = struct.unpack('<Q', open(FORMAT1, 'rb').read()[88:96])[0]
    cases = [('a NaN parameter', f32(128 + 40, float('nan')), 'parameter'),
             ('an infinite Adam moment', f32(128 + 4 * n + 40, float('inf')), 'Adam'),
             ('a negative epoch', i32(68, -3), 'epoch'), ('a negative step', lambda b: b.__setitem__(slice(60, 68), struct.pack('<q', -1)), 'step'),
             ('a negative limit', i32(76, -5), 'limit'), ('lr 0', f32(36, 0.0), 'lr'), ('lr NaN', f32(36, float('nan')), 'lr'),
             ('beta1 = 1', f32(40, 1.0), 'beta1'), ('a batch of 2^31-1', i32(32, 2 ** 31 - 1), 'batch'),
             ('a hidden layer of 2^30 units', i32(20, 2 ** 30), 'hidden'), ('a loss kind of 7', i32(28, 7), 'loss'),
             ('a NaN loss sum', lambda b: b.__setitem__(slice(80, 88), struct.pack('<d', float('nan'))), 'loss sum')]
    for what, edit, field in cases:
        p = edited(FORMAT1, os.path.join(tmp, 'c7.clvae'), edit)
        rc, out, _ = run('eval', '--model', p, '--json')
        check(refused(rc, out, 'damaged checkpoint', field) and '{' not in out,
              f'{6 if "NaN p" in what or "Adam" in what else 7}: {what} behind a valid CRC: "damaged checkpoint", names {field}', out)
    p = edited(FORMAT1, os.path.join(tmp, 'c6-huge.clvae'),
               lambda b: b.__setitem__(slice(128, 128 + 4 * 12544), struct.pack('<12544f', *([1e30] * 12544))))
    rc, out, _ = run('eval', '--model', p, '--json')
    check(rc == 1 and 'not finite' in out and '{' not in out, '6: parameters that overflow: eval says the loss is not '
          'finite (exit 1), and prints no JSON', out)
    d = make_set(os.path.join(tmp, 'c7-data'))
    o = os.path.join(tmp, 'c7-run')
    run('train', '--data', d, '--out', o, '--epochs', '1', '--batch-size', '32')
    ck = os.path.join(o, 'checkpoint.clvae')
    b = bytearray(open(ck, 'rb').read())
    b[80:84] = struct.pack('<i', 50)  # 50 steps into an epoch of 4
    b[-4:] = struct.pack('<I', zlib.crc32(bytes(b[:-4])))
    open(ck, 'wb').write(b)
    rc, out, _ = run('train', '--data', d, '--out', o, '--epochs', '2', '--resume')
    check(refused(rc, out, 'checkpoint.clvae', '50'), '7: an epoch position past the epoch behind a valid CRC: refused', out)


def class8_sizes(tmp):
    d = os.path.join(tmp, 'c8-huge')
    os.makedirs(d)
    for name in ('train', 't10k'):
        with open(os.path.join(d, f'{name}-images-idx3-ubyte'), 'wb') as f:  # sparse: no disk used
            f.write(idx(2051, (1, 32768, 65536)))
            f.truncate(16 + 32768 * 65536)
        open(os.path.join(d, f'{name}-labels-idx1-ubyte'), 'wb').write(idx(2049, (1,), b'\0'))
    # before the images are read: the peak memory says so (a bound on seconds would measure the machine)
    rc, out, took, mem = run_measured('train', '--data', d, '--out', os.path.join(tmp, 'c8-run'), '--epochs', '1',
                                      '--batch-size', '1')
    check(refused(rc, out, 'train-images-idx3-ubyte', '32768') and mem < 200000,
          f'8: one 32768x65536 image: refused from its header in {took:.2f} s, peak {mem // 1024} MB', out)
    d = os.path.join(tmp, 'c8-big')
    os.makedirs(d)
    for name, n in (('train', 2048), ('t10k', 16)):
        with open(os.path.join(d, f'{name}-images-idx3-ubyte'), 'wb') as f:
            f.write(idx(2051, (n, 1024, 1024)))
            f.truncate(16 + n * 1024 * 1024)
        open(os.path.join(d, f'{name}-labels-idx1-ubyte'), 'wb').write(idx(2049, (n,), bytes(n)))
    rc, out, took, mem = run_measured('train', '--data', d, '--out', os.path.join(tmp, 'c8-run2'), '--epochs', '1')
    check(refused(rc, out, 'bytes', '--hidden') and mem < 200000
          and not os.path.exists(os.path.join(tmp, 'c8-run2', 'checkpoint.clvae')),
          f'8: 2048 images of 1024x1024: the model the device cannot hold is refused before the images are read '
          f'({took:.2f} s, peak {mem // 1024} MB)', out)


def class9_numbers(tmp):
    d = make_set(os.path.join(tmp, 'c9'))
    for what, args, expect in (
            ('train --lr 1e-300', ['train', '--data', d, '--out', os.path.join(tmp, 'c9-run'), '--lr', '1e-300'], '--lr'),
            ('grid --range -1e308,1e308', ['grid', '--model', FORMAT1, '--out', os.path.join(tmp, 'c9.png'), '--range',
                                          '-1e308,1e308'], '--range'),
            ('grid --model=', ['grid', '--model=', '--out', os.path.join(tmp, 'c9.png')], '--model'),
            ('grid --out=', ['grid', '--model', FORMAT1, '--out='], '--out'),
            ('eval --model=', ['eval', '--model='], '--model')):
        rc, out, _ = run(*args)
        check(refused(rc, out, expect) and not os.path.exists(os.path.join(tmp, 'c9-run', 'checkpoint.clvae'))
              and not os.path.exists(os.path.join(tmp, 'c9.png')), f'9: {what}: refused, names {expect}', out)


def class10_signals(tmp):
    d = make_set(os.path.join(tmp, 'c10'), ntrain=1024, ntest=64)
    o = os.path.join(tmp, 'c10-pipe')
    p = subprocess.Popen([CLVAE, 'train', '--data', d, '--out', o, '--epochs', '3', '--batch-size', '32'],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdout.read(10)
    p.stdout.close()  # like `| head -c 10`
    p.wait(timeout=300)
    ck = os.path.join(o, 'checkpoint.clvae')
    check(p.returncode == 0 and read_checkpoint(ck)['epoch'] == 3,
          f'10: stdout closed after 10 bytes: training goes on and exits 0 (exit {p.returncode})')
    o = os.path.join(tmp, 'c10-hup')
    p = subprocess.Popen([CLVAE, 'train', '--data', d, '--out', o, '--epochs', '1000', '--batch-size', '32'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: read_checkpoint(os.path.join(o, 'checkpoint.clvae'))['epoch'] >= 1, proc=p)  # training runs
    p.send_signal(signal.SIGHUP)
    _, err = p.communicate(timeout=120)
    rc, out, _ = run('eval', '--model', os.path.join(o, 'checkpoint.clvae'), '--data', d)
    check(p.returncode == 129 and 'SIGHUP' in err and rc == 0, '10: SIGHUP stops training like SIGTERM: exit 129, '
          'checkpoint saved', err + out)
    big = os.path.join(tmp, 'c10-big')
    run('train', '--data', d, '--out', big, '--epochs', '0', '--hidden', '1024', '--batch-size', '64')
    for cmd, args in (('sample', ['--count', '10000']), ('grid', ['--n', '100'])):
        out = os.path.join(tmp, f'c10-{cmd}.png')
        p = subprocess.Popen([CLVAE, cmd, '--model', os.path.join(big, 'checkpoint.clvae'), '--out', out, *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        caught = wait_for(lambda: glob.glob(out + '.*.tmp'), timeout=60, proc=p, poll=0.001)
        if caught:
            p.send_signal(signal.SIGSTOP)  # hold it in the middle of the write
        p.send_signal(signal.SIGTERM)
        p.send_signal(signal.SIGCONT)
        p.wait(timeout=60)
        check(caught and p.returncode == -signal.SIGTERM and not glob.glob(out + '.*.tmp'),
              f'10: SIGTERM during {cmd}\'s write: it ends by the signal and leaves no temporary file', (caught, p.returncode))
    if not HOOKS:
        print('SKIP (partly): no --hooks build for the late-signal case')
        return
    o = os.path.join(tmp, 'c10-late')
    run('train', '--data', d, '--out', o, '--epochs', '0', '--batch-size', '32')
    ck = os.path.join(o, 'checkpoint.clvae')
    p = subprocess.Popen([HOOKS, 'train', '--data', d, '--out', o, '--resume', '--epochs', '1'], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ, CLVAE_TEST_SLOW_CHECKPOINT='1'))
    wait_for(lambda: glob.glob(ck + '.*.tmp'), timeout=120, proc=p, poll=0.005)
    p.send_signal(signal.SIGINT)  # the last epoch is done: its checkpoint is being written
    _, err = p.communicate(timeout=120)
    check(p.returncode == 0 and read_checkpoint(ck)['epoch'] == 1,
          f'10: SIGINT after the last epoch finished: the run is complete, exit 0 (exit {p.returncode})', err)


def class11_knobs(tmp):
    rc, out, _ = run('selftest', '--kernel', 'gemm', '--quick', '--gemm', 'builtin', env={'CLVAE_GEMM_TUNE': '16,4,64,64'})
    check(refused(rc, out, 'CLVAE_GEMM_TUNE', '16,4,64,64'), '11: CLVAE_GEMM_TUNE=16,4,64,64 is refused, not run', out)
    d = make_set(os.path.join(tmp, 'c11'))
    rc, out, _ = run('train', '--data', d, '--out', os.path.join(tmp, 'c11-run'), '--epochs', '1', '--batch-size', '32',
                     env={'CLVAE_TEST_FAIL_LAUNCH': '3', 'CLVAE_TEST_SLOW_CHECKPOINT': '1'})
    lib = [f for f in glob.glob(os.path.join(os.path.dirname(CLVAE), 'libclvae.so*')) if os.path.isfile(f)]
    hooks_in = [f for f in [CLVAE] + lib if b'CLVAE_TEST_' in open(f, 'rb').read()]
    check(rc == 0 and not hooks_in, f'11: the clvae command and libclvae have no test hooks (found in: {hooks_in})', out)


def class12_messages(tmp):
    d = make_set(os.path.join(tmp, 'c12'))
    loop = os.path.join(tmp, 'c12-loop')
    shutil.copytree(d, loop)
    os.remove(os.path.join(loop, 'train-images-idx3-ubyte'))
    os.symlink('train-images-idx3-ubyte', os.path.join(loop, 'train-images-idx3-ubyte'))
    rc, out, _ = run('train', '--data', loop, '--out', os.path.join(tmp, 'c12-run'), '--epochs', '1')
    check(refused(rc, out, 'train-images-idx3-ubyte', 'symbolic links'), '12: a symlink loop is reported as one', out)
    rc, out, _ = run('selftest', '--kernel', 'adam', '--quick', env={'POCL_CACHE_DIR': '/proc/clvae-no-cache'})
    check(rc in (1, 2) and 'POCL_CACHE_DIR' in out, '12: an unusable PoCL cache is named in the message', out)
    rc, out, _ = run('train', '--data', d, '--out', '/tmp/' + 'x' * 102400, '--epochs', '1')
    check(refused(rc, out, '--out', 'bytes'), '12: a 100 KB path: refused with the reason in view', out[:300])
    # a file name of 255 bytes, the longest a file system allows: its temporary name must fit too
    longest = os.path.join(tmp, 'g' * 251 + '.png')
    rc, out, _ = run('grid', '--model', FORMAT1, '--out', longest, '--n', '3')
    check(rc == 0 and read_png(longest)[0] > 0 and no_temps(tmp), '12: a 255-byte file name is written, no temporary left',
          out[-300:])
    o = os.path.join(tmp, 'c12-limit')
    run('train', '--data', make_set(os.path.join(tmp, 'c12-big'), ntrain=512), '--out', o, '--epochs', '1', '--limit', '400',
        '--batch-size', '32')
    rc, out, _ = run('train', '--data', d, '--out', o, '--epochs', '2', '--resume')
    check(refused(rc, out, '400', 'c12/train-images-idx3-ubyte'), '12: --resume on fewer images than the run used: refused', out)


def main():
    rc, out, _ = run('devices')
    if rc == 2 and 'no OpenCL platform' in out:
        print('SKIP: no OpenCL platform')
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        for case in (class1_shapes, class2_test_shapes, class3_gzip, class4_special_files, class5_two_runs,
                     class6_7_checkpoint_fields, class8_sizes, class9_numbers, class10_signals, class11_knobs,
                     class12_messages):
            case(tmp)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
