#!/usr/bin/env python3
"""The TF.js example's own page (tfjs-examples/fashion-mnist-vae) with clvae's decoder, in
Chromium with the real TF.js and tfjs-vis bundles (tests/tfjs/example_page.js): both
editions of its loader (the book's, which always opens the debug view and fetches
/decoder/model.json, and the current client.js with ?debug, which fetches
./models/decoder/model.json), TF.js 2.8.6 (the example's lockfile) and 4.22, on `clvae export`
output and on the decoder `clvae train` leaves in OUT/decoder/. Every call must succeed, the
debug view must show both layers' weights, and the canvases must hold the pixels `clvae grid`
draws for the same z (±1: the page truncates 255·p, clvae rounds). A copy of the export
with the layers renamed must fail the debug view: the check can fail.
usage: test_example_page.py PATH/TO/clvae; exit 77 without node, Chromium, npm packages
(npm ci --ignore-scripts in tests/tfjs) or OpenCL."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from testlib import browser_missing, check, no_opencl, read_png, summary

CLVAE = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
TFJS = os.path.join(HERE, 'tfjs')
N, START, END = 3, -2.0, 2.0


def run(*args):
    p = subprocess.run([CLVAE, *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def grid_tiles(png, n):
    """tiles[ry][cx] of a grid PNG (28×28 grey tiles) as flat lists of 784 values."""
    w, h, ch, rows = read_png(png)
    return [[[rows[ry * 28 + y][cx * 28 + x] for y in range(28) for x in range(28)] for cx in range(n)]
            for ry in range(n)]


def main(tmp):
    run_dir, exp, bad = os.path.join(tmp, 'run'), os.path.join(tmp, 'export'), os.path.join(tmp, 'renamed')
    rc, out = run('train', '--limit', '512', '--epochs', '1', '--out', run_dir, '--quiet')
    check(rc == 0 and os.path.isfile(os.path.join(run_dir, 'decoder', 'model.json'))
          and os.path.isfile(os.path.join(run_dir, 'decoder', 'weights.bin')),
          'clvae train leaves the decoder in OUT/decoder/ (model.json, weights.bin)', out)
    ck = os.path.join(run_dir, 'checkpoint.clvae')
    rc2, out2 = run('export', '--model', ck, '--format', 'tfjs', '--out', exp)
    rc3, out3 = run('grid', '--model', ck, '--n', str(N), '--range', f'{START},{END}', '--out', os.path.join(tmp, 'g.png'))
    if rc or rc2 or rc3:
        check(False, 'export and grid', out2 + out3)
        return
    # the control: the same export with the layers named otherwise (as clvae 0.1 named them)
    shutil.copytree(exp, bad)
    m = open(os.path.join(bad, 'model.json')).read()
    open(os.path.join(bad, 'model.json'), 'w').write(m.replace('dense_Dense2', 'decoder_hidden1').replace('dense_Dense3', 'decoder_output'))

    cases = [f'{exp}:2.8.6:cpu', f'{exp}:4.22.0:cpu', f'{run_dir}/decoder:2.8.6:cpu', f'{run_dir}/decoder:4.22.0:webgl',
             f'{bad}:4.22.0:cpu']
    p = subprocess.run(['node', os.path.join(TFJS, 'example_page.js'), str(N), str(START), str(END), *cases],
                       capture_output=True, text=True, cwd=TFJS, timeout=600)
    results = []
    for line in p.stdout.splitlines():
        try:
            results.append(json.loads(line))
        except ValueError:
            pass
    check(p.returncode == 0 and len(results) == 2 * len(cases), f'Chromium ran the {2 * len(cases)} pages',
          p.stderr[-3000:] + p.stdout[-1000:])
    want = grid_tiles(os.path.join(tmp, 'g.png'), N)
    for r in results:
        where = f"{'clvae export' if r['dir'] == exp else 'OUT/decoder' if r['dir'].endswith('decoder') else 'renamed layers'}, " \
                f"TF.js {r.get('tfjs')} ({r.get('backend')}), {'book edition' if r['edition'] == 'book' else 'client.js ?debug'}"
        if r['dir'] == bad:
            check(not r.get('ok') and 'dense_Dense2' in (r.get('error') or ''),
                  f'control: {where}: the debug view fails on layers named otherwise ({r.get("error")})', str(r)[:500])
            continue
        visor = r.get('visor') or ''
        check(r.get('ok') is True and r.get('tfjs') == r['version'],
              f'{where}: loadLayersModel, the debug view and drawing succeed', r.get('error') or str(r)[:500])
        check(all(s in visor for s in ('dense_Dense2/kernel', 'dense_Dense2/bias', 'dense_Dense3/kernel',
                                       'dense_Dense3/bias', '402,192')),
              f'{where}: the debug view shows the summary and both layers\' weights', visor[:1500])
        tiles = r.get('tiles') or []
        # the page's tile (row r, column c) decodes z = (lin[r], lin[c]); clvae grid puts z[0]
        # across the columns and z[1] up the rows: its tile (row N-1-c, column r)
        worst = 256
        if len(tiles) == N and all(len(row) == N for row in tiles):
            worst = max(abs(a - b) for i in range(N) for j in range(N)
                        for a, b in zip(tiles[i][j], want[N - 1 - j][i]))
        check(worst <= 1, f'{where}: every canvas pixel is clvae grid\'s within 1 (worst {worst})')


if __name__ == '__main__':
    why = browser_missing(TFJS, ('@tensorflow/tfjs', 'tfjs-2.8.6', '@tensorflow/tfjs-vis', 'puppeteer-core'))
    if why or no_opencl(CLVAE):
        print(f"SKIP: {why or 'no OpenCL platform'}")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        main(tmp)
    sys.exit(summary())
