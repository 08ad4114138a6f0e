// clvae serve's page: the latent grid (as the TF.js example draws it, decoded by clvae on the
// OpenCL device), the decoding of the z under the pointer (z = 0 until the pointer moves), the
// test set's encodings on axes with the grid's range, markers of the decoded z on both planes,
// the loss curves (per epoch, and every few steps while a run trains), reconstructions of test
// images, and a poll that follows a training run: its checkpoint, its curve, its progress. A
// conditional model's class is chosen above the grid; a latent walk between two test images or
// two points of a plane shows under the decoding.
'use strict';

const $ = (id) => document.getElementById(id);
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22',
                '#17becf'];
// loss.png's colours (src/io/plot.c: tab10's first two, as cairo renders them)
const TRAIN = 'rgb(30, 120, 181)', TEST = 'rgb(255, 128, 12)';
const MARK = '#e91e63';
const RECON_COUNT = 8;
const S = {
  info: null, version: -1,
  drawn: null,          // the grid as drawn: {n, start, end, dx, dy}
  gridSeq: 0,           // the latest grid asked for (an older answer is dropped)
  dims: { dx: 0, dy: 1 },
  scatter: null, view: null,
  curve: null, curveKey: null,
  decoding: false, next: null, // {z, pointer}: the latest z asked for while one is decoding
  shown: null,          // the z the decoding panel shows
  lastZ: null, lastPointer: false,
  reconCount: 0,        // test images in the reconstructions (their originals pick walk ends)
  walk: null,           // the walk shown: {kind: 'images' | 'points', from, to, steps, cls}
  walkEnd: null,        // its first end while the second is awaited: {kind, at}
  walkSeq: 0, pickMode: false,
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

function putImage(cv, bytes, w, h, ch) {
  cv.width = w, cv.height = h;
  cv.getContext('2d').putImageData(imageData(bytes, w, h, ch), 0, 0);
}

// What a conditional model's class selector adds to /api/grid, /api/decode and a walk between
// points ('' for an unconditional model).
function conditionParams() { return S.info && S.info.conditional ? `&class=${$('cls').value}` : ''; }

// The selected class (null for an unconditional model).
function selectedClass() { return S.info.conditional ? Number($('cls').value) : null; }

// A conditional model's classes in the selector (class 0 at first; kept across reloads).
function setupCondition() {
  const c = S.info.conditional, sel = $('cls');
  $('condition').hidden = !c;
  const names = c ? c.class_names : [];
  if (JSON.stringify([...sel.options].map((o) => o.text)) === JSON.stringify(names)) return;
  const keep = sel.options.length ? Number(sel.value) : 0;
  sel.textContent = '';
  names.forEach((name, k) => sel.add(new Option(name, String(k), false, k === (keep < names.length ? keep : 0))));
}

// The controls, checked as the server will check them.
function params() {
  const n = Number($('pointsPerDim').value), start = Number($('start').value), end = Number($('end').value);
  const L = S.info.latent, dx = L > 2 ? S.dims.dx : 0, dy = L > 2 ? S.dims.dy : 1;
  if (!Number.isInteger(n) || n < 2 || n > S.info.max_n) throw new Error(`points per dimension must be 2 to ${S.info.max_n}`);
  if (!Number.isFinite(start) || !Number.isFinite(end) || !(start < end)) throw new Error('start must be less than end');
  if (L > 1 && dx === dy) throw new Error('choose two different dimensions');
  return { n, start, end, dx, dy: L > 1 ? dy : -1 };
}

// The plane the grid shows: tile centres at the grid's points, so [start − h, end + h] with h
// half a step; z[dx] grows to the right, z[dy] upwards.
function plane(g) {
  const h = (g.end - g.start) / (g.n - 1) / 2;
  return { lo: g.start - h, hi: g.end + h };
}

async function drawGrid() {
  const g = { ...params(), cls: selectedClass() }, seq = ++S.gridSeq, { height: H, width: W, channels: C } = S.info;
  const q = `n=${g.n}&start=${g.start}&end=${g.end}&dx=${g.dx}${g.dy >= 0 ? `&dy=${g.dy}` : ''}${conditionParams()}`;
  const { bytes } = await getBytes(`/api/grid?${q}`);
  if (seq !== S.gridSeq) return; // a newer grid is on its way
  const cv = $('grid');
  cv.parentElement.style.aspectRatio = `${W} / ${H}`;
  putImage(cv, bytes, g.n * W, g.n * H, C);
  S.drawn = g;
  drawScatter();
  document.body.dataset.grid = JSON.stringify({ ...g, version: S.version });
}

function update() {
  showError(null);
  drawGrid().catch(showError);
}

// ---- charts: canvases at the device's pixel ratio, axes with "nice" ticks as plot.c draws them

function chartContext(cv) {
  const r = cv.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(r.width)), h = Math.max(1, Math.round(r.height));
  cv.width = Math.round(w * dpr), cv.height = Math.round(h * dpr);
  const ctx = cv.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w, h };
}

function niceStep(range, target) {
  const raw = range / target, mag = 10 ** Math.floor(Math.log10(raw)), r = raw / mag;
  return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

// [lo, hi] widened to whole ticks, with a margin if it is empty.
function niceRange(lo, hi, target) {
  if (!(hi > lo)) lo -= 1, hi += 1;
  const s = niceStep(hi - lo, target);
  return [Math.floor(lo / s) * s, Math.ceil(hi / s) * s];
}

function ticks(lo, hi, target, whole) {
  let s = niceStep(hi - lo, target);
  if (whole && s < 1) s = 1;
  const out = [];
  for (let v = Math.ceil(lo / s - 1e-9) * s; v <= hi + 1e-9 * s; v += s) {
    out.push(Math.abs(v) < 1e-12 ? 0 : +v.toPrecision(12));
  }
  return out;
}

// The frame, the ticks xt and yt with their labels, and the axis titles of a plot area a
// ({left, top, right, bottom}) where X and Y place a value; the y title clear of the widest
// label. Returns where the titles went: [[text, x, y, rotated], ...] (the canvas's data-titles).
function drawAxes(ctx, a, X, Y, xt, yt, xtitle, ytitle) {
  ctx.strokeStyle = '#333', ctx.fillStyle = '#333', ctx.lineWidth = 1;
  ctx.strokeRect(a.left + 0.5, a.top + 0.5, a.right - a.left - 1, a.bottom - a.top - 1);
  ctx.font = '11px system-ui, sans-serif';
  ctx.beginPath();
  ctx.textAlign = 'center', ctx.textBaseline = 'top';
  for (const v of xt) {
    const x = Math.round(X(v)) + 0.5;
    ctx.moveTo(x, a.bottom), ctx.lineTo(x, a.bottom + 4);
    ctx.fillText(String(v), x, a.bottom + 6);
  }
  ctx.textAlign = 'right', ctx.textBaseline = 'middle';
  let widest = 0;
  for (const v of yt) {
    const y = Math.round(Y(v)) + 0.5;
    ctx.moveTo(a.left - 4, y), ctx.lineTo(a.left, y);
    ctx.fillText(String(v), a.left - 6, y);
    widest = Math.max(widest, ctx.measureText(String(v)).width);
  }
  ctx.stroke();
  ctx.font = '12px system-ui, sans-serif';
  ctx.textAlign = 'center', ctx.textBaseline = 'middle';
  const tx = [(a.left + a.right) / 2, a.bottom + 30];
  const ty = [Math.max(8, a.left - 6 - widest - 12), (a.top + a.bottom) / 2];
  ctx.fillText(xtitle, ...tx);
  ctx.save();
  ctx.translate(...ty);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(ytitle, 0, 0);
  ctx.restore();
  return [[xtitle, ...tx, false], [ytitle, ...ty, true]];
}

// ---- the scatter of the test set's latent means, on the grid's two dimensions

// The square range shown: the means' extent and the grid's plane, widened to whole ticks.
function scatterRange(s, g) {
  const L = s.dims, p = plane(g);
  let lo = p.lo, hi = p.hi;
  for (let i = 0; i < s.count; i++) {
    const x = s.mu[i * L + g.dx], y = g.dy >= 0 ? s.mu[i * L + g.dy] : 0;
    lo = Math.min(lo, x, y), hi = Math.max(hi, x, y);
  }
  return niceRange(lo, hi, 5);
}

function drawScatter() {
  const cv = $('scatter'), s = S.scatter, g = S.drawn;
  const { ctx, w, h } = chartContext(cv);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  S.view = null;
  if (!s || !g) {
    drawMarkers();
    drawWalkMarks();
    return;
  }
  const [lo, hi] = scatterRange(s, g), size = Math.max(10, Math.min(w - 64, h - 52));
  const v = { lo, hi, left: 52, top: 12, size }, k = size / (hi - lo), L = s.dims;
  const a = { left: v.left, top: v.top, right: v.left + size, bottom: v.top + size };
  const X = (x) => a.left + (x - lo) * k, Y = (y) => a.bottom - (y - lo) * k;
  ctx.save();
  ctx.beginPath();
  ctx.rect(a.left, a.top, size, size);
  ctx.clip();
  ctx.globalAlpha = 0.7;
  for (let i = 0; i < s.count; i++) {
    ctx.fillStyle = COLORS[(s.labels ? s.labels[i] : 0) % COLORS.length];
    ctx.fillRect(X(s.mu[i * L + g.dx]) - 1.25, Y(g.dy >= 0 ? s.mu[i * L + g.dy] : 0) - 1.25, 2.5, 2.5);
  }
  ctx.globalAlpha = 1;
  // the grid's range
  const p = plane(g), x0 = Math.round(X(p.lo)), x1 = Math.round(X(p.hi));
  const y0 = Math.round(Y(g.dy >= 0 ? p.hi : 0)), y1 = Math.round(Y(g.dy >= 0 ? p.lo : 0));
  ctx.strokeStyle = '#000', ctx.lineWidth = 2;
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  ctx.fillStyle = '#000', ctx.font = '11px system-ui, sans-serif', ctx.textAlign = 'left', ctx.textBaseline = 'bottom';
  ctx.fillText('grid', x0 + 3, y0 - 2);
  ctx.restore();
  const xt = ticks(lo, hi, 5, false), yt = xt;
  const titles = drawAxes(ctx, a, X, Y, xt, yt, `z[${g.dx}] (mean)`,
                          g.dy >= 0 ? `z[${g.dy}] (mean)` : '(one latent dimension)');
  cv.dataset.titles = JSON.stringify(titles);
  S.view = v;
  cv.dataset.view = JSON.stringify(v);
  cv.dataset.ticks = JSON.stringify(xt);
  cv.dataset.rect = JSON.stringify([p.lo, p.hi]);
  document.body.dataset.scatter = String(s.count);
  drawMarkers();
  drawWalkMarks();
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

// ---- markers: where the decoded z lies, on the grid and on the scatter

function drawMark(cv, at) {
  const { ctx } = chartContext(cv);
  cv.dataset.at = at ? JSON.stringify(at) : '';
  if (!at) return;
  const [x, y] = at;
  for (const [color, width] of [['#fff', 3.5], [MARK, 1.75]]) {
    ctx.strokeStyle = color, ctx.lineWidth = width;
    ctx.beginPath();
    ctx.arc(x, y, 7, 0, 2 * Math.PI);
    ctx.moveTo(x - 13, y), ctx.lineTo(x - 7, y), ctx.moveTo(x + 7, y), ctx.lineTo(x + 13, y);
    ctx.moveTo(x, y - 13), ctx.lineTo(x, y - 7), ctx.moveTo(x, y + 7), ctx.lineTo(x, y + 13);
    ctx.stroke();
  }
}

// Where z lies on the grid (CSS pixels of the grid's box) and on the scatter's canvas (null
// before the scatter is drawn); `inside` whether it is within the grid's plane or the plot area.
function gridXY(z) {
  const g = S.drawn, p = plane(g), r = $('grid').getBoundingClientRect();
  const fx = (z[g.dx] - p.lo) / (p.hi - p.lo), fy = g.dy >= 0 ? 1 - (z[g.dy] - p.lo) / (p.hi - p.lo) : 0.5;
  return { at: [fx * r.width, fy * r.height], inside: fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1 };
}

function scatterXY(z) {
  const g = S.drawn, v = S.view;
  if (!v) return null;
  const k = v.size / (v.hi - v.lo), x = v.left + (z[g.dx] - v.lo) * k;
  const y = v.top + v.size - ((g.dy >= 0 ? z[g.dy] : 0) - v.lo) * k;
  return { at: [x, y], inside: x >= v.left && x <= v.left + v.size && y >= v.top && y <= v.top + v.size };
}

function drawMarkers() {
  const z = S.shown;
  let onGrid = null, onScatter = null;
  if (z && S.drawn) {
    const a = gridXY(z), b = scatterXY(z);
    if (a.inside) onGrid = a.at;
    if (b && b.inside) onScatter = b.at;
  }
  drawMark($('grid-marker'), onGrid);
  drawMark($('scatter-marker'), onScatter);
}

// ---- the loss: per epoch from metrics.csv, every few steps from progress.csv

async function loadCurve() {
  const [m, p] = await Promise.all([getJSON('/api/metrics'), getJSON('/api/progress')]);
  S.curve = { m, p };
  drawLoss();
}

function showLegend(items) {
  const el = $('loss-legend');
  el.textContent = '';
  for (const [color, kind, text] of items) {
    const span = document.createElement('span'), line = document.createElement('i');
    line.className = `line${kind}`;
    line.style.background = color;
    span.append(line, text);
    el.append(span);
  }
}

function drawLoss() {
  const cv = $('loss'), { ctx, w, h } = chartContext(cv), legend = [];
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  showLegend(legend);
  if (!S.curve) return;
  const { m, p } = S.curve, spe = p.steps_per_epoch;
  // a row of progress.csv at the run's step s lies at epoch s / (steps per epoch)
  const px = p.step.map((s, i) => (spe ? s / spe : p.epoch[i] - 0.5));
  cv.dataset.progress = String(px.length);
  cv.dataset.epochs = String(m.epoch.length);
  ctx.font = '12px system-ui, sans-serif';
  if (!m.epoch.length && !px.length) {
    ctx.fillStyle = '#555';
    ctx.fillText('no metrics.csv or progress.csv beside the checkpoint yet', 20, h / 2);
    cv.dataset.view = '';
    return;
  }
  const xs = m.epoch.concat(px), ys = m.train_loss.concat(m.test_loss, p.loss);
  let x0 = Math.floor(Math.min(...xs)), x1 = Math.ceil(Math.max(...xs));
  if (x1 < x0 + 1) x1 = x0 + 1;
  const [y0, y1] = niceRange(Math.min(...ys), Math.max(...ys), 5);
  // the frame, and inside it by a margin (the points at its ends whole) where the values lie
  const a = { left: 66, top: 12, right: w - 16, bottom: h - 44 }, inset = 6;
  const d = { left: a.left + inset, top: a.top + inset, right: a.right - inset, bottom: a.bottom - inset };
  const X = (x) => d.left + (x - x0) / (x1 - x0) * (d.right - d.left);
  const Y = (y) => d.bottom - (y - y0) / (y1 - y0) * (d.bottom - d.top);
  if (px.length) { // every few steps: thin, in the train colour
    ctx.strokeStyle = TRAIN, ctx.fillStyle = TRAIN, ctx.lineWidth = 1, ctx.globalAlpha = 0.55;
    ctx.beginPath();
    px.forEach((x, i) => (i ? ctx.lineTo(X(x), Y(p.loss[i])) : ctx.moveTo(X(x), Y(p.loss[i]))));
    ctx.stroke();
    px.forEach((x, i) => ctx.fillRect(X(x) - 1.5, Y(p.loss[i]) - 1.5, 3, 3));
    ctx.globalAlpha = 1;
  }
  for (const [key, color] of [['train_loss', TRAIN], ['test_loss', TEST]]) {
    ctx.strokeStyle = color, ctx.fillStyle = color, ctx.lineWidth = 2;
    ctx.beginPath();
    m[key].forEach((v, i) => (i ? ctx.lineTo(X(m.epoch[i]), Y(v)) : ctx.moveTo(X(m.epoch[i]), Y(v))));
    ctx.stroke();
    m[key].forEach((v, i) => {
      ctx.beginPath();
      ctx.arc(X(m.epoch[i]), Y(v), 3, 0, 2 * Math.PI);
      ctx.fill();
    });
  }
  const titles = drawAxes(ctx, a, X, Y, ticks(x0, x1, 6, true), ticks(y0, y1, 5, false), 'epoch',
                          'loss per image (reconstruction + KL)');
  cv.dataset.titles = JSON.stringify(titles);
  const last = (xs) => xs[xs.length - 1].toFixed(2);
  if (m.epoch.length) legend.push([TRAIN, '', `train (mean over the epoch's batches) ${last(m.train_loss)}`],
                                  [TEST, '', `test ${last(m.test_loss)}`]);
  if (px.length) legend.push([TRAIN, ' thin', `train (a batch every few steps) ${last(p.loss)}`]);
  showLegend(legend);
  cv.dataset.view = JSON.stringify({ x0, x1, y0, y1, ...d, frame: a });
}

// ---- reconstructions: the first test images and the decodings of their means

async function drawRecon() {
  const box = $('recon-box'), n = Math.min(RECON_COUNT, S.info.test_images);
  box.hidden = !S.info.scatter || n < 1;
  if (box.hidden) return;
  const { height: H, width: W, channels: C } = S.info, cols = Math.min(n, 8), rows = 2 * Math.ceil(n / cols);
  try {
    const { bytes } = await getBytes(`/api/reconstruct?count=${n}`);
    putImage($('recon'), bytes, cols * W, rows * H, C);
    S.reconCount = n;
    showWalkEnd();
    $('recon-title').textContent = `Reconstructions of the first ${n} test images`;
    $('recon').dataset.version = String(S.version);
  } catch (e) {
    $('recon-title').textContent = `Reconstructions: ${e.message || e}`;
  }
}

// ---- the decoding panel

// The decoding of z: one request at a time, the latest z wins. `pointer`: the z is one the
// pointer chose (#z's data-z says it), not the panel's first z = 0 or a redraw.
async function decode(z, pointer) {
  S.lastZ = z, S.lastPointer = pointer;
  if (S.decoding) {
    S.next = { z, pointer };
    return;
  }
  S.decoding = true;
  try {
    const cls = selectedClass();
    const { bytes, ms } = await getBytes(`/api/decode?z=${z.join(',')}${conditionParams()}`);
    const { height: H, width: W, channels: C } = S.info;
    putImage($('live'), bytes, W, H, C);
    $('z').textContent = `z = (${z.map((v) => v.toFixed(3)).join(', ')})`;
    $('decoding').dataset.cls = cls === null ? '' : String(cls);
    if (pointer) $('z').dataset.z = JSON.stringify(z);
    $('decoding').dataset.z = JSON.stringify(z);
    $('timing').textContent = (cls === null ? '' : `class ${S.info.conditional.class_names[cls]}; `) +
      `decoded on the device in ${ms.toFixed(2)} ms`;
    S.shown = z;
    drawMarkers();
  } catch (e) {
    showError(e);
  }
  S.decoding = false;
  if (S.next) {
    const { z: nz, pointer: np } = S.next;
    S.next = null;
    decode(nz, np);
  }
}

function onPointer(ev) {
  if (!S.drawn || (ev.type === 'pointermove' && ev.pointerType === 'touch' && !ev.buttons)) return;
  const r = ev.currentTarget.getBoundingClientRect(), g = S.drawn, z = new Array(S.info.latent).fill(0);
  let fx, fy, lo, hi;
  if (ev.currentTarget.id === 'grid') {
    ({ lo, hi } = plane(g));
    fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
  } else {
    const v = S.view;
    if (!v) return;
    lo = v.lo, hi = v.hi;
    fx = (ev.clientX - r.left - v.left) / v.size, fy = (ev.clientY - r.top - v.top) / v.size;
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return; // on the axes
  }
  z[g.dx] = lo + fx * (hi - lo);
  if (g.dy >= 0) z[g.dy] = lo + (1 - fy) * (hi - lo);
  decode(z, true);
  if (ev.type === 'pointerdown' && ev.button === 0 && (ev.shiftKey || S.pickMode)) pickEnd({ kind: 'points', at: z });
}

// ---- the latent walk: z_k = a + k/(N-1)(b - a), as `clvae interpolate` draws it, between two
// test images (a row of N + 2 tiles: image I, the walk, image J) or two points (N tiles)

function walkSteps() {
  const n = Number($('walk-steps').value);
  if (!Number.isInteger(n) || n < 2 || n > 64) throw new Error('steps must be a whole number from 2 to 64');
  return n;
}

const fmt = (z) => `(${z.map((v) => v.toFixed(2)).join(', ')})`;
const imageName = (i) => {
  const labels = S.scatter && S.scatter.labels, names = S.info.conditional ? S.info.conditional.class_names : S.info.classes;
  return labels && names[labels[i]] !== undefined ? `image ${i} (${names[labels[i]]})` : `image ${i}`;
};

// Draws walk w ({kind, from, to, steps}); a walk between points decodes the selected class.
async function drawWalk(w) {
  const seq = ++S.walkSeq, images = w.kind === 'images', cls = images ? null : selectedClass();
  const q = (images ? `from=${w.from}&to=${w.to}` : `from_z=${w.from.join(',')}&to_z=${w.to.join(',')}`) +
    `&steps=${w.steps}${images ? '' : conditionParams()}`;
  const { bytes, ms } = await getBytes(`/api/walk?${q}`);
  if (seq !== S.walkSeq) return; // a newer walk is on its way
  const { height: H, width: W, channels: C } = S.info, tiles = w.steps + (images ? 2 : 0), cv = $('walk-row');
  putImage(cv, bytes, tiles * W, H, C);
  S.walk = { kind: w.kind, from: w.from, to: w.to, steps: w.steps, cls };
  sizeWalk();
  let cond = '';
  if (S.info.conditional && images && S.scatter && S.scatter.labels) {
    const names = S.info.conditional.class_names, [a, b] = [w.from, w.to].map((i) => names[S.scatter.labels[i]]);
    cond = a === b ? ` of class ${a}` : `; the class goes from ${a} to ${b}`;
  } else if (cls !== null) cond = ` of class ${S.info.conditional.class_names[cls]}`;
  $('walk-title').textContent = images ? `from ${imageName(w.from)} to ${imageName(w.to)}`
                                       : `from z = ${fmt(w.from)} to ${fmt(w.to)}`;
  $('walk-note').textContent = (images ? `image ${w.from}, ${w.steps} decodings between their means, image ${w.to}`
                                       : `${w.steps} decodings`) + `${cond} (${ms.toFixed(1)} ms on the device)`;
  cv.dataset.walk = JSON.stringify(S.walk);
  cv.dataset.query = q;
  cv.dataset.version = String(S.version);
  drawWalkMarks();
}

// The row's tiles at a readable size: fitting the panel's width, scrolling sideways when many.
function sizeWalk() {
  if (!S.walk) return;
  const cv = $('walk-row'), tiles = cv.width / S.info.width, box = $('walk-strip').clientWidth;
  cv.style.width = `${Math.floor(tiles * Math.max(20, Math.min(64, box / tiles)))}px`;
}

function startWalk(w) {
  showError(null);
  try {
    w.steps = walkSteps();
  } catch (e) {
    showError(e);
    return;
  }
  if (w.kind === 'images') $('walk-from').value = w.from, $('walk-to').value = w.to;
  else $('walk-from').value = '', $('walk-to').value = '';
  drawWalk(w).catch(showError);
}

// One end of a walk picked ({kind: 'images', at: index} or {kind: 'points', at: z}): the first
// waits for the second (of the same kind), and the second draws the walk.
function pickEnd(end) {
  const first = S.walkEnd;
  S.walkEnd = first && first.kind === end.kind ? null : end;
  showWalkEnd();
  drawWalkMarks();
  if (!S.walkEnd) startWalk({ kind: end.kind, from: first.at, to: end.at });
}

// The first end picked: outlined among the reconstructions, marked on the planes, and said.
function showWalkEnd() {
  const e = S.walkEnd, box = $('recon-pick'), cv = $('recon');
  box.hidden = !e || e.kind !== 'images' || e.at >= S.reconCount;
  if (!box.hidden) {
    const { height: H, width: W } = S.info, cols = cv.width / W, i = e.at;
    box.style.left = `${(i % cols) * W / cv.width * 100}%`, box.style.width = `${W / cv.width * 100}%`;
    box.style.top = `${Math.floor(i / cols) * 2 * H / cv.height * 100}%`, box.style.height = `${2 * H / cv.height * 100}%`;
  }
  $('walk').dataset.end = e ? JSON.stringify(e) : '';
  if (e) $('walk-title').textContent = e.kind === 'images' ? `from ${imageName(e.at)}: now click the other image`
                                                           : `from z = ${fmt(e.at)}: now pick the other end`;
}

// The index of the test image whose tile (original or reconstruction) is under the pointer, or -1.
function reconIndex(ev) {
  const cv = $('recon'), r = cv.getBoundingClientRect(), { height: H, width: W } = S.info;
  const x = (ev.clientX - r.left) / r.width * cv.width, y = (ev.clientY - r.top) / r.height * cv.height;
  const cols = cv.width / W, col = Math.floor(x / W), i = Math.floor(y / (2 * H)) * cols + col;
  return col >= 0 && col < cols && y >= 0 && i < S.reconCount ? i : -1;
}

// A walk's ends (and a first end picked) as latent points: a test image's is its mean, from
// the scatter's encodings.
function endZ(kind, at) {
  if (kind === 'points') return at;
  const s = S.scatter;
  return s && at < s.count ? Array.from(s.mu.slice(at * s.dims, (at + 1) * s.dims)) : null;
}

// The walk's path from a (a ring) to b (a dot) on both planes; a first end picked alone.
function drawWalkMarks() {
  for (const id of ['grid', 'scatter']) {
    const cv = $(`${id}-walk`), { ctx } = chartContext(cv), v = S.view;
    const place = (z) => (z && S.drawn ? (id === 'grid' ? gridXY(z) : scatterXY(z)) : null);
    const w = S.walk, e = S.walkEnd;
    const a = place(e ? endZ(e.kind, e.at) : w && endZ(w.kind, w.from)), b = !e && w ? place(endZ(w.kind, w.to)) : null;
    cv.dataset.path = JSON.stringify([a && a.at, b && b.at]);
    if (!a || (id === 'scatter' && !v)) continue;
    if (id === 'scatter') {
      ctx.beginPath();
      ctx.rect(v.left, v.top, v.size, v.size);
      ctx.clip();
    }
    for (const [color, width] of [['#fff', 4], [MARK, 2]]) {
      ctx.strokeStyle = color, ctx.fillStyle = color, ctx.lineWidth = width;
      ctx.beginPath();
      if (b) ctx.moveTo(...a.at), ctx.lineTo(...b.at);
      ctx.moveTo(a.at[0] + 5, a.at[1]);
      ctx.arc(...a.at, 5, 0, 2 * Math.PI);
      ctx.stroke();
      if (b) {
        ctx.beginPath();
        ctx.arc(...b.at, width + 2, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
}

// ---- the run: checkpoint, curve, training

function duration(s) {
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`;
}

// A `clvae train` holding the run (t from /api/state; null: none).
function showTraining(t) {
  const el = $('training');
  el.hidden = !t;
  el.dataset.training = t ? JSON.stringify(t) : '';
  if (!t) return;
  const eta = t.epoch_eta_seconds;
  $('training-text').textContent = `training: epoch ${t.epoch}, step ${t.step}` +
    (t.steps_per_epoch ? ` (${t.epoch_step} of ${t.steps_per_epoch} in this epoch)` : '') +
    (eta !== null ? `, about ${duration(eta)} left in this epoch` : '');
}

async function refresh() {
  S.info = await getJSON('/api/info');
  S.version = S.info.version;
  const L = S.info.latent;
  $('dims').hidden = L <= 2;
  setupCondition();
  $('walk').hidden = false;
  $('walk-from').max = $('walk-to').max = String(Math.max(0, S.info.test_images - 1));
  if (S.walk && S.walk.kind === 'points' && S.walk.from.length !== L) S.walk = null; // another latent size
  if (S.walkEnd && S.walkEnd.kind === 'points' && S.walkEnd.at.length !== L) S.walkEnd = null;
  if ($('dx').options.length !== L) {
    S.dims = { dx: 0, dy: 1 };
    for (const id of ['dx', 'dy']) {
      const sel = $(id);
      sel.textContent = '';
      for (let i = 0; i < L; i++) sel.add(new Option(String(i), String(i), false, i === S.dims[id]));
    }
  }
  $('model').textContent = `${S.info.checkpoint}: ${S.info.height}×${S.info.width}×${S.info.channels} images, ` +
    `${S.info.layers}, latent ${L}`;
  $('status').textContent = `epoch ${S.info.epoch}, step ${S.info.step}` +
    (S.info.reload_error ? ` (${S.info.reload_error})` : '');
  await loadScatter();
  await drawGrid();
  await loadCurve();
  await drawRecon();
  if (S.walk) await drawWalk(S.walk).catch(showError); // the same walk under the new parameters
  // the same point under the new parameters; z = 0 at first
  if (S.lastZ && S.lastZ.length === L) decode(S.lastZ, S.lastPointer);
  else decode(new Array(L).fill(0), false);
  document.body.dataset.version = String(S.version);
}

async function poll() {
  try {
    const st = await getJSON('/api/state');
    showTraining(st.training);
    const key = `${st.metrics}/${st.progress}`;
    if (st.version !== S.version) await refresh();
    else if (key !== S.curveKey) await loadCurve();
    S.curveKey = key;
    if (st.reload_error) $('status').textContent = `epoch ${st.epoch}, step ${st.step} (${st.reload_error})`;
  } catch (e) {
    $('status').textContent = e instanceof ServerError ? String(e.message) : `the server does not answer (${e.message || e})`;
  }
  document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  setTimeout(poll, 1000);
}

// ---- controls

$('controls').addEventListener('submit', (ev) => { // the Update button, or Enter in a field
  ev.preventDefault();
  update();
});
$('controls').addEventListener('keydown', (ev) => { // Enter in a selector too
  if (ev.key === 'Enter' && ev.target.tagName === 'SELECT') {
    ev.preventDefault();
    update();
  }
});
for (const [id, other] of [['dx', 'dy'], ['dy', 'dx']]) { // the dimensions apply at once
  $(id).addEventListener('change', () => {
    if ($(other).value === $(id).value) $(other).value = String(S.dims[id]); // the two swap
    S.dims = { dx: Number($('dx').value), dy: Number($('dy').value) };
    update();
  });
}
$('cls').addEventListener('change', () => { // the class applies at once: the grid, the decoding, a walk of points
  update();
  if (S.lastZ) decode(S.lastZ, S.lastPointer);
  if (S.walk && S.walk.kind === 'points') drawWalk(S.walk).catch(showError);
});
for (const id of ['grid', 'scatter']) {
  $(id).addEventListener('pointermove', onPointer);
  $(id).addEventListener('pointerdown', onPointer);
}
$('recon').addEventListener('click', (ev) => {
  const i = reconIndex(ev);
  if (i >= 0) pickEnd({ kind: 'images', at: i });
});
$('walk-pick').addEventListener('click', () => {
  S.pickMode = !S.pickMode;
  $('walk-pick').setAttribute('aria-pressed', String(S.pickMode));
});
// Walk: the two image indices given, or (with none given) the walk shown again with the steps given
$('walk-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = $('walk-from').value.trim(), t = $('walk-to').value.trim(), n = S.info.test_images;
  if (!f && !t && S.walk) return startWalk({ ...S.walk });
  const a = Number(f), b = Number(t), ok = (i) => Number.isInteger(i) && i >= 0 && i < n;
  if (!f || !t || !ok(a) || !ok(b)) return showError(new Error(n ? `give two test image indices from 0 to ${n - 1}`
                                                                  : 'no test images to walk between'));
  return startWalk({ kind: 'images', from: a, to: b });
});
$('walk-steps').addEventListener('change', () => { // the walk shown, with the new steps
  if (S.walk) startWalk({ ...S.walk });
});
// a chart follows its box's size (the layout changes with the window)
new ResizeObserver(() => {
  if (!S.info) return;
  drawScatter();
  drawLoss();
  sizeWalk();
}).observe($('layout'));
refresh().catch(showError).finally(() => setTimeout(poll, 1000));
