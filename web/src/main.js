// The img2loc web app: locate a photo (camera, file, drop, paste, examples), a game mode
// and a screen assist for GeoGuessr. Everything runs in this page; nothing is uploaded.
import './style.css';
import { haversineKm, summarize } from './decode.js';
import { decodeBlob, exifGps, grabFrame } from './image.js';
import { WorldMap } from './map.js';
import { Model } from './model.js';
import { preprocessRgb } from './preprocess.js';
import { Game } from './game.js';
import { Assist } from './assist.js';
import { loadExamples } from './examples.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const MODEL_BASE = new URL(params.get('model') ?? 'model/', document.baseURI).href;
const THREADS = Number(params.get('threads')) || (self.crossOriginIsolated ? Math.min(2, navigator.hardwareConcurrency || 1) : 1);
// Score-optimal by default (as `img2loc predict`); ?decode=hierarchical for the argmax cell.
const RULE = params.get('decode') === 'hierarchical' ? 'hierarchical' : 'score';

const status = (text, cls = '') => {
  $('status').textContent = text;
  $('status').className = cls;
};
const fmtKm = (km) => (km < 1 ? `${Math.round(km * 1000)} m` : km < 100 ? `${km.toFixed(1)} km` : `${Math.round(km).toLocaleString('en')} km`);

const map = new WorldMap($('map'));
const t0 = performance.now();
const app = {
  model: null,
  last: null,
  ready: null,
  threads: THREADS,
  /** Milliseconds since navigation: model ready, first answer (for benchmarks). */
  timings: {},
  /** Probabilities (Array) and timings for an image blob: used by the UI and by tests. */
  async probabilities(blob) {
    const img = await decodeBlob(blob, blob.name);
    return this.infer(img);
  },
  async infer(img) {
    const model = await this.ready;
    await this.warm;
    const t = performance.now();
    const x = preprocessRgb(img.rgb, img.width, img.height, model.pre, { isJpeg: img.jpeg });
    const tp = performance.now();
    const probs = await model.run(x);
    const tr = performance.now();
    return { probs, preprocessMs: tp - t, inferenceMs: tr - tp };
  },
};
window.img2loc = app;

app.ready = Model.load(MODEL_BASE, { variant: params.get('variant') ?? 'auto', threads: THREADS }).then(
  (m) => {
    app.model = m;
    app.timings.ready = performance.now();
    // ONNX Runtime's first run allocates its buffers: do it while the user picks a photo.
    app.warm = m.run(new Float32Array(3 * m.pre.input_size ** 2)).catch(() => {});
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    status(`Model ready (${m.cells.n} cells, ${m.file}, ${THREADS} thread${THREADS > 1 ? 's' : ''}, ${s} s)`, 'ok');
    document.body.dataset.ready = '1';
    return m;
  },
  (e) => {
    status(`Model failed to load: ${e.message}`, 'error');
    document.body.dataset.ready = 'error';
    throw e;
  },
);

// ------------------------------------------------------------------ locate
let busy = false;
async function locate(source, { name = 'photo', blob = null } = {}) {
  if (busy) return null;
  busy = true;
  status(`Locating ${name}…`);
  try {
    const img = blob ? await decodeBlob(blob, name) : source;
    const [r, gps] = await Promise.all([app.infer(img), blob ? exifGps(blob) : null]);
    const model = app.model;
    const res = summarize(r.probs, model.cells, { rule: RULE, topK: 5 });
    res.name = name;
    res.inferenceMs = r.inferenceMs;
    res.preprocessMs = r.preprocessMs;
    res.gps = gps;
    res.errorKm = gps ? haversineKm(res.lat, res.lon, gps.lat, gps.lon) : null;
    res.probs = Array.from(r.probs);
    show(res, blob);
    app.last = res;
    app.timings.firstAnswer ??= performance.now();
    document.body.dataset.answers = String(Number(document.body.dataset.answers ?? 0) + 1);
    status(`${name}: ${res.place || res.token} (${r.inferenceMs.toFixed(0)} ms)`, 'ok');
    return res;
  } catch (e) {
    status(e.message, 'error');
    app.lastError = e.message;
    return null;
  } finally {
    busy = false;
  }
}
app.locate = locate;

function show(res, blob) {
  const model = app.model;
  $('result').hidden = false;
  if (blob) {
    if ($('preview').src.startsWith('blob:')) URL.revokeObjectURL($('preview').src);
    $('preview').src = URL.createObjectURL(blob);
  }
  $('answer').textContent = `${res.place || res.token}`;
  const parts = [`confidence ${(100 * res.confidence).toFixed(1)}%`, `${res.inferenceMs.toFixed(0)} ms`];
  if (res.gps) parts.push(`true position from EXIF: ${fmtKm(res.errorKm)} away`);
  $('details').textContent = parts.join(' · ');
  const ol = $('top');
  ol.replaceChildren(
    ...res.top.map((t) => {
      const li = document.createElement('li');
      li.textContent = `${t.place || t.token} — ${(100 * t.probability).toFixed(1)}%`;
      return li;
    }),
  );
  map.clear();
  map.cells(model.cells, res.top);
  map.marker(res.lat, res.lon, 'guess', '', `guess: ${res.place}`);
  const pts = [[res.lat, res.lon], ...res.top.slice(0, 3).map((t) => [t.lat, t.lon])];
  if (res.gps) {
    map.marker(res.gps.lat, res.gps.lon, 'truth', '', 'true position (EXIF)');
    map.line([res.lat, res.lon], [res.gps.lat, res.gps.lon]);
    pts.push([res.gps.lat, res.gps.lon]);
  }
  map.fit(pts);
}

async function locateFiles(files) {
  for (const f of files) if (f.type.startsWith('image/') || /\.(jpe?g|png|webp|gif|bmp|avif|heic|heif)$/i.test(f.name)) await locate(null, { blob: f, name: f.name });
}

$('file-input').addEventListener('change', (e) => locateFiles([...e.target.files]));
addEventListener('paste', (e) => {
  const files = [...(e.clipboardData?.files ?? [])];
  if (files.length) locateFiles(files);
});
let dragDepth = 0;
addEventListener('dragenter', (e) => {
  e.preventDefault();
  dragDepth++;
  $('drop').hidden = false;
});
addEventListener('dragleave', () => {
  if (--dragDepth <= 0) $('drop').hidden = true;
});
addEventListener('dragover', (e) => e.preventDefault());
addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  $('drop').hidden = true;
  locateFiles([...(e.dataTransfer?.files ?? [])]);
});

// ------------------------------------------------------------------ examples
const examplesBase = new URL('examples/', document.baseURI).href;
app.examples = loadExamples(examplesBase).catch(() => []);
app.examples.then((list) => {
  for (const [i, e] of list.entries()) {
    const o = document.createElement('option');
    o.value = String(i);
    o.textContent = `${i + 1}. ${e.projection === 'equirectangular' || e.projection === 'spherical' ? '360° ' : ''}${e.lat.toFixed(2)}, ${e.lon.toFixed(2)}`;
    $('examples').append(o);
  }
});
async function locateExample(i) {
  const e = (await app.examples)[i];
  if (!e) return null;
  const blob = await (await fetch(e.url)).blob();
  const res = await locate(null, { blob, name: e.name });
  if (res && !res.gps) {
    // The example's known position plays the role of EXIF GPS.
    res.gps = { lat: e.lat, lon: e.lon };
    res.errorKm = haversineKm(res.lat, res.lon, e.lat, e.lon);
    show(res, null);
  }
  return res;
}
app.locateExample = locateExample;
$('examples').addEventListener('change', (e) => {
  if (e.target.value !== '') locateExample(Number(e.target.value));
});

// ------------------------------------------------------------------ camera
let stream = null;
let facing = 'environment';
let liveTimer = null;
async function startCamera() {
  stopCamera();
  if (!navigator.mediaDevices?.getUserMedia) {
    status('No camera API here (the page must be served from localhost or https)', 'error');
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: facing }, width: { ideal: 1280 }, height: { ideal: 960 } }, audio: false });
  } catch (e) {
    status(`Camera unavailable: ${e.message}`, 'error');
    return;
  }
  $('video').srcObject = stream;
  $('camera').hidden = false;
  await $('video').play().catch(() => {});
}
function stopCamera() {
  clearInterval(liveTimer);
  liveTimer = null;
  $('live').checked = false;
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  $('camera').hidden = true;
}
async function capture() {
  const v = $('video');
  try {
    const img = grabFrame(v);
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    c.getContext('2d').drawImage(v, 0, 0);
    $('preview').src = c.toDataURL('image/jpeg', 0.8);
    return await locate(img, { name: 'camera' });
  } catch (e) {
    status(e.message, 'error');
    return null;
  }
}
app.startCamera = startCamera;
app.capture = capture;
$('camera-btn').addEventListener('click', startCamera);
$('camera-close').addEventListener('click', stopCamera);
$('capture-btn').addEventListener('click', capture);
$('switch-btn').addEventListener('click', () => {
  facing = facing === 'environment' ? 'user' : 'environment';
  startCamera();
});
$('live').addEventListener('change', (e) => {
  clearInterval(liveTimer);
  liveTimer = e.target.checked ? setInterval(() => busy || capture(), 1000) : null;
});

// ------------------------------------------------------------------ tabs, map options
const game = new Game({ app, map, $, status, fmtKm });
const assist = new Assist({ app, map, $, status, fmtKm });
app.game = game;
app.assist = assist;
for (const b of document.querySelectorAll('#tabs button')) {
  b.addEventListener('click', () => {
    for (const o of document.querySelectorAll('#tabs button')) o.setAttribute('aria-selected', String(o === b));
    for (const t of document.querySelectorAll('.tab')) t.hidden = t.id !== `tab-${b.dataset.tab}`;
    map.clear();
    map.map.invalidateSize();
  });
}
$('osm').addEventListener('change', (e) => map.setOsm(e.target.checked));

const auto = params.get('example');
if (auto !== null) app.ready.then(() => locateExample(Number(auto)));
