#!/usr/bin/env python3
"""`clvae serve`: its HTTP API checked directly (the grid equals `clvae grid`, bad parameters
get a 400 with a JSON error, other paths 404, other methods 405, the decode latency, the
default 127.0.0.1 binding, --port 0, a port in use, SIGINT/SIGTERM), and its page in Chromium
(tests/tfjs/serve_page.js): the example's controls and Update button draw what `clvae grid`
draws, hovering decodes the z under the pointer as TF.js decodes our export, the scatter and
the loss curve are drawn, a replaced checkpoint shows within 3 s, and a model of 3 latent
dimensions lets one choose the two shown. Screenshots go to the build directory. The page's
layout, markers, axes, reconstructions, progress and training indicator: tests/test_page.py.
usage: test_serve.py PATH/TO/clvae SCREENSHOT_DIR; exit 77 without libmicrohttpd in clvae or
without OpenCL (the browser part is skipped without node, Chromium or tests/tfjs/node_modules)."""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from testlib import browser_missing, check, read_png, serve_test, wait_for

CLVAE = os.path.abspath(sys.argv[1])
SHOTS = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else tempfile.gettempdir()
HERE = os.path.dirname(os.path.abspath(__file__))
TFJS = os.path.join(HERE, 'tfjs')
N, START, END = 5, -3.0, 3.0


def run(*args, timeout=300):
    p = subprocess.run([CLVAE, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


class Server:
    def __init__(self, *args):
        self.p = subprocess.Popen([CLVAE, 'serve', *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines, self.url = [], None
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.time() + 60
        while time.time() < deadline and not self.url and self.p.poll() is None:
            time.sleep(0.05)

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)
            m = re.search(r'(http://[^ ]+/) ', line)
            if m and not self.url:
                self.url = m.group(1)

    def output(self):
        return ''.join(self.lines)

    def get(self, path, method='GET'):
        req = urllib.request.Request(self.url + path.lstrip('/'), method=method, data=b'x' if method == 'POST' else None)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def stop(self, sig=signal.SIGTERM):
        t0 = time.time()
        self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = -999
        return rc, time.time() - t0


def grid_png(model, n, lo, hi, dims='0,1'):
    path = tempfile.mktemp(suffix='.png')
    rc, out = run('grid', '--model', model, '--n', str(n), '--range', f'{lo},{hi}', '--dims', dims, '--out', path)
    if rc:
        raise RuntimeError(out)
    w, h, ch, rows = read_png(path)
    os.unlink(path)
    return w, h, [v for row in rows for v in row]


def api_checks(tmp, model):
    s = Server('--model', model, '--port', '0')
    check(s.url is not None and s.url.startswith('http://127.0.0.1:'),
          f'--port 0 takes a free port, binds 127.0.0.1 by default and prints the URL ({s.url})', s.output())
    if not s.url:
        s.stop()
        return None
    port = int(s.url.rsplit(':', 1)[1].strip('/'))
    listening = [l.split()[1] for l in open('/proc/net/tcp').read().splitlines()[1:] + open('/proc/net/tcp6').read().splitlines()[1:]
                 if l.split()[3] == '0A' and l.split()[1].endswith(f':{port:04X}')]
    check(listening == ['0100007F:%04X' % port], 'it listens on 127.0.0.1 only', str(listening))

    st, h, body = s.get('/api/grid?n=7&start=-2.5&end=1.5')
    w, hh, want = grid_png(model, 7, -2.5, 1.5)
    check(st == 200 and list(body) == want and len(body) == w * hh, '/api/grid is the mosaic clvae grid draws, byte for byte',
          f'{st} {len(body)} {w}x{hh}')
    for q, what in (('n=1', 'n'), ('n=65', 'n'), ('n=2.5', 'n'), ('start=2&end=1', 'less than'), ('start=nan', 'start'),
                    ('end=inf', 'end'), ('start=1e400', 'start'), ('dx=0&dy=0', 'different'), ('dy=2', 'dy')):
        st, h, body = s.get('/api/grid?' + q)
        try:
            err = json.loads(body)['error']
        except (ValueError, KeyError):
            err = ''
        check(st == 400 and h.get('Content-Type', '').startswith('application/json') and what in err,
              f'/api/grid?{q}: 400 with a JSON error ({err})', f'{st} {body[:200]}')
    for q in ('z=1', 'z=1,2,3', 'z=a,b', 'z=1,', 'z=nan,0', 'z=1e9,0', '', 'z=1,2,abc', 'z=1,2,nan', 'z=,1,2', 'z=1,,2'):
        st, h, body = s.get('/api/decode?' + q)
        check(st == 400 and b'error' in body, f'/api/decode?{q}: 400', f'{st} {body[:200]}')
    for p in ('/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/api', '/api/info/x', '/serve.js', '/app.js/../index.html.bak',
              '//etc/passwd'):
        st, h, body = s.get(p)
        check(st == 404 and b'root:' not in body, f'GET {p}: 404, no file served', f'{st} {body[:100]}')
    st, h, body = s.get('/api/info', method='POST')
    check(st == 405, 'POST: 405', f'{st}')
    st, h, body = s.get('/api/grid?n=%ff%fe')
    try:
        err = json.loads(body.decode('utf-8'))['error']
    except (ValueError, KeyError):
        err = None
    check(st == 400 and err is not None, 'an error echoing bytes that are not UTF-8 is still valid UTF-8 JSON', body[:200])
    # DNS rebinding: a page whose name now points at 127.0.0.1 sends its own Host
    for host, want in (('evil.example', 403), (f'evil.example:{port}', 403), (f'localhost:{port}', 200),
                       (f'127.0.0.1:{port}', 200), ('[::1]', 200)):
        req = urllib.request.Request(s.url + 'api/info', headers={'Host': host})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                st = r.status
        except urllib.error.HTTPError as e:
            st = e.code
        check(st == want, f'Host: {host} -> {want}', str(st))

    ms = []
    for i in range(20):
        st, h, body = s.get(f'/api/decode?z={i * 0.1 - 1:.2f},{1 - i * 0.07:.2f}')
        m = re.search(r'dur=([\d.]+)', h.get('Server-Timing', ''))
        if st == 200 and m:
            ms.append(float(m.group(1)))
    med = statistics.median(ms) if len(ms) == 20 else float('inf')
    check(med <= 50, f'decoding one z: median server-side time over 20 requests {med:.2f} ms (at most 50)', str(ms))

    st, h, body = s.get('/api/scatter')
    sc = json.loads(body) if st == 200 else {}
    check(st == 200 and sc.get('count') == 10000 and sc.get('dims') == 2 and len(sc.get('mu', [])) == 20000
          and len(sc.get('labels') or []) == 10000, "/api/scatter: the test set's 10,000 latent means and labels")

    # the checkpoint moved away and back: the page says so, then forgets it
    moved = model + '.away'
    os.rename(model, moved)

    def reload_error():
        return json.loads(s.get('/api/state')[2])['reload_error']
    wait_for(lambda: 'No such file' in reload_error(), timeout=30, poll=0.05)  # it checks at most every 0.25 s
    gone = reload_error()
    os.rename(moved, model)
    wait_for(lambda: reload_error() == '', timeout=30, poll=0.05)
    back = reload_error()
    check('No such file' in gone and back == '', 'a checkpoint moved away is reported, and forgotten once it is back',
          f'{gone!r} {back!r}')

    # a second server on the same port: refused, naming the port
    rc, out = run('serve', '--model', model, '--port', str(port), timeout=60)
    check(rc == 2 and str(port) in out and 'Address already in use' in out, 'a port in use: exit 2 naming it', out)
    rc, dt = s.stop(signal.SIGINT)
    check(rc == 0 and dt < 5 and 'stopped by SIGINT' in s.output(), f'SIGINT stops it cleanly (exit 0, {dt:.1f} s)', s.output())
    return True


def special_metrics(tmp, model):
    """metrics.csv beside the checkpoint as a FIFO: no curve, and nothing blocks."""
    d = os.path.join(tmp, 'fifo')
    os.makedirs(d)
    shutil.copy(model, d)
    os.mkfifo(os.path.join(d, 'metrics.csv'))
    s = Server('--model', os.path.join(d, 'checkpoint.clvae'), '--port', '0')
    if not s.url:
        check(False, 'serve with a FIFO for metrics.csv', s.output())
        s.stop()
        return
    t0 = time.time()
    try:
        st, h, body = s.get('/api/metrics')
        st2 = s.get('/api/info')[0]
    except OSError as e:
        st, body, st2 = -1, str(e).encode(), -1
    took = time.time() - t0
    rc, dt = s.stop(signal.SIGINT)
    check(st == 200 and json.loads(body)['epoch'] == [] and st2 == 200 and took < 5 and rc == 0,
          f'metrics.csv a FIFO: an empty curve at once ({took:.2f} s), the server goes on and stops on SIGINT',
          f'{st} {body[:200]} {rc} {s.output()}')


def export_server(model, tmp):
    """The model exported for TF.js and served over HTTP, for tests/tfjs/predict.js."""
    d = os.path.join(tmp, 'export')
    rc, out = run('export', '--model', model, '--format', 'tfjs', '--out', d)
    if rc:
        raise RuntimeError(out)

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=d, **kw)

        def log_message(self, *a):
            pass
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f'http://127.0.0.1:{httpd.server_address[1]}/model.json'


def browser_checks(tmp, model_a, run_b, model3):
    served_dir = os.path.join(tmp, 'served')
    os.makedirs(served_dir)
    served = os.path.join(served_dir, 'checkpoint.clvae')
    shutil.copy(model_a, served)
    shutil.copy(os.path.join(os.path.dirname(model_a), 'metrics.csv'), served_dir)
    s, s3 = Server('--model', served, '--port', '0'), Server('--model', model3, '--port', '0')
    try:
        p = subprocess.run(['node', os.path.join(TFJS, 'serve_page.js'), s.url, served,
                            os.path.join(run_b, 'checkpoint.clvae'), os.path.join(run_b, 'metrics.csv'), SHOTS, str(N),
                            str(START), str(END), s3.url], capture_output=True, text=True, cwd=TFJS, timeout=300)
    finally:
        s.stop(), s3.stop()
    try:
        r = json.loads(p.stdout)
    except ValueError:
        check(False, 'Chromium drove the page', p.stderr[-3000:] + p.stdout[-2000:] + s.output())
        return
    check(not r.get('errors'), 'the page ran without JavaScript errors', str(r.get('errors')))
    w, h, want = grid_png(model_a, N, START, END)
    g = r['grid']
    check(g['w'] == w and g['h'] == h and max(abs(a - b) for a, b in zip(g['grey'], want)) <= 1,
          f'points per dimension {N}, start {START}, end {END}, Update: the grid canvas is clvae grid\'s (±1)')

    # the hovered z: where the pointer was on the plane (tile centres at the grid's points)
    step = (END - START) / (N - 1)
    lo, hi = START - step / 2, END + step / 2
    zx, zy = lo + r['hover']['fx'] * (hi - lo), lo + (1 - r['hover']['fy']) * (hi - lo)
    z = r['z']
    check(abs(z[0] - zx) < 0.05 and abs(z[1] - zy) < 0.05, f'hovering decodes the z under the pointer ({z[0]:.3f}, {z[1]:.3f})',
          f'expected about ({zx:.3f}, {zy:.3f})')
    httpd, url = export_server(model_a, tmp)
    try:
        q = subprocess.run(['node', os.path.join(TFJS, 'predict.js'), url, json.dumps([z])], capture_output=True,
                           text=True, cwd=TFJS, timeout=120)
        tf = [round(255 * v) for v in json.loads(q.stdout)['out'][0]]
    except (ValueError, KeyError, subprocess.TimeoutExpired) as e:
        tf = []
        print(e, q.stderr[-500:] if 'q' in dir() else '')
    finally:
        httpd.shutdown()
    live = r['live']['grey']
    check(len(tf) == 784 and len(live) == 784 and max(abs(a - b) for a, b in zip(live, tf)) <= 1,
          'the hovered decoding equals TF.js\'s decoding of our export at that z (±1)')
    check('decoded on the device' in r.get('timing', ''), f"the page shows the decode time ({r.get('timing')})")
    check(r['scatterCount'] == 10000 and r['scatterInk'] > 2000 and 'Trouser' in r['legend'],
          f"the test set's scatter is drawn beside the grid ({r['scatterInk']} coloured pixels) with a class legend")
    check(r['lossInk'] > 10, 'the loss curve is drawn')
    w2, h2, want2 = grid_png(os.path.join(run_b, 'checkpoint.clvae'), N, START, END)
    g2 = r['grid2']
    check(r['reloadSeconds'] <= 3 and max(abs(a - b) for a, b in zip(g2['grey'], want2)) <= 1 and 'epoch 2, step 470' in r['status1'],
          f"a replaced checkpoint shows within 3 s ({r['reloadSeconds']:.1f} s: {r['status1']}), grid and all")
    w3, h3, want3 = grid_png(model3, N, START, END, dims='0,2')
    g3 = r.get('grid3') or {'grey': []}
    check(r.get('dimsShown') and r.get('dimOptions') == 3 and g3['grey'] and
          max(abs(a - b) for a, b in zip(g3['grey'], want3)) <= 1,
          'latent dimension 3: the page offers the dimensions; z[0] across and z[2] up draws clvae grid --dims 0,2')
    check(os.path.exists(os.path.join(SHOTS, 'clvae-serve.png')), f'screenshots in {SHOTS}')


def main(tmp):
    run_a, run_b, run3 = (os.path.join(tmp, d) for d in ('a', 'b', 'l3'))
    rc, out = run('train', '--epochs', '1', '--out', run_a, '--quiet')  # the whole set: a picture worth a screenshot
    if rc == 0:
        shutil.copytree(run_a, run_b)
        rc, out = run('train', '--resume', '--out', run_b, '--epochs', '2', '--quiet')
    if rc == 0:
        rc, out = run('train', '--limit', '512', '--epochs', '1', '--latent-dim', '3', '--out', run3, '--quiet')
    if rc:
        check(False, 'models to serve', out)
        return
    model = os.path.join(run_a, 'checkpoint.clvae')
    rc, out = run('serve', '--model', os.path.join(tmp, 'missing.clvae'), '--port', '0', timeout=60)
    check(rc == 2 and 'missing.clvae' in out, 'a missing --model: exit 2 naming it', out)
    rc, out = run('serve', '--model', model, '--port', '70000', timeout=60)
    check(rc == 2 and '--port' in out, 'a port out of range: exit 2', out)
    api_checks(tmp, model)
    special_metrics(tmp, model)
    why = browser_missing(TFJS, ('puppeteer-core', '@tensorflow/tfjs'))
    if why:
        print(f'SKIP (the browser part): {why}')
        return
    browser_checks(tmp, model, run_b, os.path.join(run3, 'checkpoint.clvae'))


if __name__ == '__main__':
    serve_test(CLVAE, main)
