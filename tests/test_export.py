#!/usr/bin/env python3
"""`clvae export --format tfjs`: model.json has the layers-model structure, weights.bin holds
the checkpoint's tensors in manifest order, a non-empty output needs --force; and with
--tfjs, TF.js itself (tests/tfjs, npm) loads the decoder with tf.loadLayersModel() over HTTP
and its predict() matches the pixels of `clvae grid`.
usage: test_export.py PATH/TO/clvae [--tfjs]"""
import http.server
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import zlib

from testlib import check, read_checkpoint, read_png, summary

CLVAE = sys.argv[1]
TFJS = '--tfjs' in sys.argv
HERE = os.path.dirname(os.path.abspath(__file__))


def run(*args):
    p = subprocess.run([CLVAE, *args], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr




def idx(magic, dims, data):
    return struct.pack('>ii', magic, dims[0]) + b''.join(struct.pack('>i', d) for d in dims[1:]) + data


def make_model(tmp, name='run', shape=(28, 28), hidden='512'):
    """A freshly initialized checkpoint (clvae train --epochs 0) on a small synthetic set of
    images of `shape` (H, W) or (H, W, C): IDX rank 3 or 4."""
    d = os.path.join(tmp, 'data-' + name)
    os.makedirs(d)
    pixels = 1
    for x in shape:
        pixels *= x
    for s, n in (('train', 300), ('t10k', 100)):
        open(os.path.join(d, f'{s}-images-idx{len(shape) + 1}-ubyte'), 'wb').write(
            idx(2049 + len(shape), (n, *shape), bytes((i * 7) % 256 for i in range(n * pixels))))
        open(os.path.join(d, f'{s}-labels-idx1-ubyte'), 'wb').write(idx(2049, (n,), bytes(i % 10 for i in range(n))))
    rc, out = run('train', '--epochs', '0', '--data', d, '--out', os.path.join(tmp, name), '--seed', '9', '--batch-size',
                  '64', '--hidden', hidden)
    check(rc == 0, f'an initialized checkpoint to export ({"x".join(map(str, shape))}, hidden {hidden})', out)
    return os.path.join(tmp, name, 'checkpoint.clvae')


def checkpoint_tensors(path):
    """The exported layers' tensors, located through the checkpoint's own layer records:
    the decoder is every layer after the sampling one; the encoder the layers before it,
    the heads cut to their μ columns. Returns (layers by part, as (in, out, act, kernel rows, bias))."""
    ck = read_checkpoint(path)
    p, L, recs = ck['params'], ck['latent'], ck['layers']
    s = [r[0] for r in recs].index(1)  # the SAMPLE layer

    def tensors(rec, cols=None):
        kind, act, n_in, n_out, ko, bo = rec
        c = n_out if cols is None else cols
        kernel = [x for i in range(n_in) for x in p[ko + i * n_out:ko + i * n_out + c]]
        return (n_in, c, {0: 'linear', 1: 'relu', 2: 'sigmoid'}[act], kernel, list(p[bo:bo + c]))
    enc = [tensors(r) for r in recs[:s - 1]] + [tensors(recs[s - 1], L)]
    return {'decoder': [tensors(r) for r in recs[s + 1:]], 'encoder': enc}


def check_structure(out_dir, part, want):
    m = json.load(open(os.path.join(out_dir, 'model.json')))
    top = m.get('modelTopology', {})
    layers = top.get('config', {}).get('layers', [])
    ok = (m.get('format') == 'layers-model' and isinstance(m.get('generatedBy'), str) and m.get('convertedBy', 1) is None
          and top.get('class_name') == 'Sequential' and top.get('backend') == 'tensor_flow.js' and 'keras_version' in top
          and len(layers) == len(want) and all(l['class_name'] == 'Dense' for l in layers))
    check(ok, f'{part}: model.json is a layers-model Sequential of {len(want)} Dense layers', json.dumps(m)[:800])
    cfgs = [l['config'] for l in layers]
    ok = all(c['units'] == w[1] and c['activation'] == w[2] and c['use_bias'] is True and c['trainable'] is True
             and c['dtype'] == 'float32' and isinstance(c['name'], str) for c, w in zip(cfgs, want))
    check(ok and cfgs[0].get('batch_input_shape') == [None, want[0][0]], f'{part}: layer configs (units, activation, input shape)', cfgs)
    # named as the TF.js example's tf.layers.dense calls name them (its page asks for them):
    # dense_Dense1.. for the encoder's hidden layers, then the decoder's; the μ head is z_mean
    d = len(want) - 1
    names = ([f'dense_Dense{d + 1 + i}' for i in range(d + 1)] if part == 'decoder'
             else [f'dense_Dense{i + 1}' for i in range(d)] + ['z_mean'])
    check([c['name'] for c in cfgs] == names, f"{part}: layers named as the example names them ({', '.join(names)})",
          [c['name'] for c in cfgs])
    man = m['weightsManifest']
    specs = man[0]['weights']
    names = [n for c in cfgs for n in (f"{c['name']}/kernel", f"{c['name']}/bias")]
    shapes = [s for w in want for s in ([w[0], w[1]], [w[1]])]
    ok = (len(man) == 1 and man[0]['paths'] == ['weights.bin'] and [s['name'] for s in specs] == names
          and [s['shape'] for s in specs] == shapes and all(s['dtype'] == 'float32' for s in specs))
    check(ok, f'{part}: weightsManifest names, shapes and dtypes', specs)
    w = open(os.path.join(out_dir, 'weights.bin'), 'rb').read()
    vals = struct.unpack('<%df' % (len(w) // 4), w)
    expect = [x for t in want for x in t[3] + t[4]]
    check(len(w) % 4 == 0 and list(vals) == expect, f'{part}: weights.bin equals the checkpoint tensors, bit for bit')


def tfjs_check(tmp, model, what):
    mods = os.path.join(HERE, 'tfjs', 'node_modules', '@tensorflow', 'tfjs')
    if not shutil.which('node') or not os.path.isdir(mods):
        print('SKIP: node or tests/tfjs/node_modules missing (npm install in tests/tfjs)')
        return 77
    ck = read_checkpoint(model)
    H, W, C = ck['height'], ck['width'], ck['channels']
    out = os.path.join(tmp, 'web-' + what)
    rc, o = run('export', '--model', model, '--format', 'tfjs', '--out', out)
    rc2, o2 = run('grid', '--model', model, '--out', os.path.join(tmp, 'g.png'), '--n', '4', '--range', '-2,2')
    check(rc == 0 and rc2 == 0, f'{what}: export and grid', o + o2)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=out)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    z = [[-2 + c * 4 / 3, -2 + (3 - r) * 4 / 3] for r in range(4) for c in range(4)]
    p = subprocess.run(['node', os.path.join(HERE, 'tfjs', 'predict.js'), f'http://127.0.0.1:{srv.server_address[1]}/model.json',
                        json.dumps(z)], capture_output=True, text=True, timeout=300)
    srv.shutdown()
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        check(False, f'{what}: tf.loadLayersModel() loads the exported decoder', p.stdout + p.stderr)
        return
    check(res['inputShape'] == [None, 2], f'{what}: tf.loadLayersModel() loads the exported decoder (input [null, 2])',
          res['inputShape'])
    w, h, ch, rows = read_png(os.path.join(tmp, 'g.png'))
    # unit i of tile t is pixel (i // (W·C), i // C % W), channel i % C: the image stored H, W, C
    worst = max(abs(int(res['out'][t][i] * 255 + 0.5) - rows[(t // 4) * H + i // (W * C)][(t % 4) * W * C + i % (W * C)])
                for t in range(16) for i in range(H * W * C))
    check((w, h, ch) == (4 * W, 4 * H, C) and worst <= 1,
          f"{what}: TF.js predict() matches clvae's decoding in the grid (max pixel difference {worst})")


def main():
    rc, out = run('devices')
    if rc == 2 and 'no OpenCL platform' in out and TFJS:
        print('SKIP: no OpenCL platform')
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(tmp)
        if TFJS:
            if tfjs_check(tmp, model, '28x28') == 77:
                return 77
            tfjs_check(tmp, make_model(tmp, 'rgb', (32, 32, 3), '64,32'), '32x32x3, hidden 64,32')
        else:
            for m in (model, make_model(tmp, 'deep', (12, 10, 3), '24,16,8')):
                t = checkpoint_tensors(m)
                for part in ('decoder', 'encoder'):
                    d = os.path.join(tmp, part + '-' + os.path.basename(os.path.dirname(m)))
                    rc, out = run('export', '--model', m, '--format', 'tfjs', '--out', d, '--part', part)
                    check(rc == 0 and sorted(os.listdir(d)) == ['model.json', 'weights.bin'], f'export --part {part}', out)
                    check_structure(d, part, t[part])
            rc, out = run('export', '--model', model, '--format', 'tfjs', '--out', os.path.join(tmp, 'decoder-run'))
            check(rc == 2 and '--force' in out, 'a non-empty output directory needs --force (exit 2)', out)
            rc, out = run('export', '--model', model, '--format', 'tfjs', '--out', os.path.join(tmp, 'decoder-run'), '--force')
            check(rc == 0, '--force overwrites', out)
            # clvae train leaves OUT/decoder/ (the example's trainer's --savePath), equal to `clvae export`
            dec = os.path.join(tmp, 'run', 'decoder')
            check(sorted(os.listdir(dec)) == ['model.json', 'weights.bin'] and all(
                open(os.path.join(dec, f), 'rb').read() == open(os.path.join(tmp, 'decoder-run', f), 'rb').read()
                for f in ('model.json', 'weights.bin')), 'clvae train leaves OUT/decoder/, the same files as clvae export')
            bad = os.path.join(tmp, 'bad-out')
            os.makedirs(os.path.join(bad, 'decoder', 'model.json'))
            rc, out = run('train', '--epochs', '0', '--data', os.path.join(tmp, 'data-run'), '--out', bad)
            check(rc == 2 and os.path.join(bad, 'decoder', 'model.json') in out
                  and not os.path.exists(os.path.join(bad, 'checkpoint.clvae')),
                  'OUT/decoder/model.json that is not a file: refused before anything is written (exit 2)', out)
            rc, out = run('export', '--model', os.path.join(tmp, 'nope.clvae'), '--format', 'tfjs', '--out', os.path.join(tmp, 'x'))
            check(rc == 2 and 'nope.clvae' in out, 'a missing model: exit 2', out)
            rc, out = run('export', '--model', model, '--format', 'keras', '--out', os.path.join(tmp, 'x'))
            check(rc == 2 and 'keras' in out, 'an unknown --format: exit 2', out)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
