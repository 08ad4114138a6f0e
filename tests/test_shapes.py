#!/usr/bin/env python3
"""Any image shape, any depth, a folder of PNGs: small sets of 32x32 grey IDX (rank 3,
gzip), 32x32x3 IDX (rank 4), 28x30 grey, and a PNG folder with class sub-folders in every
PNG flavour libpng reads train (the test loss after one epoch falls below the loss at
initialization), and grid, sample, reconstruct, scatter and export give pictures of the
right size and colour type; reconstruct's first row is the test images as decoded from
their files (checked against an independent decoding of what this test wrote). Refusals:
a test set of another shape, a PNG of another size, a broken PNG, a test class unknown to
the training set, files mixed with class folders, a FIFO named .png, both idx3 and idx4
files, 2 channels. A format-1 checkpoint (tests/data, written by clvae 1556621) evaluates
and draws exactly as recorded then.
usage: test_shapes.py PATH/TO/clvae [--errors-only]; exit 77 (skip) without OpenCL.
--errors-only runs just the refusals, which come before a device is opened (sanitizer build)."""
import gzip
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading

from testlib import check, have_plots, read_checkpoint, read_png, summary, write_png

CLVAE = sys.argv[1]
PLOTS = have_plots(CLVAE)  # built with cairo: scatter draws; without, it exits 2 saying how to get it
ERRORS_ONLY = '--errors-only' in sys.argv
HERE = os.path.dirname(os.path.abspath(__file__))


def run(*args, timeout=300):
    p = subprocess.run([CLVAE, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def make_images(n, h, w, c, seed):
    """n images (H, W, C) of a class-dependent blob on a dim background, with their labels."""
    rnd = random.Random(seed)
    imgs, labels = [], []
    for i in range(n):
        k = i % 4
        cy, cx = (h * (1 + 2 * (k // 2))) // 4, (w * (1 + 2 * (k % 2))) // 4
        img = bytearray()
        for y in range(h):
            for x in range(w):
                inside = (y - cy) ** 2 + (x - cx) ** 2 <= (min(h, w) // 5) ** 2
                for ch in range(c):
                    base = 200 if inside else 20
                    img.append(max(0, min(255, base + (40 * ch if inside else 0) * (k % 3 == ch) + rnd.randrange(-15, 16))))
        imgs.append(bytes(img))
        labels.append(k)
    return imgs, labels


def write_idx(d, name, imgs, labels, h, w, c, rank, gz=False):
    dims = (len(imgs), h, w) + ((c,) if rank == 4 else ())
    data = struct.pack('>i', 2048 + rank) + b''.join(struct.pack('>i', x) for x in dims) + b''.join(imgs)
    lab = struct.pack('>ii', 2049, len(labels)) + bytes(labels)
    for fname, blob in ((f'{name}-images-idx{rank}-ubyte', data), (f'{name}-labels-idx1-ubyte', lab)):
        if gz:
            with gzip.open(os.path.join(d, fname + '.gz'), 'wb') as f:
                f.write(blob)
        else:
            open(os.path.join(d, fname), 'wb').write(blob)


def idx_set(d, h, w, c, rank, gz=False, ntrain=256, ntest=64):
    os.makedirs(d, exist_ok=True)
    for name, n, seed in (('train', ntrain, 1), ('t10k', ntest, 2)):
        imgs, labels = make_images(n, h, w, c, seed)
        write_idx(d, name, imgs, labels, h, w, c, rank, gz)
    return d


def eval_json(model, data):
    rc, out = run('eval', '--model', model, '--data', data, '--json')
    lines = [ln for ln in out.splitlines() if ln.startswith('{')]
    return json.loads(lines[0]) if rc == 0 and lines else None


def trains_and_draws(tmp, name, data, h, w, c, extra=()):
    """Initialization, one epoch, eval before and after, then every picture and the export."""
    out = os.path.join(tmp, 'run-' + name)
    model = os.path.join(out, 'checkpoint.clvae')
    rc0, o0 = run('train', '--data', data, '--out', out, '--epochs', '0', '--batch-size', '32', '--quiet', *extra)
    before = eval_json(model, data)
    rc1, o1 = run('train', '--data', data, '--out', out, '--resume', '--epochs', '1', '--quiet')
    after = eval_json(model, data)
    ok = rc0 == rc1 == 0 and before and after and after['test_loss'] < before['test_loss']
    check(ok, f'{name}: one epoch lowers the test loss ({before and before["test_loss"]:.2f} -> '
              f'{after and after["test_loss"]:.2f})', o0 + o1)
    ck = read_checkpoint(model)
    check((ck['height'], ck['width'], ck['channels']) == (h, w, c), f'{name}: the checkpoint records the shape {h}x{w}x{c}',
          (ck['height'], ck['width'], ck['channels']))
    n = 3
    pictures = [
        ('grid', ['--n', str(n)], n * w, n * h),
        ('sample', ['--count', '5'], 3 * w, 2 * h),
        ('reconstruct', ['--count', '4', '--data', data], 4 * w, 2 * h),
    ]
    for cmd, args, pw, ph in pictures:
        png = os.path.join(tmp, f'{name}-{cmd}.png')
        rc, o = run(cmd, '--model', model, '--out', png, *args)
        try:
            size = read_png(png)[:3]
        except (OSError, ValueError) as e:
            size = str(e)
        check(rc == 0 and size == (pw, ph, c), f'{name}: {cmd} is {pw}x{ph} with {c} channel(s)', f'{size} {o}')
    png = os.path.join(tmp, f'{name}-scatter.png')
    rc, o = run('scatter', '--model', model, '--out', png, '--data', data)
    if PLOTS:
        check(rc == 0 and read_png(png)[:3] == (1000, 760, 3), f'{name}: scatter', o)
    else:
        check(rc == 2 and 'without plots' in o, f'{name}: scatter without cairo exits 2 saying how to get plots', o)
    rc, o = run('export', '--model', model, '--format', 'tfjs', '--out', os.path.join(tmp, f'{name}-export'))
    units = json.load(open(os.path.join(tmp, f'{name}-export', 'model.json')))['modelTopology']['config']['layers'][-1][
        'config']['units'] if rc == 0 else None
    check(rc == 0 and units == h * w * c, f'{name}: the export decodes to H*W*C = {h * w * c} units', o)
    ok, why = preview(model, data, 2, h, c)
    check(ok, f'{name}: --preview draws {(h + 1) // 2} lines of half blocks in {"colour" if c == 3 else "grey"}', why)
    return model


def preview(model, data, epochs, h, c):
    """train --preview on a terminal (a pty): the decoding of z = 0 in half blocks, h/2 lines,
    in the palette's greys (232-255) for grey models, in its colour cube (16-231) for RGB."""
    import pty
    import re
    out = os.path.dirname(model)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(CLVAE, [CLVAE, 'train', '--resume', '--out', out, '--data', data, '--epochs', str(epochs), '--preview'])
    text = b''
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        text += chunk
    _, status = os.waitpid(pid, 0)
    text = text.decode('utf-8', 'replace')
    lines = [ln for ln in text.splitlines() if '\u2580' in ln]
    colours = {int(x) for x in re.findall(r'\x1b\[[34]8;5;(\d+)m', text)}
    want = range(16, 232) if c == 3 else range(232, 256)
    return os.WEXITSTATUS(status) == 0 and len(lines) == (h + 1) // 2 and colours and all(x in want for x in colours), \
        f'{len(lines)} lines, colours {sorted(colours)[:12]}...'


def png_flavours(d, h, w, rnd):
    """One PNG per flavour libpng reads, each an image like the training set's (its grey
    levels carried by that flavour), with the 8-bit RGB it must decode to."""
    files = []
    sources, _ = make_images(11, h, w, 1, 11)
    flavours = ((0, 1, False), (0, 2, False), (0, 4, True), (0, 8, False), (0, 16, False), (4, 8, False),
                (2, 8, True), (2, 16, False), (6, 8, False), (3, 8, False), (3, 4, False))
    for i, (ctype, depth, interlace) in enumerate(flavours):
        src = sources[i]
        rows, want = [], []
        palette = [(17 * k, 17 * k, 17 * k) for k in range(16)] if ctype == 3 else None
        for y in range(h):
            row, wrow = [], []
            for x in range(w):
                v = src[y * w + x]
                if ctype == 0:
                    s = v >> (8 - depth) if depth < 8 else v * 257 + rnd.randrange(256) if depth == 16 else v
                    row.append(s)
                    v8 = s >> 8 if depth == 16 else s * 255 // ((1 << depth) - 1)
                    wrow += [v8] * 3
                elif ctype == 4:
                    row += [v, rnd.randrange(256)]  # alpha is dropped
                    wrow += [v] * 3
                elif ctype in (2, 6):
                    rgb = [v, max(0, v - 30), min(255, v + 30)]
                    row += [c * 256 + rnd.randrange(256) for c in rgb] if depth == 16 else rgb  # high byte kept
                    row += [rnd.randrange(256)] if ctype == 6 else []
                    wrow += rgb
                else:
                    k = v >> 4
                    row.append(k)
                    wrow += palette[k]
            rows.append(row)
            want.append(bytes(wrow))
        path = os.path.join(d, f'img{i:02d}.png')
        write_png(path, w, h, rows, ctype, depth, palette, interlace)
        files.append((path, want))
    return files


def png_set(tmp, h, w):
    """train/ and test/ with two class folders; test/ holds one image of every flavour."""
    root = os.path.join(tmp, 'pngs')
    rnd = random.Random(5)
    for part, n in (('train', 96), ('test', 0)):
        imgs, labels = make_images(n, h, w, 1, 7)
        for i, (img, k) in enumerate(zip(imgs, labels)):
            cls = os.path.join(root, part, ['circles', 'squares'][k % 2])
            os.makedirs(cls, exist_ok=True)
            write_png(os.path.join(cls, f'{i:03d}.png'), w, h, [list(img[y * w:(y + 1) * w]) for y in range(h)])
    os.makedirs(os.path.join(root, 'test', 'circles'))
    flav = png_flavours(os.path.join(root, 'test', 'circles'), h, w, rnd)  # colour: the whole set becomes RGB
    open(os.path.join(root, 'train', 'README.txt'), 'w').write('not an image: skipped')
    return root, flav


def refusals(tmp, good):
    def refused(what, data, expect, *names):
        rc, o = run('train', '--data', data, '--out', os.path.join(tmp, 'r-' + what.replace(' ', '-')), '--epochs', '1',
                    '--batch-size', '16', timeout=60)
        check(rc == 2 and expect in o and all(nm in o for nm in names) and 'Segmentation' not in o,
              f'refused ({what}): exit 2, says "{expect}" and names {", ".join(names)}', f'rc={rc} {o}')

    d = idx_set(os.path.join(tmp, 'mismatch'), 28, 28, 1, 3, ntrain=64, ntest=16)
    for f in os.listdir(d):
        if f.startswith('t10k'):
            os.remove(os.path.join(d, f))
    imgs, labels = make_images(16, 14, 56, 1, 3)  # the same pixel count, another shape
    write_idx(d, 't10k', imgs, labels, 14, 56, 1, 3)
    refused('test set of another shape', d, 'one shape', 'train-images-idx3-ubyte', '28x28', 't10k-images-idx3-ubyte', '14x56')

    root = os.path.join(tmp, 'bad-size')
    for part in ('train/a', 'test/a'):
        os.makedirs(os.path.join(root, part))
        for i in range(20):
            write_png(os.path.join(root, part, f'{i}.png'), 8, 8, [[i * 10] * 8] * 8)
    write_png(os.path.join(root, 'train/a/odd.png'), 9, 8, [[0] * 9] * 8)
    refused('a PNG of another size', root, 'one size', 'odd.png', '9x8')
    os.remove(os.path.join(root, 'train/a/odd.png'))
    open(os.path.join(root, 'train/a/broken.png'), 'wb').write(b'\x89PNG\r\n\x1a\n' + b'garbage' * 10)
    refused('a broken PNG', root, 'PNG', 'broken.png')
    os.remove(os.path.join(root, 'train/a/broken.png'))
    os.makedirs(os.path.join(root, 'test/zebra'))
    write_png(os.path.join(root, 'test/zebra/z.png'), 8, 8, [[5] * 8] * 8)
    refused('a test class the training set lacks', root, "class 'zebra'", 'zebra')
    os.remove(os.path.join(root, 'test/zebra/z.png'))
    os.rmdir(os.path.join(root, 'test/zebra'))
    write_png(os.path.join(root, 'train/loose.png'), 8, 8, [[5] * 8] * 8)
    refused('files mixed with class folders', root, 'both PNG files', 'loose.png')
    os.remove(os.path.join(root, 'train/loose.png'))
    os.mkfifo(os.path.join(root, 'train/a/pipe.png'))
    refused('a FIFO named .png', root, 'not a regular file', 'pipe.png')
    os.remove(os.path.join(root, 'train/a/pipe.png'))

    d = idx_set(os.path.join(tmp, 'both'), 8, 8, 1, 3, ntrain=32, ntest=8)
    imgs, labels = make_images(32, 8, 8, 1, 1)
    write_idx(d, 'train', imgs, labels, 8, 8, 1, 4)
    refused('both idx3 and idx4 files', d, 'keep one', 'idx3', 'idx4')
    d = idx_set(os.path.join(tmp, 'twoch'), 8, 8, 2, 4, ntrain=32, ntest=8)
    refused('2 channels', d, '2 channels', 'train-images-idx4-ubyte')


def format1_file(path, pixels, hidden=1, latent=1):
    """A format-1 checkpoint (the first release's layout) of a one-hidden-layer model."""
    import zlib
    D, H, L = pixels, hidden, latent
    n = D * H + H + H * 2 * L + 2 * L + L * H + H + H * D + D
    hdr = (b'CLVAECKP' + struct.pack('<II5i4fQqiiid', 1, 128, D, H, L, 0, 8, 1e-3, 0.9, 0.999, 1e-7, 1, 0, 0, 0, 0, 0.0)
           + struct.pack('<Qd', n, 0.0))
    body = hdr.ljust(128, b'\0') + struct.pack('<%df' % (3 * n), *([0.01] * (3 * n)))
    open(path, 'wb').write(body + struct.pack('<I', zlib.crc32(body)))


def format1(tmp):
    """The checkpoint of clvae 1556621 (format 1, --hidden 16, 2 epochs on 10,000 images),
    its `eval --json` and its `grid --n 8 --range -3,3`, recorded then; and a format-1 file
    whose images are not square, which cannot be drawn."""
    bad = os.path.join(tmp, 'format1-30.clvae')
    format1_file(bad, 30)
    rc, o = run('grid', '--model', bad, '--out', os.path.join(tmp, 'f1.png'))
    check(rc == 2 and 'not a square' in o and 'format-1' in o, 'a format-1 checkpoint of 30-pixel images: refused', o)
    ok = os.path.join(tmp, 'format1-36.clvae')
    format1_file(ok, 36)
    rc, o = run('grid', '--model', ok, '--out', os.path.join(tmp, 'f1.png'), '--n', '2')
    check(rc == 0 and read_png(os.path.join(tmp, 'f1.png'))[:3] == (12, 12, 1), 'a format-1 checkpoint of 36 pixels '
          'draws 6x6 grey tiles', o)
    data = os.path.join(HERE, 'data')
    model = os.path.join(data, 'format1-h16.clvae')
    want = json.load(open(os.path.join(data, 'format1-h16.eval.json')))
    if not os.path.isdir('/usr/share/datasets/fashion-mnist'):
        print('SKIP (partly): the format-1 check evaluates on Fashion-MNIST')
        return
    got = eval_json(model, '/usr/share/datasets/fashion-mnist')
    check(got is not None and all(abs(got[k] - want[k]) <= 2e-6 * max(1, abs(want[k])) for k in want),
          f'format-1 checkpoint: eval --json as recorded ({got})', want)
    png = os.path.join(tmp, 'format1-grid.png')
    rc, o = run('grid', '--model', model, '--out', png, '--n', '8', '--range', '-3,3')
    a, b = read_png(png) if rc == 0 else None, read_png(os.path.join(data, 'format1-h16.grid.png'))
    diff = max(abs(x - y) for ra, rb in zip(a[3], b[3]) for x, y in zip(ra, rb)) if a and a[:3] == b[:3] else None
    check(rc == 0 and diff == 0, f'format-1 checkpoint: grid pixels as recorded (max difference {diff})', o)


def main():
    rc, out = run('devices')
    if rc == 2 and 'no OpenCL platform' in out and not ERRORS_ONLY:
        print('SKIP: no OpenCL platform')
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        if ERRORS_ONLY:
            refusals(tmp, None)
            return summary()
        format1(tmp)
        trains_and_draws(tmp, '32x32 grey, IDX rank 3 gzip', idx_set(os.path.join(tmp, 'g32'), 32, 32, 1, 3, gz=True),
                         32, 32, 1)
        trains_and_draws(tmp, '32x32x3, IDX rank 4', idx_set(os.path.join(tmp, 'c32'), 32, 32, 3, 4), 32, 32, 3)
        trains_and_draws(tmp, '28x30 grey, two hidden layers', idx_set(os.path.join(tmp, 'r28'), 28, 30, 1, 3), 28, 30, 1,
                         extra=('--hidden', '48,24', '--latent-dim', '3'))
        root, flav = png_set(tmp, 12, 10)
        model = trains_and_draws(tmp, 'PNG folder with classes', root, 12, 10, 3)
        png = os.path.join(tmp, 'flavours.png')
        n = len(flav)
        rc, o = run('reconstruct', '--model', model, '--out', png, '--count', str(n), '--data', root)
        w, h, ch, rows = read_png(png)
        cols = min(n, 8)
        ok = rc == 0
        for i, (path, want) in enumerate(flav):  # test/ lists the files in name order
            for y in range(12):
                r = rows[(i // cols) * 24 + y]
                ok &= r[(i % cols) * 30:(i % cols) * 30 + 30] == want[y]
        check(ok, f'the {n} PNG flavours (1/2/4/8/16-bit grey, grey+alpha, RGB 8/16, RGBA, palette 8/4, interlaced) '
                  'decode to the expected 8-bit RGB', o)
        rc, o = run('scatter', '--model', model, '--out', os.path.join(tmp, 'pscatter.png'), '--data', root)
        check(rc == (0 if PLOTS else 2), 'scatter of a PNG set names its classes (without cairo: exit 2)', o)
        unl = os.path.join(tmp, 'unlabelled')
        for part in ('train', 'test'):
            os.makedirs(os.path.join(unl, part))
            imgs, _ = make_images(40 if part == 'train' else 8, 8, 8, 1, 9)
            for i, img in enumerate(imgs):
                write_png(os.path.join(unl, part, f'{i}.png'), 8, 8, [list(img[y * 8:(y + 1) * 8]) for y in range(8)])
        m = os.path.join(tmp, 'run-unl')
        rc, o = run('train', '--data', unl, '--out', m, '--epochs', '1', '--batch-size', '8', '--quiet')
        rc2, o2 = run('scatter', '--model', os.path.join(m, 'checkpoint.clvae'), '--data', unl, '--out',
                      os.path.join(tmp, 'unl.png'))
        check(rc == 0 and rc2 == (0 if PLOTS else 2), 'an unlabelled PNG folder trains and scatters in one colour', o + o2)
        refusals(tmp, root)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
