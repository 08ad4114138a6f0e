// Drives `clvae serve`'s page in Chromium (puppeteer-core) as a user would and prints what
// the page showed, as one JSON object, for tests/test_serve.py to check:
//  1. load the page; set points per dimension, start and end; click Update; read the grid
//     canvas back (and save a screenshot);
//  2. hover a point of the grid; read the decoding the page drew and the z it says;
//  3. count the scatter's coloured pixels;
//  4. replace the served checkpoint (as a training run does: a new file renamed over it,
//     with its metrics.csv) and time how long the page takes to show it; read the grid again;
//  5. with a second server of a model with more than 2 latent dimensions: choose z[2] for y,
//     click Update, read the grid.
// usage: node serve_page.js URL SERVED_CKPT NEW_CKPT NEW_METRICS SCREENSHOT_DIR N START END [URL3]
const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');

const [url, served, newCkpt, newMetrics, shots, nArg, startArg, endArg, url3] = process.argv.slice(2);
const N = Number(nArg);

async function readCanvas(page, id) {
  return page.evaluate((id) => {
    const c = document.getElementById(id);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    return { w: c.width, h: c.height, grey: Array.from(d.filter((_, i) => i % 4 === 0)) };
  }, id);
}

async function setControls(page, n, start, end) {
  for (const [id, v] of [['pointsPerDim', n], ['start', start], ['end', end]]) {
    await page.$eval(`#${id}`, (el, v) => { el.value = String(v); }, v);
  }
}

async function update(page, n) {
  await page.click('#update');
  await page.waitForFunction((n) => document.body.dataset.grid && JSON.parse(document.body.dataset.grid).n === n,
                             { timeout: 30000 }, n);
}

(async () => {
  const out = {};
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 1000 });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.version && document.body.dataset.grid, { timeout: 30000 });
    out.version0 = await page.evaluate(() => Number(document.body.dataset.version));

    // 1. the example's controls
    await setControls(page, N, startArg, endArg);
    await update(page, N);
    out.grid = await readCanvas(page, 'grid');
    out.status0 = await page.$eval('#status', (e) => e.textContent);

    // 2. hover: a point inside the grid, off the tile centres
    const box = await (await page.$('#grid')).boundingBox();
    out.hover = { fx: 0.37, fy: 0.61 };
    await page.mouse.move(box.x + box.width * out.hover.fx, box.y + box.height * out.hover.fy);
    await page.waitForFunction(() => document.getElementById('z').dataset.z, { timeout: 10000 });
    out.z = await page.$eval('#z', (e) => JSON.parse(e.dataset.z));
    out.live = await readCanvas(page, 'live');
    out.timing = await page.$eval('#timing', (e) => e.textContent);

    // 3. the scatter under the grid
    out.scatterCount = await page.evaluate(() => Number(document.body.dataset.scatter || 0));
    out.scatterInk = await page.evaluate(() => {
      const c = document.getElementById('scatter'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) n += d[i] !== 255 || d[i + 1] !== 255 || d[i + 2] !== 255;
      return n;
    });
    out.legend = await page.$eval('#legend', (e) => e.textContent);
    out.lossInk = await page.evaluate(() => {
      const c = document.getElementById('loss'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) n += d[i] > 150 && d[i + 2] < 100; // red: the test curve
      return n;
    });
    await page.screenshot({ path: path.join(shots, 'clvae-serve-first.png') });

    // 4. a training run replaces the checkpoint
    const t0 = Date.now();
    fs.copyFileSync(newCkpt, served + '.new');
    fs.copyFileSync(newMetrics, path.join(path.dirname(served), 'metrics.csv.new'));
    fs.renameSync(path.join(path.dirname(served), 'metrics.csv.new'), path.join(path.dirname(served), 'metrics.csv'));
    fs.renameSync(served + '.new', served);
    await page.waitForFunction((v) => Number(document.body.dataset.version) !== v &&
                               JSON.parse(document.body.dataset.grid).version === Number(document.body.dataset.version),
                               { timeout: 15000 }, out.version0);
    out.reloadSeconds = (Date.now() - t0) / 1000;
    out.grid2 = await readCanvas(page, 'grid');
    out.status1 = await page.$eval('#status', (e) => e.textContent);
    // the README's picture: a finer grid, the pointer on a tile
    await setControls(page, 12, startArg, endArg);
    await update(page, 12);
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.3);
    await page.waitForFunction((z) => document.getElementById('z').dataset.z !== z, { timeout: 10000 },
                               JSON.stringify(out.z));
    await page.screenshot({ path: path.join(shots, 'clvae-serve.png'), fullPage: true });
    out.errors = errors;

    // 5. more than 2 latent dimensions: choose which two
    if (url3) {
      const p3 = await browser.newPage();
      p3.on('pageerror', (e) => errors.push(String(e)));
      await p3.goto(url3);
      await p3.waitForFunction(() => document.body.dataset.grid, { timeout: 30000 });
      out.dimsShown = await p3.$eval('#dims', (e) => !e.hidden);
      out.dimOptions = await p3.$eval('#dy', (e) => e.options.length);
      await setControls(p3, N, startArg, endArg);
      await p3.select('#dy', '2');
      await update(p3, N);
      out.grid3 = await readCanvas(p3, 'grid');
      out.grid3key = await p3.evaluate(() => JSON.parse(document.body.dataset.grid));
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
