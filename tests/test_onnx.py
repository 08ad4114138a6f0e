#!/usr/bin/env python3
"""`clvae export --format onnx`, in three modes (each exits 77 without its tool):
  --files    the output directory's rules as for the TF.js export (DIR, --force, --part, a
             symlink or directory in the way, nothing half written), bad formats, and the
             README's JavaScript example being tests/tfjs/onnx_example.js (needs OpenCL only);
  --format   Debian's python3-onnx checker (full_check) on every file, protoc --decode with
             the vendored tests/data/onnx.proto, the declared inputs, outputs, opset and
             metadata, and every initializer equal to the checkpoint's tensor, bit for bit, in
             ONNX's order (read by a protobuf reader of this file, cross-checked with onnx's);
  --runtime  ONNX Runtime (onnxruntime-node in tests/tfjs) runs both parts: the decoder's
             images equal `clvae grid`'s tiles within 1/255 at every grid z; the encoder's
             z_mean and z_log_var equal clvae's own (tests/onnx_encode.c) within 1e-4;
             encoder -> z_mean -> decoder equals `clvae reconstruct`'s decodings within
             1/255; the README example decodes what clvae does; and, as controls, a dense
             kernel stored transposed and a convolution kernel left in TF's order must fail
             those comparisons.
Models: the TF.js example's (on Fashion-MNIST when installed), --hidden 1024,512, 12x10 RGB,
latent 3, and two convolutional ones (with asymmetric pads and output_padding).
usage: test_onnx.py PATH/TO/clvae PATH/TO/onnx_encode --files|--format|--runtime"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from testlib import check, no_opencl, read_checkpoint, read_png, summary

CLVAE, ENCODE, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TFJS = os.path.join(HERE, 'tfjs')
FASHION = '/usr/share/datasets/fashion-mnist'
ONNX_PYTHON = '/usr/bin/python3'  # Debian's python3-onnx lives there, whatever python3 runs this
GRID_N, LO, HI = 5, -2.0, 2.0
COUNT = 16  # test images encoded and reconstructed

CONV = ('--encoder conv:8:3:2:valid,conv:16:3:2:same '
        '--decoder dense:196,reshape:7:7:4,deconv:8:1:2:same,deconv:8:3:2:same')
CONV_RGB = '--encoder conv:4:3:1:same,conv:8:3:2:valid --decoder reshape:1:1:2,deconv:6:3:2:valid,dense:32'
# name, image shape (None: Fashion-MNIST, or 28x28 made up without it), the layers as the
# command line (and the export's metadata) writes them, other training flags
MODELS = [('default', None, '--hidden 512', []),
          ('deep', None, '--hidden 1024,512', []),
          ('rgb', (12, 10, 3), '--hidden 64,32', []),
          ('latent3', None, '--hidden 512', ['--latent-dim', '3']),
          ('conv', None, CONV, []),
          ('conv-rgb', (12, 10, 3), CONV_RGB, [])]


def run(*args):
    p = subprocess.run([CLVAE, *args], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


# ---- data and models ----

def idx(magic, dims, data):
    return struct.pack('>ii', magic, dims[0]) + b''.join(struct.pack('>i', d) for d in dims[1:]) + data


def read_idx_images(path):
    """(count, pixels) of an IDX image file, raw or gzip."""
    b = open(path, 'rb').read()
    if b[:2] == b'\x1f\x8b':
        b = gzip.decompress(b)
    rank = b[3]
    dims = struct.unpack('>%di' % rank, b[4:4 + 4 * rank])
    return dims[0], b[4 + 4 * rank:]


def make_data(tmp, shape):
    """A data folder for images of `shape`: Fashion-MNIST when installed and 28x28 grey,
    else made up here (IDX rank 3 or 4; smooth patterns with noise, so that trained weights
    have structure). Returns (folder, test images file)."""
    if shape is None:
        if os.path.exists(os.path.join(FASHION, 't10k-images-idx3-ubyte.gz')):
            return FASHION, os.path.join(FASHION, 't10k-images-idx3-ubyte.gz')
        shape = (28, 28)
    d = os.path.join(tmp, 'data-' + 'x'.join(map(str, shape)))
    name = f'idx{len(shape) + 1}-ubyte'
    if not os.path.isdir(d):
        os.makedirs(d)
        H, W = shape[0], shape[1]
        C = shape[2] if len(shape) > 2 else 1
        for s, n in (('train', 512), ('t10k', 64)):
            px = bytearray()
            for i in range(n):
                for y in range(H):
                    for x in range(W):
                        for c in range(C):
                            wave = ((x * (i % 5 + 1) + y * (c + 1) + i) % 11) - 5
                            v = 128 + 20 * wave + (i * 131 + x * 7 + y * 13) % 23
                            px.append(max(0, min(255, int(v))))
            open(os.path.join(d, f'{s}-images-{name}'), 'wb').write(idx(2049 + len(shape), (n, *shape), bytes(px)))
            labels = idx(2049, (n,), bytes(i % 10 for i in range(n)))
            open(os.path.join(d, f'{s}-labels-idx1-ubyte'), 'wb').write(labels)
    return d, os.path.join(d, f't10k-images-{name}')


def make_model(tmp, name, shape, layers, extra):
    """A checkpoint trained for one short epoch at a high learning rate (so that the biases
    are no longer zero). Returns a dict with its path, data and checkpoint fields."""
    data, test_images = make_data(tmp, shape)
    out = os.path.join(tmp, 'run-' + name)
    limit = ['--limit', '1024'] if data == FASHION else []
    rc, o = run('train', '--epochs', '1', '--data', data, '--out', out, '--seed', '9', '--batch-size', '64',
                '--lr', '0.01', '--quiet', *limit, *layers.split(), *extra)
    check(rc == 0, f'{name}: a trained checkpoint ({" ".join([layers, *extra])})', o)
    path = os.path.join(out, 'checkpoint.clvae')
    return {'name': name, 'path': path, 'data': data, 'test_images': test_images, 'layers': layers,
            'ck': read_checkpoint(path) if rc == 0 else None}


def export(m, tmp, *extra):
    out = os.path.join(tmp, 'onnx-' + m['name'])
    rc, o = run('export', '--model', m['path'], '--format', 'onnx', '--out', out, *extra)
    check(rc == 0 and sorted(os.listdir(out)) == ['decoder.onnx', 'encoder.onnx'],
          f"{m['name']}: export --format onnx writes decoder.onnx and encoder.onnx", o)
    return out


# ---- a protobuf reader, independent of the writer and of onnx ----

def varint(b, i):
    v, shift = 0, 0
    while True:
        c = b[i]
        v |= (c & 0x7f) << shift
        i, shift = i + 1, shift + 7
        if c < 0x80:
            return v, i


def fields(b, start, end):
    """(field number, value) of each field of the message b[start:end]: an int for a varint,
    (offset, length) for a length-delimited field."""
    i = start
    while i < end:
        key, i = varint(b, i)
        f, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
        elif wire == 2:
            n, i = varint(b, i)
            v, i = (i, n), i + n
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        else:
            raise ValueError(f'wire type {wire} at {i}')
        yield f, v
    if i != end:
        raise ValueError('a field runs past its message')


def initializers(b):
    """{name: (dims, data_type, raw offset, raw length)} of a ModelProto's graph."""
    out = {}
    for f, v in fields(b, 0, len(b)):
        if f != 7:  # ModelProto.graph
            continue
        for g, t in fields(b, v[0], v[0] + v[1]):
            if g != 5:  # GraphProto.initializer
                continue
            dims, dtype, name, raw = [], 0, '', (0, 0)
            for k, x in fields(b, t[0], t[0] + t[1]):
                if k == 1:
                    dims.append(x)
                elif k == 2:
                    dtype = x
                elif k == 8:
                    name = b[x[0]:x[0] + x[1]].decode()
                elif k == 9:
                    raw = x
            out[name] = (dims, dtype, raw[0], raw[1])
    return out


# ---- what the checkpoint says the export must hold ----

def part_layers(ck, part):
    """[(name, kind, kernel offset, bias offset, rows, cols)] of a part's layers, named as
    the net names them (kinds: 0 dense, 2 output, 3 conv, 4 deconv)."""
    recs = ck['layers']
    s = [r[0] for r in recs].index(1)
    if part == 'encoder':
        named = [(f'encoder_hidden{i + 1}', r) for i, r in enumerate(recs[:s - 1])] + [('z_heads', recs[s - 1])]
    else:
        named = [(f'decoder_hidden{i + 1}', r) for i, r in enumerate(recs[s + 1:-1])] + [('decoder_output', recs[-1])]
    return [(n, r[0], r[4], r[5], r[2], r[3]) for n, r in named]


def onnx_order(ck, kind, ko, dims):
    """The floats a kernel must hold in the export: a dense one as stored (in, out); a
    convolution's, stored (K*K*C, F) as TF's [K, K, C, F], as ONNX's [F, C, K, K]."""
    p = ck['params']
    if kind in (0, 2):
        return p[ko:ko + dims[0] * dims[1]]
    F, C, K = dims[0], dims[1], dims[2]
    return [p[ko + ((ky * K + kx) * C + c) * F + f] for f in range(F) for c in range(C) for ky in range(K)
            for kx in range(K)]


def to_tf_order(floats, dims):
    """The control's mistake: an ONNX [F, C, K, K] kernel written in TF's [K, K, C, F] order."""
    F, C, K = dims[0], dims[1], dims[2]
    return [floats[((f * C + c) * K + ky) * K + kx] for ky in range(K) for kx in range(K) for c in range(C)
            for f in range(F)]


def transposed(floats, dims):
    """The control's mistake: a dense (in, out) kernel written as (out, in)."""
    r, c = dims
    return [floats[i * c + j] for j in range(c) for i in range(r)]


def rewrite(src, dst, name, mistake):
    """A copy of an ONNX file with initializer `name`'s floats rearranged by `mistake`."""
    b = bytearray(open(src, 'rb').read())
    dims, _, off, n = initializers(bytes(b))[name]
    vals = struct.unpack('<%df' % (n // 4), bytes(b[off:off + n]))
    b[off:off + n] = struct.pack('<%df' % (n // 4), *mistake(vals, dims))
    open(dst, 'wb').write(bytes(b))
    return dst


# ---- --files ----

def listing(d):
    return sorted(os.listdir(d))


def files_mode(tmp):
    m = make_model(tmp, 'default', None, '--hidden 512', [])
    out = export(m, tmp)
    before = {f: open(os.path.join(out, f), 'rb').read() for f in listing(out)}
    rc, o = run('export', '--model', m['path'], '--format', 'onnx', '--out', out)
    check(rc == 2 and '--force' in o and all(open(os.path.join(out, f), 'rb').read() == v for f, v in before.items()),
          'a non-empty DIR without --force: exit 2, its files untouched', o)
    rc, o = run('export', '--model', m['path'], '--format', 'onnx', '--out', out, '--force')
    check(rc == 0 and listing(out) == ['decoder.onnx', 'encoder.onnx'] and all(
        open(os.path.join(out, f), 'rb').read() == v for f, v in before.items()),
        '--force overwrites, with the same bytes (the export is deterministic)', o)
    for part in ('decoder', 'encoder'):
        d = os.path.join(tmp, 'part-' + part)
        rc, o = run('export', '--model', m['path'], '--format', 'onnx', '--out', d, '--part', part)
        check(rc == 0 and listing(d) == [part + '.onnx'] and open(os.path.join(d, part + '.onnx'), 'rb').read() ==
              before[part + '.onnx'], f'--part {part} writes only {part}.onnx, the same file', o)
    # a symlink in place of decoder.onnx is refused and left alone, and the encoder is not
    # written either: both files appear together or not at all
    d = os.path.join(tmp, 'link')
    os.makedirs(d)
    target = os.path.join(tmp, 'elsewhere.onnx')
    open(target, 'wb').write(b'keep')
    os.symlink(target, os.path.join(d, 'decoder.onnx'))
    rc, o = run('export', '--model', m['path'], '--format', 'onnx', '--out', d, '--force')
    check(rc == 2 and listing(d) == ['decoder.onnx'] and os.readlink(os.path.join(d, 'decoder.onnx')) == target and
          open(target, 'rb').read() == b'keep' and 'decoder.onnx' in o,
          'a symlink in place of decoder.onnx: refused (exit 2), left alone, encoder.onnx not written, no stray '
          'file', o)
    d = os.path.join(tmp, 'dir-in-the-way')
    os.makedirs(os.path.join(d, 'encoder.onnx'))
    rc, o = run('export', '--model', m['path'], '--format', 'onnx', '--out', d, '--force')
    check(rc == 2 and listing(d) == ['encoder.onnx'] and os.path.isdir(os.path.join(d, 'encoder.onnx')),
          'a directory in place of encoder.onnx: refused (exit 2), decoder.onnx not written', o)
    rc, o = run('export', '--model', m['path'], '--format', 'onnx', '--out', d, '--force', '--part', 'decoder')
    check(rc == 0 and listing(d) == ['decoder.onnx', 'encoder.onnx'], '... while --part decoder writes beside it', o)
    # DIR as for the TF.js export: created when missing, with its missing parents (as train --out), a file refused
    rcs = {f: [run('export', '--model', m['path'], '--format', f, '--out', path)[0]
               for path in (os.path.join(tmp, 'new-' + f), os.path.join(tmp, 'no-' + f, 'dir'), target)]
           for f in ('tfjs', 'onnx')}
    check(rcs['onnx'] == rcs['tfjs'] == [0, 0, 2]
          and listing(os.path.join(tmp, 'new-onnx')) == ['decoder.onnx', 'encoder.onnx']
          and listing(os.path.join(tmp, 'no-onnx', 'dir')) == ['decoder.onnx', 'encoder.onnx']
          and open(target, 'rb').read() == b'keep',
          'DIR as for the TF.js export: created when missing (exit 0), with its missing parents as train --out does, '
          'and not over a file (exit 2, the file untouched)', rcs)
    rc, o = run('export', '--model', os.path.join(tmp, 'nope.clvae'), '--format', 'onnx', '--out', os.path.join(tmp, 'x'))
    check(rc == 2 and 'nope.clvae' in o and not os.path.exists(os.path.join(tmp, 'x')), 'a missing model: exit 2, no DIR', o)
    rc, o = run('export', '--model', m['path'], '--format', 'onnx2', '--out', os.path.join(tmp, 'y'))
    check(rc == 2 and 'tfjs, onnx' in o, 'an unknown --format: exit 2, naming the formats', o)
    rc, o = run('export', '--help')
    check(rc == 0 and 'onnx' in o and 'decoder.onnx' in o, 'export --help tells of the ONNX export', o)
    readme_example()


def readme_example():
    """The README shows tests/tfjs/onnx_example.js, which --runtime runs: the same text."""
    readme = open(os.path.join(ROOT, 'README.md')).read()
    example = open(os.path.join(TFJS, 'onnx_example.js')).read()
    blocks = readme.split('```js\n')[1:]
    check(any(b.split('```')[0] == example for b in blocks),
          "the README's JavaScript example is tests/tfjs/onnx_example.js, word for word")


# ---- --format ----

def onnx_summaries(paths):
    """Debian's python3-onnx on each file: the checker's verdict (full_check: strict shape
    inference too) and what the model declares."""
    code = r'''
import json, sys, onnx
def dims(v):
    return [d.dim_param if d.HasField('dim_param') else d.dim_value for d in v.type.tensor_type.shape.dim]
out = {}
for p in sys.argv[1:]:
    m = onnx.load(p)
    try:
        onnx.checker.check_model(m, full_check=True)
        err = ''
    except Exception as e:
        err = str(e) or type(e).__name__
    out[p] = {'checker': err, 'ir_version': m.ir_version, 'opsets': [[o.domain, o.version] for o in m.opset_import],
              'producer': [m.producer_name, m.producer_version], 'doc': m.doc_string,
              'metadata': {e.key: e.value for e in m.metadata_props},
              'inputs': [[v.name, dims(v), v.type.tensor_type.elem_type] for v in m.graph.input],
              'outputs': [[v.name, dims(v), v.type.tensor_type.elem_type] for v in m.graph.output],
              'initializers': {t.name: [list(t.dims), t.data_type] for t in m.graph.initializer},
              'ops': [n.op_type for n in m.graph.node]}
print(json.dumps(out))
'''
    p = subprocess.run([ONNX_PYTHON, '-c', code, *paths], capture_output=True, text=True, timeout=600)
    check(p.returncode == 0, 'python3-onnx loads every file', p.stderr)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def format_checks(m, out, summary_of, version):
    ck, name = m['ck'], m['name']
    H, W, C, L = ck['height'], ck['width'], ck['channels'], ck['latent']
    declared = {'decoder': ([['z', ['N', L], 1]], [['image', ['N', C, H, W], 1]]),
                'encoder': ([['image', ['N', C, H, W], 1]], [['z_mean', ['N', L], 1], ['z_log_var', ['N', L], 1]])}
    for part in ('decoder', 'encoder'):
        path = os.path.join(out, part + '.onnx')
        s, what = summary_of[path], f'{name} {part}.onnx'
        check(s['checker'] == '', f'{what}: onnx.checker.check_model(full_check=True) passes', s['checker'])
        check(s['ir_version'] == 8 and len(s['opsets']) == 1 and s['opsets'][0][0] == '' and
              13 <= s['opsets'][0][1] <= 17, f"{what}: IR version 8, one default-domain opset in 13..17 ({s['opsets']})",
              s)
        check((s['inputs'], s['outputs']) == tuple(declared[part]),
              f'{what}: inputs and outputs float32 with N a dim_param, every other dimension exact', (s['inputs'], s['outputs']))
        meta = s['metadata']
        check(meta.get('clvae_version') == version and meta.get('architecture') == m['layers'] and
              meta.get('epoch') == str(ck['epoch']) and meta.get('latent_dim') == str(L) and meta.get('part') == part and
              version in s['doc'] and m['layers'] in s['doc'] and s['producer'] == ['clvae', version],
              f"{what}: doc_string and metadata_props name clvae {version}, '{m['layers']}', epoch {ck['epoch']}", s)
        b = open(path, 'rb').read()
        mine = initializers(b)
        check({k: [v[0], v[1]] for k, v in mine.items()} == s['initializers'],
              f"{what}: this test's protobuf reader and onnx's agree on the initializers", (mine, s['initializers']))
        layers = part_layers(ck, part)
        floats = {k for k, v in mine.items() if v[1] == 1}
        want = {f'{n}/{t}' for n, *_ in layers for t in ('kernel', 'bias')}
        check(floats == want and all(k.endswith('/shape') for k, v in mine.items() if v[1] != 1),
              f'{what}: initializers named as the layer list names its tensors', sorted(mine))
        bad = []
        for lname, kind, ko, bo, _, _ in layers:
            kd, _, off, n = mine[lname + '/kernel']
            bd, _, boff, bn = mine[lname + '/bias']
            if b[off:off + n] != struct.pack('<%df' % (n // 4), *onnx_order(ck, kind, ko, kd)):
                bad.append(lname + '/kernel')
            if b[boff:boff + bn] != struct.pack('<%df' % bd[0], *ck['params'][bo:bo + bd[0]]):
                bad.append(lname + '/bias')
        check(not bad, f"{what}: every kernel and bias is the checkpoint's, bit for bit, in ONNX's order", bad)
        p = subprocess.run(['protoc', '--proto_path', os.path.join(HERE, 'data'), '--decode=onnx.ModelProto',
                            'onnx.proto'], input=b, capture_output=True, timeout=300)
        text = p.stdout.decode(errors='replace')
        check(p.returncode == 0 and 'ir_version: 8' in text and f'name: "{layers[-1][0]}/kernel"' in text and
              'key: "architecture"' in text and 'dim_param: "N"' in text,
              f'{what}: protoc --decode=onnx.ModelProto (tests/data/onnx.proto) parses it', p.stderr.decode()[:2000])


def format_mode(tmp):
    missing = [w for w, ok in (('protoc (protobuf-compiler)', shutil.which('protoc')),
                                (f'python3-onnx for {ONNX_PYTHON}', os.path.exists(ONNX_PYTHON) and subprocess.run(
                                    [ONNX_PYTHON, '-c', 'import onnx'], capture_output=True).returncode == 0)) if not ok]
    if missing:
        print('SKIP: missing ' + ', '.join(missing))
        return 77
    version = run('--version')[1].split()[1]
    models = [make_model(tmp, *spec) for spec in MODELS]
    outs = [export(m, tmp) for m in models]
    summary_of = onnx_summaries([os.path.join(o, p) for o in outs for p in ('decoder.onnx', 'encoder.onnx')])
    for m, out in zip(models, outs):
        if m['ck'] and summary_of:
            format_checks(m, out, summary_of, version)
    return None


# ---- --runtime ----

def ort_run(path, feeds):
    """Outputs of an ONNX model in ONNX Runtime: {name: (dims, floats)}; feeds {name: (dims, floats)}."""
    p = subprocess.run(['node', os.path.join(TFJS, 'onnx_run.js'), path], capture_output=True, text=True, timeout=300,
                       input=json.dumps({k: {'dims': d, 'data': list(v)} for k, (d, v) in feeds.items()}))
    if p.returncode != 0:
        check(False, f'ONNX Runtime runs {path}', p.stderr)
        return None
    res = json.loads(p.stdout)
    return {k: (v['dims'], v['data']) for k, v in res['results'].items()}


def grid_latents(L, dx, dy):
    """The z of each tile of `clvae grid --n 5 --range -2,2 --dims dx,dy` (its help's formula)."""
    z = []
    for r in range(GRID_N):
        for c in range(GRID_N):
            t = [0.0] * L
            t[dx] = LO + c * (HI - LO) / (GRID_N - 1)
            t[dy] = LO + (GRID_N - 1 - r) * (HI - LO) / (GRID_N - 1)
            z.append(t)
    return z


def byte(v):
    return int(min(max(v, 0.0), 1.0) * 255 + 0.5)


def worst_vs_tiles(images, H, W, C, rows, tile_at):
    """The largest difference in pixel values between NCHW images (n, C, H, W floats in
    0..1, as bytes) and the PNG tiles tile_at(i) = (tile row, tile column)."""
    worst = 0
    for i in range(len(images) // (C * H * W)):
        tr, tc = tile_at(i)
        for ch in range(C):
            for y in range(H):
                line, base = rows[tr * H + y], ((i * C + ch) * H + y) * W
                worst = max(worst, max(abs(byte(images[base + x]) - line[(tc * W + x) * C + ch]) for x in range(W)))
    return worst


def grid_check(m, tmp, decoder, dims=(0, 1), label=''):
    """The worst pixel difference between the decoder's images and `clvae grid`'s tiles, and
    how much the tiles differ among themselves (the largest range of one pixel over the
    tiles: a comparison of near-constant pictures would prove little)."""
    ck = m['ck']
    H, W, C, L = ck['height'], ck['width'], ck['channels'], ck['latent']
    png = os.path.join(tmp, f"grid-{m['name']}-{dims[0]}{dims[1]}.png")
    if not os.path.exists(png):
        rc, o = run('grid', '--model', m['path'], '--out', png, '--n', str(GRID_N), '--range', f'{LO},{HI}',
                    '--dims', f'{dims[0]},{dims[1]}')
        check(rc == 0, f"{m['name']}: clvae grid", o)
    z = grid_latents(L, *dims)
    res = ort_run(decoder, {'z': ([len(z), L], [x for t in z for x in t])})
    if res is None:
        return None
    d, images = res['image']
    w, h, ch, rows = read_png(png)
    if d != [len(z), C, H, W] or (w, h, ch) != (GRID_N * W, GRID_N * H, C):
        check(False, f"{m['name']}{label}: decoder output {d}, grid {w}x{h}x{ch}")
        return None
    spread = max(max(rows[r * H + y][(c * W + x) * C + k] for r in range(GRID_N) for c in range(GRID_N)) -
                 min(rows[r * H + y][(c * W + x) * C + k] for r in range(GRID_N) for c in range(GRID_N))
                 for y in range(H) for x in range(W) for k in range(C))
    return worst_vs_tiles(images, H, W, C, rows, lambda t: divmod(t, GRID_N)), spread


def test_images(m):
    """The first COUNT test images, as NCHW floats (bytes / 255), and their bytes (NHWC)."""
    ck = m['ck']
    H, W, C = ck['height'], ck['width'], ck['channels']
    _, px = read_idx_images(m['test_images'])
    px = px[:COUNT * H * W * C]
    nchw = [px[((i * H + y) * W + x) * C + c] / 255.0 for i in range(COUNT) for c in range(C) for y in range(H)
            for x in range(W)]
    return nchw, px


def clvae_encoding(m):
    p = subprocess.run([ENCODE, m['path'], m['data'], str(COUNT)], capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, f"{m['name']}: clvae's own encoding of {COUNT} test images (onnx_encode)", p.stderr)
    return json.loads(p.stdout) if p.returncode == 0 else None


def encoder_check(m, encoder, images, own):
    """The largest differences between the ONNX encoder's z_mean and z_log_var and clvae's."""
    ck = m['ck']
    res = ort_run(encoder, {'image': ([COUNT, ck['channels'], ck['height'], ck['width']], images)})
    if res is None or own is None:
        return None, None, None
    L = ck['latent']
    mean, logvar = res['z_mean'][1], res['z_log_var'][1]
    dm = max(abs(mean[i * L + j] - own['mu'][i][j]) for i in range(COUNT) for j in range(L))
    dv = max(abs(logvar[i * L + j] - own['log_var'][i][j]) for i in range(COUNT) for j in range(L))
    return dm, dv, mean


def reconstruct_check(m, tmp, decoder, mean, px):
    """encoder -> z_mean -> decoder in ONNX Runtime against `clvae reconstruct`: its
    reconstruction tiles (the worst difference), and its originals being our input."""
    ck = m['ck']
    H, W, C, L = ck['height'], ck['width'], ck['channels'], ck['latent']
    png = os.path.join(tmp, f"recon-{m['name']}.png")
    rc, o = run('reconstruct', '--model', m['path'], '--out', png, '--count', str(COUNT), '--data', m['data'])
    check(rc == 0, f"{m['name']}: clvae reconstruct", o)
    res = ort_run(decoder, {'z': ([COUNT, L], mean)})
    if rc != 0 or res is None:
        return None
    w, h, ch, rows = read_png(png)
    orig = [px[((i * H + y) * W + x) * C + c] / 255.0 for i in range(COUNT) for c in range(C) for y in range(H)
            for x in range(W)]
    same = worst_vs_tiles(orig, H, W, C, rows, lambda i: (2 * (i // 8), i % 8))
    check(same == 0, f"{m['name']}: reconstruct's originals are the images given to the ONNX encoder")
    return worst_vs_tiles(res['image'][1], H, W, C, rows, lambda i: (2 * (i // 8) + 1, i % 8))


def runtime_model(m, tmp, results):
    name, ck = m['name'], m['ck']
    out = export(m, tmp)
    dec, enc = os.path.join(out, 'decoder.onnx'), os.path.join(out, 'encoder.onnx')
    for dims in ([(0, 1), (2, 0)] if ck['latent'] > 2 else [(0, 1)]):
        worst, spread = grid_check(m, tmp, dec, dims) or (None, None)
        results['grid'].append(worst)
        check(worst is not None and worst <= 1 and spread >= 16,
              f'{name}: the ONNX decoder draws clvae grid --dims {dims[0]},{dims[1]} (max pixel difference {worst}/255; '
              f'a pixel varies by up to {spread}/255 over the tiles)')
    images, px = test_images(m)
    own = clvae_encoding(m)
    dm, dv, mean = encoder_check(m, enc, images, own)
    results['mean'].append(dm)
    spread = max(max(r[j] for r in own['mu']) - min(r[j] for r in own['mu']) for j in range(ck['latent'])) if own else 0
    check(dm is not None and dm <= 1e-4 and dv <= 1e-4 and spread >= 0.01,
          f"{name}: the ONNX encoder's z_mean and z_log_var are clvae's (max differences {dm:.2g}, {dv:.2g}; "
          f"the means vary by up to {spread:.3g} over the images)" if dm is not None else f'{name}: encoder')
    if mean is not None:
        worst = reconstruct_check(m, tmp, dec, mean, px)
        results['recon'].append(worst)
        check(worst is not None and worst <= 1,
              f'{name}: encoder -> z_mean -> decoder draws clvae reconstruct (max pixel difference {worst}/255)')
    return out


def controls(models, outs, tmp):
    """Deliberately wrong weight orders must fail the same comparisons."""
    by = dict(zip([m['name'] for m in models], zip(models, outs)))
    m, out = by['default']
    bad = rewrite(os.path.join(out, 'decoder.onnx'), os.path.join(tmp, 'bad-dense.onnx'), 'decoder_output/kernel', transposed)
    worst = (grid_check(m, tmp, bad, label=' (control)') or [None])[0]
    check(worst is not None and worst > 1,
          f'control: decoder_output/kernel stored transposed fails the grid comparison (max pixel difference {worst})')
    m, out = by['conv']
    dims = initializers(open(os.path.join(out, 'decoder.onnx'), 'rb').read())['decoder_hidden3/kernel'][0]
    bad = rewrite(os.path.join(out, 'decoder.onnx'), os.path.join(tmp, 'bad-deconv.onnx'), 'decoder_hidden3/kernel',
                  to_tf_order)
    worst = (grid_check(m, tmp, bad, label=' (control)') or [None])[0]
    check(worst is not None and worst > 1, f'control: a ConvTranspose kernel {dims} left in TF\'s [K, K, C, F] order '
          f'fails the grid comparison (max pixel difference {worst})')
    bad = rewrite(os.path.join(out, 'encoder.onnx'), os.path.join(tmp, 'bad-conv.onnx'), 'encoder_hidden2/kernel',
                  to_tf_order)
    images, _ = test_images(m)
    dm, _, _ = encoder_check(m, bad, images, clvae_encoding(m))
    check(dm is not None and dm > 1e-4, f"control: a Conv kernel left in TF's order fails the encoder comparison "
          f'(max z_mean difference {dm})')


def example_check(m, out, tmp):
    """tests/tfjs/onnx_example.js, the README's, decodes z = (1, -1): grid tile (3, 3)."""
    p = subprocess.run(['node', os.path.join(TFJS, 'onnx_example.js'), os.path.join(out, 'decoder.onnx')],
                       capture_output=True, text=True, timeout=300)
    ok = p.returncode == 0
    res = json.loads(p.stdout) if ok else {}
    ck = m['ck']
    H, W, C = ck['height'], ck['width'], ck['channels']
    if ok and res.get('dims') == [1, C, H, W]:
        _, _, _, rows = read_png(os.path.join(tmp, f"grid-{m['name']}-01.png"))
        worst = worst_vs_tiles(res['pixels'], H, W, C, rows, lambda i: (3, 3))
    else:
        worst = None
    check(worst is not None and worst <= 1,
          f"the README's example (node onnx_example.js) decodes clvae's z = (1, -1) (max pixel difference {worst})",
          p.stdout[:300] + p.stderr)


def runtime_mode(tmp):
    if not shutil.which('node') or not os.path.isdir(os.path.join(TFJS, 'node_modules', 'onnxruntime-node')):
        print('SKIP: node or tests/tfjs/node_modules/onnxruntime-node missing (npm ci --ignore-scripts in tests/tfjs)')
        return 77
    results = {'grid': [], 'mean': [], 'recon': []}
    models = [make_model(tmp, *spec) for spec in MODELS]
    outs = [runtime_model(m, tmp, results) if m['ck'] else None for m in models]
    if all(m['ck'] for m in models):
        controls(models, outs, tmp)
        example_check(models[0], outs[0], tmp)
    got = {k: [x for x in v if x is not None] for k, v in results.items()}
    print(f"max pixel difference, decoder vs grid: {max(got['grid'], default=None)}/255; encoder -> decoder vs "
          f"reconstruct: {max(got['recon'], default=None)}/255; z_mean vs clvae: {max(got['mean'], default=None)}")
    return None


def main():
    if no_opencl(CLVAE):
        print('SKIP: no OpenCL platform')
        return 77
    modes = {'--files': files_mode, '--format': format_mode, '--runtime': runtime_mode}
    if MODE not in modes:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if modes[MODE](tmp) == 77:
            return 77
    return summary()


if __name__ == '__main__':
    sys.exit(main())
