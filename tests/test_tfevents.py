#!/usr/bin/env python3
"""TensorBoard logs (`clvae train --logdir`) read back independently: TFRecord framing with
CRC-32C computed here bit by bit, Event messages parsed by protoc's Python code from a
minimal .proto (tests/data/tfevent.proto), and every value checked against metrics.csv and
the checkpoint: one `loss` per batch at steps counted from 0, whose mean per epoch is the
epoch's train loss; test_loss/test_recon/test_kl per epoch; a new file on --resume; the
losses up to the stop after SIGINT; a --logdir that is a file refused.
usage: test_tfevents.py PATH/TO/clvae; exit 77 without OpenCL or without protoc and
python3-protobuf."""
import csv
import glob
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import google.protobuf  # noqa: F401
except ImportError:  # Debian's python3-protobuf is for Debian's python3
    if os.path.exists('/usr/bin/python3') and os.path.realpath(sys.executable) != os.path.realpath('/usr/bin/python3') \
            and not os.environ.get('CLVAE_TEST_REEXEC'):
        os.environ['CLVAE_TEST_REEXEC'] = '1'
        os.execv('/usr/bin/python3', ['/usr/bin/python3', *sys.argv])
    print('SKIP: python3-protobuf is not installed (apt install python3-protobuf protobuf-compiler)')
    sys.exit(77)

sys.path.insert(0, HERE)
from testlib import check, read_checkpoint, summary, wait_for  # noqa: E402

CLVAE = os.path.abspath(sys.argv[1])


def crc32c(data):
    """CRC-32C (Castagnoli, reflected 0x82F63B78), bit by bit: no table to share a bug with."""
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    """The payloads of a TFRecord file; raises ValueError on a bad length, CRC or a tail."""
    b = open(path, 'rb').read()
    out, i = [], 0
    while i < len(b):
        if i + 12 > len(b):
            raise ValueError(f'{path}: truncated header at {i}')
        n, lc = struct.unpack('<QI', b[i:i + 12])
        if lc != masked(b[i:i + 8]):
            raise ValueError(f'{path}: length CRC wrong at {i}')
        data = b[i + 12:i + 12 + n]
        if len(data) != n or i + 16 + n > len(b):
            raise ValueError(f'{path}: truncated record at {i}')
        dc, = struct.unpack('<I', b[i + 12 + n:i + 16 + n])
        if dc != masked(data):
            raise ValueError(f'{path}: data CRC wrong at {i}')
        out.append(data)
        i += 16 + n
    return out


def events(path, pb):
    evs = []
    for r in records(path):
        e = pb.Event()
        e.ParseFromString(r)
        evs.append(e)
    return evs


def scalars(evs):
    """{tag: [(step, value, wall_time)]} of the summary events."""
    out = {}
    for e in evs:
        if e.WhichOneof('what') == 'summary':
            for v in e.summary.value:
                out.setdefault(v.tag, []).append((e.step, v.simple_value, e.wall_time))
    return out


def metrics(d):
    with open(os.path.join(d, 'metrics.csv')) as f:
        return list(csv.DictReader(f))


def near32(x, y):
    """float32 against the CSV's 6 decimals."""
    return abs(x - y) <= 1e-6 * abs(y) + 2e-6


def main(tmp, pb):
    out, logs = os.path.join(tmp, 'run'), os.path.join(tmp, 'logs')
    t_before = time.time()
    p = subprocess.run([CLVAE, 'train', '--limit', '2048', '--epochs', '2', '--out', out, '--logdir', logs, '--quiet'],
                       capture_output=True, text=True)
    check(p.returncode == 0, 'a 2-epoch run with --logdir', p.stdout + p.stderr)
    if p.returncode:
        return
    files = sorted(glob.glob(os.path.join(logs, 'events.out.tfevents.*')))
    host = os.uname().nodename
    name = os.path.basename(files[0]) if files else ''
    parts = name.split('.')
    check(len(files) == 1 and len(parts) >= 5 and parts[3].isdigit() and abs(int(parts[3]) - t_before) < 60
          and '.'.join(parts[4:]) == host, f'one file named events.out.tfevents.<seconds>.<host> ({name})', str(files))
    try:
        evs = events(files[0], pb)
    except (ValueError, IndexError) as e:
        check(False, 'every record has a valid length and masked CRC-32C', str(e))
        return
    check(True, f'every record of {len(evs)} has a valid length and masked CRC-32C, and parses as an Event')
    check(evs[0].WhichOneof('what') == 'file_version' and evs[0].file_version == 'brain.Event:2',
          'the first record is file_version "brain.Event:2"', str(evs[0]))
    s = scalars(evs)
    loss = s.get('loss', [])
    check([st for st, _, _ in loss] == list(range(16)), 'one `loss` per batch at steps 0..15 (8 batches per epoch)',
          str([st for st, _, _ in loss]))
    m = metrics(out)
    for ep in (1, 2):
        batch = [v for st, v, _ in loss if (ep - 1) * 8 <= st < ep * 8]
        mean = sum(batch) / len(batch) if batch else float('nan')
        train = float(m[ep - 1]['train_loss'])
        check(abs(mean - train) <= 1e-5 * train, f'epoch {ep}: the mean of its batch losses is its train loss '
              f'({mean:.6f} vs {train:.6f} in metrics.csv)')
    for tag in ('test_loss', 'test_recon', 'test_kl'):
        got = s.get(tag, [])
        want = [(int(r['epoch']), float(r[tag])) for r in m]
        check(len(got) == len(want) and all(g[0] == w[0] and near32(g[1], w[1]) for g, w in zip(got, want)),
              f'{tag} per epoch (step = epoch) equals metrics.csv', f'{got}\n{want}')
    walls = [w for _, _, w in loss]
    check(all(a <= b for a, b in zip(walls, walls[1:])) and t_before - 1 <= walls[0] <= time.time(),
          'wall times are the run\'s and do not go back')

    # --resume: a new file beside the first; the steps go on
    p = subprocess.run([CLVAE, 'train', '--resume', '--out', out, '--epochs', '3', '--logdir', logs, '--quiet'],
                       capture_output=True, text=True)
    files = sorted(glob.glob(os.path.join(logs, 'events.out.tfevents.*')))
    new = [f for f in files if f != os.path.join(logs, name)]
    ok = p.returncode == 0 and len(files) == 2 and len(new) == 1
    s2 = scalars(events(new[0], pb)) if ok else {}
    check(ok and [st for st, _, _ in s2.get('loss', [])] == list(range(16, 24))
          and [st for st, _, _ in s2.get('test_loss', [])] == [3] and len(events(files[0] if files[0] != new[0] else files[1], pb)) == len(evs),
          '--resume adds a second file (the first unchanged) with loss at steps 16..23 and test_loss at epoch 3',
          p.stdout + p.stderr + str(files))

    # SIGINT in the middle of a run: the losses up to the stop are in the log, flushed. The run
    # is long by construction (1000 epochs) and the signal waits for a state (epoch 1 saved).
    out2, logs2 = os.path.join(tmp, 'int'), os.path.join(tmp, 'logs2')
    proc = subprocess.Popen([CLVAE, 'train', '--epochs', '1000', '--limit', '2048', '--out', out2, '--logdir', logs2,
                             '--quiet'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: read_checkpoint(os.path.join(out2, 'checkpoint.clvae'))['epoch'] >= 1, proc=proc)
    proc.send_signal(signal.SIGINT)
    o, _ = proc.communicate(timeout=60)
    try:
        ck = read_checkpoint(os.path.join(out2, 'checkpoint.clvae'))
        f2 = glob.glob(os.path.join(logs2, 'events.*'))
        steps = [st for st, _, _ in scalars(events(f2[0], pb)).get('loss', [])]
        check(proc.returncode == 130 and ck['step'] > 0 and steps == list(range(ck['step'])),
              f"after SIGINT the log holds the loss of every step done (0..{ck['step'] - 1})", f'{proc.returncode} {o} {steps[-3:]}')
    except (OSError, ValueError, IndexError) as e:
        check(False, 'after SIGINT the log holds the loss of every step done', f'{e} {o}')

    # a beta-VAE: `loss` and test_loss are the optimized recon + beta*KL, as in metrics.csv
    out3, logs3 = os.path.join(tmp, 'beta'), os.path.join(tmp, 'logs3')
    p = subprocess.run([CLVAE, 'train', '--limit', '2048', '--epochs', '1', '--beta', '4', '--out', out3, '--logdir', logs3,
                        '--quiet'], capture_output=True, text=True)
    f3 = glob.glob(os.path.join(logs3, 'events.*'))
    s3 = scalars(events(f3[0], pb)) if p.returncode == 0 and f3 else {}
    m3 = metrics(out3) if p.returncode == 0 else [{}]
    batch = [v for _, v, _ in s3.get('loss', [])]
    ok = len(batch) == 8 and m3[0]
    check(ok and abs(sum(batch) / 8 - float(m3[0]['train_loss'])) <= 1e-5 * float(m3[0]['train_loss'])
          and near32(s3['test_loss'][0][1], float(m3[0]['test_loss']))
          and abs(float(m3[0]['test_loss']) - float(m3[0]['test_recon']) - 4 * float(m3[0]['test_kl'])) < 1e-5,
          '--beta 4: the batch losses average to metrics.csv\'s train loss, and test_loss = test_recon + 4 test_kl '
          'in metrics.csv and the log', p.stderr + str(m3))

    # a --logdir that cannot be a directory is refused before anything starts
    f = os.path.join(tmp, 'afile')
    open(f, 'w').close()
    p = subprocess.run([CLVAE, 'train', '--epochs', '1', '--out', os.path.join(tmp, 'r3'), '--logdir', f],
                       capture_output=True, text=True)
    check(p.returncode == 2 and f in p.stderr and 'logdir' in p.stderr
          and not os.path.exists(os.path.join(tmp, 'r3', 'checkpoint.clvae')),
          '--logdir naming a file is refused (exit 2, naming it), nothing written', p.stderr)


if __name__ == '__main__':
    r = subprocess.run([CLVAE, 'devices'], capture_output=True, text=True)
    if r.returncode == 2 and 'no OpenCL platform' in r.stdout + r.stderr:
        print('SKIP: no OpenCL platform')
        sys.exit(77)
    if not shutil.which('protoc'):
        print('SKIP: protoc is not installed (apt install protobuf-compiler)')
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(['protoc', f'--proto_path={os.path.join(HERE, "data")}', f'--python_out={tmp}', 'tfevent.proto'],
                       check=True)
        sys.path.insert(0, tmp)
        import tfevent_pb2
        main(tmp, tfevent_pb2)
    sys.exit(summary())
