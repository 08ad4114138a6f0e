// clvae serve's page: the latent grid (as the TF.js example draws it, decoded by clvae on the
// OpenCL device), the decoding under the pointer, the test set's encodings, the loss curve,
// and a poll that follows a checkpoint being rewritten by a training run.
'use strict';

const $ = (id) => document.getElementById(id);
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22',
                '#17becf'];
const S = {
  info: null, version: -1,
  drawn: null,          // the grid as drawn: {n, start, end, dx, dy}
  scatter: null,
  decoding: false, nextZ: null, lastZ: null,
};

// An answer that is not 200 is the server's error (its JSON message), not a lost server.
class ServerError extends Error {}

async function getJSON(url) {
  const r = await fetch(url);
  const j = await r.json();
  if (!r.ok) throw new ServerError(j.error || `${url}: ${r.status}`);
  return j;
}

async function getBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new ServerError((await r.json()).error || `${url}: ${r.status}`);
  const timing = (r.headers.get('Server-Timing') || '').match(/dur=([\d.]+)/);
  return { bytes: new Uint8Array(await r.arrayBuffer()), ms: timing ? Number(timing[1]) : NaN };
}

function showError(e) { $('error').textContent = e ? String(e.message || e) : ''; }

// Grey or RGB bytes (rows of width × channels) as canvas pixels.
function imageData(bytes, w, h, ch) {
  const img = new ImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const p = bytes.subarray(i * ch, i * ch + ch);
    img.data[4 * i] = p[0];
    img.data[4 * i + 1] = ch === 3 ? p[1] : p[0];
    img.data[4 * i + 2] = ch === 3 ? p[2] : p[0];
    img.data[4 * i + 3] = 255;
  }
  return img;
}

// The controls, checked as the server will check them.
function params() {
  const n = Number($('pointsPerDim').value), start = Number($('start').value), end = Number($('end').value);
  const L = S.info.latent, dx = L > 2 ? Number($('dx').value) : 0, dy = L > 2 ? Number($('dy').value) : 1;
  if (!Number.isInteger(n) || n < 2 || n > S.info.max_n) throw new Error(`points per dimension must be 2 to ${S.info.max_n}`);
  if (!Number.isFinite(start) || !Number.isFinite(end) || !(start < end)) throw new Error('start must be less than end');
  if (L > 1 && dx === dy) throw new Error('choose two different dimensions');
  return { n, start, end, dx, dy: L > 1 ? dy : -1 };
}

// The plane both canvases show: tile centres at the grid's points, so [start − h, end + h]
// with h half a step; z[dx] grows to the right, z[dy] upwards.
function plane(g) {
  const h = (g.end - g.start) / (g.n - 1) / 2;
  return { lo: g.start - h, hi: g.end + h };
}

async function drawGrid() {
  const g = params(), { height: H, width: W, channels: C } = S.info;
  const q = `n=${g.n}&start=${g.start}&end=${g.end}&dx=${g.dx}${g.dy >= 0 ? `&dy=${g.dy}` : ''}`;
  const { bytes } = await getBytes(`/api/grid?${q}`);
  const cv = $('grid');
  cv.width = g.n * W, cv.height = g.n * H;
  cv.getContext('2d').putImageData(imageData(bytes, g.n * W, g.n * H, C), 0, 0);
  S.drawn = g;
  drawScatter();
  document.body.dataset.grid = JSON.stringify({ ...g, version: S.version });
}

function drawScatter() {
  const cv = $('scatter'), ctx = cv.getContext('2d'), s = S.scatter, g = S.drawn;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, cv.width, cv.height);
  if (!s || !g) return;
  const { lo, hi } = plane(g), k = cv.width / (hi - lo), L = s.dims;
  for (let i = 0; i < s.count; i++) {
    const x = (s.mu[i * L + g.dx] - lo) * k, y = cv.height - ((g.dy >= 0 ? s.mu[i * L + g.dy] : 0) - lo) * k;
    if (x < 0 || y < 0 || x >= cv.width || y >= cv.height) continue;
    ctx.fillStyle = COLORS[(s.labels ? s.labels[i] : 0) % COLORS.length];
    ctx.fillRect(x - 1, y - 1, 2.5, 2.5);
  }
  document.body.dataset.scatter = String(s.count);
}

async function loadScatter() {
  const title = $('scatter-title'), legend = $('legend');
  if (!S.info.scatter) {
    S.scatter = null;
    title.textContent = 'Test set encodings: none (no test set of this shape)';
    legend.textContent = '';
    return;
  }
  S.scatter = await getJSON('/api/scatter');
  title.textContent = `Test set encodings (${S.scatter.count} images, latent means)`;
  legend.textContent = '';
  (S.scatter.labels ? S.info.classes : ['images']).forEach((name, i) => {
    const span = document.createElement('span'), dot = document.createElement('i');
    dot.style.background = COLORS[i % COLORS.length];
    span.append(dot, name);
    legend.append(span);
  });
}

async function drawLoss() {
  const m = await getJSON('/api/metrics');
  const cv = $('loss'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height, pad = 36;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  ctx.font = '11px sans-serif';
  ctx.fillStyle = '#555';
  if (!m.epoch.length) {
    ctx.fillText('no metrics.csv beside the checkpoint yet', pad, H / 2);
    return;
  }
  const ys = m.train_loss.concat(m.test_loss), ymin = Math.min(...ys), ymax = Math.max(...ys);
  const e0 = m.epoch[0], e1 = Math.max(m.epoch[m.epoch.length - 1], e0 + 1);
  const X = (e) => pad + (e - e0) / (e1 - e0) * (W - pad - 10);
  const Y = (v) => H - pad + 10 - (v - ymin) / ((ymax - ymin) || 1) * (H - pad - 10);
  ctx.strokeStyle = '#999';
  ctx.strokeRect(pad, 10, W - pad - 10, H - pad);
  ctx.fillText(ymax.toFixed(2), 2, 18), ctx.fillText(ymin.toFixed(2), 2, H - pad + 10);
  ctx.fillText(`epoch ${e0}`, pad, H - 8), ctx.fillText(String(e1), W - 24, H - 8);
  [['train_loss', '#1f77b4', 'train'], ['test_loss', '#d62728', 'test']].forEach(([key, color, name], k) => {
    ctx.strokeStyle = color, ctx.fillStyle = color;
    ctx.beginPath();
    m[key].forEach((v, i) => (i ? ctx.lineTo(X(m.epoch[i]), Y(v)) : ctx.moveTo(X(m.epoch[i]), Y(v))));
    ctx.stroke();
    m[key].forEach((v, i) => ctx.fillRect(X(m.epoch[i]) - 2, Y(v) - 2, 4, 4));
    ctx.fillText(`${name} ${m[key][m[key].length - 1].toFixed(3)}`, W - 110, 24 + 14 * k);
  });
}

// The decoding of z: one request at a time, the latest z wins.
async function decode(z) {
  S.lastZ = z;
  if (S.decoding) { S.nextZ = z; return; }
  S.decoding = true;
  try {
    const { bytes, ms } = await getBytes(`/api/decode?z=${z.join(',')}`);
    const { height: H, width: W, channels: C } = S.info, cv = $('live');
    cv.width = W, cv.height = H;
    cv.getContext('2d').putImageData(imageData(bytes, W, H, C), 0, 0);
    $('z').textContent = `z = (${z.map((v) => v.toFixed(3)).join(', ')})`;
    $('z').dataset.z = JSON.stringify(z);
    $('timing').textContent = `decoded on the device in ${ms.toFixed(2)} ms`;
  } catch (e) {
    showError(e);
  }
  S.decoding = false;
  if (S.nextZ) {
    const next = S.nextZ;
    S.nextZ = null;
    decode(next);
  }
}

function onPointer(ev) {
  if (!S.drawn || (ev.type === 'pointermove' && ev.pointerType === 'touch' && !ev.buttons)) return;
  const r = ev.currentTarget.getBoundingClientRect(), { lo, hi } = plane(S.drawn);
  const fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
  const z = new Array(S.info.latent).fill(0);
  z[S.drawn.dx] = lo + fx * (hi - lo);
  if (S.drawn.dy >= 0) z[S.drawn.dy] = lo + (1 - fy) * (hi - lo);
  decode(z);
}

async function refresh() {
  S.info = await getJSON('/api/info');
  S.version = S.info.version;
  const L = S.info.latent;
  $('dims').hidden = L <= 2;
  for (const [id, def] of [['dx', 0], ['dy', 1]]) {
    const sel = $(id);
    if (sel.options.length !== L) {
      sel.textContent = '';
      for (let i = 0; i < L; i++) sel.add(new Option(String(i), String(i), false, i === def));
    }
  }
  $('model').textContent = `${S.info.checkpoint}: ${S.info.height}×${S.info.width}×${S.info.channels} images, ` +
    `${S.info.layers}, latent ${L}`;
  $('status').textContent = `epoch ${S.info.epoch}, step ${S.info.step}` +
    (S.info.reload_error ? ` (${S.info.reload_error})` : '');
  await loadScatter();
  await drawGrid();
  await drawLoss();
  if (S.lastZ && S.lastZ.length === L) decode(S.lastZ); /* the same point under the new parameters */
  else S.lastZ = null;
  document.body.dataset.version = String(S.version);
}

async function poll() {
  try {
    const st = await getJSON('/api/state');
    if (st.version !== S.version) await refresh();
    else if (st.reload_error) $('status').textContent = `epoch ${st.epoch}, step ${st.step} (${st.reload_error})`;
  } catch (e) {
    $('status').textContent = e instanceof ServerError ? String(e.message) : `the server does not answer (${e.message || e})`;
  }
  setTimeout(poll, 1000);
}

$('update').addEventListener('click', () => { showError(null); drawGrid().catch(showError); });
for (const id of ['grid', 'scatter']) {
  $(id).addEventListener('pointermove', onPointer);
  $(id).addEventListener('pointerdown', onPointer);
}
refresh().catch(showError).finally(() => setTimeout(poll, 1000));
