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
too. Conditional models (Fashion-MNIST's named classes; RGB class folders, 3 latent
dimensions): a class selector (none for other models) whose change redraws the grid and the
decoding at once, each equal to `clvae grid --class K`, reconstructions equal to `clvae
reconstruct`; latent walks by clicking two test images, by their indices, by shift-clicking two
points of the grid and by "Pick ends" on the scatter, each the row `clvae interpolate` draws,
for every kind of model, the walk in view while the pointer is on a plane. The API behind it
is checked directly: /api/reconstruct, /api/progress (the file's tail only, a FIFO answered at
once), /api/state's training, /favicon.ico, /api/info's conditional, class=K on /api/grid and
/api/decode, /api/walk, and their 400s.
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
import urllib.parse
import urllib.request

from testlib import browser_missing, check, read_png, serve_test, wait_for, write_png

CLVAE = os.path.abspath(sys.argv[1])
SHOTS = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else tempfile.gettempdir()
TFJS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tfjs')
TRAIN, TEST = (30, 120, 181), (255, 128, 12)  # loss.png's curves (src/io/plot.c, as cairo renders them)
FASHION = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
CLASS_FOLDERS = ['blue', 'green', 'red']  # the conditional RGB model's classes: the channel each folder's images light

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

// ---- walks: the row shown, and how a user asks for one

const walkQuery = (page) => page.$eval('#walk-row', (e) => e.dataset.query || '');

// Waits for a walk other than the one whose query was `before`, of `kind`; what it shows.
async function walkAfter(page, before, kind) {
  await wait(page, ([b, k]) => {
    const e = document.getElementById('walk-row');
    return e.dataset.query && e.dataset.query !== b && JSON.parse(e.dataset.walk).kind === k;
  }, [before, kind], 10000);
  return { walk: await page.$eval('#walk-row', (e) => JSON.parse(e.dataset.walk)), query: await walkQuery(page),
           row: await pixels(page, 'walk-row'), title: await page.$eval('#walk-title', (e) => e.textContent),
           note: await page.$eval('#walk-note', (e) => e.textContent), rect: await rect(page, 'walk-row') };
}

// Clicks test image i's tile among the reconstructions (8 columns: originals in row 0).
async function clickImage(page, i) {
  const [x, y] = await page.$eval('#recon', (e, i) => {
    e.scrollIntoView({ block: 'center' });
    const r = e.getBoundingClientRect(), rows = e.height / (e.width / 8);
    return [r.left + (i % 8 + 0.5) * r.width / 8, r.top + (Math.floor(i / 8) * 2 + 0.5) * r.height / rows];
  }, i);
  await page.mouse.click(x, y);
}

// The walk from test image a to b by clicking both; what showed between the two clicks.
async function walkByClicks(page, a, b) {
  const before = await walkQuery(page);
  await clickImage(page, a);
  await wait(page, () => document.getElementById('walk').dataset.end, null, 5000);
  const pending = { end: await page.$eval('#walk', (e) => JSON.parse(e.dataset.end)),
                    outlined: await page.$eval('#recon-pick', (e) => !e.hidden) };
  await clickImage(page, b);
  return { pending, ...(await walkAfter(page, before, 'images')) };
}

// The walk between test images typed in, steps typed, then Enter.
async function walkByIndices(page, a, b, steps) {
  const before = await walkQuery(page);
  await page.$eval('#walk-steps', (e, n) => { e.value = String(n); }, steps);
  await page.$eval('#walk-from', (e, a) => { e.value = String(a); }, a);
  await page.$eval('#walk-to', (e, b) => { e.value = String(b); e.focus(); }, b);
  await page.keyboard.press('Enter');
  return walkAfter(page, before, 'images');
}

// The walk between two points of a plane, at fractions of it: shift-clicks, or clicks in the
// "Pick ends" mode; the z under the pointer at each.
async function walkByPoints(page, id, a, b, mode) {
  const before = await walkQuery(page), zs = [];
  await page.evaluate(() => window.scrollTo(0, 0));
  if (mode === 'pick') await page.click('#walk-pick');
  for (const [fx, fy] of [a, b]) {
    const at = await where(page, id, fx, fy);
    zs.push(await pointAt(page, ...at));
    if (mode === 'shift') await page.keyboard.down('Shift');
    await page.mouse.click(...at);
    if (mode === 'shift') await page.keyboard.up('Shift');
  }
  const r = await walkAfter(page, before, 'points');
  if (mode === 'pick') await page.click('#walk-pick');
  r.zs = zs;
  r.path = await page.$eval(`#${id}-walk`, (e) => JSON.parse(e.dataset.path));
  return r;
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

    // ---- walks on an unconditional model: no class selector, no class asked
    out.aWalk = { condition: await p.$eval('#condition', (e) => e.hidden), shown: await p.$eval('#walk', (e) => !e.hidden),
                  hints: [await p.$eval('#walk-hint', (e) => e.textContent), await p.$eval('#grid-box h2', (e) => e.textContent)] };
    out.aWalk.typed = await walkByIndices(p, 4, 9, 8);
    out.aWalk.points = await walkByPoints(p, 'scatter', [0.3, 0.7], [0.7, 0.35], 'shift');

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
    await wait(q, () => document.getElementById('recon').dataset.version);
    out.narrow.walk = await walkByClicks(q, 1, 3);
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
                                panel: await rect(q, 'decoding'), walk: await rect(q, 'walk-row'),
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
    out.b.clicks = await walkByClicks(r, 0, 5);
    out.b.points = await walkByPoints(r, 'scatter', [0.25, 0.3], [0.75, 0.6], 'shift');
    await r.screenshot({ path: path.join(cfg.shots, 'clvae-serve-page-rgb.png') });

    // ---- a conditional model (Fashion-MNIST's named classes)
    const c = await open(browser, cfg.urlC, 1400, 1000);
    await wait(c, () => document.getElementById('recon').dataset.version);
    const decoded = async (page) => ({ live: await pixels(page, 'live'), cls: await data(page, 'decoding'),
                                       grid: await pixels(page, 'grid'),
                                       key: await page.evaluate(() => JSON.parse(document.body.dataset.grid)) });
    out.c = { condition: await c.$eval('#condition', (e) => !e.hidden),
              options: await c.$$eval('#cls option', (os) => os.map((o) => [o.value, o.text])),
              value: await c.$eval('#cls', (e) => e.value), first: await decoded(c), recon: await pixels(c, 'recon') };
    const t2 = Date.now();
    await c.select('#cls', '5');
    await wait(c, () => JSON.parse(document.body.dataset.grid).cls === 5 &&
               document.getElementById('decoding').dataset.cls === '5', null, 10000);
    out.c.switchSeconds = (Date.now() - t2) / 1000;
    out.c.switched = await decoded(c);
    out.c.clicks = await walkByClicks(c, 2, 6);
    out.c.grid = await walkByPoints(c, 'grid', [0.2, 0.8], [0.8, 0.25], 'shift');
    await c.select('#cls', '7'); // the walk between points follows the class
    await wait(c, () => JSON.parse(document.getElementById('walk-row').dataset.walk).cls === 7, null, 10000);
    out.c.regrid = { walk: await c.$eval('#walk-row', (e) => JSON.parse(e.dataset.walk)), query: await walkQuery(c),
                     row: await pixels(c, 'walk-row') };
    out.c.scatter = await walkByPoints(c, 'scatter', [0.35, 0.75], [0.6, 0.3], 'pick');
    out.c.pickOff = await c.$eval('#walk-pick', (e) => e.getAttribute('aria-pressed'));
    // the walk stays in view while the pointer is on a plane
    out.c.inView = [];
    for (const [id, fx, fy] of [['grid', 0.5, 0.9], ['scatter', 0.4, 0.5]]) {
      await pointAt(c, ...(await where(c, id, fx, fy)));
      out.c.inView.push({ id, walk: await rect(c, 'walk-row'), view: await c.evaluate(() => [innerWidth, innerHeight]) });
    }
    out.c.typed = await walkByIndices(c, 9, 13, 6); // the README's picture: a walk between two classes
    await c.$eval('#walk-to', (e) => e.blur());
    await c.evaluate(() => window.scrollTo(0, 0));
    await pointAt(c, ...(await where(c, 'grid', 0.35, 0.3)));
    await c.screenshot({ path: path.join(cfg.shots, 'clvae-serve-page-conditional.png') });

    // ---- a conditional RGB model of 3 latent dimensions (class folders)
    const d = await open(browser, cfg.urlD, 1400, 1000);
    out.d = { options: await d.$$eval('#cls option', (os) => os.map((o) => o.text)),
              dims: await d.$eval('#dims', (e) => !e.hidden) };
    await d.select('#cls', '2');
    await wait(d, () => JSON.parse(document.body.dataset.grid).cls === 2, null, 10000);
    out.d.grid = await pixels(d, 'grid');
    await wait(d, () => document.getElementById('recon').dataset.version);
    out.d.clicks = await walkByClicks(d, 1, 4);
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


def class_set(tmp):
    """train/ and test/ of 10x12 RGB PNGs in three class folders (sorted: the classes 0, 1, 2)."""
    root = os.path.join(tmp, 'classes')
    for part, n in (('train', 24), ('test', 8)):
        for k, name in enumerate(CLASS_FOLDERS):
            os.makedirs(os.path.join(root, part, name))
            for i in range(n):
                lit = {'red': 0, 'green': 1, 'blue': 2}[name]
                rows = [[min(255, (x * 21 + i * 7) if c == lit else (y * 9 + x * k * 5 + i * 3) % 90)
                         for x in range(12) for c in range(3)] for y in range(10)]
                write_png(os.path.join(root, part, name, f'{i:03d}.png'), 12, 10, rows, color_type=2)
    return root


def tile(png, n, row, col):
    """Tile (row, col) of an n x n mosaic PNG, as raw bytes."""
    w, h, ch, px = png
    tw, th = w // n, h // n
    return [px[((row * th + y) * w + col * tw + x) * ch + c] for y in range(th) for x in range(tw) for c in range(ch)]


def walk_cli(model, query):
    """What `clvae interpolate` draws for a query of /api/walk (its values passed as they are)."""
    q = {k: v[0] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
    args = ['--steps', q.get('steps', '8')] + (['--class', q['class']] if 'class' in q else [])
    if 'from_z' in q:
        args += ['--from-z', q['from_z'], '--to-z', q['to_z']]
    else:
        args += ['--from', q['from'], '--to', q['to']]
    return picture('interpolate', model, *args)


def error_of(body):
    try:
        return json.loads(body).get('error', '')
    except ValueError:
        return ''


def class_api_checks(sa, model_a, sb, model_b, sc, model_c, sd, model_d):
    """class=K on /api/grid and /api/decode, /api/info's conditional, /api/reconstruct and
    /api/walk, each against the CLI; the 400s."""
    for s, want in ((sa, None), (sb, None), (sc, {'classes': 10, 'class_names': FASHION}),
                    (sd, {'classes': 3, 'class_names': CLASS_FOLDERS})):
        st, info = s.json('/api/info')
        check(st == 200 and info.get('conditional', 'absent') == want,
              f'/api/info\'s conditional: {json.dumps(want)}', str(info.get('conditional', 'absent')))
    for s, model, k, dims in ((sc, model_c, 0, '0,1'), (sc, model_c, 7, '0,1'), (sd, model_d, 2, '0,2')):
        dx, dy = dims.split(',')
        st, h, body = s.get(f'/api/grid?n=6&start=-3&end=2.5&dx={dx}&dy={dy}&class={k}')
        want = picture('grid', model, '--n', '6', '--range', '-3,2.5', '--dims', dims, '--class', str(k))
        check(st == 200 and list(body) == want[3], f'/api/grid?...&class={k} is clvae grid --class {k}\'s mosaic '
              f'byte for byte ({want[2]} channel{"s" if want[2] > 1 else ""}, dims {dims})', f'{st} {len(body)}')
        L = 2 if s is sc else 3
        z = ','.join(['-1.5', '-1.5'] + ['0'] * (L - 2))
        st, h, body = s.get(f'/api/decode?z={z}&class={k}')
        want = picture('grid', model, '--n', '2', '--range', '-1.5,0.5', '--class', str(k))
        check(st == 200 and list(body) == tile(want, 2, 1, 0), f'/api/decode?z={z}&class={k} is the tile clvae grid '
              f'--class {k} draws for that z', f'{st} {len(body)}')
    for s, model, what in ((sc, model_c, 'Fashion-MNIST'), (sd, model_d, 'RGB class folders')):
        st, h, body = s.get('/api/reconstruct?count=8')
        want = picture('reconstruct', model, '--count', '8')
        check(st == 200 and list(body) == want[3], f'/api/reconstruct?count=8 on a conditional model ({what}): each '
              'image decoded with its class, clvae reconstruct --count 8\'s mosaic byte for byte', f'{st} {len(body)}')
    walks = ((sc, model_c, 'from=3&to=17&steps=6', 'images of two classes, the class going from one to the other'),
             (sc, model_c, 'from=3&to=17&steps=6&class=2', 'images, the class fixed'),
             (sc, model_c, 'from_z=-1.5,2&to_z=2.25,-0.5&steps=9&class=1', 'points, conditional'),
             (sd, model_d, 'from=1&to=12', 'RGB conditional images, default steps'),
             (sd, model_d, 'from_z=1,-1,0.5&to_z=-2,0.25,1&steps=3&class=0', 'RGB conditional points'),
             (sa, model_a, 'from=0&to=9999&steps=64', 'unconditional images, 64 steps'),
             (sa, model_a, 'from_z=1e-400,3&to_z=-3,0&steps=2', 'unconditional points, 2 steps'),
             (sb, model_b, 'from=2&to=2&steps=4', 'unlabelled RGB, an image to itself'),
             (sb, model_b, 'from_z=0,1,2&to_z=2,1,0', 'unlabelled RGB points, 3 latent dimensions'))
    for s, model, q, what in walks:
        st, h, body = s.get('/api/walk?' + q)
        want = walk_cli(model, q)
        check(st == 200 and list(body) == want[3] and 'walk;dur=' in h.get('Server-Timing', ''),
              f'/api/walk?{q} ({what}) is clvae interpolate\'s row byte for byte', f'{st} {len(body)} {body[:200]}')
    refused = [(sc, '/api/grid?n=5', 'class'), (sc, '/api/decode?z=0,0', 'class'),
               (sc, '/api/walk?from_z=0,0&to_z=1,1', 'class'), (sa, '/api/grid?class=0', 'class'),
               (sa, '/api/decode?z=0,0&class=0', 'class'), (sa, '/api/walk?from=0&to=1&class=0', 'class'),
               (sb, '/api/walk?from_z=0,0,0&to_z=1,1,1&class=0', 'class'),
               (sa, '/api/walk?from=1', 'to'), (sa, '/api/walk?to=1', 'from'), (sa, '/api/walk?to_z=0,0', 'from_z'),
               (sa, '/api/walk?from_z=0,0', 'to_z'), (sa, '/api/walk?from=1&to=2&to_z=1,1', 'from/to'),
               (sa, '/api/walk', 'from'), (sb, '/api/walk?from_z=0,0,0&to_z=1,1', 'to_z')]
    refused += [(sc, f'/api/grid?class={v}', 'class') for v in ('10', '-1', '1.5', 'x', 'nan', '1e400', '', 'Sandal')]
    refused += [(sc, f'/api/decode?z=0,0&class={v}', 'class') for v in ('10', 'inf')]
    refused += [(sd, f'/api/walk?from=0&to=1&class={v}', 'class') for v in ('3', '-0.5')]
    refused += [(sa, f'/api/walk?from={v}&to=1', 'from') for v in ('10000', '-1', '1.5', 'x', 'nan', '1e400', '')]
    refused += [(sa, f'/api/walk?from=0&to=1&steps={v}', 'steps') for v in ('1', '65', '2.5', 'nan', 'inf', 'x')]
    refused += [(sa, f'/api/walk?from_z={v}&to_z=1,1', 'from_z')
                for v in ('0', '0,0,0', 'nan,0', '1e400,0', '1001,0', '0,,0', '0,0,', 'a,b', '')]
    bad = []
    for s, q, name in refused:
        st, h, body = s.get(q)
        err = error_of(body)
        if not (st == 400 and re.match(rf"{re.escape(name)}[ ']", err)):
            bad.append(f'{q}: {st} {err}')
    check(not bad, f'{len(refused)} bad queries of /api/grid, /api/decode and /api/walk: each a 400 whose error names '
          'the parameter (class missing on a conditional model or given to another, out of range, not whole; a '
          'missing or mixed end, an index beyond the set, steps beyond 2..64, a point of the wrong size or not finite)',
          '\n'.join(bad))
    st, h, body = sc.get('/api/grid')
    check('Sandal' in error_of(body), 'a conditional model\'s grid without class: the error lists the classes',
          error_of(body))


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


def check_walk(what, w, model, want_walk, zs=None):
    """A walk the page drew: the one asked for ({kind, from, to, steps, cls}: the values given),
    its query, and its row of tiles equal to what `clvae interpolate` draws for that query."""
    got = w['walk']
    ok = all(got.get(k) == v for k, v in want_walk.items())
    if zs is not None:  # the ends: the z under the pointer at each click
        ok = ok and all(len(a) == len(b) and all(abs(x - y) < 1e-9 for x, y in zip(a, b))
                        for a, b in zip((got['from'], got['to']), zs))
    cls = got.get('cls')
    ok = ok and (f'&class={cls}' in w['query']) == (cls is not None)
    want, tiles = walk_cli(model, w['query']), got['steps'] + 2 * (got['kind'] == 'images')
    check(ok and same_pixels(Canvas(w['row']), want), f'{what}: the walk shown is clvae interpolate\'s row, pixel '
          f'for pixel ({tiles} tiles; {w["query"]})', json.dumps(got) + ' ' + w.get('note', ''))


def check_class_pages(r, model_a, served_a, model_b, model_c, model_d):
    """model_a: the served run before the driver's `train --resume`; served_a: after it."""
    a = r['aWalk']
    check(a['condition'] and a['shown'], 'an unconditional model: no class selector; the walk panel is there')
    hint = ' '.join(a['hints'][0].split())
    check('Shift-click two points on the grid or the scatter' in hint and 'Pick ends' in hint and
          'click two test images' in hint and 'shift-click two points to walk' in a['hints'][1],
          'a hint says how to walk (over the walk, and under the grid\'s title)', str(a['hints']))
    check_walk('grey, indices typed (4, 9) and Enter', a['typed'], model_a,
               {'kind': 'images', 'from': 4, 'to': 9, 'steps': 8, 'cls': None})
    check_walk('grey, two points shift-clicked on the scatter', a['points'], model_a,
               {'kind': 'points', 'steps': 8, 'cls': None}, a['points']['zs'])
    check(all(a['points']['path']), f'the walk\'s path is drawn on the scatter ({a["points"]["path"]})')
    n = r['narrow']
    check_walk('800x1000, two test images clicked (1, 3)', n['walk'], served_a,
               {'kind': 'images', 'from': 1, 'to': 3, 'steps': 8})
    check(all(inside(c['walk'], *c['view']) for c in n['cases']),
          'at 800x1000 the walk stays in view wherever the pointer is on the grid or the scatter',
          json.dumps([c['walk'] for c in n['cases']]))
    b = r['b']
    p = b['clicks']['pending']
    check(p['end'] == {'kind': 'images', 'at': 0} and p['outlined'],
          'a first test image clicked: it is outlined, and the page waits for the other end', json.dumps(p))
    check_walk('RGB, two test images clicked (0, 5)', b['clicks'], model_b,
               {'kind': 'images', 'from': 0, 'to': 5, 'steps': 8, 'cls': None})
    check_walk('RGB, 3 latent dimensions, two points shift-clicked on the scatter of z[2], z[0]', b['points'], model_b,
               {'kind': 'points', 'cls': None}, b['points']['zs'])
    check(len(b['points']['walk']['from']) == 3 and b['points']['walk']['from'][1] == 0,
          f'those points have 3 coordinates, z[1] = 0 ({b["points"]["walk"]["from"]})')

    c = r['c']
    check(c['condition'] and c['options'] == [[str(k), name] for k, name in enumerate(FASHION)] and c['value'] == '0',
          'a conditional model: a class selector of its 10 named classes, class 0 at first', json.dumps(c['options']))
    for key, k in (('first', 0), ('switched', 5)):
        d = c[key]
        grid = picture('grid', model_c, '--n', '10', '--range', '-4,4', '--class', str(k))
        centre = tile(picture('grid', model_c, '--n', '3', '--range', '-1,1', '--class', str(k)), 3, 1, 1)
        check(d['key'].get('cls') == k and same_pixels(Canvas(d['grid']), grid),
              f'class {k} ({FASHION[k]}): the grid is clvae grid --class {k}, pixel for pixel', json.dumps(d['key']))
        check(d['cls'].get('cls') == str(k) and json.loads(d['cls']['z']) == [0, 0] and Canvas(d['live']).grey() == centre,
              f'class {k}: the decoding panel shows z = 0 decoded for that class (clvae grid --class {k}\'s tile)',
              json.dumps(d['cls']))
    check(c['switchSeconds'] <= 3, f'choosing a class redraws the grid and the decoding at once, without Update '
          f'({c["switchSeconds"]:.2f} s)')
    check(same_pixels(Canvas(c['recon']), picture('reconstruct', model_c, '--count', '8')),
          'conditional: the reconstructions (each with its class) equal clvae reconstruct --count 8')
    check_walk('conditional, two test images clicked (2, 6): the class goes from one to the other', c['clicks'],
               model_c, {'kind': 'images', 'from': 2, 'to': 6, 'steps': 8, 'cls': None})
    check('the class goes from Trouser to Coat' in c['clicks']['note'] and 'image 2 (Trouser)' in c['clicks']['title'],
          f'the page says so: "{c["clicks"]["title"]}", "{c["clicks"]["note"]}"')
    check_walk('conditional, indices typed (9, 13), 6 steps', c['typed'], model_c,
               {'kind': 'images', 'from': 9, 'to': 13, 'steps': 6, 'cls': None})
    check_walk('conditional, two points shift-clicked on the grid: the selected class', c['grid'], model_c,
               {'kind': 'points', 'steps': 8, 'cls': 5}, c['grid']['zs'])
    check(all(c['grid']['path']), f'the walk\'s path is drawn on the grid ({c["grid"]["path"]})')
    check_walk('conditional, another class chosen: the walk between points follows it', c['regrid'], model_c,
               {'kind': 'points', 'steps': 8, 'cls': 7, 'from': c['grid']['walk']['from']})
    check_walk('conditional, "Pick ends" then two clicks on the scatter', c['scatter'], model_c,
               {'kind': 'points', 'steps': 8, 'cls': 7}, c['scatter']['zs'])
    check(c['pickOff'] == 'false', '"Pick ends" toggles off')
    check(all(inside(v['walk'], *v['view']) for v in c['inView']),
          'at 1400x1000 the walk is in view while the pointer is on the grid or the scatter', json.dumps(c['inView']))
    d = r['d']
    check(d['options'] == CLASS_FOLDERS and d['dims'], f'a conditional RGB model of 3 latent dimensions: its class '
          f'folders in the selector ({d["options"]}), the dimension selectors')
    check(same_pixels(Canvas(d['grid']), picture('grid', model_d, '--n', '10', '--range', '-4,4', '--class', '2')),
          'its grid for class 2 is clvae grid --class 2, pixel for pixel')
    check_walk('conditional RGB, two test images clicked (1, 4)', d['clicks'], model_d,
               {'kind': 'images', 'from': 1, 'to': 4, 'steps': 8, 'cls': None})


def main(tmp):
    run_a, run_b = os.path.join(tmp, 'a'), os.path.join(tmp, 'b')
    run_c, run_d = os.path.join(tmp, 'c'), os.path.join(tmp, 'd')
    rc, out = run('train', '--limit', '20000', '--epochs', '2', '--report-every', '10', '--out', run_a, '--quiet')
    if rc == 0:
        rc, out = run('train', '--data', data_set(tmp), '--latent-dim', '3', '--hidden', '32', '--batch-size', '8',
                      '--epochs', '1', '--report-every', '2', '--out', run_b, '--quiet')
    if rc == 0:  # conditional: Fashion-MNIST's 10 named classes; RGB class folders, 3 latent dimensions
        rc, out = run('train', '--conditional', '--limit', '20000', '--epochs', '2', '--out', run_c, '--quiet')
    if rc == 0:
        rc, out = run('train', '--conditional', '--data', class_set(tmp), '--latent-dim', '3', '--hidden', '32',
                      '--batch-size', '8', '--epochs', '2', '--out', run_d, '--quiet')
    if rc:
        check(False, 'models to serve', out)
        return
    model_a, model_b, model_c, model_d = (os.path.join(r, 'checkpoint.clvae') for r in (run_a, run_b, run_c, run_d))
    served = os.path.join(tmp, 'served')
    shutil.copytree(run_a, served)
    sa, sb = Server('--model', os.path.join(served, 'checkpoint.clvae')), Server('--model', model_b)
    sc, sd = Server('--model', model_c), Server('--model', model_d)
    try:
        if not sa.url or not sb.url or not sc.url or not sd.url:
            check(False, 'the servers start', sa.output() + sb.output() + sc.output() + sd.output())
            return
        api_checks(tmp, sa, model_a, sb, model_b)
        class_api_checks(sa, model_a, sb, model_b, sc, model_c, sd, model_d)
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
        cfg = {'urlA': sa.url, 'urlB': sb.url, 'urlC': sc.url, 'urlD': sd.url, 'served': served, 'shots': SHOTS, 'clvae': CLVAE, 'rows': rows,
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
        sa.stop(), sb.stop(), sc.stop(), sd.stop()
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
    check_class_pages(r, model_a, os.path.join(served, 'checkpoint.clvae'), model_b, model_c, model_d)
    check(os.path.exists(os.path.join(SHOTS, 'clvae-serve-page.png')), f'screenshots in {SHOTS}')


if __name__ == '__main__':
    serve_test(CLVAE, main)
