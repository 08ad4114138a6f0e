#!/usr/bin/env python3
"""Convolutional models from the command line: the layer syntax and every refusal naming its
item, the layer summary (the TF tutorial's 69,989 parameters), --hidden as the dense mirror
of the item lists (identical checkpoints), the checkpoint's lists winning on --resume, a
bit-exact resume, learning on real images, the pictures at the model's shape, the memory
check with the patch workspace, and a 64x64 RGB PNG set that the test writes itself
(grid, sample, reconstruct, serve's /api/decode, the TF.js export decoding like grid).
usage: test_conv.py PATH/TO/clvae"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from testlib import check, read_checkpoint, read_png, summary, wait_for, write_png

CLVAE = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = '/usr/share/datasets/fashion-mnist'
TUTORIAL = ['--encoder', 'conv:32:3:2:valid,conv:64:3:2:valid',
            '--decoder', 'dense:1568,reshape:7:7:32,deconv:64:3:2,deconv:32:3:2']


def run(*args, timeout=600, env=None):
    p = subprocess.run([CLVAE, *args], capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout + p.stderr


def json_line(out):
    """The JSON object a command printed (its stdout line), or {}."""
    for line in out.splitlines():
        if line.startswith('{'):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return {}


def idx(magic, dims, data):
    import struct
    return struct.pack('>ii', magic, dims[0]) + b''.join(struct.pack('>i', d) for d in dims[1:]) + data


def small_set(d, shape=(12, 10), n=(96, 32)):
    """A synthetic IDX set of `shape` images (rank 3, or rank 4 with channels)."""
    os.makedirs(d, exist_ok=True)
    pixels = 1
    for x in shape:
        pixels *= x
    for name, count in zip(('train', 't10k'), n):
        open(os.path.join(d, f'{name}-images-idx{len(shape) + 1}-ubyte'), 'wb').write(
            idx(2049 + len(shape), (count, *shape), bytes((i * 37 + i // pixels * 11) % 256 for i in range(count * pixels))))
        open(os.path.join(d, f'{name}-labels-idx1-ubyte'), 'wb').write(idx(2049, (count,), bytes(i % 3 for i in range(count))))
    return d


def refusals(tmp):
    d = small_set(os.path.join(tmp, 'small'))  # 12x10 grey
    cases = [  # (flags, what the message must name)
        (['--encoder', 'conv:8:3:2', '--decoder', 'dense:16,reshape:6:5:8,deconv:8:3:1,conv:4:16:1'], "item 4 'conv:4:16:1'"),
        (['--encoder', 'conv:0:3:1', '--decoder', 'dense:4'], "item 1 'conv:0:3:1'"),
        (['--encoder', 'conv:5000:3:1', '--decoder', 'dense:4'], "item 1 'conv:5000:3:1'"),
        (['--encoder', 'conv:8:3:9', '--decoder', 'dense:4'], "item 1 'conv:8:3:9'"),
        (['--encoder', 'conv:8:3', '--decoder', 'dense:4'], "item 1 'conv:8:3'"),
        (['--encoder', 'conv:8:3:1:full', '--decoder', 'dense:4'], "item 1 'conv:8:3:1:full'"),
        (['--encoder', 'dense:0', '--decoder', 'dense:4'], "item 1 'dense:0'"),
        (['--encoder', 'pool:2', '--decoder', 'dense:4'], "item 1 'pool:2'"),
        (['--encoder', 'dense:8,,dense:4', '--decoder', 'dense:4'], "item 2 ''"),
        (['--encoder', 'dense:8,', '--decoder', 'dense:4'], "item 2 ''"),
        (['--encoder', 'reshape:a:b:c', '--decoder', 'dense:4'], "item 1 'reshape:a:b:c'"),
        (['--encoder', 'dense:64,conv:8:3:1', '--decoder', 'dense:4'], '--encoder item 2 (conv:8:3:1:same): needs a spatial input'),
        (['--encoder', 'dense:8', '--decoder', 'dense:100,reshape:7:7:2'], '--decoder item 2 (reshape:7:7:2): must follow a vector of 98'),
        (['--encoder', 'conv:4:3:2:valid,conv:4:3:2:valid,conv:4:3:1:valid', '--decoder', 'dense:4'],
         '--encoder item 3 (conv:4:3:1:valid): its input 2x1x4 is smaller than the 3x3 kernel'),
        (['--encoder', 'dense:8', '--decoder', 'dense:30,reshape:3:5:2,deconv:4:3:2'],
         "--decoder item 3 (deconv:4:3:2:same): the decoder ends spatial at 6x10x4, but the output layer"),
        (['--encoder', 'dense:8', '--decoder', 'reshape:1:1:2,deconv:4:3:2'], 'ends spatial at 2x2x4'),
        (['--encoder', 'reshape:12:10:1', '--decoder', 'dense:4'], '--encoder item 1 (reshape:12:10:1): must follow a vector'),
        (['--encoder', ','.join(['dense:4'] * 9), '--decoder', 'dense:4'], 'more than 8 layers'),
        (['--encoder', 'conv:8:3:2'], '--encoder needs --decoder'),
        (['--decoder', 'dense:8'], '--decoder needs --encoder'),
        (['--hidden', '16', '--encoder', 'dense:16', '--decoder', 'dense:16'], '--hidden and --encoder/--decoder'),
        (['--init', 'he'], "--init 'he'"),
    ]
    for i, (flags, want) in enumerate(cases):
        out = os.path.join(tmp, f'refused{i}')
        rc, o = run('train', '--data', d, '--out', out, '--epochs', '1', '--batch-size', '16', *flags)
        check(rc == 2 and want in o and 'Segmentation' not in o and not os.path.exists(os.path.join(out, 'checkpoint.clvae')),
              f'refused (exit 2) naming what is wrong: {" ".join(flags)[:90]}', f'rc={rc} want {want!r}: {o[-600:]}')
    rc, o = run('bench', '--encoder', 'conv:8:3:2', '--decoder', 'pool:2', '--steps', '10')
    check(rc == 2 and "item 1 'pool:2'" in o, 'bench refuses a bad item too (exit 2)', o)
    for tool in ('ref_trainer', 'step_ab', 'gemm_bench'):
        path = os.path.join(os.path.dirname(os.path.dirname(CLVAE)), 'tools', tool)
        if os.path.exists(path):
            p = subprocess.run([path, '--encoder', 'conv:4:3:2', '--decoder', 'pool:1', '-'], capture_output=True, text=True)
            check(p.returncode == 2 and 'pool:1' in p.stderr, f'tools/{tool} refuses a bad item (exit 2)', p.stderr)
    path = os.path.join(os.path.dirname(os.path.dirname(CLVAE)), 'tools', 'ref_trainer')
    if os.path.exists(path):
        p = subprocess.run([path, '--encoder', 'conv:4:3:2', '--decoder', 'dense:8', '--data', d], capture_output=True,
                           text=True)
        check(p.returncode == 2 and 'convolutional layers are not supported' in p.stderr,
              'tools/ref_trainer (dense only) refuses a conv model (exit 2)', p.stderr)
    return d


def summary_and_mirror(tmp, d):
    out = os.path.join(tmp, 'tutorial0')
    rc, o = run('train', '--epochs', '0', '--out', out, *TUTORIAL)
    lines = [ln for ln in o.splitlines() if ln.startswith('  ')]
    check(rc == 0 and '69989 parameters' in o and len(lines) == 9
          and re.search(r'conv 3x3/2 valid relu\s+28x28x1 -> 13x13x32\s+320 parameters', o)
          and re.search(r'deconv 3x3/2 same relu\s+14x14x64 -> 28x28x32\s+18464 parameters', o)
          and re.search(r'deconv 3x3/1 same sigmoid\s+28x28x32 -> 28x28x1\s+289 parameters', o),
          "the tutorial's model: one line per layer with shapes and parameters, 69,989 in all", o)
    ck = read_checkpoint(os.path.join(out, 'checkpoint.clvae'))
    check(ck['version'] == 3 and ck['n'] == 69989 and ck['init'] == 'torch' and ck['depth'] == 0
          and ck['encoder'] == ['conv:32:3:2:valid', 'conv:64:3:2:valid']
          and ck['decoder'] == ['dense:1568', 'reshape:7:7:32', 'deconv:64:3:2:same', 'deconv:32:3:2:same'],
          'the checkpoint (format 3) records the items and the initializer (auto: torch with convolutions)', ck['encoder'])
    # --hidden A,B is --encoder dense:A,dense:B --decoder dense:B,dense:A: the same file, bit for bit
    a, b = os.path.join(tmp, 'mirror-hidden'), os.path.join(tmp, 'mirror-items')
    base = ['train', '--data', d, '--epochs', '2', '--batch-size', '16', '--seed', '4']
    rc1, o1 = run(*base, '--out', a, '--hidden', '24,8')
    rc2, o2 = run(*base, '--out', b, '--encoder', 'dense:24,dense:8', '--decoder', 'dense:8,dense:24')
    same = rc1 == rc2 == 0 and open(os.path.join(a, 'checkpoint.clvae'), 'rb').read() == \
        open(os.path.join(b, 'checkpoint.clvae'), 'rb').read()
    check(same and read_checkpoint(os.path.join(a, 'checkpoint.clvae'))['hidden'] == [24, 8],
          '--hidden 24,8 and --encoder dense:24,dense:8 --decoder dense:8,dense:24: identical checkpoints', o1 + o2)
    rc, o = run('train', '--resume', '--out', b, '--epochs', '3', '--hidden', '24,8', '--quiet')
    check(rc == 0, 'the mirror resumes with --hidden (the same layers, however spelled)', o)


def conv_runs(tmp, d):
    """A conv model on the small set: resume rules, bit-exact resume, pictures."""
    flags = ['--encoder', 'conv:6:3:2,conv:8:3:1:valid', '--decoder', 'dense:60,reshape:6:5:2,deconv:4:3:2']
    base = ['train', '--data', d, '--batch-size', '16', *flags]
    a, b = os.path.join(tmp, 'c-straight'), os.path.join(tmp, 'c-split')
    rc1, o1 = run(*base, '--epochs', '3', '--out', a)
    rc2, o2 = run(*base, '--epochs', '1', '--out', b)
    rc3, o3 = run('train', '--resume', '--epochs', '3', '--out', b)
    pa, pb = (read_checkpoint(os.path.join(x, 'checkpoint.clvae'))['state'] for x in (a, b))
    check(rc1 == rc2 == rc3 == 0 and pa == pb, 'a conv model: 3 epochs straight == 1, then --resume to 3 (bitwise)',
          o1 + o2 + o3)
    rc, o = run('train', '--resume', '--epochs', '4', '--out', b, '--encoder', 'conv:6:3:2', '--decoder', 'dense:60')
    check(rc == 2 and 'conflicts with' in o and 'conv:6:3:2:same,conv:8:3:1:valid' in o,
          'other --encoder/--decoder on --resume: exit 2 naming both lists', o)
    rc, o = run('train', '--resume', '--epochs', '4', '--out', b, '--init', 'glorot')
    check(rc == 2 and '--init glorot conflicts' in o, 'another --init on --resume: exit 2', o)
    rc, o = run('train', '--resume', '--epochs', '4', '--out', b, *flags, '--quiet')
    check(rc == 0, 'the same lists on --resume are accepted', o)
    model = os.path.join(b, 'checkpoint.clvae')
    for cmd, args, want in (('grid', ['--n', '3'], (3 * 10, 3 * 12)), ('sample', ['--count', '4'], (2 * 10, 2 * 12)),
                            ('reconstruct', ['--count', '2', '--data', d], None)):
        png = os.path.join(tmp, f'c-{cmd}.png')
        rc, o = run(cmd, '--model', model, '--out', png, *args)
        w, h, ch, _ = read_png(png) if rc == 0 else (0, 0, 0, None)
        check(rc == 0 and ch == 1 and (want is None or (w, h) == want) and w % 10 == 0 and h % 12 == 0,
              f'{cmd} of a conv model: 12x10 tiles ({w}x{h})', o)
    rc, o = run('eval', '--model', model, '--json')
    check(rc == 0 and json_line(o).get('test_loss', 0) > 0, 'eval of a conv model (on the data the run recorded)', o)
    rc, o = run('train', '--data', d, '--out', os.path.join(tmp, 'c-big'), '--batch-size', '96', '--epochs', '1',
                '--encoder', 'conv:4096:15:1,conv:4096:15:1', '--decoder', 'dense:8')
    check(rc == 2 and 'conv:4096:15:1:same' in o and 'too large' in o, 'a kernel past 2^31 values: refused naming its item', o)


def learning(tmp):
    if not os.path.isdir(DATA):
        print(f'SKIP (partly): no Fashion-MNIST in {DATA}')
        return
    # the memory check counts the patches: a batch whose patch matrix (batch·28·28 rows of at
    # least 15·15 values) passes the device's largest buffer, while every activation fits in
    # one and stays under the 2^31-value index limit, is refused up front naming its bytes
    rc, o = run('devices', '--json')
    devs = json.JSONDecoder().raw_decode(o[o.index('['):])[0] if rc == 0 and '[' in o else []
    max_alloc = devs[0]['max_alloc_bytes'] if devs else 0
    batch = max_alloc // (784 * 225 * 4) + 1
    if not max_alloc or batch * 784 * 256 >= 2 ** 31 or batch > 60000:
        print(f'SKIP (partly): the device allows {max_alloc} bytes per buffer: no patch matrix under 2^31 values passes it')
    else:
        t0 = time.time()
        rc, o = run('train', '--out', os.path.join(tmp, 'c-huge'), '--batch-size', str(batch), '--epochs', '1',
                    '--encoder', 'conv:1:15:1', '--decoder', 'dense:8')
        m = re.search(r'needs a (\d+)-byte buffer', o)
        check(rc == 2 and m is not None and int(m.group(1)) >= batch * 784 * 225 * 4 and '--batch-size' in o
              and time.time() - t0 < 30 and not os.path.exists(os.path.join(tmp, 'c-huge')),
              f'a conv model whose patches the device cannot hold (batch {batch}): refused before training, naming the sizes', o[-500:])
    out = os.path.join(tmp, 'tutorial')
    rc0, o0 = run('train', '--epochs', '0', '--out', out, *TUTORIAL, '--limit', '3072')
    rc1, before = run('eval', '--model', os.path.join(out, 'checkpoint.clvae'), '--json')
    rc2, o2 = run('train', '--resume', '--epochs', '2', '--out', out, '--quiet')
    rc3, after = run('eval', '--model', os.path.join(out, 'checkpoint.clvae'), '--json')
    lb, la = (json_line(x).get('test_loss', 0) for x in (before, after))
    check(rc0 == rc1 == rc2 == rc3 == 0 and la < 0.8 * lb,
          f"the tutorial's model learns: 2 epochs on 3,072 images lower the test loss ({lb:.2f} -> {la:.2f})", o2 + after)


def rgb_set(d, n_train, n_test, size=64):
    """Fashion-MNIST upscaled to size x size and tinted, as PNG files in train/<class>/ and
    test/<class>/ (or synthetic stripes without the data)."""
    import gzip
    src = None
    if os.path.isdir(DATA):
        raw = gzip.open(os.path.join(DATA, 'train-images-idx3-ubyte.gz')).read()[16:]
        labels = gzip.open(os.path.join(DATA, 'train-labels-idx1-ubyte.gz')).read()[8:]
        src = (raw, labels)
    tints = [(255, 128, 64), (64, 255, 128), (128, 64, 255)]
    for part, count, off in (('train', n_train, 0), ('test', n_test, n_train)):
        for i in range(count):
            k = off + i
            label = src[1][k] if src else k % 3
            tint = tints[label % 3]
            rows = []
            for y in range(size):
                row = []
                for x in range(size):
                    v = src[0][k * 784 + (y * 28 // size) * 28 + x * 28 // size] if src else ((x + y + k) % 17) * 15
                    row += [v * t // 255 for t in tint]
                rows.append(row)
            cd = os.path.join(d, part, f'class{label}')
            os.makedirs(cd, exist_ok=True)
            write_png(os.path.join(cd, f'{i:05d}.png'), size, size, rows, color_type=2)
    return d


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rgb64(tmp):
    d = rgb_set(os.path.join(tmp, 'rgb64'), 2048, 256)
    out = os.path.join(tmp, 'rgb64-run')
    flags = ['--encoder', 'conv:32:3:2,conv:64:3:2', '--decoder', 'dense:4096,reshape:16:16:16,deconv:64:3:2,deconv:32:3:2']
    rc, o = run('train', '--data', d, '--out', out, '--epochs', '1', *flags, timeout=900)
    model = os.path.join(out, 'checkpoint.clvae')
    check(rc == 0 and 'test' in o and read_checkpoint(model)['epoch'] == 1,
          'a 64x64 RGB PNG set (2,048 + 256 images) trains an epoch of the conv model', o[-800:])
    for cmd, args in (('grid', ['--n', '4']), ('sample', ['--count', '4']), ('reconstruct', ['--count', '2'])):
        png = os.path.join(tmp, f'rgb-{cmd}.png')
        rc, o = run(cmd, '--model', model, '--out', png, *args, '--data', d) if cmd == 'reconstruct' else \
            run(cmd, '--model', model, '--out', png, *args)
        w, h, ch, _ = read_png(png) if rc == 0 else (0, 0, 0, None)
        check(rc == 0 and ch == 3 and w % 64 == 0 and h % 64 == 0 and w >= 128, f'{cmd}: 64x64x3 tiles ({w}x{h}x{ch})', o)
    # serve decodes a z on the device: 64·64·3 values
    port = free_port()
    p = subprocess.Popen([CLVAE, 'serve', '--model', model, '--port', str(port), '--data', d], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    body = b''
    try:
        def decoded():
            nonlocal body
            with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/decode?z=0.5,-0.5', timeout=10) as r:
                body = r.read()
            return True
        wait_for(decoded, timeout=120, proc=p, poll=0.1)
    finally:
        p.terminate()
        p.communicate(timeout=30)
    check(len(body) in (64 * 64 * 3, 64 * 64 * 3 * 4), f'serve /api/decode of the conv decoder: 64x64x3 values ({len(body)} bytes)')
    tfjs_decoder(tmp, model, '64x64x3 conv')


def tfjs_decoder(tmp, model, what):
    """TF.js loads the exported decoder and predicts clvae grid's pixels (within 1/255)."""
    import http.server
    import threading
    mods = os.path.join(HERE, 'tfjs', 'node_modules', '@tensorflow', 'tfjs')
    if not shutil.which('node') or not os.path.isdir(mods):
        print('SKIP (partly): node or tests/tfjs/node_modules missing (npm ci --ignore-scripts in tests/tfjs)')
        return
    ck = read_checkpoint(model)
    H, W, C = ck['height'], ck['width'], ck['channels']
    out = os.path.join(tmp, 'web-' + what.replace(' ', '-'))
    g = os.path.join(tmp, 'web-grid.png')
    rc, o = run('export', '--model', model, '--format', 'tfjs', '--out', out)
    rc2, o2 = run('grid', '--model', model, '--out', g, '--n', '3', '--range', '-2,2')
    check(rc == 0 and rc2 == 0, f'{what}: export and grid', o + o2)
    topo = json.load(open(os.path.join(out, 'model.json')))['modelTopology']['config']['layers']
    classes = [layer['class_name'] for layer in topo]
    check(classes[0] == 'Dense' and classes[1] == 'Reshape' and 'Conv2DTranspose' in classes and classes[-1] == 'Flatten',
          f'{what}: the decoder is Dense, Reshape, Conv2DTranspose..., Flatten', classes)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=out)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    z = [[-2 + c * 2.0, -2 + (2 - r) * 2.0] for r in range(3) for c in range(3)]
    p = subprocess.run(['node', os.path.join(HERE, 'tfjs', 'predict.js'), f'http://127.0.0.1:{srv.server_address[1]}/model.json',
                        json.dumps(z)], capture_output=True, text=True, timeout=600)
    srv.shutdown()
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        check(False, f'{what}: tf.loadLayersModel() loads the export', p.stdout + p.stderr)
        return
    w, h, ch, rows = read_png(g)
    worst = max(abs(int(res['out'][t][i] * 255 + 0.5) - rows[(t // 3) * H + i // (W * C)][(t % 3) * W * C + i % (W * C)])
                for t in range(9) for i in range(H * W * C))
    check((w, h, ch) == (3 * W, 3 * H, C) and worst <= 1,
          f"{what}: TF.js 4.22 decodes like clvae grid (max pixel difference {worst})")


def main():
    rc, out = run('devices')
    if rc == 2 and 'no OpenCL platform' in out:
        print('SKIP: no OpenCL platform')
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        d = refusals(tmp)
        summary_and_mirror(tmp, d)
        conv_runs(tmp, d)
        learning(tmp)
        if os.path.isdir(DATA):
            tfjs_decoder(tmp, os.path.join(tmp, 'tutorial', 'checkpoint.clvae'), 'the tutorial')
        rgb64(tmp)
    return summary()


if __name__ == '__main__':
    t0 = time.time()
    rc = main()
    print(f'({time.time() - t0:.0f} s)')
    sys.exit(rc)
