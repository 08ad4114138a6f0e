#!/usr/bin/env python3
"""What VAE users ask for (issue 20): the conditional VAE, beta, latent walks.

- conditioning works: on a synthetic set whose class decides which quadrant of an 8x8 image
  is bright, `sample --class k` draws quadrant k brightest, for every class;
- the classes come from the data (1 + the largest IDX label, PNG class folders with their
  names), are recorded in the checkpoint, and every refusal names what it refuses;
- sample without --class draws a row per class whose tiles are `sample --class k`'s;
- interpolate: a row of N + 2 tiles whose ends are the test images and whose second and
  second-to-last tiles are their reconstructions; latent endpoints; the class goes along;
- beta: recorded, refused when it changes on --resume, a larger one trades reconstruction for
  KL, and the losses are recon + beta KL;
- resume of a conditional model is bit-exact; the TF.js and ONNX exports take the one-hot.
usage: test_cvae.py PATH/TO/clvae [PATH/TO/onnx_encode]"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from testlib import check, read_checkpoint, read_png, summary, write_png

CLVAE = os.path.abspath(sys.argv[1])
ENCODE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None  # tests/onnx_encode: clvae's own means
FASHION = '/usr/share/datasets/fashion-mnist'


def run(*args, cwd=None):
    p = subprocess.run([CLVAE, *args], capture_output=True, text=True, timeout=600, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


def idx(magic, dims, data):
    return struct.pack('>ii', magic, dims[0]) + b''.join(struct.pack('>i', d) for d in dims[1:]) + data


def quadrant_set(d, n=(1024, 256), classes=4, test_label_shift=0):
    """8x8 grey images: class k has quadrant k bright (200..255), the rest dark (0..40)."""
    os.makedirs(d, exist_ok=True)
    s = 12345
    for name, count in zip(('train', 't10k'), n):
        px, labels = bytearray(), bytearray()
        for i in range(count):
            k = i % classes
            labels.append(k + (test_label_shift if name == 't10k' else 0))
            for y in range(8):
                for x in range(8):
                    s = (s * 1103515245 + 12345) & 0x7fffffff
                    q = (y >= 4) * 2 + (x >= 4)
                    px.append(200 + s % 56 if q == k else s % 41)
        open(os.path.join(d, f'{name}-images-idx3-ubyte'), 'wb').write(idx(2051, (count, 8, 8), bytes(px)))
        open(os.path.join(d, f'{name}-labels-idx1-ubyte'), 'wb').write(idx(2049, (count,), bytes(labels)))
    return d


def tiles(path, h, w):
    """The tiles of a mosaic, row-major, as lists of pixel bytes (grey)."""
    pw, ph, ch, rows = read_png(path)
    out = []
    for ty in range(ph // h):
        for tx in range(pw // w):
            out.append([rows[ty * h + y][(tx * w + x) * ch] for y in range(h) for x in range(w)])
    return out, pw // w, ph // h


def quadrant_means(tile):
    m = [0.0] * 4
    for y in range(8):
        for x in range(8):
            m[(y >= 4) * 2 + (x >= 4)] += tile[y * 8 + x] / 16
    return m


def conditioning(tmp):
    d = quadrant_set(os.path.join(tmp, 'quad'))
    out = os.path.join(tmp, 'quad-run')
    rc, o = run('train', '--data', d, '--out', out, '--conditional', '--epochs', '30', '--batch-size', '32',
                '--hidden', '32', '--quiet')
    ck = read_checkpoint(os.path.join(out, 'checkpoint.clvae'))
    check(rc == 0 and ck['classes'] == ['', '', '', ''], 'train --conditional on IDX labels 0..3: 4 classes, unnamed',
          o + str(ck.get('classes')))
    model = os.path.join(out, 'checkpoint.clvae')
    check(tiles(os.path.join(out, 'preview-epoch0030.png'), 8, 8)[1:] == (10, 4),
          'a conditional run\'s epoch preview: a row per class, 10 tiles along z[0]')
    right = 0
    for k in range(4):
        png = os.path.join(tmp, f'quad{k}.png')
        rc, o = run('sample', '--model', model, '--class', str(k), '--count', '16', '--out', png)
        ts, cols, rows = tiles(png, 8, 8)
        good = sum(max(range(4), key=lambda q: quadrant_means(t)[q]) == k for t in ts)
        right += good
        check(rc == 0 and cols == 4 and rows == 4 and good >= 14,
              f'sample --class {k} --count 16: a 4x4 mosaic; quadrant {k} brightest in {good} of 16 samples', o)
    # without --class: a row per class; row k holds sample --class k's tiles (the same z per column)
    png = os.path.join(tmp, 'quad-rows.png')
    rc, o = run('sample', '--model', model, '--out', png, '--count', '6')
    ts, cols, rows = tiles(png, 8, 8)
    same = rc == 0 and cols == 6 and rows == 4
    for k in range(4):
        one = os.path.join(tmp, f'quad-one{k}.png')
        run('sample', '--model', model, '--class', str(k), '--count', '6', '--out', one)
        tk, _, _ = tiles(one, 8, 8)
        same = same and ts[k * 6:k * 6 + 6] == tk[:6]
    check(same, 'sample without --class on a conditional model: a row per class, row k = sample --class k (6 tiles '
          'a row, column j the same z)', o)
    default = os.path.join(tmp, 'quad-default.png')
    rc, o = run('sample', '--model', model, '--out', default)
    check(rc == 0 and tiles(default, 8, 8)[1:] == (10, 4), 'sample --count defaults to 10 a row for a conditional model', o)
    # grid: --class required (the classes listed), then drawn; --class beyond K refused listing them
    rc, o = run('grid', '--model', model, '--out', os.path.join(tmp, 'g.png'))
    check(rc == 2 and '--class' in o and '0 to 3' in o and not os.path.exists(os.path.join(tmp, 'g.png')),
          'grid on a conditional model without --class: exit 2, listing the classes', o)
    rc, o = run('grid', '--model', model, '--out', os.path.join(tmp, 'g.png'), '--class', '2', '--n', '5')
    check(rc == 0 and tiles(os.path.join(tmp, 'g.png'), 8, 8)[1:] == (5, 5), 'grid --class 2 --n 5: drawn', o)
    for bad in ('4', '-1', 'x', '1.0'):
        rc, o = run('sample', '--model', model, '--out', os.path.join(tmp, 'bad.png'), '--class', bad)
        check(rc == 2 and f"'{bad}'" in o and '0 to 3' in o, f'--class {bad}: exit 2 naming it and the classes', o)
    rc, o = run('eval', '--model', model, '--json')
    e = json.loads(o[o.index('{'):o.index('}') + 1]) if '{' in o else {}
    check(rc == 0 and list(e) == ['test_loss', 'test_recon', 'test_kl', 'images', 'epoch', 'beta'] and e['beta'] == 1,
          'eval --json on a conditional model: the fields in order, beta last', o)
    return d, model


def refusals(tmp, d, model):
    # the test set's labels beyond the training set's classes
    bad = quadrant_set(os.path.join(tmp, 'shifted'), n=(64, 16), test_label_shift=1)
    rc, o = run('train', '--data', bad, '--out', os.path.join(tmp, 'shifted-run'), '--conditional', '--epochs', '1',
                '--batch-size', '16')
    check(rc == 2 and 't10k' in o and 'label of 4' in o and not os.path.exists(os.path.join(tmp, 'shifted-run')),
          'a test label beyond the training set\'s classes: exit 2 naming the file, nothing written', o)
    # unlabelled PNG folder, convolutional layers, more than 256 classes
    root = os.path.join(tmp, 'unlabelled')
    for part in ('train', 'test'):
        os.makedirs(os.path.join(root, part))
        for i in range(8):
            write_png(os.path.join(root, part, f'{i}.png'), 4, 4, [[(i * 30 + x + y) % 256 for x in range(4)] for y in range(4)])
    rc, o = run('train', '--data', root, '--out', os.path.join(tmp, 'u'), '--conditional', '--epochs', '1', '--batch-size', '4')
    check(rc == 2 and 'labels' in o and os.path.join(root, 'train') in o and not os.path.exists(os.path.join(tmp, 'u')),
          '--conditional on an unlabelled PNG folder: exit 2 naming it', o)
    rc, o = run('train', '--data', d, '--out', os.path.join(tmp, 'c'), '--conditional', '--epochs', '1',
                '--encoder', 'conv:4:3:2', '--decoder', 'dense:16')
    check(rc == 2 and 'conv:4:3:2' in o and 'dense layers only' in o, '--conditional with a conv layer: exit 2 naming it', o)
    many = os.path.join(tmp, 'many')
    os.makedirs(many)
    for name, count in (('train', 300), ('t10k', 10)):
        open(os.path.join(many, f'{name}-images-idx3-ubyte'), 'wb').write(idx(2051, (count, 2, 2), bytes(4 * count)))
        open(os.path.join(many, f'{name}-labels-idx1-ubyte'), 'wb').write(idx(2049, (count,), bytes(i % 256 for i in range(count))))
    rc, o = run('train', '--data', many, '--out', os.path.join(tmp, 'm'), '--conditional', '--epochs', '0',
                '--batch-size', '10', '--quiet')
    ck = read_checkpoint(os.path.join(tmp, 'm', 'checkpoint.clvae')) if rc == 0 else {}
    check(rc == 0 and len(ck.get('classes') or []) == 256, 'labels up to 255: 256 classes, the most there are', o)
    # --class on an unconditional model; --conditional or another --beta on a resume
    plain = os.path.join(tmp, 'plain')
    run('train', '--data', d, '--out', plain, '--epochs', '1', '--batch-size', '64', '--quiet')
    for cmd in (['sample'], ['grid'], ['interpolate', '--from-z', '0,0', '--to-z', '1,1']):
        rc, o = run(*cmd, '--model', os.path.join(plain, 'checkpoint.clvae'), '--out', os.path.join(tmp, 'x.png'),
                    '--class', '1')
        check(rc == 2 and '--class' in o and 'not conditional' in o, f'{cmd[0]} --class on an unconditional model: exit 2', o)
    rc, o = run('train', '--resume', '--out', plain, '--epochs', '2', '--conditional')
    check(rc == 2 and '--conditional' in o, '--conditional resuming an unconditional run: exit 2', o)
    rc, o = run('train', '--resume', '--out', plain, '--epochs', '2', '--beta', '2')
    check(rc == 2 and '--beta' in o and 'conflicts' in o, '--beta 2 resuming a run of beta 1: exit 2', o)
    for b in ('-1', '1001', 'nan', 'inf', '', '1e400'):
        rc, o = run('train', '--data', d, '--out', os.path.join(tmp, 'b'), '--beta', b, '--epochs', '1')
        check(rc == 2 and '--beta' in o and not os.path.exists(os.path.join(tmp, 'b')), f'--beta {b!r}: exit 2', o)
    rc, o = run('train', '--data', d, '--out', os.path.join(tmp, 'b0'), '--beta', '1e-400', '--epochs', '0', '--quiet')
    check(rc == 0 and read_checkpoint(os.path.join(tmp, 'b0', 'checkpoint.clvae'))['beta'] == 0,
          '--beta 1e-400 is 0 (the number rule: an underflow is 0)', o)


def png_classes(tmp):
    """A PNG set's class folders are the classes, named; --class takes a name, in any case."""
    root = os.path.join(tmp, 'named')
    for part in ('train', 'test'):
        os.makedirs(os.path.join(root, part, 'durian'))  # an empty class folder stays a class
        for c, name in enumerate(('apple', 'Banana', 'cherry')):
            os.makedirs(os.path.join(root, part, name))
            for i in range(8 if part == 'train' else 2):
                write_png(os.path.join(root, part, name, f'{i}.png'), 4, 4,
                          [[(c * 80 + i * 3 + x * 5 + y) % 256 for x in range(4)] for y in range(4)])
    out = os.path.join(tmp, 'named-run')
    rc, o = run('train', '--data', root, '--out', out, '--conditional', '--epochs', '1', '--batch-size', '4', '--quiet')
    ck = read_checkpoint(os.path.join(out, 'checkpoint.clvae'))
    check(rc == 0 and ck['classes'] == ['Banana', 'apple', 'cherry', 'durian'], 'a PNG set\'s class folders are the '
          'classes, an empty one included, recorded with their names in sorted order', o + str(ck['classes']))
    model = os.path.join(out, 'checkpoint.clvae')
    a, b = (os.path.join(tmp, f'named-{k}.png') for k in 'ab')
    rc, o = run('sample', '--model', model, '--class', 'cherry', '--out', a, '--count', '4')
    rc2, o2 = run('sample', '--model', model, '--class', '2', '--out', b, '--count', '4')
    rc3, o3 = run('sample', '--model', model, '--class', 'BANANA', '--out', b + '2', '--count', '4')
    rc4, o4 = run('sample', '--model', model, '--class', 'kiwi', '--out', b + '3', '--count', '4')
    check(rc == rc2 == rc3 == 0 and open(a, 'rb').read() == open(b, 'rb').read() and rc4 == 2
          and "0 'Banana', 1 'apple', 2 'cherry', 3 'durian'" in o4,
          '--class takes the name (cherry = 2; BANANA matches Banana); an unknown one lists the names', o + o4)


def interpolate(tmp):
    if not os.path.isdir(FASHION):
        print('SKIP (partly): no Fashion-MNIST for the walks')
        return
    out = os.path.join(tmp, 'fm')
    rc, o = run('train', '--limit', '4096', '--epochs', '2', '--out', out, '--conditional', '--quiet')
    model = os.path.join(out, 'checkpoint.clvae')
    walk, recon = os.path.join(tmp, 'walk.png'), os.path.join(tmp, 'recon.png')
    rc, o = run('interpolate', '--model', model, '--from', '0', '--to', '1', '--steps', '8', '--out', walk)
    rc2, o2 = run('reconstruct', '--model', model, '--count', '2', '--out', recon)
    ws, cols, rows = tiles(walk, 28, 28)
    rs, _, _ = tiles(recon, 28, 28)  # row 1: images 0, 1; row 2: their reconstructions
    from testlib import read_png as _rp  # noqa: F401 (the same reader)
    check(rc == rc2 == 0 and (cols, rows) == (10, 1), 'interpolate --from 0 --to 1 --steps 8: one row of 10 tiles', o)
    if rc == rc2 == 0 and len(ws) == 10:
        check(ws[0] == rs[0] and ws[9] == rs[1], 'its end tiles are test images 0 and 1, exactly')
        worst = max(max(abs(p - q) for p, q in zip(ws[1], rs[2])), max(abs(p - q) for p, q in zip(ws[8], rs[3])))
        check(worst <= 1, f'its second and second-to-last tiles are the reconstructions of 0 and 1 (within 1/255: {worst})')
    rc, o = run('interpolate', '--model', model, '--from-z', '-2,0', '--to-z', '2,1', '--steps', '5', '--class', 'Bag',
                '--out', walk)
    check(rc == 0 and tiles(walk, 28, 28)[1:] == (5, 1), 'interpolate between two latent points with --class: 5 tiles', o)
    grid = os.path.join(tmp, 'grid.png')
    rc, o = run('interpolate', '--model', model, '--from-z', '-2,0', '--to-z', '2,0', '--steps', '5', '--class', '8',
                '--out', walk)
    rc2, o2 = run('grid', '--model', model, '--class', '8', '--n', '5', '--range', '-2,2', '--out', grid)
    gs, _, _ = tiles(grid, 28, 28)
    check(rc == rc2 == 0 and tiles(walk, 28, 28)[0] == gs[10:15], 'a walk along z[0] at z[1] = 0 is the grid\'s middle '
          'row (--range -2,2, n 5, the same class)', o + o2)
    for args, what in ((['--from', '0'], 'one end only'), (['--from', '0', '--to-z', '1,1'], 'mixed ends'),
                       (['--from', '0', '--to', '10000'], 'an index past the test set'),
                       (['--from-z', '0', '--to-z', '1,1', '--class', '1'], 'a point of 1 number for latent 2'),
                       (['--from-z', '0,0', '--to-z', '1,1'], 'latent ends without --class'),
                       (['--from', '0', '--to', '1', '--steps', '1'], '--steps 1'),
                       (['--from', '0', '--to', '1', '--steps', '65'], '--steps 65')):
        rc, o = run('interpolate', '--model', model, *args, '--out', os.path.join(tmp, 'no.png'))
        check(rc == 2 and not os.path.exists(os.path.join(tmp, 'no.png')), f'interpolate with {what}: exit 2', o[-300:])
    # exports take the class: TF.js [N, L + K] and [N, D + K]; ONNX inputs z, label / image, label
    tj = os.path.join(tmp, 'tfjs')
    rc, o = run('export', '--model', model, '--format', 'tfjs', '--out', tj)
    layers = json.load(open(os.path.join(tj, 'model.json')))['modelTopology']['config']['layers'] \
        if rc == 0 else []
    check(rc == 0 and layers[0]['config']['batch_input_shape'] == [None, 12],
          'the TF.js decoder of a conditional model takes [N, L + K] = [N, 12]', o)
    rc, o = run('export', '--model', model, '--format', 'tfjs', '--part', 'encoder', '--out', tj + '-enc')
    layers = json.load(open(os.path.join(tj + '-enc', 'model.json')))['modelTopology']['config']['layers'] \
        if rc == 0 else []
    check(rc == 0 and layers[0]['config']['batch_input_shape'] == [None, 794],
          'the TF.js encoder of a conditional model takes [N, D + K] = [N, 794]', o)
    ox = os.path.join(tmp, 'onnx')
    rc, o = run('export', '--model', model, '--format', 'onnx', '--out', ox)
    dec = open(os.path.join(ox, 'decoder.onnx'), 'rb').read() if rc == 0 else b''
    check(rc == 0 and b'label' in dec and b'Concat' in dec and b'T-shirt/top' in dec,
          'the ONNX decoder of a conditional model has a label input joined by Concat, and the class names', o)
    runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tfjs', 'onnx_run.js')
    if rc == 0 and shutil.which('node') and os.path.isdir(os.path.join(os.path.dirname(runner), 'node_modules',
                                                                       'onnxruntime-node')):
        # ONNX Runtime decodes the grid's 25 points with class 8's one-hot: clvae grid --class 8's tiles
        zs = [[-2 + c, 2 - r] for r in range(5) for c in range(5)]
        feed = {'z': {'dims': [25, 2], 'data': [v for z in zs for v in z]},
                'label': {'dims': [25, 10], 'data': [1.0 if k == 8 else 0.0 for _ in zs for k in range(10)]}}
        p = subprocess.run(['node', runner, os.path.join(ox, 'decoder.onnx')], input=json.dumps(feed),
                           capture_output=True, text=True, timeout=300)
        img = json.loads(p.stdout)['results']['image']['data'] if p.returncode == 0 else []
        worst = max((abs(round(255 * img[t * 784 + i]) - gs[t][i]) for t in range(25) for i in range(784)), default=999) \
            if len(img) == 25 * 784 else 999
        check(worst <= 1, f'ONNX Runtime runs the conditional decoder (z, label): clvae grid --class 8\'s tiles '
              f'(max difference {worst}/255)', p.stderr[-300:])
        if ENCODE:  # the encoder (image, label): clvae's own means of the first 4 test images
            import gzip
            raw = gzip.open(os.path.join(FASHION, 't10k-images-idx3-ubyte.gz')).read()[16:16 + 4 * 784]
            labels = gzip.open(os.path.join(FASHION, 't10k-labels-idx1-ubyte.gz')).read()[8:12]
            feed = {'image': {'dims': [4, 1, 28, 28], 'data': [b / 255 for b in raw]},
                    'label': {'dims': [4, 10], 'data': [1.0 if k == lab else 0.0 for lab in labels for k in range(10)]}}
            p = subprocess.run(['node', runner, os.path.join(ox, 'encoder.onnx')], input=json.dumps(feed),
                               capture_output=True, text=True, timeout=300)
            q = subprocess.run([ENCODE, model, FASHION, '4'], capture_output=True, text=True, timeout=300)
            mean = json.loads(p.stdout)['results']['z_mean']['data'] if p.returncode == 0 else []
            own = [v for row in json.loads(q.stdout)['mu'] for v in row] if q.returncode == 0 else []
            d = max((abs(a - b) for a, b in zip(mean, own)), default=9) if len(mean) == len(own) == 8 else 9
            check(d <= 1e-4, f'ONNX Runtime runs the conditional encoder (image, label): clvae\'s means (max difference '
                  f'{d:.2g})', p.stderr[-300:] + q.stderr[-300:])
    else:
        print('SKIP (partly): node or onnxruntime-node missing for the ONNX Runtime check')
    # resume of a conditional beta model is bit-exact
    a, b = os.path.join(tmp, 'ra'), os.path.join(tmp, 'rb')
    base = ['--limit', '1024', '--conditional', '--beta', '2.5', '--quiet']
    run('train', *base, '--epochs', '2', '--out', a)
    run('train', *base, '--epochs', '1', '--out', b)
    rc, o = run('train', '--resume', '--epochs', '2', '--out', b, '--quiet')
    ca, cb = read_checkpoint(os.path.join(a, 'checkpoint.clvae')), read_checkpoint(os.path.join(b, 'checkpoint.clvae'))
    check(rc == 0 and ca['state'] == cb['state'] and ca['beta'] == cb['beta'] == 2.5 and len(ca['classes']) == 10,
          'a conditional model with beta 2.5: 2 epochs straight == 1 + 1 resumed, bit for bit', o)
    # the records behind the CRC: beta and the classes are checked like every other field
    src = bytearray(open(os.path.join(a, 'checkpoint.clvae'), 'rb').read())
    at = 152 + 32 * struct.unpack('<I', src[144:148])[0]
    recs = {}
    while struct.unpack('<I', src[at:at + 4])[0]:
        tag, n = struct.unpack('<II', src[at:at + 8])
        recs[tag] = at + 8
        at += 8 + n
    for what, off, value, want in (('beta 2000', recs[6], struct.pack('<f', 2000), 'beta'),
                                   ('beta NaN', recs[6], struct.pack('<f', float('nan')), 'beta'),
                                   ('300 classes', recs[7], struct.pack('<I', 300), 'classes'),
                                   ('9 class names in a record of 10', recs[7], struct.pack('<I', 9), 'class names'),
                                   ('a name longer than its record', recs[7] + 4, struct.pack('<I', 200), 'class names')):
        b = bytearray(src)
        b[off:off + 4] = value
        b[-4:] = struct.pack('<I', zlib.crc32(bytes(b[:-4])))
        bad = os.path.join(tmp, 'bad.clvae')
        open(bad, 'wb').write(b)
        rc, o = run('eval', '--model', bad)
        check(rc == 2 and 'damaged checkpoint' in o and want in o, f'a checkpoint with {what}: damaged, naming {want}', o[-300:])


def beta(tmp):
    if not os.path.isdir(FASHION):
        return
    res = {}
    for b in ('1', '4'):
        out = os.path.join(tmp, f'beta{b}')
        rc, o = run('train', '--limit', '8192', '--epochs', '3', '--beta', b, '--out', out, '--quiet')
        rc2, o2 = run('eval', '--model', os.path.join(out, 'checkpoint.clvae'), '--json')
        res[b] = json.loads(o2[o2.index('{'):o2.index('}') + 1]) if rc == rc2 == 0 else {}
    one, four = res['1'], res['4']
    check(one and four and four['test_kl'] < one['test_kl'] and four['test_recon'] > one['test_recon']
          and four['beta'] == 4 and abs(four['test_loss'] - four['test_recon'] - 4 * four['test_kl']) < 1e-4,
          f'--beta 4 against 1 (3 epochs, 8192 images): lower KL ({four.get("test_kl")} < {one.get("test_kl")}), higher '
          f'reconstruction ({four.get("test_recon")} > {one.get("test_recon")}); test_loss = recon + 4 KL', str(res))


def main():
    r = subprocess.run([CLVAE, 'devices'], capture_output=True, text=True)
    if r.returncode == 2 and 'no OpenCL platform' in r.stdout + r.stderr:
        print('SKIP: no OpenCL platform')
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        d, model = conditioning(tmp)
        refusals(tmp, d, model)
        png_classes(tmp)
        interpolate(tmp)
        beta(tmp)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
