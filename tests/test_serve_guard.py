#!/usr/bin/env python3
"""`clvae serve` against hostile clients and odd names: the DNS-rebinding guard under every
loopback spelling of --host and for every Host header (exactly localhost, 127.0.0.1, [::1]
or the address listened on, then nothing or ':' and 1-5 digits; else 403), JSON that passes
UTF-8 through (class names, messages) and turns invalid bytes into U+FFFD, /api/metrics
reading no more than its first MiB whatever the lines (peak RSS measured), libmicrohttpd's
messages under a flood of abandoned requests (at most 10 lines, each prefixed), and one rule
for numbers in the API and the CLI (an underflow is 0, an overflow is refused).
usage: test_serve_guard.py PATH/TO/clvae; exit 77 without libmicrohttpd in clvae or without
OpenCL."""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

from testlib import check, read_png, serve_test, wait_for, write_png

CLVAE = os.path.abspath(sys.argv[1])
# class folders: UTF-8 letters, and bytes that are not UTF-8 (a lone 0xff, a stray
# continuation byte, an overlong '/', a surrogate) with the JSON each must become
CLASSES = [('Jäckchen'.encode(), 'Jäckchen'), ('衬衫'.encode(), '衬衫'), (b'plain', 'plain'),
           (b'bad\xff\x80name', 'bad\ufffd\ufffdname'), (b'over\xc0\xaflong', 'over\ufffd\ufffdlong'),
           (b'sur\xed\xa0\x80rogate', 'sur\ufffd\ufffd\ufffdrogate')]
LOOPBACK_SPELLINGS = ('127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1',
                      'localhost')


def run(*args, timeout=300):
    p = subprocess.run([CLVAE, *args], capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode('utf-8', 'replace')


class Server:
    """`clvae serve --port 0 ...`: stdout read for the URL, stderr kept apart in a file
    (its size when the URL appeared marks the end of the start-up messages)."""

    def __init__(self, tmp, *args):
        self.err_path = tempfile.mktemp(dir=tmp, suffix='.stderr')
        self.err = open(self.err_path, 'wb')
        self.p = subprocess.Popen([CLVAE, 'serve', '--port', '0', *args], stdout=subprocess.PIPE,
                                  stderr=self.err)
        self.out, self.url, self.base = [], None, 0
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: self.url, timeout=120, proc=self.p)
        m = re.match(r'http://(\[[^]]+\]|[^:/]+):(\d+)/', self.url or '')
        self.host, self.port = (m.group(1), int(m.group(2))) if m else (None, None)
        self.addr = self.host.strip('[]') if self.host else None

    def _read(self):
        for line in self.p.stdout:
            line = line.decode('utf-8', 'replace')
            self.out.append(line)
            m = re.search(r'(http://[^ ]+/) ', line)
            if m and not self.url:
                self.base = os.path.getsize(self.err_path)
                self.url = m.group(1)

    def output(self):
        return ''.join(self.out) + open(self.err_path, 'rb').read().decode('utf-8', 'replace')

    def new_stderr(self):
        """stderr's lines since the URL was printed."""
        with open(self.err_path, 'rb') as f:
            f.seek(self.base)
            return f.read().decode('utf-8', 'replace').splitlines()

    def request(self, path, host='localhost', version='1.1'):
        """GET path with exactly this Host header (None: none) -> (status, body bytes)."""
        head = f'GET {path} HTTP/{version}\r\n' + (f'Host: {host}\r\n' if host is not None else '')
        with socket.create_connection((self.addr, self.port), timeout=30) as c:
            c.sendall((head + 'Connection: close\r\n\r\n').encode('latin-1'))
            data = b''
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
        m = re.match(rb'HTTP/1\.\d (\d{3})', data)
        return (int(m.group(1)) if m else 0), data.split(b'\r\n\r\n', 1)[-1]

    def get_json(self, path):
        st, body = self.request(path)
        return st, json.loads(body.decode('utf-8'))  # strict: the answer must be valid UTF-8

    def hwm_kb(self):
        return int(re.search(r'VmHWM:\s+(\d+) kB', open(f'/proc/{self.p.pid}/status').read()).group(1))

    def fds(self):
        return len(os.listdir(f'/proc/{self.p.pid}/fd'))

    def stop(self):
        self.p.terminate()
        try:
            rc = self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = -999
        self.err.close()
        return rc


def png_set(tmp):
    """train/ and test/, one folder per class of CLASSES, 8x8 grey images."""
    root = os.path.join(tmp.encode(), b'pngs')
    for part, n in ((b'train', 16), (b'test', 4)):
        for k, (name, _) in enumerate(CLASSES):
            d = os.path.join(root, part, name)
            os.makedirs(d)
            for i in range(n):
                write_png(os.path.join(d, b'%02d.png' % i).decode('utf-8', 'surrogateescape'), 8, 8,
                          [[(k * 40 + i * 7 + x * y) % 256 for x in range(8)] for y in range(8)])
    return root.decode('utf-8', 'surrogateescape')


def host_spellings(tmp, model):
    """Every loopback spelling of --host keeps the Host check."""
    for spelling in LOOPBACK_SPELLINGS:
        s = Server(tmp, '--model', model, '--host', spelling)
        if not s.url:
            rc = s.stop()
            out = s.output()
            check(rc == 2 and spelling in out and 'cannot listen' in out,
                  f'--host {spelling}: not bindable on this machine, refused with exit 2 naming it', out)
            continue
        got = {h: s.request('/api/state', h)[0] for h in ('evil.example', f'evil.example:{s.port}', f'localhost:{s.port}',
                                                            f'{s.host}:{s.port}', f'localhost:{s.port}.evil.example')}
        want = {'evil.example': 403, f'evil.example:{s.port}': 403, f'localhost:{s.port}': 200,
                f'{s.host}:{s.port}': 200, f'localhost:{s.port}.evil.example': 403}
        s.stop()
        check(got == want, f'--host {spelling} (listening on {s.host}) keeps the Host check: evil.example 403, '
                           f'localhost:PORT and the printed URL\'s {s.host}:PORT 200', str(got))


def host_headers(s):
    """The rule on the default 127.0.0.1 server: exactly a loopback name, then ':digits'."""
    p = s.port
    allowed = ['localhost', f'localhost:{p}', 'localhost:8080', 'LOCALHOST', f'LocalHost:{p}', '127.0.0.1',
               f'127.0.0.1:{p}', '127.0.0.1:65535', '127.0.0.1:1', '[::1]', f'[::1]:{p}', 'localhost:00080']
    refused = ['evil.example', f'evil.example:{p}', 'localhost:evil.example', '[::1]evil.example',
               f'[::1]evil.example:{p}', 'localhost.', f'localhost.:{p}', '127.0.0.1:', '[::1]:', '127.0.0.1:80a',
               '127.0.0.1:+80', '127.0.0.1:-1', '127.0.0.1:123456', f'localhost:{p}:{p}', '', 'localhost.evil.example',
               'evil.localhost', 'localhostx', 'xlocalhost', '127.0.0.2', '127.1', '2130706433', '0x7f.0.0.1',
               '127.0.0.1.', '[::1', '[::1]]', '[0:0:0:0:0:0:0:1]', '[::ffff:127.0.0.1]', 'localhost@evil.example',
               'evil.example#localhost', 'localhost%00', 'local\x7fhost', 'a' * 8000, 'localhost:' + '1' * 8000,
               '127.0.0.1 evil.example']
    got = {h: s.request('/api/state', h)[0] for h in allowed + refused}
    bad = {h[:60]: st for h, st in got.items() if st != (200 if h in allowed else 403)}
    check(not bad, f'Host headers: {len(allowed)} loopback forms answered, {len(refused)} others (a suffix after '
                   f'the name, a trailing dot, an empty or non-digit port, other spellings, 8,000 bytes) get 403',
          str(bad))
    st10 = s.request('/api/state', None, '1.0')[0]
    st11 = s.request('/api/state', None, '1.1')[0]
    check(st10 == 403 and st11 in (400, 403), f'no Host header: refused (HTTP/1.0 {st10}, HTTP/1.1 {st11})')


def utf8(s):
    """Valid UTF-8 passes through the JSON; invalid bytes become U+FFFD."""
    st, info = s.get_json('/api/info')
    want = sorted(j for _, j in CLASSES)
    check(st == 200 and sorted(info.get('classes', [])) == want,
          "/api/info's classes: UTF-8 folder names unchanged ('Jäckchen', '衬衫'), invalid bytes as U+FFFD",
          f"{info.get('classes')} != {want}")
    st, body = s.request('/api/decode?z=1')
    check(st == 400 and '±1000' in json.loads(body.decode('utf-8'))['error'], "an error message keeps its '±'",
          body[:200])
    for q, want in (('n=%E2%82%AC', '€'), ('n=%F0%9F%98%80', '😀'), ('n=%FF', '\ufffd'), ('n=%E2%82', '\ufffd\ufffd'),
                    ('n=%C3%A4%ED%A0%80', 'ä\ufffd\ufffd\ufffd'), ('n=%01%22%5C', '\x01"\\')):
        st, body = s.request('/api/grid?' + q)
        try:
            err = json.loads(body.decode('utf-8'))['error']
        except (ValueError, KeyError):
            err = ''
        check(st == 400 and f"n '{want}'" in err, f'/api/grid?{q}: the echo in valid JSON is {ascii(want)}',
              body[:200])


def metrics_cap(s, run_dir):
    """Only the first MiB of metrics.csv is read, whatever its lines."""
    path = os.path.join(run_dir, 'metrics.csv')
    head = 'epoch,train_loss,test_loss,test_recon,test_kl,seconds,samples_per_sec\n'

    def row(e):
        return f'{e},{100 + e % 7}.5,{90 + e % 5}.25,1,2,0.5,1000\n'

    def epochs():
        st, m = s.get_json('/api/metrics')
        return st, m.get('epoch')

    open(path, 'w').write(head + row(1) + row(2))
    st0, e0 = epochs()  # its buffers allocated once before the measurement
    with open(path, 'wb') as f:  # one line of 200 MB (sparse), then a row past it
        f.write((head + row(1) + row(2)).encode())
        f.seek(200 << 20, 1)
        f.write(('\n' + row(3)).encode())
    before = s.hwm_kb()
    st, e = epochs()
    grew = (s.hwm_kb() - before) / 1024
    check(st0 == 200 and e0 == [1, 2] and st == 200 and e == [1, 2] and grew < 16,
          f'metrics.csv with a 200 MB line: the rows before it, and peak RSS grew {grew:.1f} MB (under 16)',
          f'{st} {e}')
    with open(path, 'w') as f:  # a dense line of 3 MiB of digits
        f.write(head + row(1) + '7' * (3 << 20) + '\n' + row(2))
    before = s.hwm_kb()
    st, e = epochs()
    grew = (s.hwm_kb() - before) / 1024
    check(st == 200 and e == [1] and grew < 16, f'a 3 MiB line of digits: the rows before it ({grew:.1f} MB more)',
          f'{st} {e}')
    rows = head + ''.join(row(i) for i in range(1, 40001))  # ~1.4 MiB: the cap cuts a row
    open(path, 'w').write(rows)
    whole = rows.encode()[:1 << 20].split(b'\n')[1:-1]
    st, e = epochs()
    check(st == 200 and e == list(range(1, len(whole) + 1)),
          f'40,000 rows: the {len(whole)} wholly within the first MiB, not the row the cap cuts', f'{len(e or [])}')
    open(path, 'wb').write((head + row(1) + '2,1.5,2\0.5,1,2,0.5,1000\n' + row(3)).encode())
    st, e = epochs()
    check(st == 200 and e == [1, 3], 'a row holding a NUL byte is skipped', f'{st} {e}')
    os.remove(path)


def abandoned(s):
    """Hundreds of bad requests: at most 10 lines on stderr, each prefixed."""
    base = s.fds()
    for i in range(300):  # a partial request, then gone
        with socket.create_connection((s.addr, s.port)) as c:
            c.sendall(b'GET /api/info HTTP/1.1\r\nHost: local')
    for i in range(50):  # garbage, and a header beyond the connection's memory limit
        with socket.create_connection((s.addr, s.port)) as c:
            try:
                c.sendall(b'\x00\xff garbage\r\n\r\n' if i % 2 else b'GET / HTTP/1.1\r\nX: ' + b'a' * 300000 + b'\r\n\r\n')
            except OSError:  # the server may close it before all is sent
                pass
    closed = wait_for(lambda: s.fds() <= base, timeout=120, poll=0.05)  # the server has seen every one go
    st = s.request('/api/state')[0]
    lines = s.new_stderr()
    check(closed and st == 200 and len(lines) <= 10 and all(l.startswith('clvae serve: ') for l in lines),
          f'350 abandoned or bad requests: {len(lines)} lines on stderr (at most 10), each "clvae serve: ...", '
          'and the server answers', '\n'.join(lines[:20]) + f'\n({len(lines)} lines; connections closed: {closed})')


def numbers(s, model, tmp):
    """One rule in the API and the CLI: an underflow is 0, an overflow is refused."""
    st0, zero = s.request('/api/decode?z=0,0')
    for q in ('z=1e-400,0', 'z=-1e-400,0', 'z=0,1e-310', 'z=0e999999,-0'):
        st, body = s.request('/api/decode?' + q)
        check(st0 == 200 and st == 200 and body == zero, f'/api/decode?{q}: 200, the decoding of z = (0, 0)', f'{st}')
    for q in ('z=1e400,0', 'z=0,-1e400', 'z=1e309,0', 'z=0x1p1024,0'):
        st, body = s.request('/api/decode?' + q)
        check(st == 400, f'/api/decode?{q}: an overflow is 400', f'{st} {body[:100]}')
    st, g0 = s.request('/api/grid?n=3&start=0&end=1')
    st1, g1 = s.request('/api/grid?n=3&start=-1e-400&end=1')
    st2 = s.request('/api/grid?n=3&start=0&end=1e999')[0]
    check(st == st1 == 200 and g0 == g1 and st2 == 400, '/api/grid: start=-1e-400 is start=0, end=1e999 is 400')
    pngs = []
    for r in ('0,1', '1e-400,1', '-1e-400,1'):
        out = os.path.join(tmp, f'grid{len(pngs)}.png')
        rc, o = run('grid', '--model', model, '--n', '3', '--range', r, '--out', out)
        pngs.append(read_png(out) if rc == 0 else o)
    check(pngs[1] == pngs[0] and pngs[2] == pngs[0], 'grid --range 1e-400,1 and -1e-400,1 draw --range 0,1')
    for r in ('1e400,1', '0,1e309', 'nan,1', '0,inf'):
        rc, o = run('grid', '--model', model, '--n', '3', '--range', r, '--out', os.path.join(tmp, 'no.png'))
        check(rc == 2 and r in o and 'finite' in o, f'grid --range {r}: exit 2 naming it', o)


def main(tmp):
    data = png_set(tmp)
    run_dir = os.path.join(tmp, 'run')
    rc, out = run('train', '--data', data, '--out', run_dir, '--epochs', '1', '--hidden', '32', '--batch-size', '16',
                  '--quiet')
    if rc:
        check(False, 'a model of the PNG set with UTF-8 and non-UTF-8 class names', out)
        return
    model = os.path.join(run_dir, 'checkpoint.clvae')
    s = Server(tmp, '--model', model, '--data', data)
    if not s.url:
        check(False, 'serve starts', s.output())
        s.stop()
        return
    try:
        host_headers(s)
        utf8(s)
        numbers(s, model, tmp)
        metrics_cap(s, run_dir)
        abandoned(s)
    finally:
        s.stop()
    host_spellings(tmp, model)


if __name__ == '__main__':
    serve_test(CLVAE, main)
