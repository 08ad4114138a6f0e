// Runs, in Chromium (puppeteer-core), what the TF.js example's page (tfjs-examples/
// fashion-mnist-vae) does with a decoder, calling the model the way its loader and drawing
// code do, with the real TF.js and tfjs-vis bundles:
//  - the book's edition (index.js, later client.js; TF.js 2.x): tf.loadLayersModel of
//    http://127.0.0.1:<port>/decoder/model.json, then always tfvis.show.modelSummary and
//    tfvis.show.layer of decoder.getLayer('dense_Dense2') and ('dense_Dense3'), then each
//    tile decoded with decoder.apply(tf.tensor2d([[zRow, zCol]])).mul(255).cast('int32')
//    .reshape([28, 28, 1]) and tf.browser.toPixels;
//  - the current edition (client.js): tf.loadLayersModel('./models/decoder/model.json'), the
//    same tfvis calls only with ?debug, then per row decoder.predict on the batch
//    [lin[row], lin[col]] (tile + stack + transpose), .mul(255).cast('int32')
//    .reshape([n, 28, 28, 1]).unstack() and tf.browser.toPixels.
// Each case runs both editions. Prints one JSON object per page: {dir, version, backend,
// tfjs, edition, ok, error, tiles[row][col] (784 grey values read back from each canvas),
// visor (the text the debug view rendered)}.
// usage: node example_page.js N START END EXPORT_DIR:TFJS_VERSION:BACKEND [...]
//   (BACKEND: the page's default, "webgl", or "cpu", which is faster in a headless browser)
const fs = require('fs');
const http = require('http');
const path = require('path');
const puppeteer = require('puppeteer-core');

const [n, start, end] = process.argv.slice(2, 5).map(Number);
const cases = process.argv.slice(5).map((c) => {
  const [dir, version, backend] = c.split(':');
  return { dir, version, backend };
});
const bundles = {
  '4.22.0': require.resolve('@tensorflow/tfjs/dist/tf.min.js'),
  '2.8.6': require.resolve('tfjs-2.8.6/dist/tf.min.js'),
};
const vis = require.resolve('@tensorflow/tfjs-vis/dist/tfjs-vis.umd.min.js');

// The page: our own code making the example's calls in the example's order.
function page(version, edition, url) {
  return `<!doctype html><html><head><meta charset="utf-8"></head><body>
<div id="plot-area" class="plot-area"></div>
<script src="/tf.min.js?v=${version}"></script><script src="/tfjs-vis.umd.min.js"></script>
<script>
(async () => {
  const R = window.__result = {tfjs: tf.version.tfjs, edition: '${edition}'};
  try {
    if (window.location.search.match('cpu')) await tf.setBackend('cpu');
    const decoder = await tf.loadLayersModel('${url}');
    R.backend = tf.getBackend();
    const debug = '${edition}' === 'book' || window.location.search.substring(1).match('debug');
    if (debug) {
      await tfvis.show.modelSummary({name: 'decoder'}, decoder);
      await tfvis.show.layer({name: 'dense2'}, decoder.getLayer('dense_Dense2'));
      await tfvis.show.layer({name: 'dense3'}, decoder.getLayer('dense_Dense3'));
      // The visor renders asynchronously: wait for the state (both layers' weights shown),
      // up to 20 s; a page that never shows them fails on what it shows at the end.
      const want = ['dense_Dense2/kernel', 'dense_Dense3/kernel'];
      for (let i = 0; i < 400 && !want.every((w) => document.body.innerText.includes(w)); i++)
        await new Promise((r) => setTimeout(r, 50));
      R.visor = document.body.innerText;
    }
    const N = ${n}, H = 28, W = 28;
    const canvasFor = () => {
      const c = document.createElement('canvas');
      c.width = 50, c.height = 50;
      document.getElementById('plot-area').appendChild(c);
      return c;
    };
    const readBack = (c) => Array.from(c.getContext('2d').getImageData(0, 0, W, H).data).filter((_, i) => i % 4 === 0);
    R.tiles = [];
    if ('${edition}' === 'book') {
      const lin = tf.tidy(() => tf.linspace(${start}, ${end}, N).dataSync());
      for (let r = 0; r < N; r++) {
        R.tiles.push([]);
        for (let c = 0; c < N; c++) {
          const zTensor = tf.tensor2d([[lin[r], lin[c]]]);
          const img = tf.tidy(() => decoder.apply(zTensor).mul(255).cast('int32').reshape([H, W, 1]));
          const canvas = canvasFor();
          await tf.browser.toPixels(img, canvas);
          R.tiles[r].push(readBack(canvas));
          tf.dispose([zTensor, img]);
        }
      }
    } else {
      const [xAxis, yAxis] = [tf.linspace(${start}, ${end}, N), tf.linspace(${start}, ${end}, N)];
      for (let r = 0; r < N; r++) {
        const zX = xAxis.slice(r, 1).tile(yAxis.shape);
        const zBatch = zX.stack(yAxis).transpose();
        const batch = tf.tidy(() => decoder.predict(zBatch).mul(255).cast('int32').reshape([zBatch.shape[0], H, W, 1]));
        const images = batch.unstack();
        R.tiles.push([]);
        for (let c = 0; c < N; c++) {
          const canvas = canvasFor();
          await tf.browser.toPixels(images[c], canvas);
          R.tiles[r].push(readBack(canvas));
        }
        tf.dispose([zX, zBatch, batch, ...images]);
      }
    }
    R.ok = true;
  } catch (e) {
    R.ok = false;
    R.error = String((e && e.message) || e);
  }
  R.done = true;
})();
</script></body></html>`;
}

(async () => {
  let current = cases[0];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const send = (type, body) => { res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' }); res.end(body); };
    const m = u.pathname.match(/^\/(?:models\/)?decoder\/(model\.json|weights\.bin)$/);
    if (m) return send(m[1].endsWith('json') ? 'application/json' : 'application/octet-stream', fs.readFileSync(path.join(current.dir, m[1])));
    if (u.pathname === '/tf.min.js') return send('text/javascript', fs.readFileSync(bundles[current.version]));
    if (u.pathname === '/tfjs-vis.umd.min.js') return send('text/javascript', fs.readFileSync(vis));
    const port = server.address().port;
    if (u.pathname === '/book.html') return send('text/html', page(current.version, 'book', `http://127.0.0.1:${port}/decoder/model.json`));
    if (u.pathname === '/client.html') return send('text/html', page(current.version, 'client', './models/decoder/model.json'));
    res.writeHead(404);
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
  });
  try {
    for (const c of cases) {
      for (const edition of ['book', 'client']) {
        current = c;
        const p = await browser.newPage();
        const query = [edition === 'client' ? 'debug' : '', c.backend === 'cpu' ? 'cpu' : ''].filter((x) => x).join('&');
        await p.goto(`http://127.0.0.1:${server.address().port}/${edition}.html?${query}`);
        await p.waitForFunction('window.__result && window.__result.done', { timeout: 120000 });
        const r = await p.evaluate(() => window.__result);
        console.log(JSON.stringify({ ...c, ...r }));
        await p.close();
      }
    }
  } finally {
    await browser.close();
    server.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
