#!/usr/bin/env python3
"""`clvae serve`'s page as a user expects it, in Chromium (puppeteer-core; the driver below is
written to a temporary file): at 1400x1000 the grid, the scatter and the decoding panel are in
view without scrolling, the panel showing z = 0 decoded; at 800x1000 nothing overflows
sideways and the panel stays in view wherever the pointer is on the grid or the scatter; a
marker shows the decoded z on both planes; Enter in any control draws the grid and the
dimension selectors apply at once; the scatter has ticks, axis titles and the grid's range as a
rectangle; the loss chart has axis titles and loss.png's colours; 8 test images and their
reconstructions equal `clvae reconstruct --count 8`; rows appended to progress.csv show within
3 s; a "training" indicator (epoch, step, ETA) while a live process holds the run's lock (the
test's own pid, then a real `clvae train --resume`), none for a dead pid or no lock; no 404
(the favicon). All of it for an RGB model of 3 latent dimensions on an unlabelled PNG folder
too. The API behind it is checked directly: /api/reconstruct, /api/progress (the file's tail
only, a FIFO answered at once), /api/state's training, /favicon.ico.
usage: test_page.py PATH/TO/clvae SCREENSHOT_DIR; exit 77 without libmicrohttpd in clvae,
without OpenCL, or without node, Chromium or tests/tfjs/node_modules."""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from testlib import browser_missing, check, no_opencl, read_png, summary, wait_for, write_png

CLVAE = os.path.abspath(sys.argv[1])
SHOTS = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else tempfile.gettempdir()
TFJS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tfjs')
TRAIN, TEST = (30, 120, 181), (255, 128, 12)  # loss.png's curves (src/io/plot.c, as cairo renders them)

DRIVER = r'''
// Drives clvae serve's page as a user would; prints what it saw as one JSON object.
const fs = require('fs');
const path = require('path');
const cp = require('child_process');
const puppeteer = require('puppeteer-core');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = { errors: [], bad: [], requests: [] };
const wait = (page, fn, arg, timeout = 30000) => page.waitForFunction(fn, { timeout, polling: 50 }, arg);
const data = (page, id) => page.$eval(`#${id}`, (e) => ({ ...e.dataset }));
const rect = (page, id) => page.$eval(`#${id}`, (e) => {
  const r = e.getBoundingClientRect();
  return [r.left, r.top, r.right, r.bottom];
});

// A canvas's pixels (RGBA, base64), its box on the page and its data attributes.
function pixels(page, id) {
  return page.evaluate((id) => {
    const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = '';
    for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
    const r = c.getBoundingClientRect();
    return { w: c.width, h: c.height, box: [r.left, r.top, r.width, r.height], rgba: btoa(s), data: { ...c.dataset } };
  }, id);
}

async function open(browser, url, width, height) {
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  page.on('pageerror', (e) => out.errors.push(String(e)));
  page.on('request', (r) => out.requests.push(new URL(r.url()).pathname));
  page.on('response', (r) => { if (r.status() >= 400) out.bad.push(`${r.status()} ${r.url()}`); });
  page.on('requestfailed', (r) => out.bad.push(`failed ${r.url()}`));
  await page.goto(url);
  await wait(page, () => document.body.dataset.version && document.getElementById('decoding').dataset.z &&
             document.body.dataset.polls);
  return page;
}

// Moves the pointer to (x, y) and waits for the decoding of the z there; returns that z.
async function pointAt(page, x, y) {
  const before = await page.$eval('#z', (e) => e.dataset.z || '');
  await page.mouse.move(x, y);
  await wait(page, (b) => {
    const z = document.getElementById('z').dataset.z || '';
    return z !== b && document.getElementById('decoding').dataset.z === z;
  }, before, 10000);
  return page.$eval('#z', (e) => JSON.parse(e.dataset.z));
}

// A point of the grid, or of the scatter's plot area, at fractions (fx, fy) of it.
async function where(page, id, fx, fy) {
  return page.$eval(`#${id}`, (e, fx, fy) => {
    const r = e.getBoundingClientRect(), v = e.dataset.view ? JSON.parse(e.dataset.view) : null;
    if (!v) return [r.left + fx * r.width, r.top + fy * r.height];
    return [r.left + v.left + fx * v.size, r.top + v.top + fy * v.size];
  }, fx, fy);
}

async function markers(page) {
  return { grid: await pixels(page, 'grid-marker'), scatter: await pixels(page, 'scatter-marker'),
           view: await page.$eval('#scatter', (e) => JSON.parse(e.dataset.view)),
           drawn: await page.evaluate(() => JSON.parse(document.body.dataset.grid)),
           gridBox: await rect(page, 'grid') };
}

const training = (page) => page.$eval('#training', (e) => ({
  hidden: e.hidden, text: e.textContent, t: e.dataset.training ? JSON.parse(e.dataset.training) : null }));
const polls = (page) => page.evaluate(() => Number(document.body.dataset.polls));

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new'],
  });
  try {
    // ---- the wide window: everything in view at first, z = 0 decoded
    const p = await open(browser, cfg.urlA, 1400, 1000);
    out.wide = { scroll: await p.evaluate(() => [window.scrollX, window.scrollY, innerWidth, innerHeight]), rects: {} };
    for (const id of ['grid', 'scatter', 'decoding', 'live']) out.wide.rects[id] = await rect(p, id);
    out.wide.live = await pixels(p, 'live');
    out.wide.z = await p.$eval('#decoding', (e) => JSON.parse(e.dataset.z));
    out.wide.zText = await p.$eval('#z', (e) => e.textContent);
    out.wide.icon = await p.$eval('link[rel=icon]', (e) => e.href);
    await wait(p, () => document.getElementById('recon').dataset.version &&
               document.getElementById('loss').dataset.view);
    out.wide.recon = await pixels(p, 'recon');
    out.wide.scatter = await pixels(p, 'scatter');
    out.wide.loss = await pixels(p, 'loss');
    out.wide.lossLegend = await p.$eval('#loss-legend', (e) => e.textContent);
    out.wide.training0 = await training(p);

    // ---- markers: the pointer on the grid, then on the scatter
    out.hoverGrid = { at: await where(p, 'grid', 0.3, 0.65) };
    out.hoverGrid.z = await pointAt(p, ...out.hoverGrid.at);
    out.hoverGrid.m = await markers(p);
    out.hoverScatter = { at: await where(p, 'scatter', 0.55, 0.4) };
    out.hoverScatter.z = await pointAt(p, ...out.hoverScatter.at);
    out.hoverScatter.m = await markers(p);

    // ---- Enter in a field draws the grid
    await p.$eval('#pointsPerDim', (e) => { e.focus(); e.select(); });
    await p.keyboard.type('7');
    await p.keyboard.press('Enter');
    await wait(p, () => JSON.parse(document.body.dataset.grid).n === 7, null, 10000);
    await p.$eval('#end', (e) => { e.focus(); e.select(); });
    await p.keyboard.type('3');
    await p.keyboard.press('Enter');
    await wait(p, () => JSON.parse(document.body.dataset.grid).end === 3, null, 10000);
    out.enter = { key: await p.evaluate(() => JSON.parse(document.body.dataset.grid)), grid: await pixels(p, 'grid') };

    // ---- a live process holds the run's lock, then rows of the epoch in progress arrive
    const lock = path.join(cfg.served, '.clvae.lock'), progress = path.join(cfg.served, 'progress.csv');
    fs.writeFileSync(lock, `${process.pid}\n`);
    const t0 = Date.now();
    fs.appendFileSync(progress, cfg.rows.map((r) => `${r}\n`).join(''));
    await wait(p, (n) => Number(document.getElementById('loss').dataset.progress) === n, cfg.progressCount, 15000);
    out.progressSeconds = (Date.now() - t0) / 1000;
    await wait(p, (s) => document.getElementById('training').dataset.training &&
               JSON.parse(document.getElementById('training').dataset.training).step === s, cfg.lastStep, 15000);
    out.trainingSeconds = (Date.now() - t0) / 1000;
    out.live = await training(p);
    out.live.age = (Date.now() - t0) / 1000;
    out.lossAfter = await pixels(p, 'loss');
    // the README's picture: a finer grid, the pointer on it, the run training
    await p.$eval('#pointsPerDim', (e) => { e.value = '12'; });
    await p.$eval('#end', (e) => { e.value = '4'; e.focus(); });
    await p.keyboard.press('Enter');
    await wait(p, () => JSON.parse(document.body.dataset.grid).n === 12, null, 10000);
    await p.$eval('#end', (e) => e.blur());
    await pointAt(p, ...(await where(p, 'grid', 0.62, 0.3)));
    await p.screenshot({ path: path.join(cfg.shots, 'clvae-serve-page.png') });

    // ---- the lock of a dead process, then none
    const dead = cp.spawnSync('true').pid;
    fs.writeFileSync(lock, `${dead}\n`);
    const t1 = Date.now();
    await wait(p, () => document.getElementById('training').hidden, null, 15000);
    out.deadSeconds = (Date.now() - t1) / 1000;
    fs.unlinkSync(lock);
    const n0 = await polls(p);
    await wait(p, (n) => Number(document.body.dataset.polls) >= n + 2, n0, 15000);
    out.noLock = await training(p);

    // ---- a real `clvae train --resume` holds the run, and stops
    const child = cp.spawn(cfg.clvae, ['train', '--resume', '--out', cfg.served, '--epochs', '1000', '--quiet'],
                           { stdio: ['ignore', 'pipe', 'pipe'] });
    let said = '';
    child.stdout.on('data', (d) => { said += d; });
    child.stderr.on('data', (d) => { said += d; });
    const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
    try {
      await wait(p, (pid) => document.getElementById('training').dataset.training &&
                 JSON.parse(document.getElementById('training').dataset.training).pid === pid, child.pid, 60000);
      out.real = await training(p);
      out.real.pid = child.pid;
    } finally {
      child.kill('SIGTERM');
    }
    out.realExit = await exited;
    out.realSaid = said;
    await wait(p, () => document.getElementById('training').hidden, null, 15000);
    out.realGone = await training(p);
    out.lockLeft = fs.existsSync(lock);

    // ---- the narrow window: nothing sideways, the panel in view wherever the pointer is
    const q = await open(browser, cfg.urlA, 800, 1000);
    out.narrow = { width: await q.evaluate(() => [document.documentElement.scrollWidth, document.body.scrollWidth]),
                   cases: [] };
    let k = 0; // each case a point of its own (the same z twice would not decode again)
    for (const id of ['grid', 'scatter']) {
      for (const how of ['top', 'middle', 'bottom', 'last rows']) {
        // the rows a pointer decodes in: the grid, or the scatter's plot area
        const rows = () => q.$eval(`#${id}`, (e) => {
          const r = e.getBoundingClientRect(), v = e.dataset.view ? JSON.parse(e.dataset.view) : null;
          return v ? [r.left + v.left, r.top + v.top, v.size, v.size] : [r.left, r.top, r.width, r.height];
        });
        const [, top0, , h] = await rows();
        const y = await q.evaluate(() => window.scrollY) + top0, H = 1000;
        const to = how === 'top' ? y : how === 'middle' ? y + h / 2 - H / 2 : how === 'bottom' ? y + h - H : y + h - 30;
        await q.evaluate((to) => window.scrollTo(0, Math.max(0, to)), to);
        const [left, top, w, hh] = await rows();
        const a = Math.max(top, 0), b = Math.min(top + hh, H), at = [left + w * (0.3 + 0.05 * k++), (a + b) / 2];
        const hit = await q.evaluate(([x, y]) => (document.elementFromPoint(x, y) || {}).id, at);
        const z = await pointAt(q, ...at);
        out.narrow.cases.push({ id, how, at, hit, z, scrollY: await q.evaluate(() => window.scrollY),
                                panel: await rect(q, 'decoding'),
                                view: await q.evaluate(() => [innerWidth, innerHeight]) });
      }
    }
    await q.evaluate(() => window.scrollTo(0, 0));
    await q.screenshot({ path: path.join(cfg.shots, 'clvae-serve-page-800.png') });

    // ---- an RGB model of 3 latent dimensions on unlabelled PNGs
    const r = await open(browser, cfg.urlB, 1400, 1000);
    await wait(r, () => document.getElementById('recon').dataset.version);
    out.b = { legend: await r.$eval('#legend', (e) => e.textContent), dims: await r.$eval('#dims', (e) => !e.hidden),
              options: await r.$eval('#dy', (e) => e.options.length), recon: await pixels(r, 'recon'),
              gridBox: await rect(r, 'grid'), live: await pixels(r, 'live') };
    await r.select('#dy', '2'); // at once, no Update
    await wait(r, () => JSON.parse(document.body.dataset.grid).dy === 2, null, 10000);
    out.b.grid02 = await pixels(r, 'grid');
    await r.select('#dx', '2'); // the other's dimension: the two swap
    await wait(r, () => JSON.parse(document.body.dataset.grid).dx === 2, null, 10000);
    out.b.swapped = { key: await r.evaluate(() => JSON.parse(document.body.dataset.grid)),
                      dx: await r.$eval('#dx', (e) => e.value), dy: await r.$eval('#dy', (e) => e.value) };
    await r.$eval('#start', (e) => { e.value = '-3'; }); // typed, not applied; then Enter in a selector
    await r.focus('#dy');
    await r.keyboard.press('Enter');
    await wait(r, () => JSON.parse(document.body.dataset.grid).start === -3, null, 10000);
    out.b.enterSelect = await r.evaluate(() => JSON.parse(document.body.dataset.grid));
    out.b.hover = { at: await where(r, 'scatter', 0.45, 0.55) };
    out.b.hover.z = await pointAt(r, ...out.b.hover.at);
    out.b.hover.m = await markers(r);
    out.b.scatter = await pixels(r, 'scatter');
    await r.screenshot({ path: path.join(cfg.shots, 'clvae-serve-page-rgb.png') });
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
'''


def run(*args, timeout=300):
    p = subprocess.run([CLVAE, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


class Server:
    def __init__(self, *args):
        self.p = subprocess.Popen([CLVAE, 'serve', '--port', '0', *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.lines, self.url = [], None
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: self.url, timeout=120, proc=self.p)

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)
            m = re.search(r'(http://[^ ]+/) ', line)
            if m and not self.url:
                self.url = m.group(1)

    def output(self):
        return ''.join(self.lines)

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path.lstrip('/'), timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path):
        st, h, body = self.get(path)
        return st, json.loads(body)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return -999


class Canvas:
    """A canvas's RGBA pixels as the driver read them."""

    def __init__(self, d):
        self.w, self.h, self.box, self.data = d['w'], d['h'], d['box'], d['data']
        self.px = base64.b64decode(d['rgba'])

    def at(self, x, y):
        x, y = int(x), int(y)
        if not (0 <= x < self.w and 0 <= y < self.h):
            return (255, 255, 255, 0)
        i = 4 * (y * self.w + x)
        return tuple(self.px[i:i + 4])

    def rgb(self):
        return [v for i, v in enumerate(self.px) if i % 4 != 3]

    def grey(self):
        return list(self.px[0::4])

    def centroid(self):
        """The centre of the opaque pixels (a marker), or None."""
        xs = ys = n = 0
        for i in range(3, len(self.px), 4):
            if self.px[i] > 128:
                p = i // 4
                xs, ys, n = xs + p % self.w, ys + p // self.w, n + 1
        return (xs / n + 0.5, ys / n + 0.5) if n else None

    def count(self, rgb, tol):
        return sum(1 for i in range(0, len(self.px), 4)
                   if all(abs(self.px[i + k] - rgb[k]) <= tol for k in range(3)))


def png_pixels(path):
    w, h, ch, rows = read_png(path)
    return w, h, ch, [v for row in rows for v in row]


def picture(cmd, model, *args):
    path = tempfile.mktemp(suffix='.png')
    rc, out = run(cmd, '--model', model, *args, '--out', path)
    if rc:
        raise RuntimeError(out)
    r = png_pixels(path)
    os.unlink(path)
    return r


def same_pixels(canvas, png):
    """Whether a canvas shows a grey or RGB PNG's pixels exactly."""
    w, h, ch, px = png
    return canvas.w == w and canvas.h == h and (canvas.grey() if ch == 1 else canvas.rgb()) == px


def loss_png_colours(path):
    """The two most frequent saturated colours of loss.png: its train and test curves."""
    w, h, ch, px = png_pixels(path)
    counts = {}
    for i in range(0, len(px), 3):
        c = tuple(px[i:i + 3])
        if max(c) - min(c) > 80:
            counts[c] = counts.get(c, 0) + 1
    return [c for c, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:2]]


def dark(p, level=110):
    return p[3] > 200 and max(p[:3]) < level


def inside(r, vw, vh):
    return r[0] >= 0 and r[1] >= 0 and r[2] <= vw and r[3] <= vh


def scatter_xy(v, zx, zy):
    k = v['size'] / (v['hi'] - v['lo'])
    return v['left'] + (zx - v['lo']) * k, v['top'] + v['size'] - (zy - v['lo']) * k


def check_markers(what, z, m):
    """The marker on the grid and on the scatter: centred on z's place (within 1.5 px)."""
    d, v = m['drawn'], m['view']
    zx, zy = z[d['dx']], (z[d['dy']] if d['dy'] >= 0 else 0)
    step = (d['end'] - d['start']) / (d['n'] - 1)
    lo, hi = d['start'] - step / 2, d['end'] + step / 2
    gw, gh = m['gridBox'][2] - m['gridBox'][0], m['gridBox'][3] - m['gridBox'][1]
    want_g = ((zx - lo) / (hi - lo) * gw, (1 - (zy - lo) / (hi - lo)) * gh)
    want_s = scatter_xy(v, zx, zy)
    got_g, got_s = Canvas(m['grid']).centroid(), Canvas(m['scatter']).centroid()
    for name, got, want in (('grid', got_g, want_g), ('scatter', got_s, want_s)):
        check(got is not None and abs(got[0] - want[0]) <= 1.5 and abs(got[1] - want[1]) <= 1.5,
              f'{what}: a marker on the {name} at the decoded z ({want[0]:.1f}, {want[1]:.1f})', f'{got}')


def check_scatter(what, sc, drawn):
    """Axes with nice ticks covering the range, titles, and the grid's range as a rectangle."""
    v, ticks, (plo, phi) = json.loads(sc.data['view']), json.loads(sc.data['ticks']), json.loads(sc.data['rect'])
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    check(len(ticks) >= 3 and len(steps) == 1 and ticks[0] == v['lo'] and ticks[-1] == v['hi'],
          f'{what}: the scatter\'s ticks are evenly spaced and span its range ({ticks})', json.dumps(v))
    left, top, size = v['left'], v['top'], v['size']
    bottom = top + size
    k = size / (v['hi'] - v['lo'])
    marks = [sc.at(round(left + (t - v['lo']) * k), bottom + 2) for t in ticks] + \
            [sc.at(left - 2, round(bottom - (t - v['lo']) * k)) for t in ticks]
    check(all(dark(p) for p in marks), f'{what}: a tick mark at each tick on both axes', str(marks))
    check_titles(f'{what}: the scatter', sc, {'left': left, 'bottom': bottom}, f'z[{drawn["dx"]}] (mean)',
                 f'z[{drawn["dy"]}] (mean)')
    step = (drawn['end'] - drawn['start']) / (drawn['n'] - 1)
    check(abs(plo - (drawn['start'] - step / 2)) < 1e-9 and abs(phi - (drawn['end'] + step / 2)) < 1e-9,
          f'{what}: the rectangle is the grid\'s plane [{plo:.3f}, {phi:.3f}]')
    x0, y0 = (round(c) for c in scatter_xy(v, plo, phi))
    x1, y1 = (round(c) for c in scatter_xy(v, phi, plo))
    edge = [sc.at(x0 - 1 + (i % 2), y0 + (y1 - y0) * f / 20) for i, f in enumerate(range(1, 20))] + \
           [sc.at(x1 - 1 + (i % 2), y0 + (y1 - y0) * f / 20) for i, f in enumerate(range(1, 20))] + \
           [sc.at(x0 + (x1 - x0) * f / 20, y0 - 1 + (i % 2)) for i, f in enumerate(range(1, 20))] + \
           [sc.at(x0 + (x1 - x0) * f / 20, y1 - 1 + (i % 2)) for i, f in enumerate(range(1, 20))]
    check(sum(map(lambda p: dark(p, 40), edge)) >= 0.95 * len(edge),
          f'{what}: the scatter draws the grid\'s range as a rectangle ({sum(map(lambda p: dark(p, 40), edge))}'
          f'/{len(edge)} edge pixels)')


def check_titles(what, c, frame, xtitle, ytitle):
    """Axis titles: the texts wanted, ink where the page says they are, the x title under the
    tick labels, the y title left of them."""
    (xt, xx, xy, xr), (yt, yx, yy, yr) = json.loads(c.data['titles'])
    ink_x = sum(dark(c.at(x, y)) for x in range(int(xx - 25), int(xx + 25)) for y in range(int(xy - 5), int(xy + 6)))
    ink_y = sum(dark(c.at(x, y)) for x in range(int(yx - 5), int(yx + 6)) for y in range(int(yy - 25), int(yy + 25)))
    check(xt == xtitle and yt == ytitle and not xr and yr and xy >= frame['bottom'] + 24 and
          yx <= frame['left'] - 14 and ink_x > 20 and ink_y > 20,
          f'{what} has axis titles ("{xtitle}" under, "{ytitle}" along the left)',
          f'{c.data["titles"]} {ink_x} {ink_y}')


def check_loss(lc, png_colours):
    v = json.loads(lc.data['view'])
    n_train, n_test = lc.count(TRAIN, 2), lc.count(TEST, 2)
    check(n_train > 30 and n_test > 30, f'the loss chart draws train and test in loss.png\'s colours '
          f'({n_train}, {n_test} pixels of rgb{TRAIN}, rgb{TEST})')
    if png_colours:
        close = all(any(all(abs(a - b) <= 3 for a, b in zip(c, want)) for c in png_colours) for want in (TRAIN, TEST))
        check(close, f'those are loss.png\'s curve colours ({png_colours})')
    check_titles('the loss chart', lc, v['frame'], 'epoch', 'loss per image (reconstruction + KL)')


def data_set(tmp):
    """train/ and test/ of 10x12 RGB PNGs, no class folders: an unlabelled set."""
    root = os.path.join(tmp, 'rgb')
    for part, n in (('train', 64), ('test', 16)):
        os.makedirs(os.path.join(root, part))
        for i in range(n):
            rows = [[(x * 20 + i * 9) % 256 if c == 0 else (y * 25 + i * 5) % 256 if c == 1 else (x * y * 3 + i) % 256
                     for x in range(12) for c in range(3)] for y in range(10)]
            write_png(os.path.join(root, part, f'{i:03d}.png'), 12, 10, rows, color_type=2)
    return root


def api_checks(tmp, sa, model_a, sb, model_b):
    for s, model, what in ((sa, model_a, 'grey'), (sb, model_b, 'RGB')):
        want = picture('reconstruct', model, '--count', '8')
        st, h, body = s.get('/api/reconstruct?count=8')
        check(st == 200 and list(body) == want[3], f'/api/reconstruct?count=8 ({what}) is clvae reconstruct '
              f'--count 8\'s mosaic, byte for byte ({want[0]}x{want[1]}x{want[2]})', f'{st} {len(body)}')
    want = picture('reconstruct', model_a, '--count', '3')
    st, h, body = sa.get('/api/reconstruct?count=3')
    check(st == 200 and list(body) == want[3], '/api/reconstruct?count=3: likewise')
    for q in ('count=0', 'count=65', 'count=2.5', 'count=x', 'count=nan'):
        st, h, body = sa.get('/api/reconstruct?' + q)
        check(st == 400 and 'count' in json.loads(body).get('error', ''), f'/api/reconstruct?{q}: 400 naming count')
    st, h, body = sa.get('/favicon.ico')
    check(st == 200 and h.get('Content-Type') == 'image/png' and body[:8] == b'\x89PNG\r\n\x1a\n',
          '/favicon.ico: a PNG, no 404')
    st, info = sb.json('/api/info')
    check(st == 200 and info['channels'] == 3 and info['latent'] == 3 and info['classes'] == [] and
          info['steps_per_epoch'] == 8, 'the RGB model: 3 channels, 3 latent dimensions, unlabelled, 8 steps an epoch',
          str(info))

    # progress.csv: its tail only, whole rows only; a FIFO (and a FIFO for the lock) answered at once
    d = os.path.join(tmp, 'odd')
    os.makedirs(d)
    shutil.copy(model_b, d)
    rows = [f'{s},{(s - 1) // 8 + 1},{100 - s * 1e-4:.6f},{s % 8 * 0.25:.3f}' for s in range(1, 30001)]
    with open(os.path.join(d, 'progress.csv'), 'w') as f:
        f.write('step,epoch,loss,seconds\n' + '\n'.join(rows) + '\n30001,3751,1.0')  # the last row half written
    s = Server('--model', os.path.join(d, 'checkpoint.clvae'))
    try:
        st, p = s.json('/api/progress')
        size = os.path.getsize(os.path.join(d, 'progress.csv'))
        check(st == 200 and 1000 < len(p['step']) < 30000 and p['step'][-1] == 30000 and
              p['step'] == list(range(30001 - len(p['step']), 30001)) and p['steps_per_epoch'] == 8,
              f'/api/progress: the newest whole rows of a {size // 1024} KiB file, from its last 256 KiB '
              f'({len(p["step"])} rows, the half-written one left out)', str(p['step'][-3:]))
        os.unlink(os.path.join(d, 'progress.csv'))
        os.mkfifo(os.path.join(d, 'progress.csv'))
        os.mkfifo(os.path.join(d, '.clvae.lock'))
        t0 = time.time()
        st, p = s.json('/api/progress')
        st2, state = s.json('/api/state')
        took = time.time() - t0
        check(st == 200 and p['step'] == [] and st2 == 200 and state['training'] is None and took < 5,
              f'progress.csv and .clvae.lock as FIFOs: no rows, not training, at once ({took:.2f} s)')
        os.unlink(os.path.join(d, '.clvae.lock'))
        with open(os.path.join(d, '.clvae.lock'), 'w') as f:
            f.write(f'{os.getpid()}\n')
        st, state = s.json('/api/state')
        t = state['training'] or {}
        check(t.get('pid') == os.getpid() and t.get('epoch') == 2 and t.get('step') == 8 and t.get('epoch_step') == 0
              and t.get('epoch_eta_seconds') is None, '/api/state: a live pid in the lock is a training run; with no '
              'row yet its position is the checkpoint\'s and no ETA', str(state))
        with open(os.path.join(d, '.clvae.lock'), 'w') as f:
            f.write('12x\n')
        check(s.json('/api/state')[1]['training'] is None, 'a lock file that does not hold a pid: not training')
        with open(os.path.join(d, '.clvae.lock'), 'w') as f:
            f.write(f'{os.getpid()}\n')
            f.truncate(1 << 30)  # sparse: its pid, then zeros
        t0 = time.time()
        st, state = s.json('/api/state')
        took = time.time() - t0
        check(st == 200 and (state['training'] or {}).get('pid') == os.getpid() and took < 2,
              f'a lock file of 1 GB: its first bytes only (the pid), answered at once ({took:.2f} s)')
    finally:
        s.stop()


def main(tmp):
    run_a, run_b = os.path.join(tmp, 'a'), os.path.join(tmp, 'b')
    rc, out = run('train', '--limit', '20000', '--epochs', '2', '--report-every', '10', '--out', run_a, '--quiet')
    if rc == 0:
        rc, out = run('train', '--data', data_set(tmp), '--latent-dim', '3', '--hidden', '32', '--batch-size', '8',
                      '--epochs', '1', '--report-every', '2', '--out', run_b, '--quiet')
    if rc:
        check(False, 'models to serve', out)
        return
    model_a, model_b = os.path.join(run_a, 'checkpoint.clvae'), os.path.join(run_b, 'checkpoint.clvae')
    served = os.path.join(tmp, 'served')
    shutil.copytree(run_a, served)
    sa, sb = Server('--model', os.path.join(served, 'checkpoint.clvae')), Server('--model', model_b)
    try:
        if not sa.url or not sb.url:
            check(False, 'the servers start', sa.output() + sb.output())
            return
        api_checks(tmp, sa, model_a, sb, model_b)
        why = browser_missing(TFJS, ('puppeteer-core',))
        if why:
            print(f'SKIP (the browser part): {why}')
            return
        st, info = sa.json('/api/info')
        spe, step0 = info['steps_per_epoch'], info['step']
        first = sum(1 for line in open(os.path.join(served, 'progress.csv')) if line[:1].isdigit())
        m = sa.json('/api/metrics')[1]
        # two rows of epoch 3: 10 and 20 steps in, at 0.2 s a step
        loss = m['train_loss'][-1]
        rows = [f'{step0 + 10},3,{loss + 1:.6f},2.000', f'{step0 + 20},3,{loss:.6f},4.000']
        cfg = {'urlA': sa.url, 'urlB': sb.url, 'served': served, 'shots': SHOTS, 'clvae': CLVAE, 'rows': rows,
               'progressCount': first + 2, 'lastStep': step0 + 20}
        with open(os.path.join(tmp, 'driver.js'), 'w') as f:
            f.write(DRIVER)
        with open(os.path.join(tmp, 'driver.json'), 'w') as f:
            json.dump(cfg, f)
        # what the page must show, from the served run as it is before the driver's `train --resume`
        decode0 = sa.get('/api/decode?z=0,0')[2]
        want_recon_a, want_recon_b = (picture('reconstruct', mo, '--count', '8') for mo in (model_a, model_b))
        env = dict(os.environ, NODE_PATH=os.path.join(TFJS, 'node_modules'))
        p = subprocess.run(['node', os.path.join(tmp, 'driver.js'), os.path.join(tmp, 'driver.json')],
                           capture_output=True, text=True, env=env, timeout=400)
        want_grid7 = picture('grid', model_a, '--n', '7', '--range', '-4,3')
        want_b02 = picture('grid', model_b, '--n', '10', '--range', '-4,4', '--dims', '0,2')
    finally:
        sa.stop(), sb.stop()
    try:
        r = json.loads(p.stdout)
    except ValueError:
        check(False, 'Chromium drove the page', p.stderr[-3000:] + p.stdout[-2000:] + sa.output()[-2000:])
        return
    check(not r['errors'], 'the pages ran without JavaScript errors', str(r['errors']))
    check(not r['bad'] and '/favicon.ico' in r['requests'], 'no request failed or got a 404 (the favicon is served)',
          str(r['bad']))

    w = r['wide']
    vw, vh = w['scroll'][2], w['scroll'][3]
    check(w['scroll'][:2] == [0, 0] and all(inside(w['rects'][k], vw, vh) for k in ('grid', 'scatter', 'decoding')),
          f'at {vw}x{vh} the grid, the scatter and the decoding panel are in view without scrolling', str(w['rects']))
    live = Canvas(w['live'])
    check(w['z'] == [0, 0] and '(0.000, 0.000)' in w['zText'] and live.grey() == list(decode0),
          f'on load the panel shows z = 0 decoded ({w["zText"]})')
    check(same_pixels(Canvas(w['recon']), want_recon_a), '8 test images and their reconstructions, pixel-equal to '
          'clvae reconstruct --count 8')
    drawn0 = {'n': 10, 'start': -4, 'end': 4, 'dx': 0, 'dy': 1}
    check_scatter('grey, 2 latent dimensions', Canvas(w['scatter']), drawn0)
    loss_png = os.path.join(served, 'loss.png')
    check_loss(Canvas(w['loss']), loss_png_colours(loss_png) if os.path.exists(loss_png) else None)
    check(w['training0']['hidden'], 'no training indicator while no run holds the lock')

    z = r['hoverGrid']['z']
    check_markers('the pointer on the grid', z, r['hoverGrid']['m'])
    check_markers('the pointer on the scatter', r['hoverScatter']['z'], r['hoverScatter']['m'])
    v = r['hoverScatter']['m']['view']
    sx, sy = r['hoverScatter']['at']
    box = r['wide']['scatter']['box']
    zx = v['lo'] + (sx - box[0] - v['left']) / v['size'] * (v['hi'] - v['lo'])
    zy = v['lo'] + (1 - (sy - box[1] - v['top']) / v['size']) * (v['hi'] - v['lo'])
    zs = r['hoverScatter']['z']
    check(abs(zs[0] - zx) < 0.03 and abs(zs[1] - zy) < 0.03, f'the pointer on the scatter decodes the z under it '
          f'({zs[0]:.3f}, {zs[1]:.3f}) on its axes', f'expected ({zx:.3f}, {zy:.3f})')
    e = r['enter']
    check(e['key']['n'] == 7 and e['key']['end'] == 3 and same_pixels(Canvas(e['grid']), want_grid7),
          'Enter in "points per dimension" and in "end" draws the grid (clvae grid --n 7 --range -4,3)', str(e['key']))

    check(r['progressSeconds'] <= 3, f'rows appended to progress.csv are on the chart within 3 s '
          f'({r["progressSeconds"]:.1f} s)')
    lv = json.loads(r['lossAfter']['data']['view'])
    lc = Canvas(r['lossAfter'])
    x = lv['left'] + ((spe * 2 + 20) / spe - lv['x0']) / (lv['x1'] - lv['x0']) * (lv['right'] - lv['left'])
    y = lv['bottom'] - (m['train_loss'][-1] - lv['y0']) / (lv['y1'] - lv['y0']) * (lv['bottom'] - lv['top'])
    near = [lc.at(x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    check(any(p[2] - p[0] > 60 for p in near),
          f'the newest row is drawn where it belongs (epoch {(spe * 2 + 20) / spe:.2f})', str(near))
    t, age = r['live']['t'], r['live']['age']
    eta_then = (spe - 20) * 0.2
    check(not r['live']['hidden'] and t['pid'] > 0 and t['epoch'] == 3 and t['step'] == step0 + 20 and
          t['epoch_step'] == 20 and t['steps_per_epoch'] == spe and r['trainingSeconds'] <= 3,
          f'a live pid in .clvae.lock: "training" within 3 s with the last row\'s epoch and step ({r["live"]["text"]})',
          json.dumps(t))
    eta = t['epoch_eta_seconds']
    check(eta is not None and eta_then - age - 0.5 <= eta <= eta_then - age + 1.5 and
          'left in this epoch' in r['live']['text'],
          f'its ETA for the epoch: {eta} s ({spe - 20} steps left at 0.2 s a step, counted down from the row, '
          f'{age:.1f} s ago)')
    check(r['deadSeconds'] <= 3 and r['noLock']['hidden'],
          f'a dead pid in the lock, or no lock: no indicator (within {r["deadSeconds"]:.1f} s)')
    real = r.get('real') or {}
    check(real.get('t') and real['t']['pid'] == real['pid'] and not real['hidden'] and r['realGone']['hidden'],
          f'a real clvae train --resume: the indicator shows its pid, and goes when it stops '
          f'(exit {r["realExit"]}, lock left: {r["lockLeft"]})', r.get('realSaid', ''))

    n = r['narrow']
    check(max(n['width']) <= 800, f'at 800x1000 nothing overflows sideways (scroll width {n["width"]})')
    for c in n['cases']:
        check(c['hit'] == c['id'] and inside(c['panel'], *c['view']),
              f'at 800x1000, the pointer on the {c["id"]} ({c["how"]}, scrolled to {c["scrollY"]:.0f}): the decoding '
              f'panel is in view', json.dumps(c))

    b = r['b']
    check(b['dims'] and b['options'] == 3 and b['legend'] == 'images', 'RGB, 3 latent dimensions, unlabelled: the '
          'dimension selectors, one legend entry', str(b['legend']))
    check(same_pixels(Canvas(b['recon']), want_recon_b), 'RGB: the reconstructions equal clvae reconstruct --count 8')
    g = Canvas(b['grid02'])
    check(g.w == want_b02[0] and g.h == want_b02[1] and max(abs(a - c) for a, c in zip(g.rgb(), want_b02[3])) <= 1,
          'choosing z[2] for y redraws at once, without Update: clvae grid --dims 0,2 (RGB, 10x12 images)')
    gb = b['gridBox']
    check(abs((gb[2] - gb[0]) / (gb[3] - gb[1]) - 12 / 10) < 0.01, 'the grid keeps the images\' aspect (12:10)',
          str(gb))
    sw = b['swapped']
    check(sw['key']['dx'] == 2 and sw['key']['dy'] == 0 and sw['dy'] == '0',
          'choosing for x the dimension y shows: the two swap, at once', json.dumps(sw))
    check(b['enterSelect']['start'] == -3, 'Enter in a dimension selector draws the grid with the fields as typed')
    zb = b['hover']['z']
    check(len(zb) == 3 and zb[1] == 0, f'the pointer on the scatter of z[2] across, z[0] up: z = {zb}')
    check_markers('RGB, dims (2, 0)', zb, b['hover']['m'])
    check_scatter('RGB, dims (2, 0)', Canvas(b['scatter']), b['enterSelect'])
    check(os.path.exists(os.path.join(SHOTS, 'clvae-serve-page.png')), f'screenshots in {SHOTS}')


if __name__ == '__main__':
    r = subprocess.run([CLVAE, 'serve', '--help'], capture_output=True, text=True)
    if r.returncode != 0:
        print('SKIP: clvae was built without libmicrohttpd (clvae serve)')
        sys.exit(77)
    if no_opencl(CLVAE):
        print('SKIP: no OpenCL platform')
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        main(tmp)
    sys.exit(summary())
